//! The model repository: which models (and versions) exist, and which are ready.
//!
//! Models are discovered on disk ([`discovery`]), loaded off the async threads ([`loader`]) and
//! kept here by name and version. Lookups clone an `Arc` out of a short read lock, so a request
//! never waits on a load.

pub mod discovery;
pub mod loader;

use crate::config::Settings;
use crate::wasm::WasmEngine;
pub use discovery::{DiscoveredModel, discover};
pub use loader::{LoadError, LoadedModel, load_model};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

/// The state of one model version.
#[derive(Clone)]
pub enum ModelState {
    /// Loaded and serving.
    Ready(Arc<LoadedModel>),
    /// Could not be loaded, with the reason.
    Unavailable(String),
}

/// Why a model lookup failed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LookupError {
    #[error("model '{0}' not found")]
    ModelNotFound(String),
    #[error("model '{name}' has no version '{version}'")]
    VersionNotFound { name: String, version: String },
    #[error("model '{name}' is not ready: {reason}")]
    Unavailable { name: String, reason: String },
}

type Versions = BTreeMap<Option<String>, ModelState>;

/// Every model the server knows, by name and version.
#[derive(Default)]
pub struct Repository {
    models: RwLock<BTreeMap<String, Versions>>,
}

impl Repository {
    /// Records the state of a model version, replacing any previous one.
    pub fn insert(&self, name: &str, version: Option<String>, state: ModelState) {
        self.models
            .write()
            .expect("repository lock")
            .entry(name.to_string())
            .or_default()
            .insert(version, state);
    }

    /// The ready model `name` at `version`, or at its default version when `version` is `None`.
    pub fn get(&self, name: &str, version: Option<&str>) -> Result<Arc<LoadedModel>, LookupError> {
        let models = self.models.read().expect("repository lock");
        let versions = models
            .get(name)
            .ok_or_else(|| LookupError::ModelNotFound(name.to_string()))?;
        let state = match version {
            Some(version) => versions.get(&Some(version.to_string())).ok_or_else(|| {
                LookupError::VersionNotFound {
                    name: name.to_string(),
                    version: version.to_string(),
                }
            })?,
            None => {
                let key = default_version(versions.keys())
                    .ok_or_else(|| LookupError::ModelNotFound(name.to_string()))?;
                &versions[&key]
            }
        };
        match state {
            ModelState::Ready(model) => Ok(model.clone()),
            ModelState::Unavailable(reason) => Err(LookupError::Unavailable {
                name: name.to_string(),
                reason: reason.clone(),
            }),
        }
    }

    /// The named versions of model `name`, in version order.
    pub fn versions(&self, name: &str) -> Vec<String> {
        let models = self.models.read().expect("repository lock");
        let mut versions: Vec<String> = models
            .get(name)
            .map(|versions| versions.keys().flatten().cloned().collect())
            .unwrap_or_default();
        versions.sort_by(|a, b| version_order(a, b));
        versions
    }

    /// Removes every model, for shutdown.
    pub fn drain(&self) -> Vec<ModelState> {
        let mut models = self.models.write().expect("repository lock");
        std::mem::take(&mut *models)
            .into_values()
            .flat_map(BTreeMap::into_values)
            .collect()
    }
}

/// Orders versions: numbers numerically and before other names, which compare as text.
fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

/// The version a request without a version goes to: an unversioned model if there is one (as
/// MLServer), else the highest version.
fn default_version<'a>(
    versions: impl Iterator<Item = &'a Option<String>>,
) -> Option<Option<String>> {
    let mut best: Option<&Option<String>> = None;
    for version in versions {
        best = match (best, version) {
            (_, None) => return Some(None),
            (None, _) => Some(version),
            (Some(Some(current)), Some(candidate)) if version_order(candidate, current).is_gt() => {
                Some(version)
            }
            (keep, _) => keep,
        };
    }
    best.cloned()
}

/// Discovers every model below `root` and loads them concurrently, off the async threads.
/// A model that fails is recorded as unavailable with its reason; the others load regardless.
pub async fn load_all(
    repository: &Arc<Repository>,
    engine: &WasmEngine,
    root: &Path,
    settings: &Arc<Settings>,
) -> std::io::Result<()> {
    let root = root.to_path_buf();
    let discovered = tokio::task::spawn_blocking(move || discover(&root))
        .await
        .expect("discovery does not panic")?;
    let mut loads = tokio::task::JoinSet::new();
    for model in discovered {
        let (repository, engine, settings) = (repository.clone(), engine.clone(), settings.clone());
        loads.spawn_blocking(move || {
            let state = match load_model(&engine, &model, &settings) {
                Ok(loaded) => {
                    tracing::info!(model = %model.name, version = ?model.version, "model loaded");
                    ModelState::Ready(Arc::new(loaded))
                }
                Err(error) => {
                    tracing::error!(model = %model.name, version = ?model.version, folder = %model.folder.display(), "model failed to load: {error}");
                    ModelState::Unavailable(error.to_string())
                }
            };
            repository.insert(&model.name, model.version.clone(), state);
        });
    }
    while let Some(result) = loads.join_next().await {
        if let Err(panic) = result {
            tracing::error!("a model load panicked: {panic}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(version: Option<&str>) -> Option<String> {
        version.map(str::to_string)
    }

    #[test]
    fn default_version_prefers_unversioned_then_highest() {
        let pick = |versions: &[Option<&str>]| {
            let keys: Vec<_> = versions.iter().map(|v| key(*v)).collect();
            default_version(keys.iter())
        };
        assert_eq!(
            pick(&[Some("1"), Some("10"), Some("9")]),
            Some(key(Some("10")))
        );
        assert_eq!(pick(&[Some("2"), None]), Some(None));
        assert_eq!(pick(&[Some("v1"), Some("3")]), Some(key(Some("v1"))));
        assert_eq!(pick(&[]), None);
    }

    #[test]
    fn lookups_distinguish_missing_models_versions_and_failures() {
        let repository = Repository::default();
        repository.insert(
            "broken",
            Some("1".into()),
            ModelState::Unavailable("bad file".into()),
        );
        assert_eq!(
            repository.get("nope", None).err(),
            Some(LookupError::ModelNotFound("nope".into()))
        );
        assert!(matches!(
            repository.get("broken", Some("2")),
            Err(LookupError::VersionNotFound { .. })
        ));
        assert!(matches!(
            repository.get("broken", None),
            Err(LookupError::Unavailable { .. })
        ));
        assert_eq!(repository.versions("broken"), vec!["1".to_string()]);
    }
}

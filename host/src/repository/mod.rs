//! The model repository: which models (and versions) exist, their states, and their lifecycle.
//!
//! Models are discovered on disk ([`discovery`]) and loaded off the async threads ([`loader`]).
//! Lookups clone an `Arc` out of a short read lock, so a request never waits on a load. A load
//! of a loaded model builds the new version beside the old one and swaps it in atomically; the
//! old one finishes its in-flight requests and winds down when the last of them drops it.
//! Loads and unloads of one model name are serialized; different models load concurrently.

pub mod discovery;
pub mod loader;

use crate::config::Settings;
use crate::metrics::Metrics;
use crate::wasm::WasmEngine;
pub use discovery::{DiscoveredModel, discover};
pub use loader::{LoadError, LoadedModel, load_model};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

/// The state of one model version.
#[derive(Clone)]
pub enum ModelState {
    /// Being loaded for the first time (a reload keeps the old version `Ready` meanwhile).
    Loading,
    /// Loaded and serving.
    Ready(Arc<LoadedModel>),
    /// Could not be loaded, with the reason.
    Unavailable(String),
    /// Unloaded on request.
    Unloaded,
}

impl ModelState {
    /// The protocol's name of the state.
    pub fn name(&self) -> &'static str {
        match self {
            ModelState::Loading => "LOADING",
            ModelState::Ready(_) => "READY",
            ModelState::Unavailable(_) | ModelState::Unloaded => "UNAVAILABLE",
        }
    }

    fn reason(&self) -> String {
        match self {
            ModelState::Unavailable(reason) => reason.clone(),
            ModelState::Unloaded => "unloaded".to_string(),
            _ => String::new(),
        }
    }
}

/// Why a model lookup failed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LookupError {
    #[error("model '{0}' not found")]
    ModelNotFound(String),
    #[error("model '{name}' has no version '{version}'")]
    VersionNotFound { name: String, version: String },
    #[error("model '{0}' has been unloaded")]
    Unloaded(String),
    #[error("model '{name}' is not ready: {reason}")]
    Unavailable { name: String, reason: String },
}

/// Why a repository operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    #[error("model '{0}' not found in the model repository")]
    NotFound(String),
    #[error("model '{name}' failed to load: {reason}")]
    LoadFailed { name: String, reason: String },
    #[error("cannot read the model repository: {0}")]
    Io(#[from] std::io::Error),
}

/// One row of the repository index.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry {
    pub name: String,
    pub version: Option<String>,
    /// READY, UNAVAILABLE, LOADING (UNKNOWN and UNLOADING are never reported: a model on disk
    /// that is not loaded is UNAVAILABLE, and an unload takes effect at once).
    pub state: &'static str,
    pub reason: String,
}

type Versions = BTreeMap<Option<String>, ModelState>;

/// Every model the server knows, by name and version, and how to (re)load them.
pub struct Repository {
    root: PathBuf,
    engine: WasmEngine,
    settings: Arc<Settings>,
    metrics: Arc<Metrics>,
    models: RwLock<BTreeMap<String, Versions>>,
    operations: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Repository {
    /// A repository over the models below `root`, loaded with `engine`, whose models report
    /// to `metrics`; starts empty.
    pub fn new(
        root: PathBuf,
        engine: WasmEngine,
        settings: Arc<Settings>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Repository {
            root,
            engine,
            settings,
            metrics,
            models: RwLock::default(),
            operations: Mutex::default(),
        }
    }

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
                let ready = versions
                    .iter()
                    .filter(|(_, state)| matches!(state, ModelState::Ready(_)))
                    .map(|(version, _)| version);
                let key = default_version(ready)
                    .or_else(|| default_version(versions.keys()))
                    .ok_or_else(|| LookupError::ModelNotFound(name.to_string()))?;
                &versions[&key]
            }
        };
        match state {
            ModelState::Ready(model) => Ok(model.clone()),
            ModelState::Unloaded => Err(LookupError::Unloaded(name.to_string())),
            ModelState::Loading => Err(LookupError::Unavailable {
                name: name.to_string(),
                reason: "it is loading".to_string(),
            }),
            ModelState::Unavailable(reason) => Err(LookupError::Unavailable {
                name: name.to_string(),
                reason: reason.clone(),
            }),
        }
    }

    /// The ready versions of model `name`, or of every model, in name order.
    pub fn ready_models(&self, name: Option<&str>) -> Vec<Arc<LoadedModel>> {
        let models = self.models.read().expect("repository lock");
        models
            .iter()
            .filter(|(model, _)| name.is_none_or(|name| name == model.as_str()))
            .flat_map(|(_, versions)| versions.values())
            .filter_map(|state| match state {
                ModelState::Ready(model) => Some(model.clone()),
                _ => None,
            })
            .collect()
    }

    /// How many model versions are in each state (the protocol's names; unloaded ones are
    /// UNAVAILABLE), from memory.
    pub fn state_counts(&self) -> Vec<(&'static str, i64)> {
        let mut counts = vec![("READY", 0), ("LOADING", 0), ("UNAVAILABLE", 0)];
        let models = self.models.read().expect("repository lock");
        for state in models.values().flat_map(BTreeMap::values) {
            if let Some((_, count)) = counts.iter_mut().find(|(name, _)| *name == state.name()) {
                *count += 1;
            }
        }
        counts
    }

    /// The versions of model `name` that are not unloaded, in version order.
    pub fn versions(&self, name: &str) -> Vec<String> {
        let models = self.models.read().expect("repository lock");
        let mut versions: Vec<String> = models
            .get(name)
            .map(|versions| {
                versions
                    .iter()
                    .filter(|(_, state)| !matches!(state, ModelState::Unloaded))
                    .filter_map(|(version, _)| version.clone())
                    .collect()
            })
            .unwrap_or_default();
        versions.sort_by(|a, b| version_order(a, b));
        versions
    }

    /// Discovers every model below the root and loads each, concurrently. A model that fails is
    /// recorded as unavailable with its reason; the others load regardless.
    pub async fn load_all(self: &Arc<Self>) -> Result<(), RepositoryError> {
        let discovered = self.discover().await?;
        let mut names: Vec<String> = discovered.into_iter().map(|model| model.name).collect();
        names.sort();
        names.dedup();
        let mut loads = tokio::task::JoinSet::new();
        for name in names {
            let repository = self.clone();
            loads.spawn(async move { repository.load(&name).await });
        }
        while let Some(result) = loads.join_next().await {
            match result {
                Ok(Err(error)) => tracing::debug!("{error}"),
                Err(panic) => tracing::error!("a model load panicked: {panic}"),
                Ok(Ok(())) => {}
            }
        }
        Ok(())
    }

    /// Loads model `name` from disk (re-reading its settings): every version found is built
    /// beside the serving one and swapped in when ready; versions gone from disk are unloaded.
    /// On failure the previous version, if any, keeps serving.
    ///
    /// The load runs in a task of its own: a caller that goes away (a dropped connection, a
    /// passed gRPC deadline) does not leave the model half-loaded.
    pub async fn load(self: &Arc<Self>, name: &str) -> Result<(), RepositoryError> {
        let (repository, model) = (self.clone(), name.to_string());
        let result = tokio::spawn(async move {
            let operation = repository.operation_lock(&model);
            let result = {
                let _serialized = operation.lock().await;
                repository.load_serialized(&model).await
            };
            repository.release_operation_lock(&model, operation);
            result
        })
        .await;
        result.unwrap_or_else(|panic| {
            Err(RepositoryError::LoadFailed {
                name: name.to_string(),
                reason: format!("the load panicked: {panic}"),
            })
        })
    }

    async fn load_serialized(&self, name: &str) -> Result<(), RepositoryError> {
        let found: Vec<DiscoveredModel> = self
            .discover()
            .await?
            .into_iter()
            .filter(|model| model.name == name)
            .collect();
        if found.is_empty() {
            return Err(RepositoryError::NotFound(name.to_string()));
        }
        for model in &found {
            let serving = matches!(self.state(name, &model.version), Some(ModelState::Ready(_)));
            if !serving {
                self.insert(name, model.version.clone(), ModelState::Loading);
            }
        }

        let on_disk: Vec<Option<String>> =
            found.iter().map(|model| model.version.clone()).collect();
        let mut loads = tokio::task::JoinSet::new();
        for model in found {
            let (engine, settings, metrics) = (
                self.engine.clone(),
                self.settings.clone(),
                self.metrics.clone(),
            );
            loads.spawn_blocking(move || {
                tracing::info!(model = %model.name, version = ?model.version, "loading model");
                let started = std::time::Instant::now();
                let result = load_model(&engine, &model, &settings, &metrics);
                let elapsed = started.elapsed();
                if result.is_ok() {
                    metrics.model_loaded(&model.name, model.version.as_deref(), elapsed);
                }
                (model, result, elapsed)
            });
        }
        let mut failures = Vec::new();
        while let Some(joined) = loads.join_next().await {
            let Ok((model, result, elapsed)) = joined else {
                failures.push("a load panicked".to_string());
                continue;
            };
            match result {
                Ok(loaded) => {
                    tracing::info!(model = %name, version = ?model.version, elapsed_ms = elapsed.as_millis() as u64, "model ready");
                    self.insert(name, model.version, ModelState::Ready(Arc::new(loaded)));
                }
                Err(error) => {
                    tracing::error!(model = %name, version = ?model.version, folder = %model.folder.display(), "model failed to load: {error}");
                    failures.push(match &model.version {
                        Some(version) => format!("version {version}: {error}"),
                        None => error.to_string(),
                    });
                    if !matches!(self.state(name, &model.version), Some(ModelState::Ready(_))) {
                        self.insert(
                            name,
                            model.version,
                            ModelState::Unavailable(error.to_string()),
                        );
                    }
                }
            }
        }
        self.retain_versions(name, &on_disk);
        if failures.is_empty() {
            Ok(())
        } else {
            Err(RepositoryError::LoadFailed {
                name: name.to_string(),
                reason: failures.join("; "),
            })
        }
    }

    /// Unloads every version of model `name`: new requests are refused at once, requests in
    /// flight finish on the instances they hold.
    pub async fn unload(&self, name: &str) -> Result<(), RepositoryError> {
        let operation = self.operation_lock(name);
        let result = {
            let _serialized = operation.lock().await;
            self.unload_serialized(name)
        };
        self.release_operation_lock(name, operation);
        result
    }

    fn unload_serialized(&self, name: &str) -> Result<(), RepositoryError> {
        let mut models = self.models.write().expect("repository lock");
        let versions = models
            .get_mut(name)
            .filter(|versions| {
                versions
                    .values()
                    .any(|state| !matches!(state, ModelState::Unloaded))
            })
            .ok_or_else(|| RepositoryError::NotFound(name.to_string()))?;
        for state in versions.values_mut() {
            *state = ModelState::Unloaded;
        }
        drop(models);
        tracing::info!(model = %name, "model unloaded");
        Ok(())
    }

    /// The repository index: every model known here or found on disk, with its state.
    pub async fn index(&self, ready_only: bool) -> Result<Vec<IndexEntry>, RepositoryError> {
        let on_disk = self.discover().await?;
        let mut entries: BTreeMap<(String, Option<String>), IndexEntry> = BTreeMap::new();
        for model in on_disk {
            entries.insert(
                (model.name.clone(), model.version.clone()),
                IndexEntry {
                    name: model.name,
                    version: model.version,
                    state: "UNAVAILABLE",
                    reason: "not loaded".to_string(),
                },
            );
        }
        for (name, versions) in self.models.read().expect("repository lock").iter() {
            for (version, state) in versions {
                entries.insert(
                    (name.clone(), version.clone()),
                    IndexEntry {
                        name: name.clone(),
                        version: version.clone(),
                        state: state.name(),
                        reason: state.reason(),
                    },
                );
            }
        }
        Ok(entries
            .into_values()
            .filter(|entry| !ready_only || entry.state == "READY")
            .collect())
    }

    /// Removes every model, for shutdown.
    pub fn drain(&self) -> Vec<ModelState> {
        let mut models = self.models.write().expect("repository lock");
        std::mem::take(&mut *models)
            .into_values()
            .flat_map(BTreeMap::into_values)
            .collect()
    }

    async fn discover(&self) -> std::io::Result<Vec<DiscoveredModel>> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || discover(&root))
            .await
            .map_err(std::io::Error::other)?
    }

    fn state(&self, name: &str, version: &Option<String>) -> Option<ModelState> {
        let models = self.models.read().expect("repository lock");
        models.get(name)?.get(version).cloned()
    }

    /// Unloads the versions of `name` that are no longer on disk.
    fn retain_versions(&self, name: &str, on_disk: &[Option<String>]) {
        let mut models = self.models.write().expect("repository lock");
        if let Some(versions) = models.get_mut(name) {
            for (version, state) in versions.iter_mut() {
                if !on_disk.contains(version) {
                    *state = ModelState::Unloaded;
                }
            }
        }
    }

    /// Forgets a model's operation lock once no operation holds or waits for it, so that the
    /// map does not grow with every name ever asked for.
    fn release_operation_lock(&self, name: &str, operation: Arc<tokio::sync::Mutex<()>>) {
        let mut operations = self.operations.lock().expect("operations lock");
        // Ours and the map's: nobody else holds it.
        if Arc::strong_count(&operation) == 2 {
            operations.remove(name);
        }
    }

    fn operation_lock(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.operations
            .lock()
            .expect("operations lock")
            .entry(name.to_string())
            .or_default()
            .clone()
    }
}

/// Orders versions: names as text, then numbers numerically (so the highest number is the
/// default over a name such as "canary").
fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        (Ok(_), Err(_)) => std::cmp::Ordering::Greater,
        (Err(_), Ok(_)) => std::cmp::Ordering::Less,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wasm::EngineOptions;

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
        assert_eq!(pick(&[Some("canary"), Some("3")]), Some(key(Some("3"))));
        assert_eq!(pick(&[]), None);
    }

    #[test]
    fn lookups_distinguish_missing_unloaded_and_failed_models() {
        let engine = WasmEngine::new(&EngineOptions {
            instance_pool_size: 0,
            max_memory_bytes: 1 << 20,
            cache_dir: None,
        })
        .unwrap();
        let repository = Repository::new(
            PathBuf::from("."),
            engine,
            Arc::default(),
            Arc::new(Metrics::new("rest_server")),
        );
        repository.insert(
            "broken",
            Some("1".into()),
            ModelState::Unavailable("bad file".into()),
        );
        repository.insert("gone", None, ModelState::Unloaded);
        repository.insert("coming", None, ModelState::Loading);
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
        assert_eq!(
            repository.get("gone", None).err(),
            Some(LookupError::Unloaded("gone".into()))
        );
        assert!(matches!(
            repository.get("coming", None),
            Err(LookupError::Unavailable { .. })
        ));
        assert_eq!(repository.versions("broken"), vec!["1".to_string()]);
    }
}

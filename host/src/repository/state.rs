//! The state table: what state each model version is in, and the lookups over it (a model to
//! serve, the ready models, the versions, the counts by state, the index).

use super::error::{LookupError, RepositoryError};
use super::{LoadedModel, Repository};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::watch;

/// The state of one model version.
#[derive(Clone)]
pub(crate) enum ModelState {
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
    pub(crate) fn name(&self) -> &'static str {
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

/// One row of the repository index.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IndexEntry {
    pub name: String,
    pub version: Option<String>,
    /// READY, UNAVAILABLE, LOADING (UNKNOWN and UNLOADING are never reported: a model on disk
    /// that is not loaded is UNAVAILABLE, and an unload takes effect at once).
    pub state: &'static str,
    pub reason: String,
}

/// The states of one model's versions.
pub(super) type Versions = BTreeMap<Option<String>, ModelState>;

impl Repository {
    /// Records the state of a model version, replacing any previous one.
    pub(super) fn insert(&self, name: &str, version: Option<String>, state: ModelState) {
        self.models
            .write()
            .expect("repository lock")
            .entry(name.to_string())
            .or_default()
            .insert(version, state);
        self.notify_states();
    }

    /// Tells the watchers of states that a state may have changed (call it after the change,
    /// with the table's lock released).
    pub(crate) fn notify_states(&self) {
        self.states_changed.send_replace(());
    }

    /// A receiver marked changed at every later change of a model version's state (and of the
    /// server's readiness, see [`crate::core::InferenceService::mark_started`]): gRPC health's
    /// Watch waits on it instead of polling.
    pub(crate) fn watch_states(&self) -> watch::Receiver<()> {
        self.states_changed.subscribe()
    }

    /// The state of one model version, if it has one.
    pub(super) fn state(&self, name: &str, version: &Option<String>) -> Option<ModelState> {
        let models = self.models.read().expect("repository lock");
        models.get(name)?.get(version).cloned()
    }

    /// Whether the version is loaded and serving.
    pub(super) fn is_serving(&self, name: &str, version: &Option<String>) -> bool {
        matches!(self.state(name, version), Some(ModelState::Ready(_)))
    }

    /// The ready model `name` at `version`, or at its default version when `version` is `None`.
    pub(crate) fn get(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Arc<LoadedModel>, LookupError> {
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
    pub(crate) fn ready_models(&self, name: Option<&str>) -> Vec<Arc<LoadedModel>> {
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
    pub(crate) fn state_counts(&self) -> Vec<(&'static str, i64)> {
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
    pub(crate) fn versions(&self, name: &str) -> Vec<String> {
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

    /// The repository index: every model known here or found on disk, with its state.
    pub(crate) async fn index(&self, ready_only: bool) -> Result<Vec<IndexEntry>, RepositoryError> {
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
    pub(crate) fn drain(&self) -> Vec<ModelState> {
        let mut models = self.models.write().expect("repository lock");
        let drained = std::mem::take(&mut *models)
            .into_values()
            .flat_map(BTreeMap::into_values)
            .collect();
        drop(models);
        self.notify_states();
        drained
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
    use super::super::tests::empty_repository;
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
        assert_eq!(pick(&[Some("canary"), Some("3")]), Some(key(Some("3"))));
        assert_eq!(pick(&[]), None);
    }

    #[test]
    fn lookups_distinguish_missing_unloaded_and_failed_models() {
        let repository = empty_repository();
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

//! Models loaded from a folder outside the repository's root, under a name the caller gives
//! (ModelMesh's `loadModel`), and forgotten entirely when unloaded (`unloadModel`): a runtime
//! that ModelMesh fills and empties keeps no row per model it ever held.

use super::error::{LoadFailures, RepositoryError};
use super::{DiscoveredModel, ModelState, Repository, load_model};

impl Repository {
    /// Loads `model` (its folder anywhere) under `model.name`, beside any version of that name
    /// that serves, then swaps it in; other versions of the name are unloaded. On failure
    /// nothing of the load is left in the repository, and a version that served keeps serving.
    pub(crate) async fn load_external(
        &self,
        model: DiscoveredModel,
    ) -> Result<(), RepositoryError> {
        let name = model.name.clone();
        let load = async {
            let (version, folder) = (model.version.clone(), model.folder.clone());
            let was_serving = self.is_serving(&name, &version);
            if !was_serving {
                self.insert(&name, version.clone(), ModelState::Loading);
            }
            let (engine, settings, metrics, slots) = (
                self.engine.clone(),
                self.settings.clone(),
                self.metrics.clone(),
                self.slots.clone(),
            );
            let load = move || load_model(&engine, &slots, model, &settings, &metrics);
            match self
                .load_version(&name, version.clone(), &folder, load)
                .await
            {
                Ok(()) => {
                    self.retain_versions(&name, &[version]);
                    Ok(())
                }
                Err(failure) => {
                    if !was_serving {
                        self.forget_serialized(&name);
                    }
                    Err(RepositoryError::LoadFailed {
                        name: name.clone(),
                        failures: LoadFailures(vec![failure]),
                    })
                }
            }
        };
        self.operations.serialized(&name, load).await
    }

    /// Unloads every version of model `name` and forgets it (it leaves the index); whether it
    /// was known. Requests in flight finish on the instances they hold.
    pub(crate) async fn forget(&self, name: &str) -> bool {
        let forget = async { self.forget_serialized(name) };
        self.operations.serialized(name, forget).await
    }

    fn forget_serialized(&self, name: &str) -> bool {
        let removed = self.models.write().expect("repository lock").remove(name);
        // The versions (and, once their requests end, their workers) are dropped here, outside
        // the lock.
        let known = removed.is_some_and(|versions| {
            versions
                .values()
                .any(|state| !matches!(state, ModelState::Unloaded))
        });
        if known {
            tracing::info!(model = %name, "model unloaded");
        }
        known
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::empty_repository;
    use super::*;

    #[tokio::test]
    async fn forgetting_removes_the_model_and_says_whether_it_was_known() {
        let repository = empty_repository();
        repository.insert("m", None, ModelState::Unavailable("broken".into()));
        assert!(repository.forget("m").await);
        assert!(repository.state("m", &None).is_none());
        assert!(!repository.forget("m").await);
        assert!(!repository.forget("never").await);
    }

    #[tokio::test]
    async fn a_failed_external_load_leaves_nothing() {
        let folder = tempfile::tempdir().unwrap();
        let repository = empty_repository();
        let model = DiscoveredModel {
            folder: folder.path().to_path_buf(),
            name: "m".into(),
            version: None,
            settings: Ok(Default::default()),
            problem: None,
        };
        let error = repository.load_external(model).await.unwrap_err();
        assert!(error.to_string().contains("implementation"), "{error}");
        assert!(repository.state("m", &None).is_none());
    }
}

//! The models' lifecycle: loading every model at startup, (re)loading one model beside its
//! serving version and swapping it in, and unloading.

use super::error::{LoadError, LoadFailures, RepositoryError, VersionFailure};
use super::{DiscoveredModel, LoadedModel, ModelState, Repository, discover, load_model};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

impl Repository {
    /// Discovers every model below the root and loads each, concurrently. A model that fails is
    /// recorded as unavailable with its reason; the others load regardless.
    pub(crate) async fn load_all(self: &Arc<Self>) -> Result<(), RepositoryError> {
        let discovered = self.discover().await?;
        // Pipelines load once the models they run have: they find them ready.
        let (mut pipelines, mut models): (Vec<DiscoveredModel>, Vec<DiscoveredModel>) =
            discovered.into_iter().partition(
                |model| matches!(&model.settings, Ok(settings) if settings.pipeline.is_some()),
            );
        for group in [&mut models, &mut pipelines] {
            let mut names: Vec<String> = group.drain(..).map(|model| model.name).collect();
            names.sort();
            names.dedup();
            self.load_each(names).await;
        }
        Ok(())
    }

    /// Loads each of `names`, concurrently, logging failures.
    async fn load_each(self: &Arc<Self>, names: Vec<String>) {
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
    }

    /// Loads model `name` from disk (re-reading its settings): every version found is built
    /// beside the serving one and swapped in when ready; versions gone from disk are unloaded.
    /// On failure the previous version, if any, keeps serving.
    ///
    /// The load runs in a task of its own: a caller that goes away (a dropped connection, a
    /// passed gRPC deadline) does not leave the model half-loaded.
    pub(crate) async fn load(self: &Arc<Self>, name: &str) -> Result<(), RepositoryError> {
        let (repository, model) = (self.clone(), name.to_string());
        let task = tokio::spawn(async move {
            let load = repository.load_serialized(&model);
            repository.operations.serialized(&model, load).await
        });
        match task.await {
            Ok(result) => result,
            Err(joined) => {
                let error = LoadError::from_join(joined);
                tracing::error!(model = %name, "model failed to load: {error}");
                self.give_up_loading(name, &error);
                Err(RepositoryError::LoadFailed {
                    name: name.to_string(),
                    failures: LoadFailures(vec![VersionFailure {
                        version: None,
                        error,
                    }]),
                })
            }
        }
    }

    /// [`Repository::load`] once no other operation on the model runs.
    async fn load_serialized(&self, name: &str) -> Result<(), RepositoryError> {
        let found = self.discover_model(name).await?;
        for model in &found {
            if !self.is_serving(name, &model.version) {
                self.insert(name, model.version.clone(), ModelState::Loading);
            }
        }
        let on_disk: Vec<Option<String>> =
            found.iter().map(|model| model.version.clone()).collect();
        let loads = found.into_iter().map(|model| {
            let (version, folder) = (model.version.clone(), model.folder.clone());
            let (engine, settings, metrics, slots) = (
                self.engine.clone(),
                self.settings.clone(),
                self.metrics.clone(),
                self.slots.clone(),
            );
            let load = move || load_model(&engine, &slots, model, &settings, &metrics);
            async move { self.load_version(name, version, &folder, load).await }
        });
        let failures: Vec<VersionFailure> = futures_util::future::join_all(loads)
            .await
            .into_iter()
            .filter_map(Result::err)
            .collect();
        self.retain_versions(name, &on_disk);
        if failures.is_empty() {
            Ok(())
        } else {
            Err(RepositoryError::LoadFailed {
                name: name.to_string(),
                failures: LoadFailures(failures),
            })
        }
    }

    /// Runs `load` (the load of one version of model `name`, from `folder`) on a blocking thread
    /// and records its outcome: `Ready`, or `Unavailable` with the reason (a panic included)
    /// unless an earlier load of the version still serves.
    pub(super) async fn load_version<F>(
        &self,
        name: &str,
        version: Option<String>,
        folder: &Path,
        load: F,
    ) -> Result<(), VersionFailure>
    where
        F: FnOnce() -> Result<LoadedModel, LoadError> + Send + 'static,
    {
        tracing::info!(model = %name, version = ?version, "loading model");
        let started = Instant::now();
        let outcome = tokio::task::spawn_blocking(load)
            .await
            .unwrap_or_else(|joined| Err(LoadError::from_join(joined)));
        let outcome = match outcome {
            Ok(loaded) => match self.link_pipeline(loaded).await {
                Ok(loaded) => self.warm_up(loaded, folder).await,
                Err(error) => Err(error),
            },
            Err(error) => Err(error),
        };
        let elapsed = started.elapsed();
        match outcome {
            Ok(loaded) => {
                self.metrics.model_loaded(name, version.as_deref(), elapsed);
                tracing::info!(model = %name, version = ?version, elapsed_ms = elapsed.as_millis() as u64, "model ready");
                self.insert(name, version, ModelState::Ready(loaded));
                Ok(())
            }
            Err(error) => {
                tracing::error!(model = %name, version = ?version, folder = %folder.display(), "model failed to load: {error}");
                if !self.is_serving(name, &version) {
                    let state = ModelState::Unavailable(error.to_string());
                    self.insert(name, version.clone(), state);
                }
                Err(VersionFailure { version, error })
            }
        }
    }

    /// Runs the warm-up requests of `folder` through a loaded version, before it serves.
    async fn warm_up(
        &self,
        loaded: LoadedModel,
        folder: &Path,
    ) -> Result<Arc<LoadedModel>, LoadError> {
        let loaded = Arc::new(loaded);
        let body_limit = self.settings.max_request_body_mb.saturating_mul(1 << 20);
        let elements = self.settings.max_tensor_elements;
        super::warmup::warm_up(&loaded, folder, body_limit, elements).await?;
        Ok(loaded)
    }

    /// Unloads every version of model `name`: new requests are refused at once, requests in
    /// flight finish on the instances they hold.
    pub(crate) async fn unload(&self, name: &str) -> Result<(), RepositoryError> {
        let unload = async { self.unload_serialized(name) };
        self.operations.serialized(name, unload).await
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
        self.notify_states();
        tracing::info!(model = %name, "model unloaded");
        Ok(())
    }

    /// Every model folder below the root, read off the async threads.
    pub(super) async fn discover(&self) -> std::io::Result<Vec<DiscoveredModel>> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || discover(&root))
            .await
            .map_err(std::io::Error::other)?
    }

    /// The versions of model `name` on disk; at least one.
    async fn discover_model(&self, name: &str) -> Result<Vec<DiscoveredModel>, RepositoryError> {
        let found: Vec<DiscoveredModel> = self
            .discover()
            .await?
            .into_iter()
            .filter(|model| model.name == name)
            .collect();
        if found.is_empty() {
            return Err(RepositoryError::NotFound(name.to_string()));
        }
        Ok(found)
    }

    /// Unloads the versions of `name` that are no longer on disk.
    pub(super) fn retain_versions(&self, name: &str, on_disk: &[Option<String>]) {
        let mut models = self.models.write().expect("repository lock");
        if let Some(versions) = models.get_mut(name) {
            for (version, state) in versions.iter_mut() {
                if !on_disk.contains(version) {
                    *state = ModelState::Unloaded;
                }
            }
        }
        drop(models);
        self.notify_states();
    }

    /// Marks the versions of `name` still loading as unavailable: their load ended with `error`.
    fn give_up_loading(&self, name: &str, error: &LoadError) {
        let mut models = self.models.write().expect("repository lock");
        if let Some(versions) = models.get_mut(name) {
            for state in versions.values_mut() {
                if matches!(state, ModelState::Loading) {
                    *state = ModelState::Unavailable(error.to_string());
                }
            }
        }
        drop(models);
        self.notify_states();
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::empty_repository;
    use super::*;

    fn reason(repository: &Repository, name: &str, version: &Option<String>) -> String {
        match repository.state(name, version) {
            Some(ModelState::Unavailable(reason)) => reason,
            Some(state) => panic!("{name} is {}, not unavailable", state.name()),
            None => panic!("{name} has no state"),
        }
    }

    #[tokio::test]
    async fn a_load_that_panics_leaves_the_version_unavailable_with_the_reason() {
        let repository = empty_repository();
        let version = Some("1".to_string());
        repository.insert("m", version.clone(), ModelState::Loading);
        let failure = repository
            .load_version("m", version.clone(), Path::new("m/1"), || panic!("boom"))
            .await
            .unwrap_err();
        assert!(
            matches!(&failure.error, LoadError::Panicked(message) if message == "boom"),
            "{failure}"
        );
        assert_eq!(failure.to_string(), "version 1: the load panicked: boom");
        assert_eq!(
            reason(&repository, "m", &version),
            "the load panicked: boom"
        );

        repository.insert("n", None, ModelState::Loading);
        let failure = repository
            .load_version("n", None, Path::new("n"), || {
                panic!("{} {}", "formatted", 2)
            })
            .await
            .unwrap_err();
        assert_eq!(failure.to_string(), "the load panicked: formatted 2");
        assert_eq!(
            reason(&repository, "n", &None),
            "the load panicked: formatted 2"
        );
    }

    #[tokio::test]
    async fn a_load_that_fails_records_its_error() {
        let repository = empty_repository();
        repository.insert("m", None, ModelState::Loading);
        let failure = repository
            .load_version("m", None, Path::new("m"), || {
                Err(LoadError::Implementation("no runtime".into()))
            })
            .await
            .unwrap_err();
        assert!(matches!(failure.error, LoadError::Implementation(_)));
        assert_eq!(reason(&repository, "m", &None), "no runtime");
    }

    #[tokio::test]
    async fn loading_a_model_not_on_disk_is_not_found() {
        let root = tempfile::tempdir().unwrap();
        let repository = Arc::new(super::super::tests::repository_at(root.path()));
        assert!(matches!(
            repository.load("nope").await,
            Err(RepositoryError::NotFound(name)) if name == "nope"
        ));
        assert!(matches!(
            repository.unload("nope").await,
            Err(RepositoryError::NotFound(_))
        ));
    }
}

//! The inference core: health, model lookup, metadata, readiness, statistics selection,
//! repository operations and inference — the same for every front end, and free of any
//! transport's types.
//!
//! Front ends (`crate::protocol::rest`, `crate::protocol::grpc`) decode their wire format into
//! [`crate::codec`] types and a [`RequestContext`], call an [`InferenceService`], and encode the
//! answer; a [`ServiceError`] says which [`ErrorKind`] of failure to report, with its cause.
//! Below the core: the [`crate::repository`] (which models exist) and each model's workers.

pub(crate) mod budget;
pub(crate) mod cache;
mod checks;
mod context;
mod error;
mod infer;
mod pipeline;

pub(crate) use crate::workers::STREAM_CAPACITY;
pub(crate) use crate::workers::headers::Headers;
pub(crate) use context::RequestContext;
pub(crate) use error::{ErrorKind, ServiceError};
pub(crate) use infer::{Reply, StreamItem, warm_up_call};

use crate::repository::{IndexEntry, LoadedModel, LookupError, Repository};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The protocol extensions mlhost implements, as `GET /v2` and gRPC ServerMetadata list them
/// (Triton's names: `schedule_policy` is the `priority` and `timeout` request parameters,
/// `parameters` a request's own parameters reaching the runtime, `trace` and `logging` the
/// settings endpoints). Not listed: Triton's `classification`, `sequence`, the shared-memory
/// extensions and `model_repository(unload_dependents)`, which mlhost does not implement.
pub(crate) const EXTENSIONS: &[&str] = &[
    "model_repository",
    "binary_tensor_data",
    "statistics",
    "model_configuration",
    "schedule_policy",
    "parameters",
    "trace",
    "logging",
];

/// What `GET /v2` reports.
#[derive(Debug, Clone)]
pub(crate) struct ServerInfo {
    pub name: String,
    pub version: String,
    pub extensions: Vec<String>,
}

/// Whether a model version can serve.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Readiness {
    Ready,
    /// Known, but not ready, with the reason.
    NotReady(String),
}

/// A model and the versions the repository holds of it (its metadata's `versions`).
pub(crate) struct ModelDescription {
    pub model: Arc<LoadedModel>,
    pub versions: Vec<String>,
}

/// The one inference core behind REST and gRPC.
///
/// Cheap to share: front ends hold it in an `Arc`.
pub(crate) struct InferenceService {
    repository: Arc<Repository>,
    info: ServerInfo,
    started: AtomicBool,
    /// What requests in flight may hold between them (`max_buffered_mb`).
    budget: Arc<budget::ByteBudget>,
    /// The response cache, when the server's `cache_enabled` is set.
    cache: Option<cache::ResponseCache>,
}

impl InferenceService {
    /// A service over `repository`; not ready until [`InferenceService::mark_started`].
    pub(crate) fn new(repository: Arc<Repository>, info: ServerInfo) -> Self {
        InferenceService {
            repository,
            info,
            started: AtomicBool::new(false),
            budget: budget::ByteBudget::new(u64::MAX),
            cache: None,
        }
    }

    /// The service with a response cache for the models that ask for one.
    pub(crate) fn with_cache(mut self, cache: Option<cache::ResponseCache>) -> Self {
        self.cache = cache;
        self
    }

    /// The service with `budget` for the requests in flight (unbounded by default).
    pub(crate) fn with_budget(mut self, budget: Arc<budget::ByteBudget>) -> Self {
        self.budget = budget;
        self
    }

    /// The byte budget of the requests in flight, which the front ends count their requests in.
    pub(crate) fn budget(&self) -> &Arc<budget::ByteBudget> {
        &self.budget
    }

    /// Marks the start-up loading of models as finished: the server is ready from now on.
    pub(crate) fn mark_started(&self) {
        self.started.store(true, Ordering::Release);
        self.repository.notify_states();
    }

    /// A receiver marked changed at every later change of the server's readiness or of a
    /// model's state.
    pub(crate) fn watch_states(&self) -> tokio::sync::watch::Receiver<()> {
        self.repository.watch_states()
    }

    /// gRPC health's view of model `name` at `version`: ready (`Some(true)`), known but not
    /// ready — loading, failed or unloaded — (`Some(false)`), or unknown (`None`).
    pub(crate) fn model_health(&self, name: &str, version: Option<&str>) -> Option<bool> {
        match self.repository.get(name, version) {
            Ok(model) => Some(self.repository.pipeline_problem(&model).is_none()),
            Err(LookupError::Unavailable { .. } | LookupError::Unloaded(_)) => Some(false),
            Err(LookupError::ModelNotFound(_) | LookupError::VersionNotFound { .. }) => None,
        }
    }

    /// Whether the server is ready for inference (its start-up loading has finished).
    pub(crate) fn is_ready(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    /// The server's name, version and extensions.
    pub(crate) fn info(&self) -> &ServerInfo {
        &self.info
    }

    /// The ready model `name` at `version` (its default version when `None`).
    pub(crate) fn model(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Arc<LoadedModel>, ServiceError> {
        Ok(self.repository.get(name, version)?)
    }

    /// The ready model `name` at `version`, with the versions the repository holds of it.
    pub(crate) fn describe(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<ModelDescription, ServiceError> {
        Ok(ModelDescription {
            model: self.model(name, version)?,
            versions: self.repository.versions(name),
        })
    }

    /// Whether model `name` at `version` is ready; an unknown model or version is an error.
    pub(crate) fn readiness(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Readiness, ServiceError> {
        match self.repository.get(name, version) {
            Ok(model) => Ok(match self.repository.pipeline_problem(&model) {
                None => Readiness::Ready,
                Some(problem) => Readiness::NotReady(problem),
            }),
            Err(error @ LookupError::Unavailable { .. }) => {
                Ok(Readiness::NotReady(error.to_string()))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// The models whose statistics a client asks for: every ready model (no name), every
    /// ready version of model `name` (no version), or that one version.
    pub(crate) fn statistics_models(
        &self,
        name: Option<&str>,
        version: Option<&str>,
    ) -> Result<Vec<Arc<LoadedModel>>, ServiceError> {
        match (name, version) {
            (Some(name), Some(version)) => Ok(vec![self.model(name, Some(version))?]),
            (None, _) => Ok(self.repository.ready_models(None)),
            (Some(name), None) => {
                let models = self.repository.ready_models(Some(name));
                if models.is_empty() {
                    // Why none is ready: unknown, unloaded or unavailable.
                    self.model(name, None)?;
                    return Err(LookupError::ModelNotFound(name.to_string()).into());
                }
                Ok(models)
            }
        }
    }

    /// The repository index (all models, or only the ready ones).
    pub(crate) async fn repository_index(
        &self,
        ready_only: bool,
    ) -> Result<Vec<IndexEntry>, ServiceError> {
        Ok(self.repository.index(ready_only).await?)
    }

    /// Loads (or reloads) model `name` from disk.
    pub(crate) async fn load_model(&self, name: &str) -> Result<(), ServiceError> {
        Ok(self.repository.load(name).await?)
    }

    /// Loads (or reloads) model `name` with what the request sends: a `config` overriding its
    /// settings, `files` forming its folder (see [`crate::repository::LoadRequest`]); a request
    /// that cannot be applied is refused (400) saying why.
    pub(crate) async fn load_model_with(
        &self,
        name: &str,
        request: crate::repository::LoadRequest,
    ) -> Result<(), ServiceError> {
        if request.is_plain() {
            return self.load_model(name).await;
        }
        let load = self
            .repository
            .check_load(name, request)
            .map_err(ServiceError::BadRequest)?;
        Ok(self.repository.load_with(name, load).await?)
    }

    /// Unloads model `name`.
    pub(crate) async fn unload_model(&self, name: &str) -> Result<(), ServiceError> {
        Ok(self.repository.unload(name).await?)
    }
}

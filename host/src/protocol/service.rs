//! The inference core: health, metadata and inference, the same for every front end.

use super::ServiceError;
use crate::codec::{InferenceRequest, InferenceResponse, ParameterValue, Tensor, TensorMetadata};
use crate::repository::{IndexEntry, LoadedModel, Repository};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What `GET /v2` reports.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    pub name: String,
    pub version: String,
    pub extensions: Vec<String>,
}

/// The one inference core behind REST (and, later, gRPC).
///
/// Cheap to share: front ends hold it in an `Arc`.
pub struct InferenceService {
    repository: Arc<Repository>,
    info: ServerInfo,
    started: AtomicBool,
}

impl InferenceService {
    /// A service over `repository`; not ready until [`InferenceService::mark_started`].
    pub fn new(repository: Arc<Repository>, info: ServerInfo) -> Self {
        InferenceService {
            repository,
            info,
            started: AtomicBool::new(false),
        }
    }

    /// Marks the start-up loading of models as finished: the server is ready from now on.
    pub fn mark_started(&self) {
        self.started.store(true, Ordering::Release);
    }

    /// Whether the server is ready for inference (its start-up loading has finished).
    pub fn is_ready(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    /// The server's name, version and extensions.
    pub fn info(&self) -> &ServerInfo {
        &self.info
    }

    /// The ready model `name` at `version` (its default version when `None`).
    pub fn model(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Arc<LoadedModel>, ServiceError> {
        Ok(self.repository.get(name, version)?)
    }

    /// The versions the repository holds of model `name`.
    pub fn versions(&self, name: &str) -> Vec<String> {
        self.repository.versions(name)
    }

    /// The repository index (all models, or only the ready ones).
    pub async fn repository_index(
        &self,
        ready_only: bool,
    ) -> Result<Vec<IndexEntry>, ServiceError> {
        Ok(self.repository.index(ready_only).await?)
    }

    /// Loads (or reloads) model `name` from disk.
    pub async fn load_model(&self, name: &str) -> Result<(), ServiceError> {
        Ok(self.repository.load(name).await?)
    }

    /// Unloads model `name`.
    pub async fn unload_model(&self, name: &str) -> Result<(), ServiceError> {
        Ok(self.repository.unload(name).await?)
    }

    /// Checks a request against the model and runs it on the model's workers.
    pub async fn infer(
        &self,
        name: &str,
        version: Option<&str>,
        request: InferenceRequest,
    ) -> Result<InferenceResponse, ServiceError> {
        let received = Instant::now();
        let model = self.model(name, version)?;
        check_request(&model, &request)?;
        let timeout = match requested_timeout(&request)? {
            Some(requested) => requested.min(model.limits.timeout),
            None => model.limits.timeout,
        };
        let id = request.id.clone();
        let (outputs, parameters) = model.infer(request, received + timeout, timeout).await?;
        Ok(InferenceResponse {
            model_name: model.name.clone(),
            model_version: model.version.clone(),
            id,
            outputs,
            parameters,
        })
    }
}

/// The request's own deadline: the `timeout` parameter, in microseconds as Triton's.
fn requested_timeout(request: &InferenceRequest) -> Result<Option<Duration>, ServiceError> {
    let Some((_, value)) = request
        .parameters
        .iter()
        .find(|(name, _)| name == "timeout")
    else {
        return Ok(None);
    };
    let micros = match value {
        ParameterValue::Int64(micros) if *micros > 0 => *micros as u64,
        ParameterValue::Uint64(micros) if *micros > 0 => *micros,
        _ => {
            return Err(ServiceError::BadRequest(
                "the `timeout` parameter must be a positive number of microseconds".to_string(),
            ));
        }
    };
    Ok(Some(Duration::from_micros(micros)))
}

/// Checks what the host can check before the runtime sees the request: inputs present, unique,
/// well-formed, and known to the model when the model declares its inputs.
fn check_request(model: &LoadedModel, request: &InferenceRequest) -> Result<(), ServiceError> {
    if request.inputs.is_empty() {
        return Err(ServiceError::BadRequest(
            "the request has no inputs".to_string(),
        ));
    }
    let mut seen = HashSet::with_capacity(request.inputs.len());
    for input in &request.inputs {
        if !seen.insert(input.name.as_str()) {
            return Err(ServiceError::BadRequest(format!(
                "input '{}' is given twice",
                input.name
            )));
        }
        input.validate().map_err(|error| {
            ServiceError::BadRequest(format!("input '{}': {error}", input.name))
        })?;
    }

    let strict = !model.declared_inputs.is_empty();
    let declared = if strict {
        &model.declared_inputs
    } else {
        &model.metadata.inputs
    };
    if declared.is_empty() {
        return Ok(());
    }
    for input in &request.inputs {
        let Some(expected) = declared.iter().find(|tensor| tensor.name == input.name) else {
            let names: Vec<&str> = declared.iter().map(|tensor| tensor.name.as_str()).collect();
            return Err(ServiceError::BadRequest(format!(
                "unknown input '{}' for model '{}'; it takes {names:?}",
                input.name, model.name
            )));
        };
        // The runtime's own metadata only names inputs; model-settings.json declarations are a
        // contract on datatype and shape too.
        if strict {
            check_declared(input, expected)?;
        }
    }
    Ok(())
}

fn check_declared(input: &Tensor, expected: &TensorMetadata) -> Result<(), ServiceError> {
    if input.datatype != expected.datatype {
        return Err(ServiceError::BadRequest(format!(
            "input '{}' has datatype {}, the model takes {}",
            input.name, input.datatype, expected.datatype
        )));
    }
    let fits = input.shape.len() == expected.shape.len()
        && input
            .shape
            .iter()
            .zip(&expected.shape)
            .all(|(&actual, &declared)| declared < 0 || actual == declared as u64);
    if !fits {
        return Err(ServiceError::BadRequest(format!(
            "input '{}' has shape {:?}, the model takes {:?}",
            input.name, input.shape, expected.shape
        )));
    }
    Ok(())
}

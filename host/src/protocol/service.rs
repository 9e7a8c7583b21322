//! The inference core: health, metadata and inference, the same for every front end.

use super::ServiceError;
use crate::codec::{
    InferenceRequest, InferenceResponse, ParameterValue, Tensor, TensorMetadata, content_type,
};
use crate::repository::{IndexEntry, LoadedModel, Repository};
use crate::stats::CallTimings;
use crate::wasm::PartialResponse;
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

    /// The ready models named `name` (every version), or every ready model.
    pub fn ready_models(&self, name: Option<&str>) -> Result<Vec<Arc<LoadedModel>>, ServiceError> {
        let models = self.repository.ready_models(name);
        match name {
            Some(name) if models.is_empty() => Err(self
                .model(name, None)
                .err()
                .unwrap_or_else(|| ServiceError::NotFound(format!("model '{name}' not found")))),
            _ => Ok(models),
        }
    }

    /// Checks a request and starts it for a streaming endpoint: the runtime may answer with
    /// several responses, which the stream yields as they come. A request that fails its checks
    /// fails here, before any response.
    pub fn infer_stream(
        &self,
        name: &str,
        version: Option<&str>,
        mut request: InferenceRequest,
    ) -> Result<ResponseStream, ServiceError> {
        let received = Instant::now();
        let model = self.model(name, version)?;
        let inferences = model.stats.inferences(&request);
        let timeout = prepare(&model, &mut request).inspect_err(|_| {
            record_failure(&model, received.elapsed());
        })?;
        let (responses, stream) = tokio::sync::mpsc::channel(16);
        tokio::spawn(stream_responses(
            model, request, received, timeout, inferences, responses,
        ));
        Ok(stream)
    }

    /// Checks a request against the model and runs it on the model's workers; records the
    /// outcome in the model's statistics.
    pub async fn infer(
        &self,
        name: &str,
        version: Option<&str>,
        request: InferenceRequest,
    ) -> Result<InferenceResponse, ServiceError> {
        let received = Instant::now();
        let model = self.model(name, version)?;
        let inferences = model.stats.inferences(&request);
        match run(&model, request, received).await {
            Ok((response, timings)) => {
                record_success(&model, inferences, received.elapsed(), &timings);
                Ok(response)
            }
            Err(error) => {
                record_failure(&model, received.elapsed());
                Err(error)
            }
        }
    }
}

/// Records a request that succeeded after `total` in the model's statistics and metrics.
fn record_success(model: &LoadedModel, inferences: u64, total: Duration, timings: &CallTimings) {
    model.stats.record_success(inferences, total, timings);
    model.metrics.success.inc();
    let compute = timings.total();
    model
        .metrics
        .queue_seconds
        .observe(total.saturating_sub(compute).as_secs_f64());
    model.metrics.compute_seconds.observe(compute.as_secs_f64());
}

/// Records a request that failed after `total`.
fn record_failure(model: &LoadedModel, total: Duration) {
    model.stats.record_failure(total);
    model.metrics.failure.inc();
}

/// Runs one request on `model`: content types, checks, deadline, the call, and the outputs'
/// content types.
async fn run(
    model: &LoadedModel,
    mut request: InferenceRequest,
    received: Instant,
) -> Result<(InferenceResponse, CallTimings), ServiceError> {
    let timeout = prepare(model, &mut request)?;
    let id = request.id.clone();
    let output = model.infer(request, received + timeout, timeout).await?;
    let response = respond(model, &id, output.outputs, output.parameters)?;
    Ok((response, output.timings))
}

/// Makes a request ready for the runtime: fills in and decodes its content types and checks it
/// against the model. Returns its timeout.
fn prepare(model: &LoadedModel, request: &mut InferenceRequest) -> Result<Duration, ServiceError> {
    content_type::apply_defaults(
        request,
        model.default_content_type.as_deref(),
        &model.metadata.inputs,
    );
    content_type::decode_inputs(request).map_err(ServiceError::BadRequest)?;
    check_request(model, request)?;
    Ok(match requested_timeout(request)? {
        Some(requested) => requested.min(model.limits.timeout),
        None => model.limits.timeout,
    })
}

/// A response of `model` to the request `id`, its outputs carrying their content types.
fn respond(
    model: &LoadedModel,
    id: &Option<String>,
    mut outputs: Vec<Tensor>,
    parameters: crate::codec::Parameters,
) -> Result<InferenceResponse, ServiceError> {
    content_type::encode_outputs(&mut outputs).map_err(ServiceError::Internal)?;
    Ok(InferenceResponse {
        model_name: model.name.clone(),
        model_version: model.version.clone(),
        id: id.clone(),
        outputs,
        parameters,
    })
}

/// The responses to one request of a streaming endpoint, as they come; an error ends them.
pub type ResponseStream = tokio::sync::mpsc::Receiver<Result<InferenceResponse, ServiceError>>;

/// Runs a streamed request (never batched) and forwards its responses: each one the runtime
/// sends, then the one it returns unless it returns nothing after sending some.
async fn stream_responses(
    model: Arc<LoadedModel>,
    request: InferenceRequest,
    received: Instant,
    timeout: Duration,
    inferences: u64,
    responses: tokio::sync::mpsc::Sender<Result<InferenceResponse, ServiceError>>,
) {
    let id = request.id.clone();
    let (sink, mut partials) = tokio::sync::mpsc::unbounded_channel::<PartialResponse>();
    let call = model
        .pool
        .infer_streaming(request, received + timeout, timeout, Some(sink));
    tokio::pin!(call);
    let mut sent = 0usize;
    let result = loop {
        tokio::select! {
            Some(partial) = partials.recv() => {
                let response = respond(&model, &id, partial.outputs, partial.parameters);
                sent += 1;
                if responses.send(response).await.is_err() {
                    // The client has gone: dropping the receiver stops the runtime's sends.
                    record_failure(&model, received.elapsed());
                    return;
                }
            }
            result = &mut call => break result,
        }
    };
    while let Ok(partial) = partials.try_recv() {
        sent += 1;
        let response = respond(&model, &id, partial.outputs, partial.parameters);
        if responses.send(response).await.is_err() {
            record_failure(&model, received.elapsed());
            return;
        }
    }
    match result {
        Ok(output) => {
            record_success(&model, inferences, received.elapsed(), &output.timings);
            if sent == 0 || !output.outputs.is_empty() || !output.parameters.is_empty() {
                let response = respond(&model, &id, output.outputs, output.parameters);
                let _ = responses.send(response).await;
            }
        }
        Err(error) => {
            record_failure(&model, received.elapsed());
            let _ = responses.send(Err(error.into())).await;
        }
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

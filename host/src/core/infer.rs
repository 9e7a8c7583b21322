//! Inference: a request checked against its model, run on the model's workers (through its
//! batcher when it batches), its outcome recorded, its outputs labelled with content types.

use super::InferenceService;
use super::checks::prepare;
use super::context::{RequestContext, take_response_headers};
use super::error::ServiceError;
use crate::codec::{InferenceRequest, InferenceResponse, Parameters, Tensor, content_type};
use crate::repository::LoadedModel;
use crate::stats::CallTimings;
use crate::workers::headers::Headers;
use crate::workers::{CallSpec, DEADLINE_GRACE, PartialResponse, PoolError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The core's answer to one request: the response, and the headers its runtime set.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub response: InferenceResponse,
    pub headers: Headers,
}

/// The replies to one request of a streaming endpoint, as they come; an error ends them.
pub type ResponseStream = mpsc::Receiver<Result<Reply, ServiceError>>;

/// How many replies of a stream wait for a slow client before the runtime is held back.
const STREAM_REPLIES: usize = 16;

impl InferenceService {
    /// Checks a request against the model and runs it on the model's workers; records the
    /// outcome in the model's statistics.
    pub async fn infer(
        &self,
        model: &LoadedModel,
        request: InferenceRequest,
        context: RequestContext,
    ) -> Result<Reply, ServiceError> {
        let received = Instant::now();
        let inferences = model.stats.inferences(&request);
        match run(model, request, context, received).await {
            Ok((reply, timings)) => {
                record_success(model, inferences, received.elapsed(), &timings);
                Ok(reply)
            }
            Err(error) => {
                record_failure(model, received.elapsed());
                Err(error)
            }
        }
    }

    /// Checks a request and starts it for a streaming endpoint: the runtime may answer with
    /// several responses, which the stream yields as they come. A request that fails its checks
    /// fails here, before any response. A client that reads slowly holds the runtime back (the
    /// channels are bounded); none is held past the request's deadline.
    pub fn infer_stream(
        &self,
        model: Arc<LoadedModel>,
        mut request: InferenceRequest,
        context: RequestContext,
    ) -> Result<ResponseStream, ServiceError> {
        let received = Instant::now();
        let inferences = model.stats.inferences(&request);
        let timeout = prepare(&model, &mut request, &context).inspect_err(|_| {
            record_failure(&model, received.elapsed());
        })?;
        let (replies, stream) = mpsc::channel(STREAM_REPLIES);
        let spec = CallSpec {
            deadline: received + timeout,
            timeout,
            headers: context.headers,
        };
        let streamed = Streamed {
            model,
            received,
            inferences,
            replies,
        };
        tokio::spawn(async move {
            // The call itself ends by its deadline (and grace); this bounds a client that keeps
            // its connection but stops reading.
            let abandon = spec.deadline + 2 * DEADLINE_GRACE;
            let run = streamed.run(request, spec);
            if tokio::time::timeout_at(abandon.into(), run).await.is_err() {
                record_failure(&streamed.model, streamed.received.elapsed());
            }
        });
        Ok(stream)
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
    context: RequestContext,
    received: Instant,
) -> Result<(Reply, CallTimings), ServiceError> {
    let timeout = prepare(model, &mut request, &context)?;
    let id = request.id.clone();
    let spec = CallSpec {
        deadline: received + timeout,
        timeout,
        headers: context.headers,
    };
    let output = dispatch(model, request, spec).await?;
    let reply = respond(model, &id, output.outputs, output.parameters)?;
    Ok((reply, output.timings))
}

/// Hands a request to the model's batcher when it has one, else to its workers.
async fn dispatch(
    model: &LoadedModel,
    request: InferenceRequest,
    spec: CallSpec,
) -> Result<crate::workers::CallOutput, PoolError> {
    match &model.batcher {
        Some(batcher) => batcher.infer(request, spec).await,
        None => model.pool.infer(request, spec, None).await,
    }
}

/// A reply of `model` to the request `id`: its outputs carrying their content types, the
/// runtime's headers taken out of its parameters.
fn respond(
    model: &LoadedModel,
    id: &Option<String>,
    mut outputs: Vec<Tensor>,
    mut parameters: Parameters,
) -> Result<Reply, ServiceError> {
    content_type::encode_outputs(&mut outputs)
        .map_err(|message| ServiceError::internal(message, None))?;
    let headers = take_response_headers(&mut parameters);
    Ok(Reply {
        response: InferenceResponse {
            model_name: model.name.clone(),
            model_version: model.version.clone(),
            id: id.clone(),
            outputs,
            parameters,
        },
        headers,
    })
}

/// A streamed request in flight: where its replies go, and what to record of it.
struct Streamed {
    model: Arc<LoadedModel>,
    received: Instant,
    inferences: u64,
    replies: mpsc::Sender<Result<Reply, ServiceError>>,
}

impl Streamed {
    /// Runs a streamed request (never batched) and forwards its replies: each one the runtime
    /// sends, then the one it returns unless it returns nothing after sending some.
    async fn run(&self, request: InferenceRequest, spec: CallSpec) {
        let id = request.id.clone();
        let (sink, mut partials) = crate::workers::stream_channel();
        let call = self.model.pool.infer(request, spec, Some(sink));
        tokio::pin!(call);
        let mut sent = 0usize;
        let result = loop {
            tokio::select! {
                Some(partial) = partials.recv() => {
                    sent += 1;
                    if !self.forward(&id, partial).await {
                        return;
                    }
                }
                result = &mut call => break result,
            }
        };
        while let Ok(partial) = partials.try_recv() {
            sent += 1;
            if !self.forward(&id, partial).await {
                return;
            }
        }
        let elapsed = self.received.elapsed();
        match result {
            Ok(output) => {
                record_success(&self.model, self.inferences, elapsed, &output.timings);
                if sent == 0 || !output.outputs.is_empty() || !output.parameters.is_empty() {
                    let reply = respond(&self.model, &id, output.outputs, output.parameters);
                    let _ = self.replies.send(reply).await;
                }
            }
            Err(error) => {
                record_failure(&self.model, elapsed);
                let _ = self.replies.send(Err(error.into())).await;
            }
        }
    }

    /// Sends one early response on; false when the client has gone (dropping the receiver of
    /// the runtime's responses then stops its sends).
    async fn forward(&self, id: &Option<String>, partial: PartialResponse) -> bool {
        let reply = respond(&self.model, id, partial.outputs, partial.parameters);
        if self.replies.send(reply).await.is_err() {
            record_failure(&self.model, self.received.elapsed());
            return false;
        }
        true
    }
}

//! Inference: a request checked against its model, run on the model's workers (through its
//! batcher when it batches), its outcome recorded, its outputs labelled with content types.

use super::InferenceService;
use super::cache::{CacheKey, OFFLOAD_BYTES, ResponseCache};
use super::checks::prepare;
use super::context::{RequestContext, take_response_headers};
use super::error::ServiceError;
use crate::codec::{InferenceRequest, InferenceResponse, Parameters, Tensor, content_type};
use crate::repository::{BoxError, LoadedModel, Runner, WarmUpCall};
use crate::stats::CallTimings;
use crate::workers::headers::Headers;
use crate::workers::{
    CallError, CallSpec, DEADLINE_GRACE, PartialResponse, PoolError, STREAM_CAPACITY, StreamSink,
    StreamTicket,
};
use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

/// The core's answer to one request: the response, and the headers its runtime set.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    pub response: InferenceResponse,
    pub headers: Headers,
}

/// The replies to one request of a streaming endpoint, as they come; an error ends them.
pub(super) type ResponseStream = mpsc::Receiver<StreamItem>;

/// One item of a response stream: a reply, or the error that ends the stream; with the hold
/// the runtime's response has on the stream's buffer (16 MiB: see `wasm::stream`),
/// to drop once what the reply became has left for the client.
#[derive(Debug)]
pub(crate) struct StreamItem {
    pub reply: Result<Reply, ServiceError>,
    pub ticket: Option<StreamTicket>,
}

impl From<Result<Reply, ServiceError>> for StreamItem {
    fn from(reply: Result<Reply, ServiceError>) -> Self {
        StreamItem {
            reply,
            ticket: None,
        }
    }
}

impl InferenceService {
    /// Checks a request against the model and runs it on the model's workers; records the
    /// outcome in the model's statistics.
    pub(crate) async fn infer(
        &self,
        model: &LoadedModel,
        request: InferenceRequest,
        context: RequestContext,
    ) -> Result<Reply, ServiceError> {
        if let Runner::Pipeline { graph, steps } = &model.runner {
            let mut outcome = Outcome::new(model, &request);
            let received = outcome.received;
            let run = self.run_pipeline(model, graph, steps, request, context, received);
            let (reply, timings) = run.await?;
            outcome.success(&timings);
            return Ok(reply);
        }
        self.infer_model(model, request, context).await
    }

    /// [`InferenceService::infer`] for a model with workers of its own.
    pub(super) async fn infer_model(
        &self,
        model: &LoadedModel,
        request: InferenceRequest,
        context: RequestContext,
    ) -> Result<Reply, ServiceError> {
        // A failure, or a client that left (this future dropped), is counted by the outcome.
        let mut outcome = Outcome::new(model, &request);
        if let Some(cache) = self.cache.as_ref().filter(|_| model.cache_enabled) {
            return cached(cache, outcome, request, context).await;
        }
        let (reply, timings) = run(model, request, context, outcome.received).await?;
        outcome.success(&timings);
        Ok(reply)
    }

    /// Checks a request and starts it for a streaming endpoint: the runtime may answer with
    /// several responses, which the stream yields as they come. A request that fails its checks
    /// fails here, before any response. A client that reads slowly holds the runtime back (the
    /// channels are bounded, in responses and in bytes); none is held past the request's
    /// deadline, and a stream its client did not drain by then ends with an error saying so.
    pub(crate) fn infer_stream(
        &self,
        model: Arc<LoadedModel>,
        mut request: InferenceRequest,
        context: RequestContext,
    ) -> Result<ResponseStream, ServiceError> {
        let outcome = Outcome::new(model, &request);
        let timeout = prepare(&outcome.model, &mut request, &context)?;
        let priority = queue_of(&outcome.model, &request)?;
        let (replies, stream) = mpsc::channel(STREAM_CAPACITY);
        let spec = CallSpec {
            deadline: outcome.received + timeout,
            timeout,
            headers: context.headers,
            priority,
        };
        let mut streamed = Streamed { outcome, replies };
        let task = async move {
            // The call itself ends by its deadline (and grace); this bounds a client that keeps
            // its connection but stops reading. The last free slot of the replies is kept for
            // the error that says so.
            let (abandon, timeout) = (spec.deadline + 2 * DEADLINE_GRACE, spec.timeout);
            let run = streamed.run(request, spec);
            if tokio::time::timeout_at(abandon.into(), run).await.is_err() {
                streamed.outcome.failure();
                let _ = streamed.replies.try_send(stalled(timeout).into());
            }
        };
        // As the request: what the call logs names it.
        tokio::spawn(crate::telemetry::request_log::propagate(task));
        Ok(stream)
    }
}

/// A request's outcome in its model's statistics and metrics, recorded exactly once: a request
/// whose success was not recorded when this is dropped — it failed, its client left and its
/// future was dropped, or its stream was abandoned — counts as failed.
struct Outcome<M: Deref<Target = LoadedModel>> {
    model: M,
    received: Instant,
    inferences: u64,
    recorded: bool,
}

impl<M: Deref<Target = LoadedModel>> Outcome<M> {
    /// The outcome of `request` on `model`, received now.
    fn new(model: M, request: &InferenceRequest) -> Self {
        let inferences = model.stats.inferences(request);
        Outcome {
            model,
            received: Instant::now(),
            inferences,
            recorded: false,
        }
    }

    /// Records the request as succeeded, its run having taken `timings`.
    fn success(&mut self, timings: &CallTimings) {
        if std::mem::replace(&mut self.recorded, true) {
            return;
        }
        let (model, total) = (&self.model, self.received.elapsed());
        model.stats.record_success(self.inferences, total, timings);
        model.metrics.success.inc();
        model.metrics.duration.observe(total.as_secs_f64());
        let compute = timings.total();
        model
            .metrics
            .queue_seconds
            .observe(total.saturating_sub(compute).as_secs_f64());
        model.metrics.compute_seconds.observe(compute.as_secs_f64());
    }

    /// Records the request as answered from the response cache, whose lookup took `lookup`.
    fn cache_hit(&mut self, lookup: std::time::Duration) {
        if std::mem::replace(&mut self.recorded, true) {
            return;
        }
        let (model, total) = (&self.model, self.received.elapsed());
        model.stats.record_cache_hit(total, lookup);
        model.metrics.cache_hits.inc();
        model.metrics.success.inc();
        model.metrics.duration.observe(total.as_secs_f64());
    }

    /// Records a lookup in the response cache that found nothing; it and storing the answer
    /// took `took`.
    fn cache_miss(&self, took: std::time::Duration) {
        self.model.stats.record_cache_miss(took);
        self.model.metrics.cache_misses.inc();
    }

    /// Records the request as failed.
    fn failure(&mut self) {
        if !std::mem::replace(&mut self.recorded, true) {
            let took = self.received.elapsed();
            self.model.stats.record_failure(took);
            self.model.metrics.failure.inc();
            self.model.metrics.duration.observe(took.as_secs_f64());
        }
    }
}

impl<M: Deref<Target = LoadedModel>> Drop for Outcome<M> {
    fn drop(&mut self) {
        self.failure();
    }
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
        priority: queue_of(model, &request)?,
    };
    let output = dispatch(model, request, spec).await?;
    crate::telemetry::record_call(&output.timings);
    let reply = respond(model, &id, output.outputs, output.parameters)?;
    Ok((reply, output.timings))
}

/// Answers a request from the response cache, or runs it and stores its answer.
async fn cached(
    cache: &ResponseCache,
    mut outcome: Outcome<&LoadedModel>,
    request: InferenceRequest,
    context: RequestContext,
) -> Result<Reply, ServiceError> {
    let model = outcome.model;
    let started = Instant::now();
    let (request, key) = cache_key(model, request, &context).await?;
    if let Some(hit) = cache.get(&key) {
        let mut reply = Reply::clone(&hit);
        reply.response.id = request.id;
        outcome.cache_hit(started.elapsed());
        return Ok(reply);
    }
    let lookup = started.elapsed();
    let (reply, timings) = match run(model, request, context, outcome.received).await {
        Ok(answer) => answer,
        Err(error) => {
            outcome.cache_miss(lookup);
            return Err(error);
        }
    };
    let storing = Instant::now();
    let mut stored = reply.clone();
    stored.response.id = None;
    cache.insert(key, stored);
    outcome.cache_miss(lookup + storing.elapsed());
    outcome.success(&timings);
    Ok(reply)
}

/// The cache key of a request, computed on a blocking thread when its inputs are large.
async fn cache_key(
    model: &LoadedModel,
    request: InferenceRequest,
    context: &RequestContext,
) -> Result<(InferenceRequest, CacheKey), ServiceError> {
    let size: usize = request.inputs.iter().map(|input| input.data.len()).sum();
    if size <= OFFLOAD_BYTES {
        let key = CacheKey::of(model, &request, &context.headers.pairs());
        return Ok((request, key));
    }
    // The key reads only the model's name, version and generation: a stand-in carries them.
    let (name, version, generation) = (model.name.clone(), model.version.clone(), model.generation);
    let headers = context.headers.pairs();
    tokio::task::spawn_blocking(move || {
        let key = CacheKey::from_parts(generation, &name, version.as_deref(), &request, &headers);
        (request, key)
    })
    .await
    .map_err(|error| {
        ServiceError::internal(
            "computing the cache key failed".to_string(),
            Some(Box::new(error)),
        )
    })
}

/// How the repository runs a model's warm-up requests before the model serves: as a client's
/// request (content types, checks, the model's deadline, its batcher or workers), counted in no
/// request statistics.
pub(crate) fn warm_up_call() -> WarmUpCall {
    Arc::new(|model: Arc<LoadedModel>, mut request: InferenceRequest| {
        Box::pin(async move {
            let timeout = prepare(&model, &mut request, &RequestContext::default())?;
            let spec = CallSpec {
                deadline: Instant::now() + timeout,
                timeout,
                headers: Default::default(),
                priority: queue_of(&model, &request)?,
            };
            dispatch(&model, request, spec).await?;
            Ok::<(), BoxError>(())
        }) as futures_util::future::BoxFuture<'static, Result<(), BoxError>>
    })
}

/// The queue (priority level) a request waits in: its `priority` parameter's, or the model's
/// default.
fn queue_of(model: &LoadedModel, request: &InferenceRequest) -> Result<usize, ServiceError> {
    workers(model)?
        .queue_of(&request.parameters)
        .map_err(ServiceError::BadRequest)
}

/// The model's workers; a pipeline has none (its steps run on theirs).
fn workers(model: &LoadedModel) -> Result<&Arc<crate::workers::WorkerPool>, ServiceError> {
    model.pool().ok_or_else(|| {
        ServiceError::BadRequest(format!(
            "model '{}' is a pipeline: it answers inference requests, one at a time, and \
             runs neither streams nor warm-up requests of its own (its steps' models do)",
            model.name
        ))
    })
}

/// Hands a request to the model's batcher when it has one, else to its workers.
async fn dispatch(
    model: &LoadedModel,
    request: InferenceRequest,
    spec: CallSpec,
) -> Result<crate::workers::CallOutput, PoolError> {
    match &model.runner {
        Runner::Workers {
            batcher: Some(batcher),
            ..
        } => batcher.infer(request, spec).await,
        Runner::Workers { pool, .. } => pool.infer(request, spec, None).await,
        Runner::Pipeline { .. } => Err(PoolError::Stopped),
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

/// A streamed request in flight: where its replies go, and its outcome.
struct Streamed {
    outcome: Outcome<Arc<LoadedModel>>,
    replies: mpsc::Sender<StreamItem>,
}

/// The error of a stream whose client did not read its responses before its deadline.
fn stalled(timeout: std::time::Duration) -> Result<Reply, ServiceError> {
    Err(PoolError::Call(CallError::StreamStalled(timeout)).into())
}

impl Streamed {
    /// Runs a streamed request (never batched) and forwards its replies: each one the runtime
    /// sends, then the one it returns unless it returns nothing after sending some. A client
    /// that leaves first makes the request a failure.
    async fn run(&mut self, request: InferenceRequest, spec: CallSpec) {
        let id = request.id.clone();
        let model = self.outcome.model.clone();
        let (sink, mut partials) = crate::workers::stream_channel();
        let watch: StreamSink = sink.clone();
        let Some(pool) = model.pool() else {
            // infer_stream refused pipelines before starting this.
            return;
        };
        let call = pool.infer(request, spec, Some(sink));
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
        match result {
            Ok(output) => {
                // Counted before the last reply goes out: a client that has it finds it counted.
                self.outcome.success(&output.timings);
                if sent == 0 || !output.outputs.is_empty() || !output.parameters.is_empty() {
                    let reply = respond(&model, &id, output.outputs, output.parameters);
                    let _ = self.replies.send(reply.into()).await;
                }
            }
            Err(PoolError::Call(CallError::DeadlineExceeded(timeout))) if watch.stalled() => {
                self.outcome.failure();
                let _ = self.replies.send(stalled(timeout).into()).await;
            }
            Err(error) => {
                self.outcome.failure();
                let _ = self.replies.send(StreamItem::from(Err(error.into()))).await;
            }
        }
    }

    /// Sends one early response on, keeping a slot free for the stream's last word; false when
    /// the client has gone (dropping the receiver of the runtime's responses then stops its
    /// sends).
    async fn forward(&self, id: &Option<String>, mut partial: PartialResponse) -> bool {
        let ticket = partial.take_ticket();
        let reply = respond(&self.outcome.model, id, partial.outputs, partial.parameters);
        match self.replies.reserve_many(2).await {
            Ok(mut permits) => {
                if let Some(permit) = permits.next() {
                    permit.send(StreamItem { reply, ticket });
                }
                true
            }
            Err(_) => false,
        }
    }
}

//! The worker pool of one model: OS threads, each owning one model instance (one Store).
//!
//! Requests reach the workers through one bounded queue that every worker of the model pulls
//! from, so a request goes to whichever worker is idle. The async side never blocks: it queues
//! with `try_send` (a full queue is refused at once) and awaits the answer on a oneshot channel.
//! A worker that traps replies with the error, drops its Store and instantiates a fresh one.

pub(crate) mod headers;

use crate::codec::{InferenceRequest, ModelMetadata};
use crate::metrics::ModelMetrics;
use crate::stats::ModelStats;
pub(crate) use crate::wasm::{
    CallError, CallOutput, Panic, PartialResponse, STREAM_CAPACITY, StreamSink, StreamTicket,
    stream_channel,
};
use crate::wasm::{InstanceError, ModelContext, ModelInstance, RuntimeComponent};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use headers::Headers;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How long past a request's deadline the async side waits for its worker (or its batch)
/// before giving up on it (a worker stuck in a host call cannot be interrupted by the epoch).
pub(crate) const DEADLINE_GRACE: Duration = Duration::from_millis(500);

/// Why a request got no answer from the pool.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error(transparent)]
    Call(#[from] CallError),
    #[error("model overloaded: its queue is full")]
    Overloaded,
    #[error("the model's workers have stopped")]
    Stopped,
    /// The batch the request ran in failed: the same failure for each of its requests.
    #[error(transparent)]
    Batch(std::sync::Arc<PoolError>),
}

impl PoolError {
    /// The failure itself, under any batch that shares it.
    pub fn cause(&self) -> &PoolError {
        match self {
            PoolError::Batch(shared) => shared.cause(),
            other => other,
        }
    }
}

/// How one call runs: when it must stop, and the headers its runtime reads.
#[derive(Debug, Clone)]
pub(crate) struct CallSpec {
    /// When the call must be stopped, counting the time it waits in queues.
    pub deadline: Instant,
    /// The timeout that set the deadline (for the error message).
    pub timeout: Duration,
    /// The request's headers, given to the runtime as its `headers` parameter (none for a
    /// batch: headers belong to each request).
    pub headers: Headers,
}

struct Job {
    request: InferenceRequest,
    spec: CallSpec,
    /// Where a streaming call's early responses go.
    stream: Option<StreamSink>,
    /// The span of the request (or batch) the call serves.
    span: tracing::Span,
    reply: oneshot::Sender<Result<CallOutput, CallError>>,
}

/// The running workers of one model (version).
pub(crate) struct WorkerPool {
    jobs: Sender<Job>,
    workers: usize,
    threads: Mutex<Vec<JoinHandle<()>>>,
    metrics: Arc<ModelMetrics>,
}

/// What a worker reports its calls to.
struct Observers<'a> {
    stats: &'a ModelStats,
    metrics: &'a ModelMetrics,
}

impl WorkerPool {
    /// Starts `workers` threads, each instantiating the runtime and loading the model, and waits
    /// until all have loaded. Returns the model's metadata as the runtime describes it. Every
    /// run of the runtime is recorded in `stats`.
    ///
    /// Blocking: call it off the async threads.
    pub(crate) fn start(
        component: Arc<RuntimeComponent>,
        context: Arc<ModelContext>,
        workers: usize,
        queue_capacity: usize,
        stats: Arc<ModelStats>,
        metrics: Arc<ModelMetrics>,
    ) -> Result<(Self, ModelMetadata), InstanceError> {
        let workers = workers.max(1);
        let (jobs, queue) = crossbeam_channel::bounded::<Job>(queue_capacity.max(1));
        let (loaded_tx, loaded_rx) = std::sync::mpsc::channel();
        let mut threads = Vec::with_capacity(workers);
        for index in 0..workers {
            let (component, context, queue, loaded) = (
                component.clone(),
                context.clone(),
                queue.clone(),
                loaded_tx.clone(),
            );
            let (stats, metrics) = (stats.clone(), metrics.clone());
            let thread = std::thread::Builder::new()
                .name(format!("mlhost-worker-{}-{index}", context.name))
                .spawn(move || {
                    let instance = match ModelInstance::new(&component, &context) {
                        Ok((instance, metadata)) => {
                            let _ = loaded.send(Ok(metadata));
                            instance
                        }
                        Err(error) => {
                            let _ = loaded.send(Err(error));
                            return;
                        }
                    };
                    drop(loaded);
                    let observers = Observers {
                        stats: &stats,
                        metrics: &metrics,
                    };
                    serve(instance, &component, &context, &queue, &observers);
                })
                .map_err(|error| {
                    InstanceError::Instantiate(wasmtime::Error::msg(error.to_string()))
                })?;
            threads.push(thread);
        }
        drop(loaded_tx);

        let mut metadata = None;
        for _ in 0..workers {
            match loaded_rx.recv() {
                Ok(Ok(loaded)) => metadata = Some(loaded),
                Ok(Err(error)) => return Err(error), // dropping `jobs` stops the other workers
                Err(_) => {
                    return Err(InstanceError::Instantiate(wasmtime::Error::msg(
                        "a worker thread died while loading",
                    )));
                }
            }
        }
        let metadata = metadata.expect("at least one worker");
        Ok((
            WorkerPool {
                jobs,
                workers,
                threads: Mutex::new(threads),
                metrics,
            },
            metadata,
        ))
    }

    /// How many workers (model instances) run calls side by side.
    pub(crate) fn workers(&self) -> usize {
        self.workers
    }

    /// Queues a request and waits for its answer, without blocking the async runtime. The call
    /// is stopped at the spec's deadline, counting the time spent queued. A streaming call's
    /// runtime may send responses to `stream` before its last one (which it returns).
    pub(crate) async fn infer(
        &self,
        request: InferenceRequest,
        spec: CallSpec,
        stream: Option<StreamSink>,
    ) -> Result<CallOutput, PoolError> {
        let (reply, answer) = oneshot::channel();
        let (deadline, timeout) = (spec.deadline, spec.timeout);
        self.metrics.worker_queue.observe(self.jobs.len() as f64);
        self.jobs
            .try_send(Job {
                request,
                spec,
                stream,
                span: tracing::Span::current(),
                reply,
            })
            .map_err(|error| match error {
                TrySendError::Full(_) => PoolError::Overloaded,
                TrySendError::Disconnected(_) => PoolError::Stopped,
            })?;
        let answer = tokio::time::timeout_at((deadline + DEADLINE_GRACE).into(), answer)
            .await
            .map_err(|_| PoolError::Call(CallError::DeadlineExceeded(timeout)))?;
        // A worker that panics drops the reply sender: the request fails instead of hanging.
        Ok(answer.map_err(|_| PoolError::Stopped)??)
    }

    /// Stops taking requests, lets the workers finish what is queued, and joins them.
    ///
    /// Blocking: call it off the async threads.
    pub(crate) fn shutdown(self) {
        drop(self.jobs);
        for thread in self.threads.into_inner().unwrap_or_default() {
            let _ = thread.join();
        }
    }
}

/// A worker's loop: run jobs until the queue closes, replacing the instance after a trap.
fn serve(
    instance: ModelInstance,
    component: &RuntimeComponent,
    context: &ModelContext,
    queue: &Receiver<Job>,
    observers: &Observers<'_>,
) {
    let mut instance = Some(instance);
    for job in queue.iter() {
        if job.reply.is_closed() {
            continue; // the client has gone
        }
        // The request's span: what the call logs (the runtime's output too) names the request.
        let span = job.span.clone();
        let _entered = span.enter();
        if instance.is_none() {
            if job.spec.deadline <= Instant::now() {
                let _ = job
                    .reply
                    .send(Err(CallError::ExpiredInQueue(job.spec.timeout)));
                continue;
            }
            instance = recreate(component, context, observers);
        }
        let reply = job.reply;
        let result = match instance.as_mut() {
            Some(live) => run_job(live, job.request, job.spec, job.stream, observers.stats),
            None => Err(CallError::Failed(
                "the model instance could not be re-created".to_string(),
            )),
        };
        let poisoned = matches!(&result, Err(error) if error.poisons_instance());
        match &result {
            Err(CallError::DeadlineExceeded(_) | CallError::NativeDeadline(_)) => {
                observers.metrics.deadlines.inc()
            }
            Err(CallError::MemoryLimit(_)) => observers.metrics.memory_limits.inc(),
            _ => 0,
        };
        if let Err(error) = &result
            && poisoned
        {
            // The instance's event (the request's failure is logged with its answer, when a
            // client still waits for one).
            tracing::warn!(model = %context.name, "{error}; re-creating the instance");
        }
        let _ = reply.send(result);
        if poisoned {
            // Drop the trapped Store before making its replacement (which may reuse its slot).
            drop(instance.take());
            instance = recreate(component, context, observers);
        }
    }
}

/// Runs one request on a live instance. A panic of the host's own code fails only this request,
/// with its message as the error's cause (and the instance, whose state is now unknown, is
/// replaced: see [`CallError::poisons_instance`]).
fn run_job(
    instance: &mut ModelInstance,
    mut request: InferenceRequest,
    spec: CallSpec,
    stream: Option<StreamSink>,
    stats: &ModelStats,
) -> Result<CallOutput, CallError> {
    if !spec.headers.is_empty() {
        request
            .parameters
            .push(headers::to_parameter(&spec.headers));
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let batch_size = stats.inferences(&request);
        let output = instance.predict(request, spec.deadline, spec.timeout, stream);
        if let Ok(output) = &output {
            stats.record_execution(batch_size, &output.timings);
        }
        output
    }));
    outcome.unwrap_or_else(|payload| {
        let message = panic_message(payload.as_ref()).to_string();
        Err(CallError::Panicked(Panic(message)))
    })
}

/// The message a panic was raised with (`panic!` gives a `&str` or a `String`).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown panic")
}

fn recreate(
    component: &RuntimeComponent,
    context: &ModelContext,
    observers: &Observers<'_>,
) -> Option<ModelInstance> {
    let started = Instant::now();
    match ModelInstance::new(component, context) {
        Ok((fresh, _)) => {
            observers.metrics.recreated.inc();
            tracing::info!(
                model = %context.name,
                elapsed_us = started.elapsed().as_micros() as u64,
                "instance re-created"
            );
            Some(fresh)
        }
        Err(error) => {
            tracing::error!(model = %context.name, "cannot re-create the instance: {error}");
            None
        }
    }
}

//! The worker pool of one model: OS threads and as many model instances (Stores), shared
//! between the threads and the model's inline calls ([`inline`]).
//!
//! Requests reach the workers through one bounded queue that every worker of the model pulls
//! from, so a request goes to whichever worker is idle; the worker takes an idle instance for
//! it. The async side never blocks longer than a short call: it runs a short model's call
//! inline when an instance is idle, and otherwise queues with `try_send` (a full queue is
//! refused at once) and awaits the answer on a oneshot channel. A call that traps drops its
//! Store; a fresh instance replaces it.

pub(crate) mod headers;
mod inline;
mod instances;
pub(crate) mod priority;

use crate::codec::{InferenceRequest, ModelMetadata};
use crate::metrics::ModelMetrics;
use crate::stats::ModelStats;
use crate::telemetry::request_log::{self, RequestTag};
pub(crate) use crate::wasm::{
    CallError, CallOutput, Panic, PartialResponse, STREAM_CAPACITY, StreamSink, StreamTicket,
    stream_channel,
};
use crate::wasm::{
    CallMode, INLINE_BUDGET, InstanceError, ModelContext, ModelInstance, RuntimeComponent,
};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use headers::RequestHeaders;
use inline::InlinePolicy;
use instances::{Instances, Taken};
use priority::QueueSettings;
use std::sync::atomic::{AtomicBool, Ordering};
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
    pub headers: RequestHeaders,
    /// The queue the call waits in when it waits: its priority level (0 the highest; see
    /// [`priority`]).
    pub priority: usize,
}

struct Job {
    request: InferenceRequest,
    spec: CallSpec,
    /// Where a streaming call's early responses go.
    stream: Option<StreamSink>,
    /// The request the call serves, which its log lines name (none for a batch).
    tag: Option<Arc<RequestTag>>,
    /// The span the call was queued in, when debug logging made one (see [`request_log`]).
    span: tracing::Span,
    /// Set when the caller stops waiting (its client went away): the call is stopped.
    cancel: Arc<AtomicBool>,
    reply: oneshot::Sender<Result<CallOutput, CallError>>,
}

/// Cancels a queued call when the future waiting for it is dropped (the caller stopped waiting:
/// a client that went away, a batch that no longer has a client), or when it is done waiting.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The running workers of one model (version).
pub(crate) struct WorkerPool {
    /// One queue per priority level, the highest first.
    jobs: Vec<Sender<Job>>,
    queues: QueueSettings,
    workers: usize,
    threads: Mutex<Vec<JoinHandle<()>>>,
    shared: Arc<Shared>,
}

/// What the workers and the inline calls of a model share.
struct Shared {
    instances: Instances,
    policy: InlinePolicy,
    component: Arc<RuntimeComponent>,
    context: Arc<ModelContext>,
    stats: Arc<ModelStats>,
    metrics: Arc<ModelMetrics>,
}

impl WorkerPool {
    /// Starts `workers` threads, each instantiating the runtime and loading the model, and waits
    /// until all have loaded; with `inline_calls` (the longest call that counts as short), a
    /// model whose calls are short may run them inline (see [`inline`]). Returns the model's metadata as the runtime describes it. Every
    /// run of the runtime is recorded in `stats`.
    ///
    /// Blocking: call it off the async threads.
    pub(crate) fn start(
        component: Arc<RuntimeComponent>,
        context: Arc<ModelContext>,
        workers: usize,
        queues: QueueSettings,
        inline_calls: Option<Duration>,
        stats: Arc<ModelStats>,
        metrics: Arc<ModelMetrics>,
    ) -> Result<(Self, ModelMetadata), InstanceError> {
        let workers = workers.max(1);
        let (jobs, queue): (Vec<_>, Vec<_>) = queues
            .capacities
            .iter()
            .map(|capacity| crossbeam_channel::bounded::<Job>((*capacity).max(1)))
            .unzip();
        let shared = Arc::new(Shared {
            instances: Instances::new(Vec::with_capacity(workers)),
            policy: InlinePolicy::new(inline_calls),
            component,
            context,
            stats,
            metrics,
        });
        let (loaded_tx, loaded_rx) = std::sync::mpsc::channel();
        let mut threads = Vec::with_capacity(workers);
        for index in 0..workers {
            let (shared, queue, loaded) = (shared.clone(), queue.clone(), loaded_tx.clone());
            let thread = std::thread::Builder::new()
                .name(format!("mlhost-worker-{}-{index}", shared.context.name))
                .spawn(move || {
                    match ModelInstance::new(&shared.component, &shared.context) {
                        Ok((instance, metadata)) => {
                            shared.instances.put(instance);
                            let _ = loaded.send(Ok(metadata));
                        }
                        Err(error) => {
                            let _ = loaded.send(Err(error));
                            return;
                        }
                    };
                    drop(loaded);
                    serve(&shared, &queue);
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
                queues,
                workers,
                threads: Mutex::new(threads),
                shared,
            },
            metadata,
        ))
    }

    /// The queue (priority level, 0 the highest) of a request with these parameters, or why
    /// its `priority` is refused.
    pub(crate) fn queue_of(&self, parameters: &crate::codec::Parameters) -> Result<usize, String> {
        self.queues.queue_of(parameters)
    }

    /// How many workers (model instances) run calls side by side.
    pub(crate) fn workers(&self) -> usize {
        self.workers
    }

    /// Runs a request and waits for its answer, without blocking the async runtime for longer
    /// than a short call: inline when the model has earned it (see [`inline`]) and an instance
    /// is idle, else through the queue to a worker. The call is stopped at the spec's deadline,
    /// counting the time spent queued. A streaming call's runtime may send responses to `stream`
    /// before its last one (which it returns).
    pub(crate) async fn infer(
        &self,
        request: InferenceRequest,
        spec: CallSpec,
        stream: Option<StreamSink>,
    ) -> Result<CallOutput, PoolError> {
        if stream.is_none()
            && self.shared.policy.allows_inline()
            && self.jobs.iter().all(Sender::is_empty)
            && let Some(instance) = self.shared.instances.try_take()
        {
            return Ok(self.shared.run_inline(instance, request, spec)?);
        }
        let (reply, answer) = oneshot::channel();
        let (deadline, timeout) = (spec.deadline, spec.timeout);
        let cancel = Arc::new(AtomicBool::new(false));
        let _cancel_on_drop = CancelOnDrop(cancel.clone());
        let queue = &self.jobs[spec.priority.min(self.jobs.len() - 1)];
        self.shared.metrics.worker_queue.observe(queue.len() as f64);
        queue
            .try_send(Job {
                request,
                spec,
                stream,
                tag: request_log::current(),
                span: if tracing::enabled!(tracing::Level::DEBUG) {
                    tracing::Span::current()
                } else {
                    tracing::Span::none()
                },
                cancel,
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
        self.shared.instances.close();
    }
}

impl Shared {
    /// Runs a call on `instance` in `mode`, records it (statistics, the inline policy,
    /// deadline and memory-limit counters) and logs an instance it poisoned.
    fn call(
        &self,
        instance: &mut ModelInstance,
        job: (InferenceRequest, CallSpec, Option<StreamSink>),
        mode: CallMode,
        cancel: Option<Arc<AtomicBool>>,
    ) -> Result<CallOutput, CallError> {
        let (request, spec, stream) = job;
        let started = Instant::now();
        let reads_headers = self.component.reads_headers();
        let job = (request, spec, stream);
        let result = run_job(instance, job, reads_headers, &self.stats, mode, cancel);
        let took = started.elapsed();
        match mode {
            CallMode::Worker => self.policy.record_worker_call(took, instance.uses_native()),
            CallMode::Inline => self
                .policy
                .record_inline_call(took, instance.overran_inline()),
        }
        match &result {
            Err(CallError::DeadlineExceeded(_) | CallError::NativeDeadline(_)) => {
                self.metrics.deadlines.inc()
            }
            Err(CallError::MemoryLimit(_)) => self.metrics.memory_limits.inc(),
            _ => 0,
        };
        if let Err(error) = &result
            && error.poisons_instance()
        {
            // The instance's event (the request's failure is logged with its answer, when a
            // client still waits for one). A cancelled call is the client's doing, not a fault.
            request_log::in_span(|| {
                if matches!(error, CallError::Cancelled) {
                    tracing::info!(model = %self.context.name, "{error}; re-creating the instance");
                } else {
                    tracing::warn!(model = %self.context.name, "{error}; re-creating the instance");
                }
            });
        }
        result
    }

    /// Runs a call inline on the caller's (async) thread. A poisoned instance is dropped and
    /// left for a worker to re-create.
    fn run_inline(
        &self,
        mut instance: ModelInstance,
        request: InferenceRequest,
        spec: CallSpec,
    ) -> Result<CallOutput, CallError> {
        let result = self.call(&mut instance, (request, spec, None), CallMode::Inline, None);
        if instance.overran_inline() {
            request_log::in_span(|| {
                tracing::warn!(
                    model = %self.context.name,
                    "a call ran past {} ms on an async thread: the model's calls run on its \
                     workers from now on",
                    INLINE_BUDGET.as_millis()
                )
            });
        }
        if matches!(&result, Err(error) if error.poisons_instance()) {
            drop(instance);
            self.instances.lost();
        } else {
            self.instances.put(instance);
        }
        result
    }
}

/// A worker's loop: take a job, take an instance for it, run it, give the instance back (or
/// replace it after a trap), until the queue closes.
fn serve(shared: &Shared, queues: &[Receiver<Job>]) {
    while let Some(mut job) = priority::next(queues) {
        if job.reply.is_closed() {
            continue; // the client has gone
        }
        // As the request: what the call logs (the runtime's output too) names it.
        let span = job.span.clone();
        let _entered = span.enter();
        request_log::on_thread(job.tag.take(), || serve_job(shared, job));
    }
}

/// Runs one job on an instance, and gives the instance back (or replaces it after a trap).
fn serve_job(shared: &Shared, job: Job) {
    let Some(mut instance) = take_instance(shared, &job.spec) else {
        let error = if job.spec.deadline <= Instant::now() {
            CallError::ExpiredInQueue(job.spec.timeout)
        } else {
            CallError::Failed("the model instance could not be re-created".to_string())
        };
        let _ = job.reply.send(Err(error));
        return;
    };
    let result = shared.call(
        &mut instance,
        (job.request, job.spec, job.stream),
        CallMode::Worker,
        Some(job.cancel),
    );
    let poisoned = matches!(&result, Err(error) if error.poisons_instance());
    let _ = job.reply.send(result);
    if poisoned {
        // Drop the trapped Store before making its replacement (which may reuse its slot).
        drop(instance);
        match recreate(shared) {
            Some(fresh) => shared.instances.put(fresh),
            None => shared.instances.lost(),
        }
    } else {
        shared.instances.put(instance);
    }
}

/// An instance for a job: an idle one, or a missing one re-created (not for a job whose
/// deadline has passed). `None` when there is none to run it on.
fn take_instance(shared: &Shared, spec: &CallSpec) -> Option<ModelInstance> {
    match shared.instances.take() {
        Taken::Idle(instance) => Some(instance),
        Taken::Missing if spec.deadline > Instant::now() => {
            let fresh = recreate(shared);
            if fresh.is_none() {
                shared.instances.lost();
            }
            fresh
        }
        Taken::Missing => {
            shared.instances.lost();
            None
        }
    }
}

/// Runs one request on a live instance, with its headers as the `headers` parameter when the
/// runtime may read them (`reads_headers`). A panic of the host's own code fails only this
/// request, with its message as the error's cause (and the instance, whose state is now
/// unknown, is replaced: see [`CallError::poisons_instance`]).
fn run_job(
    instance: &mut ModelInstance,
    job: (InferenceRequest, CallSpec, Option<StreamSink>),
    reads_headers: bool,
    stats: &ModelStats,
    mode: CallMode,
    cancel: Option<Arc<AtomicBool>>,
) -> Result<CallOutput, CallError> {
    let (mut request, spec, stream) = job;
    if reads_headers && !spec.headers.is_empty() {
        request
            .parameters
            .push(headers::to_parameter(&spec.headers.pairs()));
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let batch_size = stats.inferences(&request);
        let output = instance.predict(request, spec.deadline, spec.timeout, stream, mode, cancel);
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

fn recreate(shared: &Shared) -> Option<ModelInstance> {
    let started = Instant::now();
    match ModelInstance::new(&shared.component, &shared.context) {
        Ok((fresh, _)) => {
            shared.metrics.recreated.inc();
            request_log::in_span(|| {
                tracing::info!(
                    model = %shared.context.name,
                    elapsed_us = started.elapsed().as_micros() as u64,
                    "instance re-created"
                )
            });
            Some(fresh)
        }
        Err(error) => {
            request_log::in_span(
                || tracing::error!(model = %shared.context.name, "cannot re-create the instance: {error}"),
            );
            None
        }
    }
}

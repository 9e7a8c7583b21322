//! The worker pool of one model: OS threads, each owning one model instance (one Store).
//!
//! Requests reach the workers through one bounded queue that every worker of the model pulls
//! from, so a request goes to whichever worker is idle. The async side never blocks: it queues
//! with `try_send` (a full queue is refused at once) and awaits the answer on a oneshot channel.
//! A worker that traps replies with the error, drops its Store and instantiates a fresh one.

use crate::codec::{InferenceRequest, ModelMetadata};
use crate::metrics::ModelMetrics;
use crate::stats::ModelStats;
pub use crate::wasm::CallOutput;
use crate::wasm::{
    CallError, InstanceError, ModelContext, ModelInstance, RuntimeComponent, StreamSink,
};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How long past a request's deadline the async side waits for its worker before giving up on
/// it (a worker stuck in a host call cannot be interrupted by the epoch).
const DEADLINE_GRACE: Duration = Duration::from_millis(500);

/// Why a request got no answer from the pool.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error(transparent)]
    Call(#[from] CallError),
    #[error("model overloaded: its queue is full")]
    Overloaded,
    #[error("the model's workers have stopped")]
    Stopped,
}

struct Job {
    request: InferenceRequest,
    /// When the call must be stopped, and the timeout that set it (for the error message).
    deadline: Instant,
    timeout: Duration,
    /// Where a streaming call's early responses go.
    stream: Option<StreamSink>,
    /// The span of the request (or batch) the call serves.
    span: tracing::Span,
    reply: oneshot::Sender<Result<CallOutput, CallError>>,
}

/// The running workers of one model (version).
pub struct WorkerPool {
    jobs: Sender<Job>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    recreated: Arc<AtomicU64>,
    metrics: Arc<ModelMetrics>,
}

/// What a worker reports its calls to.
struct Observers<'a> {
    recreated: &'a AtomicU64,
    stats: &'a ModelStats,
    metrics: &'a ModelMetrics,
}

impl WorkerPool {
    /// Starts `workers` threads, each instantiating the runtime and loading the model, and waits
    /// until all have loaded. Returns the model's metadata as the runtime describes it. Every
    /// run of the runtime is recorded in `stats`.
    ///
    /// Blocking: call it off the async threads.
    pub fn start(
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
        let recreated = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::with_capacity(workers);
        for index in 0..workers {
            let (component, context, queue, loaded) = (
                component.clone(),
                context.clone(),
                queue.clone(),
                loaded_tx.clone(),
            );
            let (recreated, stats, metrics) = (recreated.clone(), stats.clone(), metrics.clone());
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
                        recreated: &recreated,
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
                threads: Mutex::new(threads),
                recreated,
                metrics,
            },
            metadata,
        ))
    }

    /// Queues a request and waits for its answer, without blocking the async runtime. The call
    /// is stopped at `deadline` (`timeout` after it arrived), counting the time spent queued.
    pub async fn infer(
        &self,
        request: InferenceRequest,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<CallOutput, PoolError> {
        self.infer_streaming(request, deadline, timeout, None).await
    }

    /// As [`WorkerPool::infer`], letting the runtime send responses to `stream` before its
    /// last one (which it returns).
    pub async fn infer_streaming(
        &self,
        request: InferenceRequest,
        deadline: Instant,
        timeout: Duration,
        stream: Option<StreamSink>,
    ) -> Result<CallOutput, PoolError> {
        let (reply, answer) = oneshot::channel();
        self.metrics.worker_queue.observe(self.jobs.len() as f64);
        self.jobs
            .try_send(Job {
                request,
                deadline,
                timeout,
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

    /// How many times a worker has replaced its instance after a trap.
    pub fn instances_recreated(&self) -> u64 {
        self.recreated.load(Ordering::Relaxed)
    }

    /// Stops taking requests, lets the workers finish what is queued, and joins them.
    ///
    /// Blocking: call it off the async threads.
    pub fn shutdown(self) {
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
    let stats = observers.stats;
    let mut instance = Some(instance);
    for job in queue.iter() {
        if job.reply.is_closed() {
            continue; // the client has gone
        }
        // The request's span: what the call logs (the runtime's output too) names the request.
        let _span = job.span.enter();
        if instance.is_none() {
            if job.deadline <= Instant::now() {
                let _ = job.reply.send(Err(CallError::ExpiredInQueue(job.timeout)));
                continue;
            }
            instance = recreate(component, context, observers);
        }
        // A panic in the host's own code must not kill the worker: it fails that request, and
        // the instance (whose state is now unknown) is replaced.
        let mut panicked = false;
        let result = match instance.as_mut() {
            Some(live) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let batch_size = stats.inferences(&job.request);
                let output = live.predict(job.request, job.deadline, job.timeout, job.stream);
                if let Ok(output) = &output {
                    stats.record_execution(batch_size, &output.timings);
                }
                output
            }))
            .unwrap_or_else(|_| {
                panicked = true;
                Err(CallError::Failed(
                    "the worker failed on this request".to_string(),
                ))
            }),
            None => Err(CallError::Failed(
                "the model instance could not be re-created".to_string(),
            )),
        };
        let poisoned = panicked || matches!(&result, Err(error) if error.poisons_instance());
        match &result {
            Err(CallError::DeadlineExceeded(_)) => observers.metrics.deadlines.inc(),
            Err(CallError::MemoryLimit(_)) => observers.metrics.memory_limits.inc(),
            _ => 0,
        };
        if let Err(error) = &result
            && poisoned
        {
            tracing::warn!(model = %context.name, "{}; re-creating the instance", error.detail());
        }
        let _ = job.reply.send(result);
        if poisoned {
            // Drop the trapped Store before making its replacement (which may reuse its slot).
            drop(instance.take());
            instance = recreate(component, context, observers);
        }
    }
}

fn recreate(
    component: &RuntimeComponent,
    context: &ModelContext,
    observers: &Observers<'_>,
) -> Option<ModelInstance> {
    let started = Instant::now();
    match ModelInstance::new(component, context) {
        Ok((fresh, _)) => {
            observers.recreated.fetch_add(1, Ordering::Relaxed);
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

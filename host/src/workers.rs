//! The worker pool of one model: OS threads, each owning one model instance (one Store).
//!
//! Requests reach the workers through one bounded queue that every worker of the model pulls
//! from, so a request goes to whichever worker is idle. The async side never blocks: it queues
//! with `try_send` (a full queue is refused at once) and awaits the answer on a oneshot channel.
//! A worker that traps replies with the error, drops its Store and instantiates a fresh one.

use crate::codec::{InferenceRequest, ModelMetadata, Parameters, Tensor};
use crate::wasm::{CallError, InstanceError, ModelContext, ModelInstance, RuntimeComponent};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// Requests a model's queue holds per worker before new ones are refused.
pub const QUEUE_CAPACITY_PER_WORKER: usize = 256;

/// The outputs and parameters of one successful call.
pub type CallOutput = (Vec<Tensor>, Parameters);

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
    reply: oneshot::Sender<Result<CallOutput, CallError>>,
}

/// The running workers of one model (version).
pub struct WorkerPool {
    jobs: Sender<Job>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl WorkerPool {
    /// Starts `workers` threads, each instantiating the runtime and loading the model, and waits
    /// until all have loaded. Returns the model's metadata as the runtime describes it.
    ///
    /// Blocking: call it off the async threads.
    pub fn start(
        component: Arc<RuntimeComponent>,
        context: Arc<ModelContext>,
        workers: usize,
    ) -> Result<(Self, ModelMetadata), InstanceError> {
        let workers = workers.max(1);
        let (jobs, queue) = crossbeam_channel::bounded::<Job>(workers * QUEUE_CAPACITY_PER_WORKER);
        let (loaded_tx, loaded_rx) = std::sync::mpsc::channel();
        let mut threads = Vec::with_capacity(workers);
        for index in 0..workers {
            let (component, context, queue, loaded) = (
                component.clone(),
                context.clone(),
                queue.clone(),
                loaded_tx.clone(),
            );
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
                    serve(instance, &component, &context, &queue);
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
            },
            metadata,
        ))
    }

    /// Queues a request and waits for its answer, without blocking the async runtime.
    pub async fn infer(&self, request: InferenceRequest) -> Result<CallOutput, PoolError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .try_send(Job { request, reply })
            .map_err(|error| match error {
                TrySendError::Full(_) => PoolError::Overloaded,
                TrySendError::Disconnected(_) => PoolError::Stopped,
            })?;
        // A worker that panics drops the reply sender: the request fails instead of hanging.
        Ok(answer.await.map_err(|_| PoolError::Stopped)??)
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
) {
    let mut instance = Some(instance);
    for job in queue.iter() {
        if job.reply.is_closed() {
            continue; // the client has gone
        }
        let result = match instance.as_mut() {
            Some(live) => live.predict(job.request),
            None => match ModelInstance::new(component, context) {
                Ok((mut fresh, _)) => {
                    let result = fresh.predict(job.request);
                    instance = Some(fresh);
                    result
                }
                Err(error) => Err(CallError::Failed(format!(
                    "the model instance could not be re-created: {error}"
                ))),
            },
        };
        let trapped = matches!(result, Err(CallError::Trap(_)));
        if let Err(CallError::Trap(trap)) = &result {
            tracing::warn!(model = %context.name, "runtime trapped, re-creating its instance: {trap:#}");
        }
        let _ = job.reply.send(result);
        if trapped {
            instance = None;
            match ModelInstance::new(component, context) {
                Ok((fresh, _)) => instance = Some(fresh),
                Err(error) => {
                    tracing::error!(model = %context.name, "cannot re-create the instance: {error}");
                }
            }
        }
    }
}

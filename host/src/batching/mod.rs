//! Adaptive batching: requests to one model gathered into batches along dimension 0.
//!
//! A [`Batcher`] is a handle on a task. The task takes the first waiting request and the ones
//! already queued that share its [`merge::BatchKey`]. When a worker of the model is idle, that
//! batch runs at once: a lone request is never held. While every worker is busy, the batch goes
//! on gathering until it holds `max_batch_size` rows, a worker frees up, or `max_batch_time` has
//! passed since its first request arrived; the task goes on gathering the next batch while one
//! runs. Each request gets exactly its own rows back (or the batch's error). The queue is
//! bounded: a full one refuses at once.

pub(crate) mod merge;

use crate::codec::InferenceRequest;
use crate::metrics::ModelMetrics;
use crate::workers::{CallError, CallOutput, CallSpec, DEADLINE_GRACE, PoolError, WorkerPool};
use merge::BatchKey;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc, oneshot};

/// When and how much to batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchOptions {
    /// Most rows in one batch.
    pub max_batch_size: u64,
    /// Longest a batch waits to fill, from its first request's arrival.
    pub max_batch_time: Duration,
    /// Requests waiting to be batched before new ones are refused.
    pub queue_capacity: usize,
}

struct Item {
    request: InferenceRequest,
    key: BatchKey,
    rows: u64,
    arrived: Instant,
    spec: CallSpec,
    reply: oneshot::Sender<Result<CallOutput, PoolError>>,
    /// When the request's batch went to the workers, and its requests (only while requests
    /// are traced: `crate::telemetry`).
    dispatched: Option<Arc<std::sync::OnceLock<(Instant, usize)>>>,
}

impl Item {
    /// When a batch holding this request must close: a request waits at most half of its time
    /// for others to join.
    fn must_start(&self) -> Instant {
        self.arrived + self.spec.deadline.saturating_duration_since(self.arrived) / 2
    }
}

/// The batching front of one model's worker pool.
pub(crate) struct Batcher {
    items: mpsc::Sender<Item>,
    pool: Arc<WorkerPool>,
    options: BatchOptions,
    metrics: Arc<ModelMetrics>,
}

impl Batcher {
    /// Starts the batching task for `pool` (needs a tokio runtime context); queue lengths and
    /// batch sizes go to `metrics`.
    pub(crate) fn start(
        pool: Arc<WorkerPool>,
        options: BatchOptions,
        metrics: Arc<ModelMetrics>,
    ) -> Self {
        let (items, receiver) = mpsc::channel(options.queue_capacity.max(1));
        tokio::spawn(gather(receiver, pool.clone(), options, metrics.clone()));
        Batcher {
            items,
            pool,
            options,
            metrics,
        }
    }

    /// Runs a request in a batch (or alone, when it cannot share one or is larger than a batch).
    pub(crate) async fn infer(
        &self,
        request: InferenceRequest,
        spec: CallSpec,
    ) -> Result<CallOutput, PoolError> {
        let (key, rows) = match merge::batch_key(&request) {
            Some((key, rows)) if rows > 0 && rows <= self.options.max_batch_size => (key, rows),
            _ => return self.pool.infer(request, spec, None).await,
        };
        let (deadline, timeout) = (spec.deadline, spec.timeout);
        let (reply, answer) = oneshot::channel();
        let dispatched = crate::telemetry::active().then(Arc::default);
        let item = Item {
            request,
            key,
            rows,
            arrived: Instant::now(),
            spec,
            reply,
            dispatched: dispatched.clone(),
        };
        let queued = self.items.max_capacity() - self.items.capacity();
        self.metrics.batch_queue.observe(queued as f64);
        self.items.try_send(item).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => PoolError::Overloaded,
            mpsc::error::TrySendError::Closed(_) => PoolError::Stopped,
        })?;
        // The batch runs under its latest deadline; each request is held to its own here.
        let answer = tokio::time::timeout_at((deadline + DEADLINE_GRACE).into(), answer)
            .await
            .map_err(|_| PoolError::Call(CallError::DeadlineExceeded(timeout)))?
            .map_err(|_| PoolError::Stopped)?;
        if let Some(&(at, requests)) = dispatched.as_deref().and_then(std::sync::OnceLock::get) {
            crate::telemetry::mark_batched(at, requests);
        }
        answer
    }
}

/// The batches on the workers: how many run, and a wake-up when one ends.
#[derive(Default)]
struct Running {
    batches: AtomicUsize,
    ended: Notify,
}

impl Running {
    /// Whether every worker has a batch (a new one would only wait in the workers' queue).
    fn all_busy(&self, workers: usize) -> bool {
        self.batches.load(Ordering::Acquire) >= workers
    }
}

/// Counts a batch as running until it is dropped (when the batch ends, however it ends).
struct RunningBatch(Arc<Running>);

impl RunningBatch {
    fn new(running: &Arc<Running>) -> Self {
        running.batches.fetch_add(1, Ordering::AcqRel);
        RunningBatch(running.clone())
    }
}

impl Drop for RunningBatch {
    fn drop(&mut self) {
        self.0.batches.fetch_sub(1, Ordering::AcqRel);
        self.0.ended.notify_one();
    }
}

/// A batch being gathered: its requests (all sharing the first one's key), their rows, and when
/// it must close at the latest.
struct Forming {
    items: Vec<Item>,
    rows: u64,
    closes: Instant,
}

impl Forming {
    /// A batch that closes when its time is up or when its first request must start.
    fn new(first: Item, options: &BatchOptions) -> Self {
        Forming {
            closes: (first.arrived + options.max_batch_time).min(first.must_start()),
            rows: first.rows,
            items: vec![first],
        }
    }

    /// Whether `item` shares the batch's key and fits in `max_rows`.
    fn fits(&self, item: &Item, max_rows: u64) -> bool {
        item.key == self.items[0].key && self.rows + item.rows <= max_rows
    }

    /// Takes `item` into the batch if it fits; gives it back otherwise.
    fn offer(&mut self, item: Item, max_rows: u64) -> Option<Item> {
        if !self.fits(&item, max_rows) {
            return Some(item);
        }
        self.rows += item.rows;
        self.closes = self.closes.min(item.must_start());
        self.items.push(item);
        None
    }
}

/// The batching task: forms batches until every handle is dropped.
///
/// A batch goes to the workers as soon as one of them is idle, with whatever has arrived by then;
/// requests merge only while every worker is busy, until the batch is full, a worker frees up,
/// `max_batch_time` has passed since its first request, or its most urgent request must start.
async fn gather(
    mut items: mpsc::Receiver<Item>,
    pool: Arc<WorkerPool>,
    options: BatchOptions,
    metrics: Arc<ModelMetrics>,
) {
    let running = Arc::new(Running::default());
    let mut waiting: VecDeque<Item> = VecDeque::new();
    loop {
        // What has arrived waits with the rest, so that the most urgent request goes first.
        while waiting.len() < options.queue_capacity {
            let Ok(item) = items.try_recv() else { break };
            waiting.push_back(item);
        }
        let first = match take_most_urgent(&mut waiting) {
            Some(item) => item,
            None => match items.recv().await {
                Some(item) => item,
                None => return,
            },
        };
        let mut forming = Forming::new(first, &options);
        // Requests that waited behind an earlier batch join first, in arrival order.
        let mut index = 0;
        while index < waiting.len() && forming.rows < options.max_batch_size {
            if forming.fits(&waiting[index], options.max_batch_size) {
                let item = waiting.remove(index).expect("index in bounds");
                forming.offer(item, options.max_batch_size);
            } else {
                index += 1;
            }
        }
        // Then those that have already arrived.
        while forming.rows < options.max_batch_size && waiting.len() < options.queue_capacity {
            let Ok(item) = items.try_recv() else { break };
            waiting.extend(forming.offer(item, options.max_batch_size));
        }
        // While every worker is busy, the batch gathers what comes.
        while forming.rows < options.max_batch_size
            && waiting.len() < options.queue_capacity
            && running.all_busy(pool.workers())
        {
            let item = tokio::select! {
                item = items.recv() => item,
                () = running.ended.notified() => continue,
                () = tokio::time::sleep_until(forming.closes.into()) => break,
            };
            let Some(item) = item else { break };
            waiting.extend(forming.offer(item, options.max_batch_size));
        }
        let ready = answer_expired(forming.items);
        if !ready.is_empty() {
            metrics
                .batch_rows
                .observe(ready.iter().map(|item| item.rows).sum::<u64>() as f64);
            let batch = RunningBatch::new(&running);
            let pool = pool.clone();
            tokio::spawn(async move {
                run_batch(pool, ready).await;
                drop(batch);
            });
        }
    }
}

/// Takes the waiting request of the highest priority level (the earliest of that level).
fn take_most_urgent(waiting: &mut VecDeque<Item>) -> Option<Item> {
    let index = (0..waiting.len()).min_by_key(|&index| waiting[index].spec.priority)?;
    waiting.remove(index)
}

/// Drops the requests whose client has gone, answers those already past their deadline, and
/// returns the rest.
fn answer_expired(batch: Vec<Item>) -> Vec<Item> {
    let now = Instant::now();
    let mut ready = Vec::with_capacity(batch.len());
    for item in batch {
        if item.reply.is_closed() {
            continue;
        }
        if item.spec.deadline <= now {
            let expired = CallError::ExpiredInQueue(item.spec.timeout);
            let _ = item.reply.send(Err(PoolError::Call(expired)));
            continue;
        }
        ready.push(item);
    }
    ready
}

/// Runs one batch on the workers and answers each of its requests.
async fn run_batch(pool: Arc<WorkerPool>, batch: Vec<Item>) {
    let rows: Vec<u64> = batch.iter().map(|item| item.rows).collect();
    // Run under the latest deadline: one request's short timeout must not stop the others' work.
    let latest = batch
        .iter()
        .max_by_key(|item| item.spec.deadline)
        .expect("a batch is never empty");
    // Headers belong to each request: a batch of several reaches the runtime without any.
    // The batch waits in the queue of its most urgent request's priority.
    let priority = batch
        .iter()
        .map(|item| item.spec.priority)
        .min()
        .expect("a batch is never empty");
    let spec = CallSpec {
        headers: Default::default(),
        priority,
        ..latest.spec.clone()
    };
    let merged = if batch.len() == 1 {
        None
    } else {
        let requests: Vec<&InferenceRequest> = batch.iter().map(|item| &item.request).collect();
        Some(merge::merge(&requests))
    };
    tracing::debug!(
        requests = batch.len(),
        rows = rows.iter().sum::<u64>(),
        "running a batch"
    );
    let mut batch = batch;
    let (request, spec) = match merged {
        Some(merged) => (merged, spec),
        None => (std::mem::take(&mut batch[0].request), batch[0].spec.clone()),
    };
    let dispatched = (Instant::now(), batch.len());
    for item in &batch {
        if let Some(slot) = &item.dispatched {
            let _ = slot.set(dispatched);
        }
    }
    let result = if batch.len() == 1 {
        // Alone, the request's call stops if its client goes away (dropping the call cancels it).
        tokio::select! {
            result = pool.infer(request, spec, None) => result,
            () = batch[0].reply.closed() => return,
        }
    } else {
        pool.infer(request, spec, None).await
    };
    if batch.len() == 1 {
        // Alone, the request gets the runtime's answer as it is.
        let item = batch.pop().expect("one item");
        let _ = item.reply.send(result);
        return;
    }
    match result {
        Ok(output) => match merge::split(&output.outputs, &rows) {
            Ok(answers) => {
                for (item, outputs) in batch.into_iter().zip(answers) {
                    let _ = item.reply.send(Ok(CallOutput {
                        outputs,
                        parameters: output.parameters.clone(),
                        timings: output.timings,
                    }));
                }
            }
            Err(reason) => {
                for item in batch {
                    let _ = item
                        .reply
                        .send(Err(PoolError::Call(CallError::InvalidOutput(
                            reason.clone(),
                        ))));
                }
            }
        },
        Err(error) => {
            let shared = Arc::new(error);
            for item in batch {
                let _ = item.reply.send(Err(PoolError::Batch(shared.clone())));
            }
        }
    }
}

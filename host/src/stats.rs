//! Per-model inference statistics: Triton's statistics extension, measured as requests run.
//!
//! Counters are atomics, updated without a lock; only the per-batch-size table takes a lock of
//! its model, once per execution, on a worker thread.

use crate::codec::InferenceRequest;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The most distinct batch sizes tracked per model; executions of other sizes past that are
/// counted in the totals only.
const MAX_BATCH_SIZES: usize = 1024;

/// Where one call's time went on its worker.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CallTimings {
    /// Making the request ready for the runtime.
    pub input: Duration,
    /// The runtime's `predict`.
    pub infer: Duration,
    /// Taking its outputs back and checking them.
    pub output: Duration,
}

impl CallTimings {
    /// The whole time on the worker.
    pub fn total(&self) -> Duration {
        self.input + self.infer + self.output
    }
}

/// A count and the nanoseconds it took in all.
#[derive(Debug, Default)]
struct DurationStat {
    count: AtomicU64,
    ns: AtomicU64,
}

impl DurationStat {
    fn record(&self, duration: Duration) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.ns.fetch_add(nanos(duration), Ordering::Relaxed);
    }

    fn read(&self) -> Measured {
        Measured {
            count: self.count.load(Ordering::Relaxed),
            ns: self.ns.load(Ordering::Relaxed),
        }
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// A count and its total duration in nanoseconds, as reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub(crate) struct Measured {
    pub count: u64,
    pub ns: u64,
}

impl Measured {
    fn add(&mut self, duration: Duration) {
        self.count += 1;
        self.ns = self.ns.saturating_add(nanos(duration));
    }
}

/// The time spent on executions of one batch size.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub(crate) struct BatchStats {
    pub batch_size: u64,
    pub compute_input: Measured,
    pub compute_infer: Measured,
    pub compute_output: Measured,
}

/// The statistics of one model version at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct StatsSnapshot {
    /// Milliseconds since the Unix epoch of the last successful request (0 for none).
    pub last_inference: u64,
    /// Inferences performed: rows for a model that batches, requests otherwise.
    pub inference_count: u64,
    /// Runs of the runtime (a batch of requests is one run).
    pub execution_count: u64,
    pub success: Measured,
    pub fail: Measured,
    pub queue: Measured,
    pub compute_input: Measured,
    pub compute_infer: Measured,
    pub compute_output: Measured,
    /// Answers from the response cache, and the time of their lookups.
    pub cache_hit: Measured,
    /// Lookups in the response cache that found nothing, and the time of each lookup and
    /// of storing the answer.
    pub cache_miss: Measured,
    /// Per batch size, smallest first.
    pub batch_stats: Vec<BatchStats>,
}

/// The live statistics of one model version.
#[derive(Debug, Default)]
pub(crate) struct ModelStats {
    /// Whether dimension 0 of the inputs is the batch (the model has `max_batch_size` > 0).
    batch_dimension: bool,
    last_inference: AtomicU64,
    inference_count: AtomicU64,
    execution_count: AtomicU64,
    success: DurationStat,
    fail: DurationStat,
    queue: DurationStat,
    compute_input: DurationStat,
    compute_infer: DurationStat,
    compute_output: DurationStat,
    cache_hit: DurationStat,
    cache_miss: DurationStat,
    batches: Mutex<BTreeMap<u64, BatchStats>>,
}

impl ModelStats {
    /// Statistics of a model whose inputs' dimension 0 is the batch when `batch_dimension`.
    pub(crate) fn new(batch_dimension: bool) -> Self {
        ModelStats {
            batch_dimension,
            ..ModelStats::default()
        }
    }

    /// The inferences a request holds: its rows when the model batches, else one.
    pub(crate) fn inferences(&self, request: &InferenceRequest) -> u64 {
        if !self.batch_dimension {
            return 1;
        }
        // An input without elements counts none, whatever its dimension 0 claims.
        request.inputs.first().map_or(1, |input| {
            if input.num_elements() == 0 {
                0
            } else {
                input.shape.first().copied().unwrap_or(1)
            }
        })
    }

    /// Records one successful run of the runtime over `batch_size` inferences (see
    /// [`ModelStats::inferences`]).
    pub(crate) fn record_execution(&self, batch_size: u64, timings: &CallTimings) {
        self.execution_count.fetch_add(1, Ordering::Relaxed);
        let mut batches = self
            .batches
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let tracked = batches.len();
        let entry = match batches.get_mut(&batch_size) {
            Some(entry) => entry,
            None if tracked < MAX_BATCH_SIZES => batches.entry(batch_size).or_insert(BatchStats {
                batch_size,
                ..BatchStats::default()
            }),
            None => return,
        };
        entry.compute_input.add(timings.input);
        entry.compute_infer.add(timings.infer);
        entry.compute_output.add(timings.output);
    }

    /// Records a request that succeeded after `total`, of which its run took `timings` (the
    /// rest it spent queued or batching).
    pub(crate) fn record_success(&self, inferences: u64, total: Duration, timings: &CallTimings) {
        self.inference_count
            .fetch_add(inferences, Ordering::Relaxed);
        self.success.record(total);
        self.queue.record(total.saturating_sub(timings.total()));
        self.compute_input.record(timings.input);
        self.compute_infer.record(timings.infer);
        self.compute_output.record(timings.output);
        self.touch();
    }

    /// Records a request answered from the response cache after `total`, of which its lookup
    /// took `lookup`: a success, queued for no time, and neither an inference nor an execution
    /// (as Triton counts them).
    pub(crate) fn record_cache_hit(&self, total: Duration, lookup: Duration) {
        self.success.record(total);
        self.queue.record(Duration::ZERO);
        self.cache_hit.record(lookup);
        self.touch();
    }

    /// Records a lookup in the response cache that found nothing, and how long it and storing
    /// the answer took.
    pub(crate) fn record_cache_miss(&self, took: Duration) {
        self.cache_miss.record(took);
    }

    /// Sets the time of the last inference to now.
    fn touch(&self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        self.last_inference.fetch_max(now, Ordering::Relaxed);
    }

    /// Records a request that failed after `total`.
    pub(crate) fn record_failure(&self, total: Duration) {
        self.fail.record(total);
    }

    /// The statistics as they are now.
    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            last_inference: self.last_inference.load(Ordering::Relaxed),
            inference_count: self.inference_count.load(Ordering::Relaxed),
            execution_count: self.execution_count.load(Ordering::Relaxed),
            success: self.success.read(),
            fail: self.fail.read(),
            queue: self.queue.read(),
            compute_input: self.compute_input.read(),
            compute_infer: self.compute_infer.read(),
            compute_output: self.compute_output.read(),
            cache_hit: self.cache_hit.read(),
            cache_miss: self.cache_miss.read(),
            batch_stats: self
                .batches
                .lock()
                .unwrap_or_else(|poison| poison.into_inner())
                .values()
                .copied()
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{DataType, Tensor};

    fn request(rows: u64) -> InferenceRequest {
        InferenceRequest {
            inputs: vec![Tensor {
                name: "x".into(),
                datatype: DataType::Fp32,
                shape: vec![rows, 2],
                data: vec![0; rows as usize * 8],
                parameters: vec![],
            }],
            ..InferenceRequest::default()
        }
    }

    #[test]
    fn counts_rows_only_for_batching_models() {
        assert_eq!(ModelStats::new(true).inferences(&request(3)), 3);
        assert_eq!(ModelStats::new(false).inferences(&request(3)), 1);
    }

    #[test]
    fn records_requests_and_executions() {
        let stats = ModelStats::new(true);
        let timings = CallTimings {
            input: Duration::from_nanos(10),
            infer: Duration::from_nanos(100),
            output: Duration::from_nanos(20),
        };
        stats.record_execution(stats.inferences(&request(4)), &timings);
        stats.record_success(2, Duration::from_nanos(1000), &timings);
        stats.record_success(2, Duration::from_nanos(500), &timings);
        stats.record_failure(Duration::from_nanos(7));
        let snapshot = stats.snapshot();
        assert_eq!(snapshot.inference_count, 4);
        assert_eq!(snapshot.execution_count, 1);
        assert_eq!(snapshot.success, Measured { count: 2, ns: 1500 });
        assert_eq!(snapshot.fail, Measured { count: 1, ns: 7 });
        assert_eq!(
            snapshot.queue,
            Measured {
                count: 2,
                ns: 1500 - 260
            }
        );
        assert_eq!(snapshot.compute_infer, Measured { count: 2, ns: 200 });
        assert_eq!(snapshot.batch_stats.len(), 1);
        assert_eq!(snapshot.batch_stats[0].batch_size, 4);
        assert_eq!(
            snapshot.batch_stats[0].compute_output,
            Measured { count: 1, ns: 20 }
        );
        assert!(snapshot.last_inference > 0);
    }

    #[test]
    fn cache_hits_are_successes_but_neither_inferences_nor_executions() {
        let stats = ModelStats::new(false);
        stats.record_cache_miss(Duration::from_nanos(30));
        stats.record_cache_hit(Duration::from_nanos(100), Duration::from_nanos(40));
        let snapshot = stats.snapshot();
        assert_eq!(snapshot.cache_hit, Measured { count: 1, ns: 40 });
        assert_eq!(snapshot.cache_miss, Measured { count: 1, ns: 30 });
        assert_eq!(snapshot.success, Measured { count: 1, ns: 100 });
        assert_eq!(snapshot.queue, Measured { count: 1, ns: 0 });
        assert_eq!((snapshot.inference_count, snapshot.execution_count), (0, 0));
    }
}

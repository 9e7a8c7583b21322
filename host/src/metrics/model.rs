//! Per-model series: MLServer's families (`model_infer_request_*` labelled `{model, version}`,
//! `batch_request_queue` labelled `{model_name, model_version}`, `parallel_request_queue`
//! without labels) and mlhost's own (`mlhost_*`, `{model_name, model_version}`), and
//! [`ModelMetrics`], one model version's handles into them, whose series appear when first
//! used.

use super::lazy::{LazyCounter, LazyHistogram};
use super::summary::{SummaryFamily, SummarySeries};
use super::{HistogramFamily, count_family, default_family, default_histogram, seconds_family};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Labels of MLServer's inference families.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InferLabels {
    model: String,
    version: String,
}

/// Labels of MLServer's model-context families and of mlhost's per-model ones.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    model_name: String,
    model_version: String,
}

impl ModelLabels {
    fn new(name: &str, version: Option<&str>) -> Self {
        ModelLabels {
            model_name: name.to_string(),
            model_version: version.unwrap_or_default().to_string(),
        }
    }
}

/// The per-model families, registered once.
pub(super) struct ModelFamilies {
    infer_success: Family<InferLabels, Counter>,
    infer_failure: Family<InferLabels, Counter>,
    infer_duration: Arc<SummaryFamily>,
    batch_queue: HistogramFamily<ModelLabels>,
    worker_queue_all: Histogram,
    batch_rows: HistogramFamily<ModelLabels>,
    worker_queue: HistogramFamily<ModelLabels>,
    queue_seconds: HistogramFamily<ModelLabels>,
    compute_seconds: HistogramFamily<ModelLabels>,
    recreated: Family<ModelLabels, Counter>,
    deadlines: Family<ModelLabels, Counter>,
    memory_limits: Family<ModelLabels, Counter>,
    load_seconds: HistogramFamily<ModelLabels>,
    cache_hits: Family<ModelLabels, Counter>,
    cache_misses: Family<ModelLabels, Counter>,
}

impl ModelFamilies {
    /// Creates the families and registers them in `registry`.
    pub(super) fn register(registry: &mut Registry) -> Self {
        let families = ModelFamilies {
            infer_success: Family::default(),
            infer_failure: Family::default(),
            infer_duration: Arc::new(SummaryFamily::new(
                "model_infer_request_duration",
                "Model infer request duration",
            )),
            batch_queue: default_family(),
            worker_queue_all: default_histogram(),
            batch_rows: count_family(),
            worker_queue: count_family(),
            queue_seconds: seconds_family(),
            compute_seconds: seconds_family(),
            recreated: Family::default(),
            deadlines: Family::default(),
            memory_limits: Family::default(),
            load_seconds: Family::new_with_constructor(super::load_histogram),
            cache_hits: Family::default(),
            cache_misses: Family::default(),
        };
        families.register_mlserver(registry);
        families.register_queues(registry);
        families.register_runs(registry);
        families
    }

    /// MLServer's families, with its names and help texts.
    fn register_mlserver(&self, registry: &mut Registry) {
        registry.register(
            "model_infer_request_success",
            "Model infer request success count",
            self.infer_success.clone(),
        );
        registry.register(
            "model_infer_request_failure",
            "Model infer request failure count",
            self.infer_failure.clone(),
        );
        registry.register(
            "batch_request_queue",
            "counter of request queue batch size",
            self.batch_queue.clone(),
        );
        registry.register(
            "parallel_request_queue",
            "counter of request queue size for workers",
            self.worker_queue_all.clone(),
        );
    }

    /// mlhost's queues.
    fn register_queues(&self, registry: &mut Registry) {
        registry.register(
            "mlhost_batch_rows",
            "Rows in each batch a model's batcher runs",
            self.batch_rows.clone(),
        );
        registry.register(
            "mlhost_worker_queue",
            "Calls waiting for a model's workers, seen by each arriving call, by model",
            self.worker_queue.clone(),
        );
        registry.register(
            "mlhost_model_queue_seconds",
            "Time a request waited for its run (batching included), by model",
            self.queue_seconds.clone(),
        );
    }

    /// The runs on the workers: their time, the instances they stopped, the loads.
    fn register_runs(&self, registry: &mut Registry) {
        registry.register(
            "mlhost_model_compute_seconds",
            "Time of a request's run on a worker (input, predict, output), by model",
            self.compute_seconds.clone(),
        );
        registry.register(
            "mlhost_instances_recreated",
            "Model instances re-created after a trap, deadline or memory limit",
            self.recreated.clone(),
        );
        registry.register(
            "mlhost_deadline_exceeded",
            "Calls stopped at their deadline, by model",
            self.deadlines.clone(),
        );
        registry.register(
            "mlhost_memory_limit_exceeded",
            "Calls stopped at their model's memory limit, by model",
            self.memory_limits.clone(),
        );
        registry.register(
            "mlhost_model_load_seconds",
            "Time to load a model version (compile, instantiate every worker, load)",
            self.load_seconds.clone(),
        );
        registry.register(
            "mlhost_cache_hits",
            "Requests answered from the response cache, by model",
            self.cache_hits.clone(),
        );
        registry.register(
            "mlhost_cache_misses",
            "Requests the response cache had no answer for, by model",
            self.cache_misses.clone(),
        );
    }

    /// The handles of one model version; none of its series exists until used.
    pub(super) fn resolve(&self, name: &str, version: Option<&str>) -> ModelMetrics {
        let infer = InferLabels {
            model: name.to_string(),
            version: version.unwrap_or_default().to_string(),
        };
        let labels = ModelLabels::new(name, version);
        let duration_labels = vec![
            ("model", infer.model.clone()),
            ("version", infer.version.clone()),
        ];
        let duration = self.infer_duration.clone();
        ModelMetrics {
            success: lazy_counter(&self.infer_success, &infer),
            failure: lazy_counter(&self.infer_failure, &infer),
            duration: LazySummary {
                series: OnceLock::new(),
                make: Box::new(move || duration.get_or_create(&duration_labels)),
            },
            batch_queue: lazy_histogram(&self.batch_queue, &labels),
            batch_rows: lazy_histogram(&self.batch_rows, &labels),
            worker_queue: lazy_histogram(&self.worker_queue, &labels)
                .also(self.worker_queue_all.clone()),
            queue_seconds: lazy_histogram(&self.queue_seconds, &labels),
            compute_seconds: lazy_histogram(&self.compute_seconds, &labels),
            recreated: lazy_counter(&self.recreated, &labels),
            deadlines: lazy_counter(&self.deadlines, &labels),
            memory_limits: lazy_counter(&self.memory_limits, &labels),
            cache_hits: lazy_counter(&self.cache_hits, &labels),
            cache_misses: lazy_counter(&self.cache_misses, &labels),
        }
    }

    /// Records how long a model version took to load.
    pub(super) fn loaded(&self, name: &str, version: Option<&str>, took: Duration) {
        self.load_seconds
            .get_or_create(&ModelLabels::new(name, version))
            .observe(took.as_secs_f64());
    }

    /// Writes the summary families (after the registry's).
    pub(super) fn encode_summaries(&self, text: &mut String) {
        self.infer_duration.encode(text);
    }
}

/// A counter of `family` with `labels`, made on first use.
fn lazy_counter<L>(family: &Family<L, Counter>, labels: &L) -> LazyCounter
where
    L: Clone + std::hash::Hash + Eq + Send + Sync + 'static,
{
    let (family, labels) = (family.clone(), labels.clone());
    LazyCounter::new(move || family.get_or_create(&labels).clone())
}

/// A histogram of `family` with `labels`, made on first use.
fn lazy_histogram<L>(family: &HistogramFamily<L>, labels: &L) -> LazyHistogram
where
    L: Clone + std::hash::Hash + Eq + Send + Sync + 'static,
{
    let (family, labels) = (family.clone(), labels.clone());
    LazyHistogram::new(move || family.get_or_create(&labels).clone())
}

/// A summary series made on first use.
pub(crate) struct LazySummary {
    series: OnceLock<Arc<SummarySeries>>,
    make: Box<dyn Fn() -> Arc<SummarySeries> + Send + Sync>,
}

impl LazySummary {
    /// Observes `value`.
    pub(crate) fn observe(&self, value: f64) {
        self.series.get_or_init(&self.make).observe(value);
    }
}

impl std::fmt::Debug for LazySummary {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("LazySummary")
            .finish_non_exhaustive()
    }
}

/// One model version's metric handles; each series appears in the exposition when first used.
#[derive(Debug)]
pub(crate) struct ModelMetrics {
    /// Requests answered (`model_infer_request_success`).
    pub success: LazyCounter,
    /// Requests that failed (`model_infer_request_failure`).
    pub failure: LazyCounter,
    /// Time from a request's arrival to its answer, success or failure
    /// (`model_infer_request_duration`).
    pub duration: LazySummary,
    /// Requests waiting in the batching queue, seen on arrival (`batch_request_queue`).
    pub batch_queue: LazyHistogram,
    /// Rows of each batch run.
    pub batch_rows: LazyHistogram,
    /// Calls waiting for a worker, seen on arrival (also `parallel_request_queue`).
    pub worker_queue: LazyHistogram,
    /// Time a request waited for its run.
    pub queue_seconds: LazyHistogram,
    /// Time of a request's run on a worker.
    pub compute_seconds: LazyHistogram,
    /// Instances re-created after a trap, deadline or memory limit.
    pub recreated: LazyCounter,
    /// Calls stopped at their deadline.
    pub deadlines: LazyCounter,
    /// Calls stopped at the memory limit.
    pub memory_limits: LazyCounter,
    /// Requests answered from the response cache.
    pub cache_hits: LazyCounter,
    /// Requests the response cache had no answer for.
    pub cache_misses: LazyCounter,
}

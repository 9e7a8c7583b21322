//! Per-model series: the families labelled by model name and version, and [`ModelMetrics`],
//! one model version's handles into them, resolved when it loads.

use super::{HistogramFamily, count_family, seconds_family};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::time::Duration;

/// Labels of per-model metrics.
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
    infer_success: Family<ModelLabels, Counter>,
    infer_failure: Family<ModelLabels, Counter>,
    batch_queue: HistogramFamily<ModelLabels>,
    batch_rows: HistogramFamily<ModelLabels>,
    worker_queue: HistogramFamily<ModelLabels>,
    queue_seconds: HistogramFamily<ModelLabels>,
    compute_seconds: HistogramFamily<ModelLabels>,
    recreated: Family<ModelLabels, Counter>,
    deadlines: Family<ModelLabels, Counter>,
    memory_limits: Family<ModelLabels, Counter>,
    load_seconds: HistogramFamily<ModelLabels>,
}

impl ModelFamilies {
    /// Creates the families and registers them in `registry`.
    pub(super) fn register(registry: &mut Registry) -> Self {
        let families = ModelFamilies {
            infer_success: Family::default(),
            infer_failure: Family::default(),
            batch_queue: count_family(),
            batch_rows: count_family(),
            worker_queue: count_family(),
            queue_seconds: seconds_family(),
            compute_seconds: seconds_family(),
            recreated: Family::default(),
            deadlines: Family::default(),
            memory_limits: Family::default(),
            load_seconds: seconds_family(),
        };
        families.register_requests(registry);
        families.register_queues(registry);
        families.register_runs(registry);
        families
    }

    /// The requests' outcomes.
    fn register_requests(&self, registry: &mut Registry) {
        registry.register(
            "model_infer_request_success",
            "Successful inference requests, by model",
            self.infer_success.clone(),
        );
        registry.register(
            "model_infer_request_failure",
            "Failed inference requests, by model",
            self.infer_failure.clone(),
        );
    }

    /// The batching and worker queues.
    fn register_queues(&self, registry: &mut Registry) {
        registry.register(
            "batch_request_queue",
            "Requests waiting in a model's adaptive batching queue, seen by each arriving request",
            self.batch_queue.clone(),
        );
        registry.register(
            "mlhost_batch_rows",
            "Rows in each batch a model's batcher runs",
            self.batch_rows.clone(),
        );
        registry.register(
            "parallel_request_queue",
            "Calls waiting for a model's workers, seen by each arriving call",
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
    }

    /// The handles of one model version.
    pub(super) fn resolve(&self, name: &str, version: Option<&str>) -> ModelMetrics {
        let labels = ModelLabels::new(name, version);
        ModelMetrics {
            success: self.infer_success.get_or_create(&labels).clone(),
            failure: self.infer_failure.get_or_create(&labels).clone(),
            batch_queue: self.batch_queue.get_or_create(&labels).clone(),
            batch_rows: self.batch_rows.get_or_create(&labels).clone(),
            worker_queue: self.worker_queue.get_or_create(&labels).clone(),
            queue_seconds: self.queue_seconds.get_or_create(&labels).clone(),
            compute_seconds: self.compute_seconds.get_or_create(&labels).clone(),
            recreated: self.recreated.get_or_create(&labels).clone(),
            deadlines: self.deadlines.get_or_create(&labels).clone(),
            memory_limits: self.memory_limits.get_or_create(&labels).clone(),
        }
    }

    /// Records how long a model version took to load.
    pub(super) fn loaded(&self, name: &str, version: Option<&str>, took: Duration) {
        self.load_seconds
            .get_or_create(&ModelLabels::new(name, version))
            .observe(took.as_secs_f64());
    }
}

/// One model version's metric handles: cheap clones of the registered series.
#[derive(Clone, Debug)]
pub(crate) struct ModelMetrics {
    /// Requests answered.
    pub success: Counter,
    /// Requests that failed.
    pub failure: Counter,
    /// Requests waiting in the batching queue, seen on arrival.
    pub batch_queue: Histogram,
    /// Rows of each batch run.
    pub batch_rows: Histogram,
    /// Calls waiting for a worker, seen on arrival.
    pub worker_queue: Histogram,
    /// Time a request waited for its run.
    pub queue_seconds: Histogram,
    /// Time of a request's run on a worker.
    pub compute_seconds: Histogram,
    /// Instances re-created after a trap, deadline or memory limit.
    pub recreated: Counter,
    /// Calls stopped at their deadline.
    pub deadlines: Counter,
    /// Calls stopped at the memory limit.
    pub memory_limits: Counter,
}

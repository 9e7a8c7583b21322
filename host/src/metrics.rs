//! Prometheus metrics (`prometheus-client`), served on their own port (`metrics_port`, at
//! `metrics_endpoint`).
//!
//! Names follow MLServer where it has one (`model_infer_request_success`,
//! `batch_request_queue`, `parallel_request_queue`, `rest_server_requests`,
//! `grpc_server_handled`, ...); mlhost's own start with `mlhost_`. A model's metric handles are
//! resolved once, when it loads ([`ModelMetrics`]): the hot path only bumps atomics or observes
//! that model's own histograms, never a registry-wide lock.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Labels of per-model metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabels {
    pub model_name: String,
    pub model_version: String,
}

/// Labels of REST request metrics: the route template (not the raw path, which would make a
/// series per model name typed by a client) and the answer's status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RestLabels {
    pub method: String,
    pub path: String,
    pub status_code: String,
}

/// Labels of in-flight REST requests.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RestRouteLabels {
    pub method: String,
    pub path: String,
}

/// Labels of gRPC calls, as py-grpc-prometheus (MLServer's) names them.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrpcLabels {
    pub grpc_type: String,
    pub grpc_service: String,
    pub grpc_method: String,
}

/// Labels of finished gRPC calls.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrpcCodeLabels {
    pub grpc_type: String,
    pub grpc_service: String,
    pub grpc_method: String,
    pub grpc_code: String,
}

/// Labels of the models-by-state gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn seconds_histogram() -> Histogram {
    // 50 µs to about 100 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 22))
}

fn count_histogram() -> Histogram {
    // 1 to 32768.
    Histogram::new(exponential_buckets(1.0, 2.0, 16))
}

/// Every metric of the server, registered once.
pub struct Metrics {
    registry: Registry,
    rest_requests: Family<RestLabels, Counter>,
    rest_duration: HistogramFamily<RestLabels>,
    rest_in_progress: Family<RestRouteLabels, Gauge>,
    grpc_started: Family<GrpcLabels, Counter>,
    grpc_handled: Family<GrpcCodeLabels, Counter>,
    grpc_duration: HistogramFamily<GrpcLabels>,
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
    models: Family<StateLabels, Gauge>,
    /// REST routes' series by path template (then method), filled before serving.
    rest_routes: HashMap<String, Vec<Arc<RouteSeries>>>,
    /// gRPC methods' series by method name, filled before serving.
    grpc_methods: HashMap<String, Arc<GrpcSeries>>,
}

impl Metrics {
    /// Registers every metric; REST ones are named with `rest_prefix` (MLServer's
    /// `metrics_rest_server_prefix`, `rest_server` by default).
    pub fn new(rest_prefix: &str) -> Self {
        let mut registry = Registry::default();
        let seconds = seconds_histogram as fn() -> Histogram;
        let counts = count_histogram as fn() -> Histogram;
        let metrics = Metrics {
            rest_requests: Family::default(),
            rest_duration: Family::new_with_constructor(seconds),
            rest_in_progress: Family::default(),
            grpc_started: Family::default(),
            grpc_handled: Family::default(),
            grpc_duration: Family::new_with_constructor(seconds),
            infer_success: Family::default(),
            infer_failure: Family::default(),
            batch_queue: Family::new_with_constructor(counts),
            batch_rows: Family::new_with_constructor(counts),
            worker_queue: Family::new_with_constructor(counts),
            queue_seconds: Family::new_with_constructor(seconds),
            compute_seconds: Family::new_with_constructor(seconds),
            recreated: Family::default(),
            deadlines: Family::default(),
            memory_limits: Family::default(),
            load_seconds: Family::new_with_constructor(seconds),
            models: Family::default(),
            registry: Registry::default(),
            rest_routes: HashMap::new(),
            grpc_methods: HashMap::new(),
        };
        let m = &metrics;
        registry.register(
            format!("{rest_prefix}_requests"),
            "REST requests, by method, route and status code",
            m.rest_requests.clone(),
        );
        registry.register(
            format!("{rest_prefix}_requests_duration_seconds"),
            "Latency of REST requests, by method, route and status code",
            m.rest_duration.clone(),
        );
        registry.register(
            format!("{rest_prefix}_requests_in_progress"),
            "REST requests being answered, by method and route",
            m.rest_in_progress.clone(),
        );
        registry.register(
            "grpc_server_started",
            "gRPC calls started, by method",
            m.grpc_started.clone(),
        );
        registry.register(
            "grpc_server_handled",
            "gRPC calls answered, by method and status code",
            m.grpc_handled.clone(),
        );
        registry.register(
            "grpc_server_handling_seconds",
            "Time to answer a gRPC call (to its response headers), by method",
            m.grpc_duration.clone(),
        );
        registry.register(
            "model_infer_request_success",
            "Successful inference requests, by model",
            m.infer_success.clone(),
        );
        registry.register(
            "model_infer_request_failure",
            "Failed inference requests, by model",
            m.infer_failure.clone(),
        );
        registry.register(
            "batch_request_queue",
            "Requests waiting in a model's adaptive batching queue, seen by each arriving request",
            m.batch_queue.clone(),
        );
        registry.register(
            "mlhost_batch_rows",
            "Rows in each batch a model's batcher runs",
            m.batch_rows.clone(),
        );
        registry.register(
            "parallel_request_queue",
            "Calls waiting for a model's workers, seen by each arriving call",
            m.worker_queue.clone(),
        );
        registry.register(
            "mlhost_model_queue_seconds",
            "Time a request waited for its run (batching included), by model",
            m.queue_seconds.clone(),
        );
        registry.register(
            "mlhost_model_compute_seconds",
            "Time of a request's run on a worker (input, predict, output), by model",
            m.compute_seconds.clone(),
        );
        registry.register(
            "mlhost_instances_recreated",
            "Model instances re-created after a trap, deadline or memory limit",
            m.recreated.clone(),
        );
        registry.register(
            "mlhost_deadline_exceeded",
            "Calls stopped at their deadline, by model",
            m.deadlines.clone(),
        );
        registry.register(
            "mlhost_memory_limit_exceeded",
            "Calls stopped at their model's memory limit, by model",
            m.memory_limits.clone(),
        );
        registry.register(
            "mlhost_model_load_seconds",
            "Time to load a model version (compile, instantiate every worker, load)",
            m.load_seconds.clone(),
        );
        registry.register(
            "mlhost_models",
            "Model versions known to the repository, by state",
            m.models.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// The metric handles of one model version, resolved once.
    pub fn model(&self, name: &str, version: Option<&str>) -> ModelMetrics {
        let labels = ModelLabels {
            model_name: name.to_string(),
            model_version: version.unwrap_or_default().to_string(),
        };
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
    pub fn model_loaded(&self, name: &str, version: Option<&str>, took: Duration) {
        let labels = ModelLabels {
            model_name: name.to_string(),
            model_version: version.unwrap_or_default().to_string(),
        };
        self.load_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// Resolves ahead the series of REST `routes` (method, path template) for the statuses
    /// they commonly answer, so that those requests bump handles without a family's lock.
    pub fn resolve_rest_routes<'a>(
        &mut self,
        routes: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) {
        for (method, path) in routes {
            let route = RestRouteLabels {
                method: method.to_string(),
                path: path.to_string(),
            };
            let statuses = COMMON_STATUSES
                .iter()
                .map(|&status| {
                    let labels = RestLabels {
                        method: route.method.clone(),
                        path: route.path.clone(),
                        status_code: status.to_string(),
                    };
                    (
                        status,
                        self.rest_requests.get_or_create(&labels).clone(),
                        self.rest_duration.get_or_create(&labels).clone(),
                    )
                })
                .collect();
            let path = route.path.clone();
            let series = RouteSeries {
                in_progress: self.rest_in_progress.get_or_create(&route).clone(),
                statuses,
                route,
            };
            self.rest_routes
                .entry(path)
                .or_default()
                .push(Arc::new(series));
        }
    }

    /// Marks a REST request as started: it counts as in progress until the returned guard is
    /// given to [`Metrics::rest_finished`] or dropped (a client that went away).
    pub fn rest_started(&self, method: &str, path: &str) -> InFlight {
        // A lookup in a map that never changes: no lock. Unknown routes take the slow path.
        let series = self
            .rest_routes
            .get(path)
            .and_then(|series| series.iter().find(|series| series.route.method == method))
            .cloned()
            .ok_or_else(|| RestRouteLabels {
                method: method.to_string(),
                path: path.to_string(),
            });
        let gauge = match &series {
            Ok(series) => series.in_progress.clone(),
            Err(route) => self.rest_in_progress.get_or_create(route).clone(),
        };
        gauge.inc();
        InFlight { gauge, series }
    }

    /// Records a REST request answered with `status` after `took`.
    pub fn rest_finished(&self, in_flight: InFlight, status: u16, took: Duration) {
        let resolved = in_flight.series.as_ref().ok().and_then(|series| {
            series
                .statuses
                .iter()
                .find(|(known, _, _)| *known == status)
        });
        if let Some((_, requests, duration)) = resolved {
            requests.inc();
            duration.observe(took.as_secs_f64());
            return;
        }
        let route = match &in_flight.series {
            Ok(series) => &series.route,
            Err(route) => route,
        };
        let labels = RestLabels {
            method: route.method.clone(),
            path: route.path.clone(),
            status_code: status.to_string(),
        };
        self.rest_requests.get_or_create(&labels).inc();
        self.rest_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// The series of a gRPC method, resolved once per method name (a map that never changes
    /// after start-up for the service's methods; others take a family's lock).
    pub fn grpc_method(&self, labels: GrpcLabels) -> Arc<GrpcSeries> {
        if let Some(series) = self.grpc_methods.get(&labels.grpc_method)
            && series.labels == labels
        {
            return series.clone();
        }
        Arc::new(self.grpc_series(labels))
    }

    /// Resolves ahead the series of the service's gRPC methods.
    pub fn resolve_grpc_methods<'a>(
        &mut self,
        service: &str,
        methods: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) {
        for (method, grpc_type) in methods {
            let labels = GrpcLabels {
                grpc_type: grpc_type.to_string(),
                grpc_service: service.to_string(),
                grpc_method: method.to_string(),
            };
            let series = self.grpc_series(labels);
            self.grpc_methods
                .insert(method.to_string(), Arc::new(series));
        }
    }

    fn grpc_series(&self, labels: GrpcLabels) -> GrpcSeries {
        let codes = COMMON_GRPC_CODES
            .iter()
            .map(|&code| (code, self.grpc_handled_counter(&labels, code)))
            .collect();
        GrpcSeries {
            started: self.grpc_started.get_or_create(&labels).clone(),
            duration: self.grpc_duration.get_or_create(&labels).clone(),
            codes,
            labels,
        }
    }

    fn grpc_handled_counter(&self, labels: &GrpcLabels, code: &str) -> Counter {
        self.grpc_handled
            .get_or_create(&GrpcCodeLabels {
                grpc_type: labels.grpc_type.clone(),
                grpc_service: labels.grpc_service.clone(),
                grpc_method: labels.grpc_method.clone(),
                grpc_code: code.to_string(),
            })
            .clone()
    }

    /// Records a gRPC call started.
    pub fn grpc_started(&self, series: &GrpcSeries) {
        series.started.inc();
    }

    /// Records a gRPC call answered with `code` (gRPC's name of it, e.g. `OK`) after `took`.
    pub fn grpc_handled(&self, series: &GrpcSeries, code: &str, took: Duration) {
        series.duration.observe(took.as_secs_f64());
        match series.codes.iter().find(|(known, _)| *known == code) {
            Some((_, counter)) => {
                counter.inc();
            }
            None => {
                self.grpc_handled_counter(&series.labels, code).inc();
            }
        }
    }

    /// Sets the models-by-state gauge from the repository's counts.
    pub fn set_models_by_state(&self, counts: &[(&str, i64)]) {
        for (state, count) in counts {
            self.models
                .get_or_create(&StateLabels {
                    state: state.to_string(),
                })
                .set(*count);
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

/// The statuses whose REST series are resolved ahead.
const COMMON_STATUSES: [u16; 8] = [200, 400, 404, 413, 422, 500, 503, 504];

/// The gRPC codes whose series are resolved ahead.
const COMMON_GRPC_CODES: [&str; 7] = [
    "OK",
    "INVALID_ARGUMENT",
    "NOT_FOUND",
    "UNAVAILABLE",
    "INTERNAL",
    "DEADLINE_EXCEEDED",
    "RESOURCE_EXHAUSTED",
];

/// A REST route's series, resolved ahead.
struct RouteSeries {
    route: RestRouteLabels,
    in_progress: Gauge,
    statuses: Vec<(u16, Counter, Histogram)>,
}

/// A gRPC method's series, resolved once.
pub struct GrpcSeries {
    labels: GrpcLabels,
    started: Counter,
    duration: Histogram,
    codes: Vec<(&'static str, Counter)>,
}

/// A REST request in progress: leaves the in-progress gauge when dropped.
pub struct InFlight {
    gauge: Gauge,
    series: Result<Arc<RouteSeries>, RestRouteLabels>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// One model version's metric handles: cheap clones of the registered series.
#[derive(Clone, Debug)]
pub struct ModelMetrics {
    pub success: Counter,
    pub failure: Counter,
    /// Requests waiting in the batching queue, seen on arrival.
    pub batch_queue: Histogram,
    /// Rows of each batch run.
    pub batch_rows: Histogram,
    /// Calls waiting for a worker, seen on arrival.
    pub worker_queue: Histogram,
    pub queue_seconds: Histogram,
    pub compute_seconds: Histogram,
    pub recreated: Counter,
    pub deadlines: Counter,
    pub memory_limits: Counter,
}

impl ModelMetrics {
    /// Handles registered nowhere, for code that runs without a server (benchmarks, tests).
    pub fn detached() -> Self {
        ModelMetrics {
            success: Counter::default(),
            failure: Counter::default(),
            batch_queue: count_histogram(),
            batch_rows: count_histogram(),
            worker_queue: count_histogram(),
            queue_seconds: seconds_histogram(),
            compute_seconds: seconds_histogram(),
            recreated: Counter::default(),
            deadlines: Counter::default(),
            memory_limits: Counter::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_handles_update_the_registered_series() {
        let metrics = Metrics::new("rest_server");
        let model = metrics.model("iris", Some("1"));
        model.success.inc();
        model.success.inc();
        model.queue_seconds.observe(0.001);
        let route = metrics.rest_started("POST", "/v2/models/{model}/infer");
        metrics.rest_finished(route, 200, Duration::from_millis(2));
        metrics.set_models_by_state(&[("READY", 1)]);
        let text = metrics.encode();
        assert!(
            text.contains(
                r#"model_infer_request_success_total{model_name="iris",model_version="1"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"rest_server_requests_total{method="POST",path="/v2/models/{model}/infer",status_code="200"} 1"#
        ));
        assert!(text.contains(r#"mlhost_models{state="READY"} 1"#));
        assert!(text.contains("mlhost_model_queue_seconds_count{"));
        assert!(text.ends_with("# EOF\n"));
    }
}

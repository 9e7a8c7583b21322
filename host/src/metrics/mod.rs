//! Prometheus metrics (`prometheus-client`), served on their own port (`metrics_port`, at
//! `metrics_endpoint`).
//!
//! MLServer 1.7.1's families keep its exact names, types and labels, so that its users'
//! dashboards keep working: `model_infer_request_success` / `_failure` / `_duration`
//! (`{model, version}`), `batch_request_queue` (`{model_name, model_version}`),
//! `parallel_request_queue`, starlette_exporter's `rest_server_requests`,
//! `rest_server_request_duration_seconds` and `rest_server_requests_in_progress`, and
//! py-grpc-prometheus' `grpc_server_*`. mlhost's own families start with `mlhost_`.
//!
//! Series are created when first used (an idle server's page stays small), but a model's and a
//! route's handles are kept once created ([`ModelMetrics`], the routes' slots): the hot path
//! only bumps atomics or observes a histogram it holds, never a registry-wide lock.
//!
//! This module holds the registry and the exposition ([`exposition`]: Prometheus text 0.0.4
//! or OpenMetrics); each group of series lives in its own module: `model` (per model version),
//! `rest` and `grpc` (the servers' requests), `repository` (models by state), `lazy` (series
//! made on first use), `summary` (the one summary MLServer exports), `messages` (gRPC messages
//! counted in a body).

mod cache;
pub(crate) mod exposition;
mod grpc;
mod lazy;
mod messages;
mod model;
mod pipeline;
mod repository;
mod rest;
mod summary;

pub(crate) use cache::CacheGauges;
pub(crate) use exposition::Format;
pub(crate) use grpc::{GrpcLabels, GrpcSeries};
pub(crate) use messages::CountMessages;
pub(crate) use model::ModelMetrics;
pub(crate) use pipeline::StepMetrics;
pub(crate) use rest::InFlight;

use grpc::GrpcMetrics;
use model::ModelFamilies;
use pipeline::StepFamilies;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use repository::RepositoryFamilies;
use rest::RestMetrics;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

/// The `app_name` label of the REST families: MLServer sets it to `mlserver` whatever the
/// server's name, and dashboards filter on it.
pub(crate) const APP_NAME: &str = "mlserver";

/// A family of histograms that share one set of buckets.
type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The Python client's default buckets, which every MLServer histogram uses.
const DEFAULT_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// A histogram with MLServer's (the Python client's default) buckets.
fn default_histogram() -> Histogram {
    Histogram::new(DEFAULT_BUCKETS)
}

/// Buckets of durations: 50 µs to about 100 s.
fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 22))
}

/// Buckets of load times: 10 ms to about 80 s.
fn load_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 14))
}

/// Buckets of counts: 1 to 32768.
fn count_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 16))
}

/// A family of histograms with MLServer's buckets.
fn default_family<L: Clone + Hash + Eq>() -> HistogramFamily<L> {
    Family::new_with_constructor(default_histogram as fn() -> Histogram)
}

/// A family of duration histograms.
fn seconds_family<L: Clone + Hash + Eq>() -> HistogramFamily<L> {
    Family::new_with_constructor(seconds_histogram as fn() -> Histogram)
}

/// A family of count histograms.
fn count_family<L: Clone + Hash + Eq>() -> HistogramFamily<L> {
    Family::new_with_constructor(count_histogram as fn() -> Histogram)
}

/// Every metric of the server, registered once.
pub(crate) struct Metrics {
    registry: Registry,
    rest: RestMetrics,
    grpc: GrpcMetrics,
    model: ModelFamilies,
    steps: StepFamilies,
    repository: RepositoryFamilies,
    cache: CacheGauges,
}

impl Metrics {
    /// Registers every metric; REST ones are named with `rest_prefix` (MLServer's
    /// `metrics_rest_server_prefix`, `rest_server` by default).
    pub(crate) fn new(rest_prefix: &str) -> Self {
        // Registration order is the exposition's order: REST, gRPC, models, repository.
        let mut registry = Registry::default();
        let rest = RestMetrics::register(&mut registry, rest_prefix);
        let grpc = GrpcMetrics::register(&mut registry);
        let model = ModelFamilies::register(&mut registry);
        let steps = StepFamilies::register(&mut registry);
        let repository = RepositoryFamilies::register(&mut registry);
        let cache = CacheGauges::register(&mut registry);
        Metrics {
            registry,
            rest,
            grpc,
            model,
            steps,
            repository,
            cache,
        }
    }

    /// The response cache's series (server-wide).
    pub(crate) fn cache(&self) -> CacheGauges {
        self.cache.clone()
    }

    /// The metric handles of one model version; its series appear when first used.
    pub(crate) fn model(&self, name: &str, version: Option<&str>) -> ModelMetrics {
        self.model.resolve(name, version)
    }

    /// The series of each step of pipeline `name` at `version`; each appears when first used.
    pub(crate) fn pipeline_steps(
        &self,
        name: &str,
        version: Option<&str>,
        pipeline: &crate::pipeline::Pipeline,
    ) -> StepMetrics {
        self.steps.resolve(name, version, pipeline)
    }

    /// Records how long a model version took to load.
    pub(crate) fn model_loaded(&self, name: &str, version: Option<&str>, took: Duration) {
        self.model.loaded(name, version, took);
    }

    /// Makes room ahead for the handles of REST `routes` (method, path template), so that
    /// their requests bump handles without a family's lock; each series appears when first
    /// used. Requests no route matched are not counted (as MLServer's exporter filters them).
    pub(crate) fn resolve_rest_routes<'a>(
        &mut self,
        routes: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) {
        self.rest.resolve_routes(routes);
    }

    /// Marks a REST request to `path` (its route template) as started: it counts as in
    /// progress until the returned guard is given to [`Metrics::rest_finished`] or dropped (a
    /// client that went away).
    pub(crate) fn rest_started(&self, method: &str, path: &str) -> InFlight {
        self.rest.started(method, path)
    }

    /// Records a REST request answered with `status` after `took`.
    pub(crate) fn rest_finished(&self, in_flight: InFlight, status: u16, took: Duration) {
        self.rest.finished(in_flight, status, took);
    }

    /// The series of a gRPC method, kept once per method name (a map that never changes
    /// after start-up for the service's methods; others take a family's lock).
    pub(crate) fn grpc_method(&self, labels: GrpcLabels) -> Arc<GrpcSeries> {
        self.grpc.method(labels)
    }

    /// The series of a gRPC method resolved ahead (see [`Metrics::resolve_grpc_methods`]).
    pub(crate) fn grpc_resolved(&self, service: &str, method: &str) -> Option<Arc<GrpcSeries>> {
        self.grpc.resolved(service, method)
    }

    /// Makes room ahead for the handles of the service's gRPC methods.
    pub(crate) fn resolve_grpc_methods<'a>(
        &mut self,
        service: &str,
        methods: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) {
        self.grpc.resolve_methods(service, methods);
    }

    /// Records a gRPC call started.
    pub(crate) fn grpc_started(&self, series: &GrpcSeries) {
        series.started();
    }

    /// Records a gRPC call answered with `code` (gRPC's name of it, e.g. `OK`) after `took`.
    pub(crate) fn grpc_handled(&self, series: &GrpcSeries, code: &str, took: Duration) {
        self.grpc.handled(series, code, took);
    }

    /// Sets the models-by-state gauge from the repository's counts.
    pub(crate) fn set_models_by_state(&self, counts: &[(&str, i64)]) {
        self.repository.set_models_by_state(counts);
    }

    /// The exposition of every metric in `format`.
    pub(crate) fn encode(&self, format: Format) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode_registry(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        self.model.encode_summaries(&mut text);
        exposition::finish(text, format)
    }
}

#[cfg(test)]
mod tests;

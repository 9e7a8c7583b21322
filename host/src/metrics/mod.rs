//! Prometheus metrics (`prometheus-client`), served on their own port (`metrics_port`, at
//! `metrics_endpoint`).
//!
//! Names follow MLServer where it has one (`model_infer_request_success`,
//! `batch_request_queue`, `parallel_request_queue`, `rest_server_requests`,
//! `grpc_server_handled`, ...); mlhost's own start with `mlhost_`. A model's metric handles are
//! resolved once, when it loads ([`ModelMetrics`]): the hot path only bumps atomics or observes
//! that model's own histograms, never a registry-wide lock.
//!
//! This module holds the registry and the text encoding; each group of series lives in its own
//! module: `model` (per model version), `rest` and `grpc` (the servers' requests, with their
//! handles resolved ahead), `repository` (models by state).

mod grpc;
mod model;
mod repository;
mod rest;

pub(crate) use grpc::{GrpcLabels, GrpcSeries};
pub(crate) use model::ModelMetrics;
pub(crate) use rest::InFlight;

use grpc::GrpcMetrics;
use model::ModelFamilies;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use repository::RepositoryFamilies;
use rest::RestMetrics;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

/// A family of histograms that share one set of buckets.
type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Buckets of durations: 50 µs to about 100 s.
fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 22))
}

/// Buckets of counts: 1 to 32768.
fn count_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 16))
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
    repository: RepositoryFamilies,
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
        let repository = RepositoryFamilies::register(&mut registry);
        Metrics {
            registry,
            rest,
            grpc,
            model,
            repository,
        }
    }

    /// The metric handles of one model version, resolved once.
    pub(crate) fn model(&self, name: &str, version: Option<&str>) -> ModelMetrics {
        self.model.resolve(name, version)
    }

    /// Records how long a model version took to load.
    pub(crate) fn model_loaded(&self, name: &str, version: Option<&str>, took: Duration) {
        self.model.loaded(name, version, took);
    }

    /// Resolves ahead the series of REST `routes` (method, path template) for the statuses
    /// they commonly answer, so that those requests bump handles without a family's lock.
    pub(crate) fn resolve_rest_routes<'a>(
        &mut self,
        routes: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) {
        self.rest.resolve_routes(routes);
    }

    /// Marks a REST request as started: it counts as in progress until the returned guard is
    /// given to [`Metrics::rest_finished`] or dropped (a client that went away).
    pub(crate) fn rest_started(&self, method: &str, path: &str) -> InFlight {
        self.rest.started(method, path)
    }

    /// Records a REST request answered with `status` after `took`.
    pub(crate) fn rest_finished(&self, in_flight: InFlight, status: u16, took: Duration) {
        self.rest.finished(in_flight, status, took);
    }

    /// The series of a gRPC method, resolved once per method name (a map that never changes
    /// after start-up for the service's methods; others take a family's lock).
    pub(crate) fn grpc_method(&self, labels: GrpcLabels) -> Arc<GrpcSeries> {
        self.grpc.method(labels)
    }

    /// Resolves ahead the series of the service's gRPC methods.
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

    /// The Prometheus text exposition of every metric.
    pub(crate) fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
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

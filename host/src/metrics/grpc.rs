//! The gRPC server's series, named as py-grpc-prometheus (MLServer's) names them: calls
//! started, calls handled by status code, and their latency; with the service's methods'
//! handles resolved ahead.

use super::{HistogramFamily, seconds_family};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

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

/// Labels of gRPC calls, as py-grpc-prometheus (MLServer's) names them.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct GrpcLabels {
    /// `unary`, `server_stream`, ...
    pub grpc_type: String,
    /// The service, e.g. `inference.GRPCInferenceService`.
    pub grpc_service: String,
    /// The method, e.g. `ModelInfer`.
    pub grpc_method: String,
}

/// Labels of finished gRPC calls.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrpcCodeLabels {
    grpc_type: String,
    grpc_service: String,
    grpc_method: String,
    grpc_code: String,
}

/// A gRPC method's series, resolved once.
pub(crate) struct GrpcSeries {
    labels: GrpcLabels,
    started: Counter,
    duration: Histogram,
    codes: Vec<(&'static str, Counter)>,
}

impl GrpcSeries {
    /// Records a call started.
    pub(super) fn started(&self) {
        self.started.inc();
    }
}

/// The gRPC families and the service's methods' series resolved ahead.
pub(super) struct GrpcMetrics {
    started: Family<GrpcLabels, Counter>,
    handled: Family<GrpcCodeLabels, Counter>,
    duration: HistogramFamily<GrpcLabels>,
    /// Methods' series by method name, filled before serving.
    methods: HashMap<String, Arc<GrpcSeries>>,
}

impl GrpcMetrics {
    /// Creates the families and registers them in `registry`.
    pub(super) fn register(registry: &mut Registry) -> Self {
        let grpc = GrpcMetrics {
            started: Family::default(),
            handled: Family::default(),
            duration: seconds_family(),
            methods: HashMap::new(),
        };
        registry.register(
            "grpc_server_started",
            "gRPC calls started, by method",
            grpc.started.clone(),
        );
        registry.register(
            "grpc_server_handled",
            "gRPC calls answered, by method and status code",
            grpc.handled.clone(),
        );
        registry.register(
            "grpc_server_handling_seconds",
            "Time to answer a gRPC call (to its response headers), by method",
            grpc.duration.clone(),
        );
        grpc
    }

    /// The series of a method: resolved ahead when it is one of the service's.
    pub(super) fn method(&self, labels: GrpcLabels) -> Arc<GrpcSeries> {
        if let Some(series) = self.methods.get(&labels.grpc_method)
            && series.labels == labels
        {
            return series.clone();
        }
        Arc::new(self.series(labels))
    }

    /// Resolves ahead the series of `service`'s `methods` (name, gRPC type).
    pub(super) fn resolve_methods<'a>(
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
            let series = self.series(labels);
            self.methods.insert(method.to_string(), Arc::new(series));
        }
    }

    fn series(&self, labels: GrpcLabels) -> GrpcSeries {
        let codes = COMMON_GRPC_CODES
            .iter()
            .map(|&code| (code, self.handled_counter(&labels, code)))
            .collect();
        GrpcSeries {
            started: self.started.get_or_create(&labels).clone(),
            duration: self.duration.get_or_create(&labels).clone(),
            codes,
            labels,
        }
    }

    fn handled_counter(&self, labels: &GrpcLabels, code: &str) -> Counter {
        self.handled
            .get_or_create(&GrpcCodeLabels {
                grpc_type: labels.grpc_type.clone(),
                grpc_service: labels.grpc_service.clone(),
                grpc_method: labels.grpc_method.clone(),
                grpc_code: code.to_string(),
            })
            .clone()
    }

    /// Records a call answered with `code` after `took`.
    pub(super) fn handled(&self, series: &GrpcSeries, code: &str, took: Duration) {
        series.duration.observe(took.as_secs_f64());
        match series.codes.iter().find(|(known, _)| *known == code) {
            Some((_, counter)) => {
                counter.inc();
            }
            None => {
                self.handled_counter(&series.labels, code).inc();
            }
        }
    }
}

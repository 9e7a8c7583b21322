//! The gRPC server's series, as py-grpc-prometheus (MLServer's) names them: calls started,
//! calls handled by status code, their latency, and the messages a streaming call received
//! and sent. Each of the service's methods has slots for its handles, filled when first used.

use super::{HistogramFamily, default_family};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The gRPC codes with a slot of their own on each method.
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
    /// `UNARY`, `BIDI_STREAMING`, ... (py-grpc-prometheus' names).
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

/// The families a method's series live in.
#[derive(Clone)]
struct Families {
    started: Family<GrpcLabels, Counter>,
    handled: Family<GrpcCodeLabels, Counter>,
    duration: HistogramFamily<GrpcLabels>,
    received: Family<GrpcLabels, Counter>,
    sent: Family<GrpcLabels, Counter>,
}

impl Families {
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
}

/// A gRPC method's slots, filled when first used.
pub(crate) struct GrpcSeries {
    labels: GrpcLabels,
    families: Families,
    started: OnceLock<Counter>,
    duration: OnceLock<Histogram>,
    received: OnceLock<Counter>,
    sent: OnceLock<Counter>,
    codes: Vec<(&'static str, OnceLock<Counter>)>,
}

impl GrpcSeries {
    fn new(labels: GrpcLabels, families: Families) -> Self {
        GrpcSeries {
            labels,
            families,
            started: OnceLock::new(),
            duration: OnceLock::new(),
            received: OnceLock::new(),
            sent: OnceLock::new(),
            codes: COMMON_GRPC_CODES
                .iter()
                .map(|&code| (code, OnceLock::new()))
                .collect(),
        }
    }

    /// The method's labels.
    pub(crate) fn labels(&self) -> &GrpcLabels {
        &self.labels
    }

    /// Records a call started.
    pub(super) fn started(&self) {
        self.started
            .get_or_init(|| self.families.started.get_or_create(&self.labels).clone())
            .inc();
    }

    /// The counter of messages the method's calls received.
    pub(crate) fn received(&self) -> Counter {
        self.received
            .get_or_init(|| self.families.received.get_or_create(&self.labels).clone())
            .clone()
    }

    /// The counter of messages the method's calls sent.
    pub(crate) fn sent(&self) -> Counter {
        self.sent
            .get_or_init(|| self.families.sent.get_or_create(&self.labels).clone())
            .clone()
    }

    /// Records a call answered with `code` after `took`.
    fn handled(&self, code: &str, took: Duration) {
        self.duration
            .get_or_init(|| self.families.duration.get_or_create(&self.labels).clone())
            .observe(took.as_secs_f64());
        match self.codes.iter().find(|(known, _)| *known == code) {
            Some((_, slot)) => {
                slot.get_or_init(|| self.families.handled_counter(&self.labels, code))
                    .inc();
            }
            None => {
                self.families.handled_counter(&self.labels, code).inc();
            }
        }
    }
}

/// The gRPC families and the service's methods' slots.
pub(super) struct GrpcMetrics {
    families: Families,
    /// Methods' slots by method name, filled before serving.
    methods: HashMap<String, Arc<GrpcSeries>>,
}

impl GrpcMetrics {
    /// Creates the families and registers them in `registry`.
    pub(super) fn register(registry: &mut Registry) -> Self {
        let families = Families {
            started: Family::default(),
            handled: Family::default(),
            duration: default_family(),
            received: Family::default(),
            sent: Family::default(),
        };
        registry.register(
            "grpc_server_started",
            "Total number of RPCs started on the server.",
            families.started.clone(),
        );
        registry.register(
            "grpc_server_handled",
            "Total number of RPCs completed on the server, regardless of success or failure.",
            families.handled.clone(),
        );
        registry.register(
            "grpc_server_handling_seconds",
            "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
            families.duration.clone(),
        );
        registry.register(
            "grpc_server_msg_received",
            "Total number of RPC stream messages received on the server.",
            families.received.clone(),
        );
        registry.register(
            "grpc_server_msg_sent",
            "Total number of gRPC stream messages sent by the server.",
            families.sent.clone(),
        );
        GrpcMetrics {
            families,
            methods: HashMap::new(),
        }
    }

    /// The slots of a method: made ahead when it is one of the service's.
    pub(super) fn method(&self, labels: GrpcLabels) -> Arc<GrpcSeries> {
        if let Some(series) = self.methods.get(&labels.grpc_method)
            && series.labels == labels
        {
            return series.clone();
        }
        Arc::new(GrpcSeries::new(labels, self.families.clone()))
    }

    /// The series resolved ahead for `service`'s `method`, without building its labels.
    pub(super) fn resolved(&self, service: &str, method: &str) -> Option<Arc<GrpcSeries>> {
        self.methods
            .get(method)
            .filter(|series| series.labels.grpc_service == service)
            .cloned()
    }

    /// Makes the slots of `service`'s `methods` (name, gRPC type).
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
            let series = GrpcSeries::new(labels, self.families.clone());
            self.methods.insert(method.to_string(), Arc::new(series));
        }
    }

    /// Records a call answered with `code` after `took`.
    pub(super) fn handled(&self, series: &GrpcSeries, code: &str, took: Duration) {
        series.handled(code, took);
    }
}

//! A tower layer around the gRPC server: each call's metrics and its request id (from the
//! `x-request-id` metadata, or a new one; its log lines carry it), the call's deadline
//! (`grpc-timeout`) answered with DEADLINE_EXCEEDED, and unary calls held to one message.

use super::unary::OneMessage;
use crate::metrics::{CountMessages, GrpcLabels, Metrics};
use crate::protocol::request_id;
use crate::telemetry::request_log::{self, RequestTag};
use axum::http::{Request, Response};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tonic::body::Body;

/// Adds [`Observe`] to a service.
#[derive(Clone)]
pub(crate) struct ObserveLayer {
    metrics: Arc<Metrics>,
}

impl ObserveLayer {
    /// A layer reporting to `metrics`.
    pub(crate) fn new(metrics: Arc<Metrics>) -> Self {
        ObserveLayer { metrics }
    }
}

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// Counts and times each call, and runs it as the request its id names.
#[derive(Clone)]
pub(crate) struct Observe<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, R> tower::Service<Request<Body>> for Observe<S>
where
    S: tower::Service<Request<Body>, Response = Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    R: http_body::Body<Data = bytes::Bytes> + Unpin + Send + 'static,
    R::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The ready service handles this call; a fresh clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let metrics = self.metrics.clone();
        let series = series(&metrics, request.uri().path());
        let labels = series.labels();
        let tag = RequestTag::new(
            request_id::of(request.headers()),
            Some(labels.grpc_method.clone()),
        );
        let recording = crate::telemetry::grpc::begin(
            request.headers(),
            &labels.grpc_service,
            &labels.grpc_method,
            &tag.id,
        );
        // Made now, before tonic's own timer (which answers CANCELLED), so that it fires first.
        let timeout = super::grpc_timeout(request.headers());
        let deadline = timeout.map(tokio::time::sleep);
        // A unary call holds one message; a stream's messages are counted each way (as
        // py-grpc-prometheus counts them, for streams only).
        let streaming = labels.grpc_type != "UNARY";
        let request = if streaming {
            let received = series.received();
            request.map(|body| Body::new(CountMessages::new(body, received)))
        } else {
            request.map(|body| Body::new(OneMessage::new(body)))
        };
        let sent = streaming.then(|| series.sent());
        metrics.grpc_started(&series);
        let started = Instant::now();
        let expired = timeout.is_some_and(|timeout| timeout.is_zero());
        let call = (!expired).then(|| {
            crate::telemetry::Recording::record(
                recording,
                request_log::scope(tag, inner.call(request)),
            )
        });
        Box::pin(async move {
            let (response, recording) = match (call, deadline) {
                (Some(call), None) => {
                    let (response, recording) = call.await;
                    (response?.map(Body::new), recording)
                }
                (Some(call), Some(deadline)) => tokio::select! {
                    biased;
                    (response, recording) = call => (response?.map(Body::new), recording),
                    () = deadline => (deadline_exceeded(timeout), None),
                },
                (None, _) => (deadline_exceeded(timeout), None),
            };
            // An error answers in the headers (trailers-only); a success ends with OK.
            let number = response
                .headers()
                .get("grpc-status")
                .and_then(|value| value.to_str().ok()?.parse::<i32>().ok());
            let code = number.map_or("OK", code_name);
            metrics.grpc_handled(&series, code, started.elapsed());
            if let Some(recording) = recording {
                crate::telemetry::grpc::finish(recording, code, number.unwrap_or(0).into());
            }
            Ok(match sent {
                Some(sent) => response.map(|body| Body::new(CountMessages::new(body, sent))),
                None => response,
            })
        })
    }
}

/// The answer to a call whose deadline passed before it was answered.
fn deadline_exceeded<R: Default>(timeout: Option<std::time::Duration>) -> Response<R> {
    let timeout = timeout.unwrap_or_default();
    tonic::Status::deadline_exceeded(format!(
        "the call's deadline (grpc-timeout {timeout:?}) passed before it was answered"
    ))
    .into_http()
}

/// The service's methods and their call types, as py-grpc-prometheus (MLServer's) names them.
pub(crate) const METHODS: &[(&str, &str)] = &[
    ("ServerLive", "UNARY"),
    ("ServerReady", "UNARY"),
    ("ModelReady", "UNARY"),
    ("ServerMetadata", "UNARY"),
    ("ModelMetadata", "UNARY"),
    ("ModelInfer", "UNARY"),
    ("ModelStreamInfer", "BIDI_STREAMING"),
    ("ModelConfig", "UNARY"),
    ("ModelStatistics", "UNARY"),
    ("RepositoryIndex", "UNARY"),
    ("RepositoryModelLoad", "UNARY"),
    ("RepositoryModelUnload", "UNARY"),
    ("SystemSharedMemoryStatus", "UNARY"),
    ("SystemSharedMemoryRegister", "UNARY"),
    ("SystemSharedMemoryUnregister", "UNARY"),
    ("CudaSharedMemoryStatus", "UNARY"),
    ("CudaSharedMemoryRegister", "UNARY"),
    ("CudaSharedMemoryUnregister", "UNARY"),
    ("TraceSetting", "UNARY"),
    ("LogSettings", "UNARY"),
];

/// The gRPC service name.
pub(crate) const SERVICE: &str = "inference.GRPCInferenceService";

/// The other services on the port (health and reflection): service, method, call type.
const OTHER_METHODS: &[(&str, &str, &str)] = &[
    ("grpc.health.v1.Health", "Check", "UNARY"),
    ("grpc.health.v1.Health", "Watch", "SERVER_STREAMING"),
    (
        "grpc.reflection.v1.ServerReflection",
        "ServerReflectionInfo",
        "BIDI_STREAMING",
    ),
    (
        "grpc.reflection.v1alpha.ServerReflection",
        "ServerReflectionInfo",
        "BIDI_STREAMING",
    ),
];

/// The series of the call to `/package.Service/Method`: one resolved ahead for the server's
/// methods (no labels built per call), else made from its labels.
fn series(metrics: &Metrics, path: &str) -> Arc<crate::metrics::GrpcSeries> {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let service = parts.next().unwrap_or_default();
    let method = parts.next().unwrap_or_default();
    metrics
        .grpc_resolved(service, method)
        .unwrap_or_else(|| metrics.grpc_method(labels(path)))
}

/// `/package.Service/Method` → the labels of the call.
/// Paths outside the service's methods share one set of labels, so that a client cannot make
/// a series per path it invents.
fn labels(path: &str) -> GrpcLabels {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let service = parts.next().unwrap_or_default();
    let method = parts.next().unwrap_or_default();
    let inference = METHODS
        .iter()
        .filter(|_| service == SERVICE)
        .find(|(known, _)| *known == method)
        .map(|(method, grpc_type)| (SERVICE, *method, *grpc_type));
    let other = || {
        OTHER_METHODS
            .iter()
            .find(|(known_service, known, _)| *known_service == service && *known == method)
            .copied()
    };
    let (service, method, grpc_type) = inference
        .or_else(other)
        .unwrap_or(("unknown", "unknown", "UNARY"));
    GrpcLabels {
        grpc_type: grpc_type.to_string(),
        grpc_service: service.to_string(),
        grpc_method: method.to_string(),
    }
}

/// gRPC's name of a status code.
fn code_name(code: i32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|code| NAMES.get(code).copied())
        .unwrap_or("UNKNOWN")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Layer, Service};

    #[tokio::test]
    async fn a_call_past_its_deadline_is_deadline_exceeded() {
        let never = tower::service_fn(|_: Request<Body>| {
            std::future::pending::<Result<Response<Body>, std::convert::Infallible>>()
        });
        let mut observe = ObserveLayer::new(Arc::new(Metrics::new("rest_server"))).layer(never);
        for timeout in ["0n", "20m"] {
            let request = Request::builder()
                .uri("/inference.GRPCInferenceService/ModelInfer")
                .header("grpc-timeout", timeout)
                .body(Body::empty())
                .unwrap();
            let response = observe.call(request).await.unwrap();
            assert_eq!(response.headers()["grpc-status"], "4", "{timeout}");
        }
    }
}

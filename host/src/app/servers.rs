//! The front ends on their bound sockets: gRPC, the metrics server and REST, all stopping on one
//! shutdown signal (their connections' limits and timeouts are [`super::connections`]'s).

use super::connections::{self, Acceptor, Limits, Refusal};
use crate::config::Settings;
use crate::core::InferenceService;
use crate::metrics::{Format, Metrics};
use crate::protocol::grpc::{self, GrpcOptions};
use crate::protocol::rest::{self, RestOptions};
use crate::repository::Repository;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The one shutdown signal every server waits on, with the time it came.
pub(super) struct StopSignal(watch::Receiver<Option<Instant>>);

impl StopSignal {
    /// Waits for `shutdown` in the background and then tells every server to stop.
    pub(super) fn spawn(shutdown: impl Future<Output = ()> + Send + 'static) -> StopSignal {
        let (stop, stopped) = watch::channel(None);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(Some(Instant::now()));
        });
        StopSignal(stopped)
    }

    /// Completes when the servers are to stop, with the time the signal came.
    pub(super) fn wait(&self) -> impl Future<Output = Instant> + Send + use<> {
        let mut stopped = self.0.clone();
        async move {
            let at = stopped
                .wait_for(Option::is_some)
                .await
                .ok()
                .and_then(|at| *at);
            match at {
                Some(at) => at,
                // The signal's task is gone without a signal: never stop.
                None => std::future::pending().await,
            }
        }
    }
}

/// Serves the gRPC front end on `listener` in the background, until `stop`.
pub(super) fn start_grpc(
    listener: TcpListener,
    settings: &Settings,
    service: Arc<InferenceService>,
    metrics: Arc<Metrics>,
    stop: &StopSignal,
) -> JoinHandle<Result<(), tonic::transport::Error>> {
    let options = GrpcOptions {
        // Unset: the REST body limit, so that both ports take the same tensors.
        max_message_bytes: settings
            .grpc_max_message_length
            .and_then(|length| usize::try_from(length).ok())
            .unwrap_or_else(|| max_body_bytes(settings)),
        max_tensor_elements: settings.max_tensor_elements,
    };
    let limits = Limits::from_settings(settings);
    let acceptor = Acceptor::new(listener, "gRPC", limits.max_connections, Refusal::Http2);
    let stopped = stop.wait();
    // Health turns NOT_SERVING, and its Watch streams end, as the server stops.
    let (stopping_sender, stopping) = watch::channel(false);
    let stop_health = stop.wait();
    tokio::spawn(async move {
        stop_health.await;
        stopping_sender.send_replace(true);
    });
    let (reflection_v1, reflection_v1alpha) = grpc::reflection();
    let budget = crate::protocol::budget::GrpcBudgetLayer::new(service.budget().clone());
    let server = connections::grpc::configure(tonic::transport::Server::builder(), &limits)
        .layer(connections::grpc::TrackLayer::new(&limits))
        .layer(budget)
        .layer(grpc::observe::ObserveLayer::new(metrics))
        .layer(tower::util::MapResponseLayer::new(
            grpc::oversized_message_status,
        ))
        .add_service(grpc::service(service.clone(), &options))
        .add_service(grpc::health::service(service, stopping))
        .add_optional_service(reflection_v1)
        .add_optional_service(reflection_v1alpha)
        .serve_with_incoming_shutdown(connections::grpc::incoming(acceptor, &limits), async {
            stopped.await;
        });
    tokio::spawn(server)
}

/// Serves ModelMesh's model-runtime SPI (`mmesh.ModelRuntime`) on `listener` in the background,
/// until `stop`, with the gRPC port's connection limits and timeouts.
pub(super) fn start_modelmesh(
    listener: TcpListener,
    settings: &Settings,
    mesh: crate::modelmesh::ModelMesh,
    stop: &StopSignal,
) -> JoinHandle<Result<(), tonic::transport::Error>> {
    let limits = Limits::from_settings(settings);
    let acceptor = Acceptor::new(
        listener,
        "ModelMesh",
        limits.max_connections,
        Refusal::Http2,
    );
    let stopped = stop.wait();
    let server = connections::grpc::configure(tonic::transport::Server::builder(), &limits)
        .layer(connections::grpc::TrackLayer::new(&limits))
        .add_service(mesh.service())
        .serve_with_incoming_shutdown(connections::grpc::incoming(acceptor, &limits), async {
            stopped.await;
        });
    tokio::spawn(server)
}

/// Serves the metrics endpoint on `listener` in the background, until `stop`.
pub(super) fn start_metrics(
    listener: TcpListener,
    settings: &Settings,
    endpoint: &str,
    metrics: Arc<Metrics>,
    repository: Arc<Repository>,
    stop: &StopSignal,
) -> JoinHandle<()> {
    let router = metrics_router(endpoint, metrics, repository);
    let limits = Limits::from_settings(settings);
    let acceptor = Acceptor::new(listener, "metrics", limits.max_connections, Refusal::Http1);
    let stopped = stop.wait();
    tokio::spawn(async move { connections::http1::serve(acceptor, router, &limits, stopped).await })
}

/// Serves the REST front end on `listener` until `stop`, then lets open requests finish (for
/// the shutdown's grace period at most).
pub(super) async fn serve_rest(
    listener: TcpListener,
    settings: &Settings,
    service: Arc<InferenceService>,
    metrics: Arc<Metrics>,
    stop: &StopSignal,
) {
    let options = RestOptions {
        root_path: settings.root_path.clone(),
        max_body_bytes: max_body_bytes(settings),
        max_tensor_elements: settings.max_tensor_elements,
        gzip_enabled: settings.gzip_enabled,
        cors: settings.cors_settings.clone(),
    };
    let limits = Limits::from_settings(settings);
    let acceptor = Acceptor::new(listener, "REST", limits.max_connections, Refusal::Http1);
    let router = rest::router(service, &options, metrics);
    connections::http1::serve(acceptor, router, &limits, stop.wait()).await;
}

/// The largest REST body (`max_request_body_mb`), in bytes; also gRPC's message limit when
/// `grpc_max_message_length` is unset.
fn max_body_bytes(settings: &Settings) -> usize {
    usize::try_from(settings.max_request_body_mb.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX)
}

/// The metrics server: `endpoint` answers the exposition of every metric (Prometheus text
/// 0.0.4, or OpenMetrics when the scraper's `Accept` asks for it), with the models-by-state
/// gauge read from the repository at each scrape.
fn metrics_router(
    endpoint: &str,
    metrics: Arc<Metrics>,
    repository: Arc<Repository>,
) -> axum::Router {
    let endpoint = if endpoint.starts_with('/') {
        endpoint.to_string()
    } else {
        format!("/{endpoint}")
    };
    axum::Router::new().route(
        &endpoint,
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            let (metrics, repository) = (metrics.clone(), repository.clone());
            async move {
                let accept = headers
                    .get(axum::http::header::ACCEPT)
                    .and_then(|value| value.to_str().ok());
                let format = Format::negotiate(accept);
                metrics.set_models_by_state(&repository.state_counts());
                (
                    [(axum::http::header::CONTENT_TYPE, format.content_type())],
                    metrics.encode(format),
                )
            }
        }),
    )
}

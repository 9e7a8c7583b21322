//! The front ends on their bound sockets: gRPC, the metrics server and REST, all stopping on one
//! shutdown signal.

use crate::config::Settings;
use crate::core::InferenceService;
use crate::metrics::Metrics;
use crate::protocol::grpc::{self, GrpcOptions};
use crate::protocol::rest::{self, RestOptions};
use crate::repository::Repository;
use anyhow::Context;
use axum::serve::ListenerExt;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The one shutdown signal every server waits on.
pub(super) struct StopSignal(watch::Receiver<bool>);

impl StopSignal {
    /// Waits for `shutdown` in the background and then tells every server to stop.
    pub(super) fn spawn(shutdown: impl Future<Output = ()> + Send + 'static) -> StopSignal {
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
        StopSignal(stopped)
    }

    /// Completes when the servers are to stop.
    fn wait(&self) -> impl Future<Output = ()> + Send + use<> {
        let mut stopped = self.0.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
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
        max_message_bytes: settings
            .grpc_max_message_length
            .and_then(|length| usize::try_from(length).ok())
            .unwrap_or(grpc::DEFAULT_MAX_MESSAGE_BYTES),
        max_tensor_elements: settings.max_tensor_elements,
    };
    let server = tonic::transport::Server::builder()
        .layer(grpc::observe::ObserveLayer::new(metrics))
        .layer(tower::util::MapResponseLayer::new(
            grpc::oversized_message_status,
        ))
        .add_service(grpc::service(service, &options))
        .serve_with_incoming_shutdown(no_delay_stream(listener), stop.wait());
    tokio::spawn(server)
}

/// The connections `listener` accepts, each with `TCP_NODELAY` (tonic sets it only on listeners
/// it binds itself): without it, a response that follows an unacknowledged write waits for the
/// client's delayed ACK, about 40 ms on Linux.
fn no_delay_stream(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    tokio_stream::wrappers::TcpListenerStream::new(listener)
        .map(|accepted| accepted.inspect(set_no_delay))
}

/// Turns Nagle's algorithm off on an accepted connection (see [`no_delay_stream`]).
fn set_no_delay(stream: &tokio::net::TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY on a connection");
    }
}

/// Serves the metrics endpoint on `listener` in the background, until `stop`.
pub(super) fn start_metrics(
    listener: TcpListener,
    endpoint: &str,
    metrics: Arc<Metrics>,
    repository: Arc<Repository>,
    stop: &StopSignal,
) -> JoinHandle<std::io::Result<()>> {
    let router = metrics_router(endpoint, metrics, repository);
    tokio::spawn(
        axum::serve(listener.tap_io(|stream| set_no_delay(stream)), router)
            .with_graceful_shutdown(stop.wait())
            .into_future(),
    )
}

/// Serves the REST front end on `listener` until `stop`, then lets open requests finish.
pub(super) async fn serve_rest(
    listener: TcpListener,
    settings: &Settings,
    service: Arc<InferenceService>,
    metrics: Arc<Metrics>,
    stop: &StopSignal,
) -> anyhow::Result<()> {
    let options = RestOptions {
        root_path: settings.root_path.clone(),
        max_body_bytes: usize::try_from(settings.max_request_body_mb.saturating_mul(1024 * 1024))
            .unwrap_or(usize::MAX),
        max_tensor_elements: settings.max_tensor_elements,
        gzip_enabled: settings.gzip_enabled,
        cors: settings.cors_settings.clone(),
    };
    axum::serve(
        listener.tap_io(|stream| set_no_delay(stream)),
        rest::router(service, &options, metrics),
    )
    .with_graceful_shutdown(stop.wait())
    .await
    .context("the REST server failed")
}

/// The metrics server: `endpoint` answers the Prometheus exposition of every metric, with the
/// models-by-state gauge read from the repository at each scrape.
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
        axum::routing::get(move || {
            let (metrics, repository) = (metrics.clone(), repository.clone());
            async move {
                metrics.set_models_by_state(&repository.state_counts());
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics.encode(),
                )
            }
        }),
    )
}

//! The gRPC port's connections under tonic's server: HTTP/2's limits and pings set on the server,
//! the accepted connections watched ([`TrackedIo`]: handshake and idle timeouts), each call open
//! on its connection's tracker until its response ends, and a unary call's request paced as a
//! REST body is ([`TrackLayer`]).

use super::Limits;
use super::accept::Acceptor;
use super::body::{BodyPace, ProgressBody, SlowBody, TrackedBody};
use super::io::{TrackedIo, Tracker, Watch};
use axum::http::{Request, Response};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// Sets HTTP/2's limits, windows and keep-alive pings of `limits` on a tonic server.
pub(crate) fn configure(
    server: tonic::transport::Server,
    limits: &Limits,
) -> tonic::transport::Server {
    server
        .max_concurrent_streams(limits.grpc_max_concurrent_streams)
        .initial_stream_window_size(limits.grpc_stream_window)
        .initial_connection_window_size(limits.grpc_connection_window)
        .http2_max_header_list_size(limits.grpc_max_header_list)
        .http2_keepalive_interval(Some(limits.grpc_keepalive_interval))
        .http2_keepalive_timeout(Some(limits.grpc_keepalive_timeout))
}

/// The connections of `acceptor`, watched under `limits`, for tonic's server.
pub(crate) fn incoming(
    acceptor: Acceptor,
    limits: &Limits,
) -> impl tokio_stream::Stream<Item = std::io::Result<TrackedIo>> + Send + 'static {
    let watch = Watch::Http2 {
        handshake: limits.grpc_handshake,
        idle: limits.grpc_idle,
    };
    let send_timeout = limits.send_timeout;
    futures_util::stream::unfold(acceptor, move |mut acceptor| async move {
        let (stream, remote, slot) = acceptor.next().await;
        let io = TrackedIo::new(stream, remote, slot, watch, send_timeout);
        Some((Ok(io), acceptor))
    })
}

/// What tonic puts in each request's extensions about its connection.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionInfo {
    tracker: Arc<Tracker>,
}

impl tonic::transport::server::Connected for TrackedIo {
    type ConnectInfo = ConnectionInfo;

    fn connect_info(&self) -> ConnectionInfo {
        ConnectionInfo {
            tracker: self.tracker().clone(),
        }
    }
}

/// The methods whose request is a stream a client may leave quiet between messages:
/// ModelStreamInfer, and server reflection's (a client keeps it open and asks as it needs).
const STREAMING_METHODS: &[&str] = &[
    "/inference.GRPCInferenceService/ModelStreamInfer",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// Keeps each call open on its connection's tracker until its response ends (so that a
/// connection with a call open is not idle), and fails a call whose request arrives slower than
/// `pace` with DEADLINE_EXCEEDED (but for [`STREAMING_METHODS`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TrackLayer {
    pace: BodyPace,
}

impl TrackLayer {
    /// Paces unary requests as `limits` pace REST bodies.
    pub(crate) fn new(limits: &Limits) -> TrackLayer {
        TrackLayer {
            pace: limits.body_pace,
        }
    }
}

impl<S> tower::Layer<S> for TrackLayer {
    type Service = Track<S>;

    fn layer(&self, inner: S) -> Track<S> {
        Track {
            inner,
            pace: self.pace,
        }
    }
}

/// See [`TrackLayer`].
#[derive(Debug, Clone)]
pub(crate) struct Track<S> {
    inner: S,
    pace: BodyPace,
}

impl<S, R> tower::Service<Request<tonic::body::Body>> for Track<S>
where
    S: tower::Service<Request<tonic::body::Body>, Response = Response<R>>,
    S::Future: Send + 'static,
{
    type Response = Response<TrackedBody<R>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request<tonic::body::Body>) -> Self::Future {
        let open = request
            .extensions()
            .get::<ConnectionInfo>()
            .map(|info| info.tracker.begin());
        let request = if STREAMING_METHODS.contains(&request.uri().path()) {
            request
        } else {
            let pace = self.pace;
            request.map(|body| tonic::body::Body::new(paced(body, pace)))
        };
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = call.await?;
            Ok(response.map(|body| TrackedBody::new(body, open)))
        })
    }
}

/// `body` failing with DEADLINE_EXCEEDED when it arrives slower than `pace`.
fn paced(
    body: tonic::body::Body,
    pace: BodyPace,
) -> impl http_body::Body<Data = bytes::Bytes, Error = axum::BoxError> + Send + 'static {
    http_body_util::BodyExt::map_err(ProgressBody::new(body, pace), |error| {
        if error.is::<SlowBody>() {
            Box::new(tonic::Status::deadline_exceeded(error.to_string())) as axum::BoxError
        } else {
            error
        }
    })
}

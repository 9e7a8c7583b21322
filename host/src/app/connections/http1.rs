//! Serving an HTTP/1.1 port (REST, metrics): each accepted connection watched ([`TrackedIo`]),
//! each request's body paced ([`ProgressBody`]); at shutdown, every connection closes after its
//! current response, and the grace period's end closes the rest.

use super::Limits;
use super::accept::Acceptor;
use super::body::{BodyPace, ProgressBody, TrackedBody};
use super::io::{TrackedIo, Tracker, Watch};
use axum::http::{HeaderValue, Request, Response, header};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// At shutdown, a connection with no request open is closed once it has been quiet this long
/// (a client that has just had a response may be sending its next request: it gets an answer,
/// with `Connection: close`, rather than a closed connection).
const SHUTDOWN_QUIET: Duration = Duration::from_millis(500);

/// Serves `router` over HTTP/1.1 on `acceptor`'s connections until `stop` (which gives the
/// signal's time), then lets open requests finish until the grace period after the signal ends
/// and closes whatever is still open then.
pub(crate) async fn serve(
    mut acceptor: Acceptor,
    router: axum::Router,
    limits: &Limits,
    stop: impl Future<Output = Instant>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    // The header and keep-alive timeouts are the connection's own (`TrackedIo`).
    builder.http1().keep_alive(true).header_read_timeout(None);
    let watch = Watch::Http1 {
        header_read: limits.header_read,
        keep_alive: limits.keep_alive,
    };
    let name = acceptor.name();
    let (closing, closing_seen) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut stop = std::pin::pin!(stop);
    let stopped_at = loop {
        tokio::select! {
            stopped_at = &mut stop => break stopped_at,
            (stream, remote, slot) = acceptor.next() => {
                let io = TrackedIo::new(stream, remote, slot, watch, limits.send_timeout);
                let service = Tracked {
                    inner: router.clone(),
                    tracker: io.tracker().clone(),
                    pace: limits.body_pace,
                };
                connections.spawn(connection(builder.clone(), io, service, closing_seen.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    };
    // Stop listening at once: new clients are refused rather than left waiting.
    drop(acceptor);
    let _ = closing.send(true);
    let grace_end = stopped_at + limits.grace;
    let drained = tokio::time::timeout_at(grace_end, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "{name}: {} connections still open at the end of the shutdown's grace period: closing them",
            connections.len()
        );
        connections.shutdown().await;
    }
}

/// Serves one connection; once `closing` is set, closes it after its current response, or
/// once it has been quiet for [`SHUTDOWN_QUIET`].
async fn connection(
    builder: auto::Builder<TokioExecutor>,
    io: TrackedIo,
    service: Tracked<axum::Router>,
    mut closing: watch::Receiver<bool>,
) {
    let tracker = io.tracker().clone();
    let remote = io.remote();
    let connection = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => return log_end(remote, result),
        _ = closing.wait_for(|closing| *closing) => {}
    }
    tracker.start_closing();
    loop {
        let quiet_until = tracker
            .quiet_since()
            .map(|since| since + SHUTDOWN_QUIET)
            .unwrap_or_else(|| Instant::now() + SHUTDOWN_QUIET);
        tokio::select! {
            result = connection.as_mut() => return log_end(remote, result),
            () = tokio::time::sleep_until(quiet_until) => {
                if tracker.quiet_since().is_some_and(|since| since.elapsed() >= SHUTDOWN_QUIET) {
                    connection.as_mut().graceful_shutdown();
                    break;
                }
            }
        }
    }
    log_end(remote, connection.await);
}

fn log_end(
    remote: std::net::SocketAddr,
    result: Result<(), Box<dyn std::error::Error + Send + Sync>>,
) {
    if let Err(error) = result {
        tracing::debug!(%remote, "connection ended: {error}");
    }
}

/// A connection's service: each request's body paced, each request open on the connection's
/// tracker until its response ends, and its response closing the connection at shutdown.
#[derive(Clone)]
struct Tracked<S> {
    inner: S,
    tracker: Arc<Tracker>,
    pace: BodyPace,
}

impl<S, B, R> tower::Service<Request<B>> for Tracked<S>
where
    S: tower::Service<Request<ProgressBody<B>>, Response = Response<R>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<TrackedBody<R>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let open = self.tracker.begin();
        let tracker = self.tracker.clone();
        let pace = self.pace;
        let call = self
            .inner
            .call(request.map(|body| ProgressBody::new(body, pace)));
        Box::pin(async move {
            let mut response = call.await?;
            if tracker.closing() {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(response.map(|body| TrackedBody::new(body, Some(open))))
        })
    }
}

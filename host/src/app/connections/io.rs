//! An accepted connection's socket, watched: what it has read and whether a request is open on it
//! ([`Tracker`]), the timeouts of a connection with no request open, enforced where the server
//! reads, and the send timeout of a client that takes no data ([`TrackedIo`]).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};

/// The length of HTTP/2's connection preface and of a frame header: what a client sends first
/// (the preface, then its SETTINGS frame).
const HTTP2_HANDSHAKE_BYTES: u64 = 24 + 9;
/// No time recorded yet.
const NEVER: u64 = u64::MAX;

/// What a connection is doing, shared by its socket, its requests and its server.
#[derive(Debug)]
pub(crate) struct Tracker {
    /// When the connection was accepted; the times below are milliseconds after it.
    accepted: Instant,
    /// Requests (HTTP/2 streams) open: from their head to the end of their response.
    open: AtomicUsize,
    /// When the last request ended (or the connection was accepted).
    idle_since: AtomicU64,
    /// When the first byte arrived since then ([`NEVER`] if none has).
    head_started: AtomicU64,
    /// Bytes read so far, counted up to the HTTP/2 handshake.
    handshake_read: AtomicU64,
    /// Set at shutdown: responses from now on close their connection.
    closing: AtomicBool,
}

impl Tracker {
    fn new() -> Tracker {
        Tracker {
            accepted: Instant::now(),
            open: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            head_started: AtomicU64::new(NEVER),
            handshake_read: AtomicU64::new(0),
            closing: AtomicBool::new(false),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.accepted.elapsed().as_millis()).unwrap_or(NEVER - 1)
    }

    fn at(&self, millis: u64) -> Instant {
        self.accepted + Duration::from_millis(millis)
    }

    /// Marks a request open until the guard is dropped (at the end of its response).
    pub(crate) fn begin(self: &Arc<Self>) -> InFlight {
        self.open.fetch_add(1, Ordering::SeqCst);
        InFlight(self.clone())
    }

    /// Whether responses should close their connection (the server is shutting down).
    pub(crate) fn closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// Asks every response from now on to close the connection.
    pub(super) fn start_closing(&self) {
        self.closing.store(true, Ordering::SeqCst);
    }

    /// Since when the connection has been quiet (no request open, no byte of a new one read),
    /// or `None` when it is not.
    pub(super) fn quiet_since(&self) -> Option<Instant> {
        let quiet = self.open.load(Ordering::SeqCst) == 0
            && self.head_started.load(Ordering::SeqCst) == NEVER;
        quiet.then(|| self.at(self.idle_since.load(Ordering::SeqCst)))
    }

    fn on_read(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let bytes = bytes as u64;
        if self.handshake_read.load(Ordering::Relaxed) < HTTP2_HANDSHAKE_BYTES {
            self.handshake_read.fetch_add(bytes, Ordering::Relaxed);
        }
        if self.open.load(Ordering::SeqCst) == 0 {
            let _ = self.head_started.compare_exchange(
                NEVER,
                self.now(),
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
        }
    }

    /// When the connection times out under `watch`, and why; `None` while a request is open.
    fn deadline(&self, watch: &Watch) -> Option<(Instant, Expiry)> {
        if let Watch::Http2 { handshake, .. } = watch
            && self.handshake_read.load(Ordering::Relaxed) < HTTP2_HANDSHAKE_BYTES
        {
            return Some((self.accepted + *handshake, Expiry::Handshake));
        }
        if self.open.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let idle_since = self.at(self.idle_since.load(Ordering::SeqCst));
        match (watch, self.head_started.load(Ordering::SeqCst)) {
            (Watch::Http1 { keep_alive, .. }, NEVER) => {
                Some((idle_since + *keep_alive, Expiry::Idle))
            }
            (Watch::Http1 { header_read, .. }, started) => {
                Some((self.at(started) + *header_read, Expiry::Headers))
            }
            (Watch::Http2 { idle, .. }, _) => Some((idle_since + *idle, Expiry::Idle)),
        }
    }
}

/// A request open on a connection; dropping it ends the request.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Tracker>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let tracker = &self.0;
        if tracker.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            tracker.idle_since.store(tracker.now(), Ordering::SeqCst);
            tracker.head_started.store(NEVER, Ordering::SeqCst);
        }
    }
}

/// The timeouts of a connection with no request open.
#[derive(Debug, Clone, Copy)]
pub(super) enum Watch {
    /// HTTP/1.1: a request's headers must arrive within `header_read` of their first byte; an
    /// idle keep-alive connection is closed after `keep_alive`.
    Http1 {
        header_read: Duration,
        keep_alive: Duration,
    },
    /// HTTP/2: the preface and SETTINGS must arrive within `handshake` of the connection; a
    /// connection with no stream open is closed after `idle`.
    Http2 { handshake: Duration, idle: Duration },
}

impl Watch {
    /// How often an open request's connection is checked again.
    fn recheck(&self) -> Duration {
        match self {
            Watch::Http1 { keep_alive, .. } => *keep_alive,
            Watch::Http2 { idle, .. } => *idle,
        }
    }
}

/// Why a connection timed out.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expiry {
    Handshake,
    Headers,
    Idle,
}

/// An accepted TCP connection: reads are tracked, and a read waiting past the connection's
/// timeout ends it (an idle one with an end of stream, the others with a `TimedOut` error); a
/// write the client leaves waiting for `send_timeout` fails with `TimedOut`. It holds its place
/// under the port's connection limit until dropped.
#[derive(Debug)]
pub(crate) struct TrackedIo {
    stream: TcpStream,
    remote: SocketAddr,
    tracker: Arc<Tracker>,
    watch: Watch,
    timer: Option<Pin<Box<Sleep>>>,
    send_timeout: Duration,
    /// Since when the client has taken no data, while a write waits.
    write_blocked: Option<Instant>,
    write_timer: Option<Pin<Box<Sleep>>>,
    _slot: OwnedSemaphorePermit,
}

impl TrackedIo {
    /// Watches `stream` (from `remote`) under `watch` and `send_timeout`, holding `slot` while
    /// it is open.
    pub(super) fn new(
        stream: TcpStream,
        remote: SocketAddr,
        slot: OwnedSemaphorePermit,
        watch: Watch,
        send_timeout: Duration,
    ) -> TrackedIo {
        TrackedIo {
            stream,
            remote,
            tracker: Arc::new(Tracker::new()),
            watch,
            timer: None,
            send_timeout,
            write_blocked: None,
            write_timer: None,
            _slot: slot,
        }
    }

    /// A write's outcome, failed with `TimedOut` when the client has taken no data for
    /// `send_timeout` (the timer wakes the task then).
    fn watch_write<T>(
        &mut self,
        context: &mut Context<'_>,
        outcome: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if outcome.is_ready() {
            self.write_blocked = None;
            return outcome;
        }
        let deadline = *self.write_blocked.get_or_insert_with(Instant::now) + self.send_timeout;
        let timer = self
            .write_timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        if timer.as_mut().poll(context).is_ready() {
            return Poll::Ready(Err(timed_out(
                "the client took no data within send_timeout_seconds",
            )));
        }
        Poll::Pending
    }

    /// The connection's tracker.
    pub(crate) fn tracker(&self) -> &Arc<Tracker> {
        &self.tracker
    }

    /// The client's address.
    pub(crate) fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// Whether the connection's timeout has passed; otherwise the timer wakes the task at it.
    fn poll_expired(&mut self, context: &mut Context<'_>) -> Option<Expiry> {
        loop {
            let (deadline, expiry) = match self.tracker.deadline(&self.watch) {
                Some((deadline, expiry)) => (deadline, Some(expiry)),
                None => (Instant::now() + self.watch.recheck(), None),
            };
            if let Some(expiry) = expiry
                && deadline <= Instant::now()
            {
                return Some(expiry);
            }
            let timer = self
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            // The deadline moves later with every request; a timer armed earlier is left to
            // fire, and this loop then sets it to the deadline of that time: one timer reset
            // per timeout period instead of one per request (a reset takes the timer wheel's
            // lock). A deadline earlier than the armed one moves it at once.
            if timer.deadline() > deadline || timer.is_elapsed() {
                timer.as_mut().reset(deadline);
            }
            if timer.as_mut().poll(context).is_pending() {
                return None;
            }
        }
    }
}

impl AsyncRead for TrackedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(context, buf) {
            Poll::Ready(Ok(())) => {
                this.tracker.on_read(buf.filled().len() - before);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => match this.poll_expired(context) {
                None => Poll::Pending,
                // An idle connection ends as if the client had closed it.
                Some(Expiry::Idle) => Poll::Ready(Ok(())),
                Some(Expiry::Headers) => Poll::Ready(Err(timed_out(
                    "the request's headers did not arrive within header_read_timeout_seconds",
                ))),
                Some(Expiry::Handshake) => Poll::Ready(Err(timed_out(
                    "no HTTP/2 preface and SETTINGS within grpc_handshake_timeout_seconds",
                ))),
            },
        }
    }
}

fn timed_out(message: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, message)
}

impl AsyncWrite for TrackedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.stream).poll_write(context, buf);
        this.watch_write(context, outcome)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.stream).poll_write_vectored(context, bufs);
        this.watch_write(context, outcome)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(context)
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn http1_idle_then_headers_then_nothing_while_a_request_is_open() {
        let tracker = Arc::new(Tracker::new());
        let watch = Watch::Http1 {
            header_read: SECOND,
            keep_alive: 5 * SECOND,
        };
        let (deadline, expiry) = tracker.deadline(&watch).unwrap();
        assert_eq!(
            (deadline, expiry),
            (tracker.accepted + 5 * SECOND, Expiry::Idle)
        );
        tracker.on_read(0);
        assert_eq!(tracker.deadline(&watch).unwrap().1, Expiry::Idle);
        tracker.on_read(10);
        assert_eq!(tracker.deadline(&watch).unwrap().1, Expiry::Headers);
        assert!(tracker.quiet_since().is_none());
        let open = tracker.begin();
        assert!(tracker.deadline(&watch).is_none());
        tracker.on_read(10);
        drop(open);
        assert_eq!(tracker.deadline(&watch).unwrap().1, Expiry::Idle);
        assert!(tracker.quiet_since().is_some());
    }

    #[test]
    fn http2_handshake_first_then_idle() {
        let tracker = Arc::new(Tracker::new());
        let watch = Watch::Http2 {
            handshake: SECOND,
            idle: 5 * SECOND,
        };
        tracker.on_read(24);
        let (deadline, expiry) = tracker.deadline(&watch).unwrap();
        assert_eq!(
            (deadline, expiry),
            (tracker.accepted + SECOND, Expiry::Handshake)
        );
        tracker.on_read(9);
        assert_eq!(tracker.deadline(&watch).unwrap().1, Expiry::Idle);
        let _open = tracker.begin();
        assert!(tracker.deadline(&watch).is_none());
    }
}

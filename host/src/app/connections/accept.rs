//! Accepting a port's connections: `TCP_NODELAY` on each, at most `max_connections` open (those
//! past it refused with a clear answer and closed), accept errors (such as the process's file
//! descriptor limit) logged at a bounded rate and backed off instead of retried at once.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The first wait after an accept error; it doubles up to [`MAX_BACKOFF`] while errors last.
const MIN_BACKOFF: Duration = Duration::from_millis(10);
/// The longest wait after an accept error.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// At most one log line per kind of trouble per port in this period.
const LOG_PERIOD: Duration = Duration::from_secs(10);

/// What a connection past the limit is told before it is closed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Refusal {
    /// An HTTP/1.1 `503 Service Unavailable` with a JSON error.
    Http1,
    /// HTTP/2's SETTINGS then GOAWAY, with the reason as its debug data.
    Http2,
}

const HTTP1_REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: 60\r\nconnection: close\r\nretry-after: 1\r\n\r\n{\"error\":\"too many connections: max_connections is reached\"}";

impl Refusal {
    fn bytes(self) -> Vec<u8> {
        match self {
            Refusal::Http1 => HTTP1_REFUSAL.to_vec(),
            Refusal::Http2 => {
                let reason = b"too many connections: max_connections is reached";
                // SETTINGS (empty), then GOAWAY: last stream 0, NO_ERROR, the reason.
                let mut frames = vec![0, 0, 0, 4, 0, 0, 0, 0, 0];
                let length = u32::try_from(8 + reason.len()).unwrap_or(0).to_be_bytes();
                frames.extend_from_slice(&[length[1], length[2], length[3], 7, 0, 0, 0, 0, 0]);
                frames.extend_from_slice(&[0; 8]);
                frames.extend_from_slice(reason);
                frames
            }
        }
    }
}

/// A port's listener with its connection limit.
#[derive(Debug)]
pub(crate) struct Acceptor {
    listener: TcpListener,
    name: &'static str,
    slots: Arc<Semaphore>,
    max_connections: usize,
    refusal: Vec<u8>,
    backoff: Duration,
    errors: RateLimitedLog,
    refused: RateLimitedLog,
}

impl Acceptor {
    /// Accepts on `listener` (the port called `name` in the logs), with at most
    /// `max_connections` open; those past it get `refusal`.
    pub(crate) fn new(
        listener: TcpListener,
        name: &'static str,
        max_connections: usize,
        refusal: Refusal,
    ) -> Acceptor {
        Acceptor {
            listener,
            name,
            slots: Arc::new(Semaphore::new(max_connections)),
            max_connections,
            refusal: refusal.bytes(),
            backoff: MIN_BACKOFF,
            errors: RateLimitedLog::default(),
            refused: RateLimitedLog::default(),
        }
    }

    /// The port's name in the logs.
    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// The next connection within the limit, with its place under it.
    pub(crate) async fn next(&mut self) -> (TcpStream, SocketAddr, OwnedSemaphorePermit) {
        loop {
            match self.listener.accept().await {
                Ok((stream, remote)) => {
                    self.backoff = MIN_BACKOFF;
                    set_no_delay(&stream);
                    match self.slots.clone().try_acquire_owned() {
                        Ok(slot) => return (stream, remote, slot),
                        Err(_) => self.refuse(stream),
                    }
                }
                // The client gave up before it was accepted: nothing to wait for.
                Err(error) if is_connection_error(&error) => {}
                Err(error) => {
                    let (name, backoff) = (self.name, self.backoff);
                    self.errors.log(|suppressed| {
                        tracing::warn!(
                            "{name}: cannot accept connections: {error} ({suppressed} more such errors since the last report); retrying in {backoff:?}"
                        )
                    });
                    tokio::time::sleep(backoff).await;
                    self.backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Answers a connection past the limit (without waiting: the socket is new, its buffer
    /// empty) and closes it.
    fn refuse(&mut self, stream: TcpStream) {
        // Written directly: tokio's `try_write` waits for a readiness event a new socket has
        // not had yet. The socket is non-blocking, so this never waits either.
        if let Ok(mut stream) = stream.into_std() {
            let _ = std::io::Write::write(&mut stream, &self.refusal);
        }
        let (name, max) = (self.name, self.max_connections);
        self.refused.log(|suppressed| {
            tracing::warn!(
                "{name}: refused a connection: max_connections ({max}) are open ({suppressed} more refused since the last report)"
            )
        });
    }
}

/// Turns Nagle's algorithm off on an accepted connection: without it, a response that follows
/// an unacknowledged write waits for the client's delayed ACK, about 40 ms on Linux.
fn set_no_delay(stream: &TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY on a connection");
    }
}

/// Errors of one connection that failed while queued, rather than of the listener.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Logs one line per [`LOG_PERIOD`] at most, counting those it holds back.
#[derive(Debug, Default)]
struct RateLimitedLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimitedLog {
    /// Calls `log` with the number of lines held back since the last one, unless one was
    /// logged less than [`LOG_PERIOD`] ago.
    fn log(&mut self, log: impl FnOnce(u64)) {
        if self.last.is_some_and(|last| last.elapsed() < LOG_PERIOD) {
            self.suppressed += 1;
            return;
        }
        log(self.suppressed);
        self.last = Some(Instant::now());
        self.suppressed = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusals_are_well_formed() {
        let http1 = String::from_utf8(Refusal::Http1.bytes()).unwrap();
        let (head, body) = http1.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        serde_json::from_str::<serde_json::Value>(body).unwrap();

        let http2 = Refusal::Http2.bytes();
        let goaway = &http2[9..];
        let length = usize::from(goaway[1]) << 8 | usize::from(goaway[2]);
        assert_eq!((goaway[3], goaway.len()), (7, 9 + length));
    }

    #[test]
    fn the_log_is_rate_limited() {
        let mut log = RateLimitedLog::default();
        let mut lines = Vec::new();
        for _ in 0..5 {
            log.log(|suppressed| lines.push(suppressed));
        }
        assert_eq!(lines, [0]);
        assert_eq!(log.suppressed, 4);
    }
}

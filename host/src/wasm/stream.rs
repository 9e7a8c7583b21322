//! The responses a streaming call sends before it ends, and the bounded channel they go through.
//!
//! What one stream holds for a client that does not read is bounded twice: the channel holds at
//! most [`STREAM_CAPACITY`] responses, and the responses not yet taken by the connection (in this
//! channel and every later stage: the core's replies, their encoding) hold at most
//! [`STREAM_BUFFER_BYTES`] of output data between them — a single larger response is let through
//! alone. A runtime that sends faster than the client reads waits in `send-response` (its worker
//! thread sleeps between tries) until there is room, and never past its call's deadline; the
//! stream is then ended with an error that says the client did not read
//! ([`StreamSink::stalled`]).

use crate::codec::{Parameters, Tensor};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::error::TrySendError;

/// How many responses of one streaming call may wait for the client before the runtime waits.
pub(crate) const STREAM_CAPACITY: usize = 16;

/// How many bytes of output data one stream's responses may hold, between the runtime and the
/// client's connection, before the runtime waits (16 MiB).
pub(crate) const STREAM_BUFFER_BYTES: u64 = 16 << 20;

/// How long a runtime waits between tries when the stream is full.
const RETRY_INTERVAL: Duration = Duration::from_millis(1);

/// One response of a streaming call, sent before the call ends. It holds its bytes of the
/// stream's buffer until it is dropped (see [`PartialResponse::take_ticket`]).
#[derive(Debug)]
pub(crate) struct PartialResponse {
    pub outputs: Vec<Tensor>,
    pub parameters: Parameters,
    ticket: Option<StreamTicket>,
}

impl PartialResponse {
    /// A response holding no bytes of any stream's buffer (yet).
    pub(crate) fn new(outputs: Vec<Tensor>, parameters: Parameters) -> Self {
        PartialResponse {
            outputs,
            parameters,
            ticket: None,
        }
    }

    /// The response's hold on its stream's buffer, to keep until what it became (a reply, an
    /// encoded event) has left for the client.
    pub(crate) fn take_ticket(&mut self) -> Option<StreamTicket> {
        self.ticket.take()
    }

    /// The bytes the response counts for in its stream's buffer.
    fn bytes(&self) -> u64 {
        let outputs: usize = self
            .outputs
            .iter()
            .map(|output| output.name.len() + output.data.len() + 8 * output.shape.len())
            .sum();
        outputs as u64
    }
}

/// Bytes of one stream's buffer held by one response, given back when dropped.
#[derive(Debug)]
pub(crate) struct StreamTicket {
    gauge: Arc<Gauge>,
    bytes: u64,
}

impl Drop for StreamTicket {
    fn drop(&mut self) {
        self.gauge.held.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// What one stream's responses hold, and whether a send gave up waiting for the client.
#[derive(Debug, Default)]
struct Gauge {
    held: AtomicU64,
    stalled: AtomicBool,
}

/// Where a streaming call's responses go as the runtime sends them (made by the server's
/// `stream_channel`, holding at most [`STREAM_CAPACITY`] responses and [`STREAM_BUFFER_BYTES`]
/// of their data).
#[derive(Debug, Clone)]
pub struct StreamSink {
    sender: tokio::sync::mpsc::Sender<PartialResponse>,
    gauge: Arc<Gauge>,
    limit: u64,
}

impl StreamSink {
    /// Whether a response waited for the client until the call's deadline (the client stopped
    /// reading, or read too slowly).
    pub(crate) fn stalled(&self) -> bool {
        self.gauge.stalled.load(Ordering::Acquire)
    }

    /// Bytes the stream's responses hold now.
    #[cfg(test)]
    fn held(&self) -> u64 {
        self.gauge.held.load(Ordering::Acquire)
    }

    /// A ticket for `bytes` when the buffer has room for them (or is empty).
    fn admit(&self, bytes: u64) -> Option<StreamTicket> {
        let admitted = self
            .gauge
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held == 0 || held.saturating_add(bytes) <= self.limit).then(|| held + bytes)
            });
        admitted.ok().map(|_| StreamTicket {
            gauge: self.gauge.clone(),
            bytes,
        })
    }
}

/// A channel for one streaming call's responses, holding at most [`STREAM_CAPACITY`] of them
/// and [`STREAM_BUFFER_BYTES`] of their data.
pub(crate) fn stream_channel() -> (StreamSink, tokio::sync::mpsc::Receiver<PartialResponse>) {
    with_limits(STREAM_CAPACITY, STREAM_BUFFER_BYTES)
}

fn with_limits(
    capacity: usize,
    limit: u64,
) -> (StreamSink, tokio::sync::mpsc::Receiver<PartialResponse>) {
    let (sender, receiver) = tokio::sync::mpsc::channel(capacity);
    let sink = StreamSink {
        sender,
        gauge: Arc::default(),
        limit,
    };
    (sink, receiver)
}

/// Why a response could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SendFailure {
    /// The receiver is gone: the client left.
    ClientGone,
    /// The stream stayed full until the call's deadline.
    DeadlinePassed,
}

/// Sends `response` from a worker thread (blocking, not async), waiting while the stream is
/// full (in responses or in bytes), until `deadline` at the latest.
pub(super) fn send_blocking(
    sink: &StreamSink,
    mut response: PartialResponse,
    deadline: Instant,
) -> Result<(), SendFailure> {
    let bytes = response.bytes();
    loop {
        if sink.sender.is_closed() {
            return Err(SendFailure::ClientGone);
        }
        if let Some(ticket) = sink.admit(bytes) {
            response.ticket = Some(ticket);
            match sink.sender.try_send(response) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Closed(_)) => return Err(SendFailure::ClientGone),
                Err(TrySendError::Full(mut back)) => {
                    back.ticket = None;
                    response = back;
                }
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            sink.gauge.stalled.store(true, Ordering::Release);
            return Err(SendFailure::DeadlinePassed);
        }
        std::thread::sleep(RETRY_INTERVAL.min(left));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::DataType;

    fn response() -> PartialResponse {
        PartialResponse::new(Vec::new(), Parameters::new())
    }

    fn sized(bytes: usize) -> PartialResponse {
        let blob = Tensor {
            name: String::new(),
            datatype: DataType::Uint8,
            shape: Vec::new(),
            data: vec![0; bytes],
            parameters: Parameters::new(),
        };
        PartialResponse::new(vec![blob], Parameters::new())
    }

    #[test]
    fn a_full_channel_waits_for_room() {
        let (sink, mut receiver) = with_limits(1, STREAM_BUFFER_BYTES);
        let deadline = Instant::now() + Duration::from_secs(10);
        send_blocking(&sink, response(), deadline).unwrap();
        let reader = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            let mut received = 0;
            while receiver.blocking_recv().is_some() {
                received += 1;
            }
            received
        });
        let started = Instant::now();
        send_blocking(&sink, response(), deadline).unwrap();
        assert!(
            started.elapsed() >= Duration::from_millis(10),
            "waited for room"
        );
        drop(sink);
        assert_eq!(reader.join().unwrap(), 2);
    }

    #[test]
    fn a_full_channel_fails_at_the_deadline() {
        let (sink, _receiver) = with_limits(1, STREAM_BUFFER_BYTES);
        let deadline = Instant::now() + Duration::from_millis(20);
        send_blocking(&sink, response(), deadline).unwrap();
        assert!(!sink.stalled());
        assert_eq!(
            send_blocking(&sink, response(), deadline),
            Err(SendFailure::DeadlinePassed)
        );
        assert!(Instant::now() >= deadline);
        assert!(sink.stalled(), "the stall is remembered for the error");
    }

    #[test]
    fn bytes_held_bound_the_stream_until_their_responses_are_dropped() {
        let (sink, mut receiver) = with_limits(100, 1000);
        let deadline = Instant::now() + Duration::from_millis(20);
        send_blocking(&sink, sized(600), deadline).unwrap();
        assert_eq!(sink.held(), 600);
        assert_eq!(
            send_blocking(&sink, sized(600), deadline),
            Err(SendFailure::DeadlinePassed),
            "over the byte limit with room for 99 more responses"
        );
        let mut first = receiver.try_recv().unwrap();
        let ticket = first.take_ticket();
        drop(first);
        assert_eq!(
            sink.held(),
            600,
            "the ticket holds the bytes, not the response"
        );
        drop(ticket);
        assert_eq!(sink.held(), 0);
        let deadline = Instant::now() + Duration::from_millis(20);
        send_blocking(&sink, sized(5000), deadline).unwrap();
        assert_eq!(sink.held(), 5000, "a larger response passes alone");
    }

    #[test]
    fn a_closed_channel_fails_at_once() {
        let (sink, receiver) = with_limits(1, STREAM_BUFFER_BYTES);
        drop(receiver);
        let deadline = Instant::now() + Duration::from_secs(10);
        assert_eq!(
            send_blocking(&sink, response(), deadline),
            Err(SendFailure::ClientGone)
        );
    }
}

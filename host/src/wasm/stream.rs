//! The responses a streaming call sends before it ends, and the bounded channel they go through.
//!
//! The channel holds at most [`STREAM_CAPACITY`] responses: a runtime that sends faster than the
//! client reads waits in `send-response` (its worker thread sleeps between tries) until there is
//! room, and never past its call's deadline.

use crate::codec::{Parameters, Tensor};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::error::TrySendError;

/// How many responses of one streaming call may wait for the client before the runtime waits.
pub(crate) const STREAM_CAPACITY: usize = 16;

/// How long a runtime waits between tries when the channel is full.
const RETRY_INTERVAL: Duration = Duration::from_millis(1);

/// One response of a streaming call, sent before the call ends.
#[derive(Debug, Clone, PartialEq)]
pub struct PartialResponse {
    pub outputs: Vec<Tensor>,
    pub parameters: Parameters,
}

/// Where a streaming call's responses go as the runtime sends them (create it with
/// `tokio::sync::mpsc::channel(STREAM_CAPACITY)`).
pub(crate) type StreamSink = tokio::sync::mpsc::Sender<PartialResponse>;

/// Why a response could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SendFailure {
    /// The receiver is gone: the client left.
    ClientGone,
    /// The channel stayed full until the call's deadline.
    DeadlinePassed,
}

/// Sends `response` from a worker thread (blocking, not async), waiting while the channel is
/// full, until `deadline` at the latest.
pub(super) fn send_blocking(
    sink: &StreamSink,
    mut response: PartialResponse,
    deadline: Instant,
) -> Result<(), SendFailure> {
    loop {
        match sink.try_send(response) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Closed(_)) => return Err(SendFailure::ClientGone),
            Err(TrySendError::Full(back)) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(SendFailure::DeadlinePassed);
                }
                response = back;
                std::thread::sleep(RETRY_INTERVAL.min(left));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response() -> PartialResponse {
        PartialResponse {
            outputs: Vec::new(),
            parameters: Parameters::new(),
        }
    }

    #[test]
    fn a_full_channel_waits_for_room() {
        let (sink, mut receiver) = tokio::sync::mpsc::channel(1);
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
        let (sink, _receiver) = tokio::sync::mpsc::channel(1);
        let deadline = Instant::now() + Duration::from_millis(20);
        send_blocking(&sink, response(), deadline).unwrap();
        assert_eq!(
            send_blocking(&sink, response(), deadline),
            Err(SendFailure::DeadlinePassed)
        );
        assert!(Instant::now() >= deadline);
    }

    #[test]
    fn a_closed_channel_fails_at_once() {
        let (sink, receiver) = tokio::sync::mpsc::channel(1);
        drop(receiver);
        let deadline = Instant::now() + Duration::from_secs(10);
        assert_eq!(
            send_blocking(&sink, response(), deadline),
            Err(SendFailure::ClientGone)
        );
    }
}

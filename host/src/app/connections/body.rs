//! Request and response bodies on a watched connection: a request body must keep arriving
//! ([`ProgressBody`]); a response holds its request open until it ends ([`TrackedBody`]).

use super::io::InFlight;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// How fast a request body must arrive.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyPace {
    /// The longest wait for the next part of the body; also the head start before
    /// `min_rate` counts.
    pub(crate) read_timeout: Duration,
    /// The slowest average rate, in bytes per second (0: any).
    pub(crate) min_rate: u64,
}

/// A request body that fails when it arrives too slowly: when nothing comes for
/// [`BodyPace::read_timeout`], or when, past that head start, it has averaged less than
/// [`BodyPace::min_rate`] since the request began.
#[derive(Debug)]
pub(crate) struct ProgressBody<B> {
    inner: B,
    pace: BodyPace,
    started: Instant,
    last: Instant,
    received: u64,
    timer: Option<Pin<Box<Sleep>>>,
}

impl<B> ProgressBody<B> {
    /// Watches `inner`, a body whose request began now.
    pub(crate) fn new(inner: B, pace: BodyPace) -> ProgressBody<B> {
        let now = Instant::now();
        ProgressBody {
            inner,
            pace,
            started: now,
            last: now,
            received: 0,
            timer: None,
        }
    }

    /// When the body is too slow if nothing more arrives.
    fn deadline(&self) -> Instant {
        let next_part = self.last + self.pace.read_timeout;
        if self.pace.min_rate == 0 {
            return next_part;
        }
        let earned = Duration::from_secs_f64(self.received as f64 / self.pace.min_rate as f64);
        next_part.min(self.started + self.pace.read_timeout + earned)
    }

    fn too_slow(&self) -> SlowBody {
        SlowBody {
            received: self.received,
            elapsed: self.started.elapsed(),
            pace: self.pace,
        }
    }
}

impl<B> Body for ProgressBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(context) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    this.last = Instant::now();
                }
                return Poll::Ready(Some(Ok(frame)));
            }
            Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error.into()))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        loop {
            let deadline = this.deadline();
            if deadline <= Instant::now() {
                return Poll::Ready(Some(Err(Box::new(this.too_slow()))));
            }
            let timer = this
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if timer.deadline() != deadline {
                timer.as_mut().reset(deadline);
            }
            if timer.as_mut().poll(context).is_pending() {
                return Poll::Pending;
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body that arrived too slowly.
#[derive(Debug, thiserror::Error)]
#[error(
    "the request body arrived too slowly: {received} bytes in {:.1} s (the server waits {} s at most for each part, and past that wants {} bytes/s on average)",
    elapsed.as_secs_f64(), pace.read_timeout.as_secs_f64(), pace.min_rate
)]
pub(crate) struct SlowBody {
    received: u64,
    elapsed: Duration,
    pace: BodyPace,
}

/// A response body that keeps its request open (on its connection's tracker) until it ends.
#[derive(Debug)]
pub(crate) struct TrackedBody<B> {
    inner: B,
    _open: Option<InFlight>,
}

impl<B> TrackedBody<B> {
    /// `inner`, holding `open` until it is dropped.
    pub(crate) fn new(inner: B, open: Option<InFlight>) -> TrackedBody<B> {
        TrackedBody { inner, _open: open }
    }
}

impl<B: Body + Unpin> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(context)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_must_keep_coming_and_past_its_head_start_average_the_rate() {
        let pace = BodyPace {
            read_timeout: Duration::from_secs(2),
            min_rate: 100,
        };
        let mut body = ProgressBody::new((), pace);
        assert_eq!(body.deadline(), body.started + Duration::from_secs(2));
        // 1000 bytes earn 10 s past the head start; the next part is due 2 s after the last.
        body.received = 1000;
        body.last = body.started + Duration::from_secs(1);
        assert_eq!(body.deadline(), body.started + Duration::from_secs(3));
        body.last = body.started + Duration::from_secs(11);
        assert_eq!(body.deadline(), body.started + Duration::from_secs(12));
        body.pace.min_rate = 0;
        assert_eq!(body.deadline(), body.started + Duration::from_secs(13));
        assert!(body.too_slow().to_string().contains("1000 bytes"));
    }
}

//! A body that counts the gRPC messages passing through it (py-grpc-prometheus'
//! `grpc_server_msg_received` / `_sent`), following the framing: each message is a compression
//! flag, a 4-byte big-endian length and that many bytes.

use crate::codec::grpc::Framing;
use bytes::Buf;
use http_body::{Body, Frame};
use prometheus_client::metrics::counter::Counter;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Counts, in `counter`, each gRPC message of the wrapped body.
pub(crate) struct CountMessages<B> {
    inner: B,
    counter: Counter,
    framing: Framing,
}

impl<B> CountMessages<B> {
    /// Wraps `inner`, counting its messages in `counter`.
    pub(crate) fn new(inner: B, counter: Counter) -> Self {
        CountMessages {
            inner,
            counter,
            framing: Framing::default(),
        }
    }

    /// Follows the framing through `data`, counting each message whose prefix completes.
    fn follow(&mut self, data: &[u8]) {
        let before = self.framing.messages();
        self.framing.follow(data);
        let begun = self.framing.messages() - before;
        if begun > 0 {
            self.counter.inc_by(begun);
        }
    }
}

impl<B> Body for CountMessages<B>
where
    B: Body + Unpin,
    B::Data: Buf,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        if let Some(data) = frame.data_ref() {
            let chunk = data.chunk();
            // A `Buf` may hold its bytes in pieces; `chunk` is the first. The bodies here
            // (tonic's) hold them in one.
            if chunk.len() == data.remaining() {
                self.follow(chunk);
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_split_across_frames_are_counted_once() {
        let counter = Counter::default();
        let mut count = CountMessages::new((), counter.clone());
        let mut two = vec![0, 0, 0, 0, 3, 1, 2, 3, 0, 0, 0, 0, 0];
        two.extend([0, 0, 0, 0, 1]);
        count.follow(&two[..3]);
        count.follow(&two[3..7]);
        count.follow(&two[7..]);
        count.follow(&[9]);
        assert_eq!(counter.get(), 3);
    }
}

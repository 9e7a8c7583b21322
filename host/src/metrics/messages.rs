//! A body that counts the gRPC messages passing through it (py-grpc-prometheus'
//! `grpc_server_msg_received` / `_sent`), following the framing: each message is a compression
//! flag, a 4-byte big-endian length and that many bytes.

use bytes::Buf;
use http_body::{Body, Frame};
use prometheus_client::metrics::counter::Counter;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The bytes of a gRPC message's prefix.
const PREFIX: usize = 5;

/// Counts, in `counter`, each gRPC message of the wrapped body.
pub(crate) struct CountMessages<B> {
    inner: B,
    counter: Counter,
    /// The current message's prefix as read so far.
    prefix: [u8; PREFIX],
    prefix_read: usize,
    /// The payload bytes of the current message still to come, once its prefix is read.
    remaining: Option<u64>,
}

impl<B> CountMessages<B> {
    /// Wraps `inner`, counting its messages in `counter`.
    pub(crate) fn new(inner: B, counter: Counter) -> Self {
        CountMessages {
            inner,
            counter,
            prefix: [0; PREFIX],
            prefix_read: 0,
            remaining: None,
        }
    }

    /// Follows the framing through `data`, counting each message whose prefix completes.
    fn follow(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match &mut self.remaining {
                None => {
                    let take = (PREFIX - self.prefix_read).min(data.len());
                    self.prefix[self.prefix_read..self.prefix_read + take]
                        .copy_from_slice(&data[..take]);
                    self.prefix_read += take;
                    data = &data[take..];
                    if self.prefix_read == PREFIX {
                        let length = [
                            self.prefix[1],
                            self.prefix[2],
                            self.prefix[3],
                            self.prefix[4],
                        ];
                        self.remaining = Some(u64::from(u32::from_be_bytes(length)));
                        self.prefix_read = 0;
                        self.counter.inc();
                    }
                }
                Some(0) => self.remaining = None,
                Some(remaining) => {
                    let take = (*remaining).min(data.len() as u64);
                    *remaining -= take;
                    data = &data[take as usize..];
                }
            }
        }
        if self.remaining == Some(0) {
            self.remaining = None;
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

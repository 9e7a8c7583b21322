//! A unary call carries exactly one message. tonic reads the first and drops any that follow
//! (it drains the body looking for trailers); [`OneMessage`] refuses them instead, with
//! INVALID_ARGUMENT, as gRPC's own servers do.

use bytes::Bytes;
use http_body::{Body, Frame};
use std::pin::Pin;
use std::task::{Context, Poll};

/// The bytes of a gRPC message's prefix: a compression flag and a 4-byte big-endian length.
const PREFIX: usize = 5;

/// A request body that fails with INVALID_ARGUMENT once data follows its first message.
pub(crate) struct OneMessage {
    inner: tonic::body::Body,
    /// The prefix of the first message as read so far.
    prefix: Vec<u8>,
    /// The payload bytes of the first message still to come, once its prefix is read.
    remaining: Option<u64>,
}

impl OneMessage {
    /// Wraps a unary call's body.
    pub(crate) fn new(inner: tonic::body::Body) -> Self {
        OneMessage {
            inner,
            prefix: Vec::with_capacity(PREFIX),
            remaining: None,
        }
    }

    /// Follows the message framing through `data`; false once data passes the first message.
    fn within_first_message(&mut self, mut data: &[u8]) -> bool {
        while !data.is_empty() {
            match &mut self.remaining {
                None => {
                    let take = (PREFIX - self.prefix.len()).min(data.len());
                    self.prefix.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if self.prefix.len() == PREFIX {
                        let length = [
                            self.prefix[1],
                            self.prefix[2],
                            self.prefix[3],
                            self.prefix[4],
                        ];
                        self.remaining = Some(u64::from(u32::from_be_bytes(length)));
                    }
                }
                Some(0) => return false,
                Some(remaining) => {
                    let take = (*remaining).min(data.len() as u64);
                    *remaining -= take;
                    data = &data[take as usize..];
                }
            }
        }
        true
    }
}

impl Body for OneMessage {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        if let Some(data) = frame.data_ref()
            && !self.within_first_message(data)
        {
            return Poll::Ready(Some(Err(tonic::Status::invalid_argument(
                "a unary call carries exactly one message; this one carries more",
            ))));
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

    fn message(payload: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0];
        bytes.extend((payload.len() as u32).to_be_bytes());
        bytes.extend_from_slice(payload);
        bytes
    }

    #[test]
    fn data_past_the_first_message_is_refused_however_it_is_split() {
        let one = message(b"hello");
        let two = [message(b"hello"), message(b"again")].concat();
        for split in 0..one.len() {
            let mut body = OneMessage::new(tonic::body::Body::empty());
            assert!(body.within_first_message(&one[..split]));
            assert!(body.within_first_message(&one[split..]));
        }
        for split in 0..two.len() {
            let mut body = OneMessage::new(tonic::body::Body::empty());
            let first = body.within_first_message(&two[..split]);
            let second = body.within_first_message(&two[split..]);
            assert!(!(first && second), "split at {split}");
        }
        let mut empty = OneMessage::new(tonic::body::Body::empty());
        assert!(empty.within_first_message(&message(b"")));
        assert!(!empty.within_first_message(&[0]));
    }
}

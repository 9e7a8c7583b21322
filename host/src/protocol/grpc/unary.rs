//! A unary call carries exactly one message. tonic reads the first and drops any that follow
//! (it drains the body looking for trailers); [`OneMessage`] refuses them instead, with
//! INVALID_ARGUMENT, as gRPC's own servers do.

use crate::codec::grpc::Framing;
use bytes::Bytes;
use http_body::{Body, Frame};
use std::pin::Pin;
use std::task::{Context, Poll};

/// A request body that fails with INVALID_ARGUMENT once data follows its first message.
pub(crate) struct OneMessage {
    inner: tonic::body::Body,
    framing: Framing,
}

impl OneMessage {
    /// Wraps a unary call's body.
    pub(crate) fn new(inner: tonic::body::Body) -> Self {
        OneMessage {
            inner,
            framing: Framing::default(),
        }
    }

    /// Follows the message framing through `data`; false once data passes the first message.
    fn within_first_message(&mut self, data: &[u8]) -> bool {
        self.framing.follow(data);
        !self.framing.past_first_message()
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

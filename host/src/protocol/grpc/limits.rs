//! gRPC's message size limit, answered as gRPC's own servers answer it: a message over the
//! limit is RESOURCE_EXHAUSTED (tonic says OUT_OF_RANGE). The status travels in the headers or
//! in the trailers, so both are rewritten.

use std::pin::Pin;

/// Answers a message over the size limit with RESOURCE_EXHAUSTED.
pub(crate) fn oversized_message_status<B>(
    mut response: axum::http::Response<B>,
) -> axum::http::Response<OversizedStatus<B>> {
    fix_status(response.headers_mut());
    response.map(|inner| OversizedStatus { inner })
}

fn fix_status(headers: &mut axum::http::HeaderMap) {
    let oversized = headers
        .get("grpc-status")
        .is_some_and(|status| status == "11")
        && headers
            .get("grpc-message")
            .and_then(|message| message.to_str().ok())
            .is_some_and(|message| {
                message
                    .replace("%20", " ")
                    .contains("message length too large")
            });
    if oversized {
        headers.insert("grpc-status", axum::http::HeaderValue::from_static("8"));
    }
}

/// A response body whose trailers get [`fix_status`].
#[derive(Default)]
pub(crate) struct OversizedStatus<B> {
    inner: B,
}

impl<B: http_body::Body + Unpin> http_body::Body for OversizedStatus<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx).map(|frame| {
            frame.map(|frame| {
                frame.map(|mut frame| {
                    if let Some(trailers) = frame.trailers_mut() {
                        fix_status(trailers);
                    }
                    frame
                })
            })
        })
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

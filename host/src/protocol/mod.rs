//! The protocol front ends: REST ([`rest`]) and gRPC ([`grpc`]) over the one inference core
//! ([`crate::core`]).
//!
//! A front end decodes its wire format into [`crate::codec`] types and a
//! [`crate::core::RequestContext`], calls the core, and encodes the answer; errors map to
//! status codes in one place ([`error`]).

pub(crate) mod binary;
pub(crate) mod budget;
pub(crate) mod cors;
pub(crate) mod error;
pub(crate) mod grpc;
pub(crate) mod model_config;
pub(crate) mod openapi;
pub(crate) mod request_id;
pub(crate) mod rest;
pub(crate) mod routes;

use crate::core::{Headers, ServiceError};
use axum::http::{HeaderName, HeaderValue};

/// Bodies and messages larger than this are decoded / encoded on a blocking thread, so that
/// the async threads never spend long on one request.
pub(crate) const INLINE_CODEC_BYTES: usize = 256 * 1024;

/// Runs codec work over `bytes` of data (`what`: "decoding", "encoding"): inline when small,
/// else on a blocking thread.
pub(crate) async fn offload<T: Send + 'static>(
    what: &'static str,
    bytes: usize,
    work: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    if bytes <= INLINE_CODEC_BYTES {
        return work();
    }
    tokio::task::spawn_blocking(work).await.map_err(|error| {
        ServiceError::internal(format!("{what} failed: {error}"), Some(Box::new(error)))
    })?
}

/// The runtime's response headers that HTTP headers (and gRPC metadata) can carry; a name or
/// value the transport refuses is left out.
pub(crate) fn response_headers(
    headers: Headers,
) -> impl Iterator<Item = (HeaderName, HeaderValue)> {
    headers.into_iter().filter_map(|(name, value)| {
        Some((
            HeaderName::try_from(name).ok()?,
            HeaderValue::try_from(value).ok()?,
        ))
    })
}

//! The protocol front ends: REST ([`rest`]) and gRPC ([`grpc`]) over the one inference core
//! ([`crate::core`]).
//!
//! A front end decodes its wire format into [`crate::codec`] types and a
//! [`crate::core::RequestContext`], calls the core, and encodes the answer; errors map to
//! status codes in one place ([`error`]).

pub mod binary;
pub mod cors;
pub mod error;
pub mod grpc;
pub mod model_config;
pub mod openapi;
pub mod request_id;
pub mod rest;
pub mod routes;

use crate::core::{Headers, ServiceError};
use axum::http::{HeaderName, HeaderValue};

/// Bodies and messages larger than this are decoded / encoded on a blocking thread, so that
/// the async threads never spend long on one request.
pub const INLINE_CODEC_BYTES: usize = 256 * 1024;

/// Runs codec work over `bytes` of data (`what`: "decoding", "encoding"): inline when small,
/// else on a blocking thread.
pub async fn offload<T: Send + 'static>(
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
pub fn transport_headers(headers: Headers) -> impl Iterator<Item = (HeaderName, HeaderValue)> {
    headers.into_iter().filter_map(|(name, value)| {
        Some((
            HeaderName::try_from(name).ok()?,
            HeaderValue::try_from(value).ok()?,
        ))
    })
}

//! The Open Inference Protocol over gRPC (tonic): `inference.GRPCInferenceService`, with
//! `grpc.health.v1.Health` ([`health`]) and server reflection v1 and v1alpha ([`reflection`])
//! beside it on the same port.
//!
//! A thin front end: messages are decoded ([`messages`], with the conversions of
//! [`crate::codec::grpc`]), run by the same [`InferenceService`] as REST, and encoded back;
//! errors map to gRPC statuses in [`crate::protocol::error`]. The handlers are in [`handlers`],
//! a model's metadata, configuration and statistics as messages in [`model`], the bidirectional
//! stream in [`stream`], the message size limit's status in [`limits`], metrics and spans in
//! [`observe`].

mod handlers;
pub(crate) mod health;
mod limits;
mod messages;
mod model;
pub(crate) mod observe;
mod stream;
mod unary;

pub(crate) use limits::oversized_message_status;

use crate::core::InferenceService;
use std::sync::Arc;
use std::time::Duration;
use tonic::codec::CompressionEncoding;
use tonic_reflection::server::{v1, v1alpha};

pub(crate) use crate::codec::grpc::pb;

use pb::grpc_inference_service_server::GrpcInferenceServiceServer;

/// Options of the gRPC front end.
#[derive(Debug, Clone)]
pub(crate) struct GrpcOptions {
    /// The largest message received or sent.
    pub max_message_bytes: usize,
    /// The most elements one tensor may hold.
    pub max_tensor_elements: u64,
}

/// The tonic service for `inference.GRPCInferenceService`, with its limits, accepting gzip and
/// deflate messages (decompressed within the limit) and answering compressed when the client's
/// `grpc-accept-encoding` allows it (unary answers under [`MIN_COMPRESSED_BYTES`] are not).
pub(crate) fn service(
    core: Arc<InferenceService>,
    options: &GrpcOptions,
) -> GrpcInferenceServiceServer<Grpc> {
    GrpcInferenceServiceServer::new(Grpc {
        core,
        max_tensor_elements: options.max_tensor_elements,
    })
    .max_decoding_message_size(options.max_message_bytes)
    .max_encoding_message_size(options.max_message_bytes)
    .accept_compressed(CompressionEncoding::Gzip)
    .accept_compressed(CompressionEncoding::Deflate)
    .send_compressed(CompressionEncoding::Gzip)
    .send_compressed(CompressionEncoding::Deflate)
}

/// The smallest unary answer sent compressed, in bytes (the REST port's minimum too).
pub(crate) const MIN_COMPRESSED_BYTES: usize = 1024;

/// Server reflection, v1 and v1alpha: `inference.GRPCInferenceService`, `grpc.health.v1.Health`
/// and reflection itself, listed and described (as grpcurl and UI tools ask). `None` (with the
/// error logged) in the impossible case that the descriptors built in do not decode.
pub(crate) fn reflection() -> (
    Option<v1::ServerReflectionServer<impl v1::ServerReflection>>,
    Option<v1alpha::ServerReflectionServer<impl v1alpha::ServerReflection>>,
) {
    let builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(mlhost_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    (
        built("v1", builder().build_v1()),
        built("v1alpha", builder().build_v1alpha()),
    )
}

/// A reflection service that was built, or `None` with the error logged.
fn built<S>(version: &str, result: Result<S, tonic_reflection::server::Error>) -> Option<S> {
    result
        .map_err(|error| tracing::error!("gRPC reflection {version} is off: {error}"))
        .ok()
}

/// The gRPC front end over the inference core.
#[derive(Clone)]
pub(crate) struct Grpc {
    core: Arc<InferenceService>,
    max_tensor_elements: u64,
}

/// A message's model version: the default one when empty.
fn version(version: &str) -> Option<&str> {
    (!version.is_empty()).then_some(version)
}

/// A call's gRPC deadline (`grpc-timeout`): how long the client will wait.
fn grpc_timeout(headers: &axum::http::HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

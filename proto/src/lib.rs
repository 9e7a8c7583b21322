//! The Open Inference Protocol's gRPC messages, client and server (`inference`), generated from
//! `grpc_service.proto` at build time.

/// The messages and service of `inference.GRPCInferenceService`.
#[allow(clippy::all, missing_docs, unreachable_pub)]
pub mod inference {
    tonic::include_proto!("inference");
}

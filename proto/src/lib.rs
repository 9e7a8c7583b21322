//! The Open Inference Protocol's gRPC messages, client and server (`inference`), generated from
//! `grpc_service.proto` at build time, and ModelMesh's model-runtime SPI (`mmesh`), generated
//! from `model-runtime.proto`.

/// The messages and service of `inference.GRPCInferenceService`.
#[allow(clippy::all, missing_docs, unreachable_pub)]
pub mod inference {
    tonic::include_proto!("inference");
}

/// The messages and service of ModelMesh's `mmesh.ModelRuntime` (kserve/modelmesh's
/// `src/main/proto/current/model-runtime.proto`).
#[allow(clippy::all, missing_docs, unreachable_pub)]
pub mod mmesh {
    tonic::include_proto!("mmesh");
}

/// The encoded `FileDescriptorSet` of `grpc_service.proto` (package `inference`), for server
/// reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/inference_descriptor.bin"));

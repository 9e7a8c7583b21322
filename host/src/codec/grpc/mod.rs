//! The gRPC encoding of inference requests and responses (`inference.GRPCInferenceService`),
//! shared by the server's front end and the `mlhost infer` client: the generated messages
//! ([`pb`]) and their conversions to and from the codec's types, typed `contents` and
//! `raw_input_contents` in, typed or raw contents out, with the same checks as the REST decoder.
//!
//! - [`request`]: `ModelInferRequest` decoded (server) and encoded (client);
//! - [`response`]: `ModelInferResponse` encoded (server) and decoded (client);
//! - [`tensors`]: the tensors of either, checked one by one;
//! - [`contents`]: typed contents ↔ little-endian bytes;
//! - [`parameters`]: parameter maps in both directions;
//! - [`framing`]: the messages' framing on the wire, followed through a body's data.
//!
//! What only the server says (a model's metadata, configuration and statistics) is encoded in
//! `protocol::grpc`.

mod contents;
mod framing;
mod parameters;
mod request;
mod response;
mod tensors;

use crate::codec::TensorError;

pub(crate) use framing::Framing;
pub(crate) use request::{decode_request, encode_request};
pub(crate) use response::{decode_response, encode_response};

/// The messages and service generated from `proto/grpc_service.proto` (the `mlhost-proto`
/// crate).
pub use mlhost_proto::inference as pb;

/// Why a gRPC request could not be decoded: always INVALID_ARGUMENT.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    #[error("input '{}': {source}", crate::codec::quoted(input))]
    Tensor {
        input: String,
        #[source]
        source: TensorError,
    },
    #[error("input '{}': {message}", crate::codec::quoted(input))]
    Contents { input: String, message: String },
    #[error("raw_input_contents has {raw} entries for {inputs} inputs")]
    RawCount { raw: usize, inputs: usize },
    #[error("parameter '{}' has no value", crate::codec::quoted(.0))]
    Parameter(String),
    /// The tensor (`input 'x'` or `output 'y'`) names a shared-memory region.
    #[error("{0}: {unsupported}", unsupported = crate::codec::shared_memory::UNSUPPORTED)]
    SharedMemory(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{
        DataType, InferenceRequest, InferenceResponse, ParameterValue, RequestedOutput, Tensor,
    };

    #[test]
    fn a_request_and_response_survive_the_client_round_trip() {
        let tensor = Tensor {
            name: "x".into(),
            datatype: DataType::Fp32,
            shape: vec![2],
            data: [1.5f32.to_le_bytes(), (-2f32).to_le_bytes()].concat(),
            parameters: vec![("content_type".into(), ParameterValue::String("np".into()))],
        };
        let request = InferenceRequest {
            id: Some("r1".into()),
            inputs: vec![tensor.clone()],
            outputs: vec![RequestedOutput {
                name: "y".into(),
                parameters: vec![],
            }],
            parameters: vec![("p".into(), ParameterValue::Int64(3))],
        };
        let sent = encode_request(request.clone(), "m", Some("2"));
        assert_eq!(
            (sent.model_name.as_str(), sent.model_version.as_str()),
            ("m", "2")
        );
        let (received, raw) = decode_request(sent, 1 << 20).unwrap();
        assert!(raw);
        assert_eq!(received, request);
        let response = InferenceResponse {
            model_name: "m".into(),
            model_version: None,
            id: Some("r1".into()),
            outputs: vec![tensor],
            parameters: vec![],
        };
        for raw in [false, true] {
            let decoded = decode_response(encode_response(response.clone(), raw), 1 << 20);
            assert_eq!(decoded.unwrap(), response);
        }
    }
}

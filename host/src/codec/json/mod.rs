//! The REST (JSON) encoding of inference requests and responses.
//!
//! Requests are parsed in one pass: the envelope with serde, and each input's `data` (flat or
//! nested, borrowed from the body as raw JSON) straight into little-endian bytes of the input's
//! datatype, with no intermediate `serde_json::Value`. Responses are written the same way back.
//!
//! - [`request`]: the request envelope, decoded (server) and encoded (client);
//! - [`response`]: the response envelope, encoded (server) and decoded (client);
//! - [`tensor`]: one tensor in either direction, its data inline or in the binary extension;
//! - [`data`]: the streaming deserializer of a tensor's `data` array into bytes;
//! - [`parameters`]: parameter objects in either direction.

mod data;
mod parameters;
mod request;
mod response;
mod tensor;

use super::TensorError;

pub(crate) use parameters::ParametersJson;
pub(crate) use request::{decode_request, encode_request};
pub(crate) use response::{decode_response, encode_response};

/// Why a request body could not be decoded: always the client's fault (400).
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    #[error("malformed request body: {0}")]
    Syntax(#[from] serde_json::Error),
    #[error("input '{}': {source}", crate::codec::quoted(input))]
    Tensor {
        input: String,
        #[source]
        source: TensorError,
    },
    #[error("input '{}': invalid data: {source}", crate::codec::quoted(input))]
    Data {
        input: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("parameter '{}' must be a string, a number or a boolean", crate::codec::quoted(.0))]
    Parameter(String),
    #[error("input '{}': {reason}", crate::codec::quoted(input))]
    Binary { input: String, reason: String },
    #[error("the body holds {0} bytes of binary data past the last input's")]
    TrailingBinary(usize),
    /// The tensor (`input 'x'` or `output 'y'`) names a shared-memory region.
    #[error("{0}: {unsupported}", unsupported = crate::codec::shared_memory::UNSUPPORTED)]
    SharedMemory(String),
}

/// Why a response could not be encoded as JSON (a runtime's output that JSON cannot carry).
#[derive(Debug, thiserror::Error)]
#[error("cannot encode the response as JSON: {0}")]
pub(crate) struct EncodeError(#[from] serde_json::Error);

/// The parameter of inputs (and response outputs) whose data is binary, and its size in bytes.
pub(crate) const BINARY_DATA_SIZE: &str = "binary_data_size";

/// The binary tensor data extension's header: the length of the JSON part of a body that binary
/// data follows (`Inference-Header-Content-Length`).
pub(crate) const HEADER_LENGTH: &str = "inference-header-content-length";

/// An encoded body: a response, or a request a client sends.
#[derive(Debug)]
pub(crate) struct EncodedBody {
    /// The JSON, followed by the binary data of the outputs sent as binary.
    pub body: Vec<u8>,
    /// The length of the JSON part when some output is binary (the
    /// `Inference-Header-Content-Length` header); `None` for a plain JSON body.
    pub json_length: Option<usize>,
}

impl EncodedBody {
    /// A plain JSON body, or (when `binary` holds some tensors' data) the JSON followed by that
    /// data in order (the binary tensor data extension).
    fn new(json: Vec<u8>, binary: Option<Vec<&[u8]>>) -> Self {
        let Some(binary) = binary else {
            return EncodedBody {
                body: json,
                json_length: None,
            };
        };
        let mut body = json;
        let json_length = body.len();
        body.reserve_exact(binary.iter().map(|data| data.len()).sum());
        for data in binary {
            body.extend_from_slice(data);
        }
        EncodedBody {
            body,
            json_length: Some(json_length),
        }
    }
}

/// Helpers shared by the submodules' tests.
#[cfg(test)]
mod testing {
    use super::{DecodeError, decode_request};
    use crate::codec::InferenceRequest;

    /// Decodes a JSON request with no binary part and a generous element limit.
    pub(super) fn decode(body: &str) -> Result<InferenceRequest, DecodeError> {
        decode_request(body.as_bytes(), &[], 1 << 31)
    }

    /// A request with one input `x` of the given datatype, shape and data (as JSON text).
    pub(super) fn input(datatype: &str, shape: &str, data: &str) -> String {
        format!(
            r#"{{"inputs":[{{"name":"x","datatype":"{datatype}","shape":{shape},"data":{data}}}]}}"#
        )
    }
}

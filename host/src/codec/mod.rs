//! Protocol-free inference types: datatypes, tensors, requests and responses.
//!
//! Every front end (REST JSON today, gRPC later) decodes into these types and encodes from them;
//! the inference core and the wasm executor see nothing else. Tensor data is always held as
//! little-endian bytes, the layout that crosses into the runtime unchanged.

pub(crate) mod columns;
pub(crate) mod content_type;
pub(crate) mod grpc;
pub(crate) mod json;
mod quote;
pub(crate) mod shared_memory;
mod tensor;

pub(crate) use quote::{MESSAGE_LIMIT, capped, quoted};
pub use tensor::{DataType, Tensor};
pub(crate) use tensor::{TensorError, checked_shape};

/// A parameter value, as the protocol allows them.
#[derive(Debug, Clone, PartialEq)]
pub enum ParameterValue {
    Bool(bool),
    Int64(i64),
    Uint64(u64),
    Double(f64),
    String(String),
}

/// Named parameters of a request, tensor or response, in the order they arrived.
pub(crate) type Parameters = Vec<(String, ParameterValue)>;

/// The request parameter holding a client's timeout in microseconds (Triton's protocol): it
/// belongs to its request alone, so batches leave it out.
pub(crate) const TIMEOUT_PARAMETER: &str = "timeout";

/// The parameter carrying MLServer's custom headers between a runtime and the server: the text
/// of a JSON object of strings (a request body may give it as an object).
pub(crate) const HEADERS_PARAMETER: &str = "headers";

/// An output the client asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestedOutput {
    pub name: String,
    pub parameters: Parameters,
}

/// One inference request, decoded and validated.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InferenceRequest {
    pub id: Option<String>,
    pub inputs: Vec<Tensor>,
    pub outputs: Vec<RequestedOutput>,
    pub parameters: Parameters,
}

/// The answer to one inference request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InferenceResponse {
    pub model_name: String,
    pub model_version: Option<String>,
    pub id: Option<String>,
    pub outputs: Vec<Tensor>,
    pub parameters: Parameters,
}

/// The description of one input or output; `-1` marks a variable dimension.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorMetadata {
    pub name: String,
    pub datatype: DataType,
    pub shape: Vec<i64>,
    pub parameters: Parameters,
}

/// What a loaded model says of itself.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelMetadata {
    pub platform: String,
    pub inputs: Vec<TensorMetadata>,
    pub outputs: Vec<TensorMetadata>,
    pub parameters: Parameters,
}

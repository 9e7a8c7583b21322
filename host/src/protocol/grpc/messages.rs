//! Inference messages in and out of the front end: a `ModelInferRequest` decoded into a request
//! and its context, a reply encoded as a `ModelInferResponse` with its headers as metadata.
//! Conversions over large tensors run on a blocking thread.

use super::pb;
use crate::codec::InferenceRequest;
use crate::codec::grpc::{decode_request, encode_response};
use crate::core::{Headers, Reply, RequestContext, ServiceError};
use crate::protocol::offload;
use std::time::Duration;
use tonic::metadata::MetadataMap;

/// A decoded `ModelInferRequest`: the model, the request and its context, and whether it came
/// raw (its response then answers raw too, as tritonclient expects).
pub(super) struct Decoded {
    pub name: String,
    pub version: String,
    pub request: InferenceRequest,
    pub context: RequestContext,
    pub raw: bool,
}

impl Decoded {
    /// The version asked for; the default one when empty.
    pub(super) fn version(&self) -> Option<&str> {
        super::version(&self.version)
    }
}

/// Decodes a request; the call's deadline and metadata become its context. ModelMesh's
/// `mm-model-id` metadata, when present, names the model instead of `model_name`.
pub(super) async fn decode(
    message: pb::ModelInferRequest,
    metadata: MetadataMap,
    timeout: Option<Duration>,
    max_tensor_elements: u64,
) -> Result<Decoded, ServiceError> {
    let name = mesh_model_id(&metadata).unwrap_or_else(|| message.model_name.clone());
    let version = message.model_version.clone();
    let (mut request, raw) = offload("decoding", request_bytes(&message), move || {
        decode_request(message, max_tensor_elements).map_err(ServiceError::malformed)
    })
    .await?;
    let context = RequestContext::new(&mut request, metadata.into_headers(), timeout);
    Ok(Decoded {
        name,
        version,
        request,
        context,
        raw,
    })
}

/// The model ModelMesh names in `mm-model-id` (ASCII) or `mm-model-id-bin` (UTF-8), if any.
fn mesh_model_id(metadata: &MetadataMap) -> Option<String> {
    if let Some(id) = metadata.get("mm-model-id").and_then(|id| id.to_str().ok()) {
        return Some(id.to_string());
    }
    let id = metadata.get_bin("mm-model-id-bin")?.to_bytes().ok()?;
    String::from_utf8(id.to_vec()).ok()
}

/// Encodes a reply; its runtime's headers go to `metadata`.
pub(super) async fn encode(
    reply: Reply,
    raw: bool,
) -> Result<(pb::ModelInferResponse, Headers), ServiceError> {
    // Raw contents move the bytes; typed contents are converted element by element.
    let bytes = if raw {
        0
    } else {
        reply
            .response
            .outputs
            .iter()
            .map(|output| output.data.len())
            .sum()
    };
    let response = reply.response;
    let message = offload("encoding", bytes, move || {
        Ok(encode_response(response, raw))
    })
    .await?;
    Ok((message, reply.headers))
}

/// Adds the runtime's response headers that gRPC metadata can carry.
pub(super) fn add_metadata(metadata: &mut MetadataMap, headers: Headers) {
    metadata
        .as_mut()
        .extend(crate::protocol::response_headers(headers));
}

/// About how many bytes of tensor data a request holds: what converting it costs.
fn request_bytes(message: &pb::ModelInferRequest) -> usize {
    let raw: usize = message.raw_input_contents.iter().map(Vec::len).sum();
    let typed: usize = message
        .inputs
        .iter()
        .filter_map(|input| input.contents.as_ref())
        .map(|contents| {
            4 * (contents.bool_contents.len()
                + contents.int_contents.len()
                + contents.uint_contents.len()
                + contents.fp32_contents.len())
                + 8 * (contents.int64_contents.len()
                    + contents.uint64_contents.len()
                    + contents.fp64_contents.len())
                + contents.bytes_contents.iter().map(Vec::len).sum::<usize>()
        })
        .sum();
    raw + typed
}

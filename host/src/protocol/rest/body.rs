//! Request bodies in and response bodies out: gzip within the size limit, the binary
//! extension's layouts, the JSON codec — on a blocking thread when large.

use super::RestOptions;
use crate::codec::json::{self, EncodedBody};
use crate::codec::{InferenceRequest, InferenceResponse, TensorMetadata};
use crate::core::ServiceError;
use crate::core::budget::{ByteBudget, Reservation};
use crate::protocol::binary::{self, BinaryOutputs, BodyLayout};
use crate::protocol::offload;
use axum::body::Bytes;
use axum::http::{HeaderMap, header};
use std::sync::Arc;

/// Decodes a request body: gunzips it within the size limit if needed, splits off its binary
/// data, then parses the JSON (or, for a raw body, takes it as the data of the model's only
/// input, described by `raw_inputs`). Large or compressed bodies are handled on a blocking
/// thread. A gzip body's decompressed bytes are counted against `budget` as they come (the
/// compressed ones already are, see `protocol::budget`): hold the returned reservation until
/// the request is answered.
pub(super) async fn decode(
    body: Bytes,
    headers: &HeaderMap,
    options: &RestOptions,
    layout: BodyLayout,
    raw_inputs: Option<Vec<TensorMetadata>>,
    budget: &Arc<ByteBudget>,
) -> Result<(InferenceRequest, Reservation), ServiceError> {
    let gzip = is_gzip(headers, options.gzip_enabled)?;
    let (max_body_bytes, max_elements) = (options.max_body_bytes, options.max_tensor_elements);
    let mut reservation = budget.reservation();
    let decode = move || {
        let body = if gzip {
            gunzip(&body, max_body_bytes, &mut reservation)?
        } else {
            body
        };
        let (json, binary) = layout.split(&body)?;
        let request = match raw_inputs {
            Some(inputs) => binary::raw_request(&inputs, binary, max_elements),
            None => {
                json::decode_request(json, binary, max_elements).map_err(ServiceError::malformed)
            }
        }?;
        Ok((request, reservation))
    };
    // A compressed body is worth a thread whatever its length says.
    let bytes = if gzip {
        usize::MAX
    } else {
        announced_length(headers)
    };
    offload("decoding", bytes, decode).await
}

/// Whether the body is gzip-compressed (`Content-Encoding`), refusing other encodings.
fn is_gzip(headers: &HeaderMap, gzip_enabled: bool) -> Result<bool, ServiceError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|value| value.to_str().unwrap_or("").trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("identity") => Ok(false),
        Some("gzip") if gzip_enabled => Ok(true),
        Some("gzip") => Err(ServiceError::BadRequest(
            "gzip bodies are disabled (gzip_enabled: false)".to_string(),
        )),
        Some(other) => Err(ServiceError::BadRequest(format!(
            "unsupported Content-Encoding '{}'; send identity or gzip",
            crate::codec::quoted(other)
        ))),
    }
}

/// The body's announced length; a body without one counts as large.
fn announced_length(headers: &HeaderMap) -> usize {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<usize>().ok())
        .unwrap_or(usize::MAX)
}

/// Decompresses a gzip body, refusing to produce more than `limit` bytes (no zip bombs) or
/// more than the budget has room for (counted in `reservation` as it is produced).
fn gunzip(body: &[u8], limit: usize, reservation: &mut Reservation) -> Result<Bytes, ServiceError> {
    use std::io::Read;
    let mut decoder =
        flate2::read::MultiGzDecoder::new(body).take((limit as u64).saturating_add(1));
    let mut decompressed = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let read = decoder
            .read(&mut chunk)
            .map_err(|error| ServiceError::Malformed {
                message: format!("malformed gzip body: {error}"),
                source: Box::new(error),
            })?;
        if read == 0 {
            break;
        }
        reservation.grow(read as u64)?;
        decompressed.extend_from_slice(&chunk[..read]);
        if decompressed.len() > limit {
            return Err(ServiceError::TooLarge(format!(
                "the decompressed request body is over the limit of {limit} bytes"
            )));
        }
    }
    Ok(decompressed.into())
}

/// Encodes a response as JSON, with the outputs `binary_outputs` chooses as binary data after
/// it. Large JSON is written on a blocking thread.
pub(super) async fn encode(
    response: InferenceResponse,
    binary_outputs: BinaryOutputs,
) -> Result<EncodedBody, ServiceError> {
    // Binary outputs are copied, not formatted: only JSON text is worth a blocking thread.
    let bytes = response
        .outputs
        .iter()
        .filter(|output| !binary_outputs.is_binary(output))
        .map(|output| output.data.len())
        .sum();
    offload("encoding", bytes, move || {
        json::encode_response(&response, |output| binary_outputs.is_binary(output))
            .map_err(|error| ServiceError::internal(error.to_string(), Some(Box::new(error))))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_encoding_is_quoted_capped() {
        let mut headers = HeaderMap::new();
        let encoding = "x".repeat(10_000);
        headers.insert(header::CONTENT_ENCODING, encoding.parse().unwrap());
        let message = is_gzip(&headers, true).unwrap_err().to_string();
        assert!(message.len() < 400, "{message}");
        assert!(
            message.starts_with("unsupported Content-Encoding 'xxx"),
            "{message}"
        );
    }
}

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

/// Decodes a request body: decompresses it (gzip or deflate) within the size limit if needed,
/// splits off its binary data, then parses the JSON (or, for a raw body, takes it as the data of
/// the model's only input, described by `raw_inputs`). Large or compressed bodies are handled on
/// a blocking thread. A compressed body's decompressed bytes are counted against `budget` as
/// they come (the compressed ones already are, see `protocol::budget`): hold the returned
/// reservation until the request is answered.
pub(super) async fn decode(
    body: Bytes,
    headers: &HeaderMap,
    options: &RestOptions,
    layout: BodyLayout,
    raw_inputs: Option<Vec<TensorMetadata>>,
    budget: &Arc<ByteBudget>,
) -> Result<(InferenceRequest, Reservation), ServiceError> {
    let encoding = Encoding::of(headers, options.gzip_enabled)?;
    let (max_body_bytes, max_elements) = (options.max_body_bytes, options.max_tensor_elements);
    let mut reservation = budget.reservation();
    let decode = move || {
        let body = encoding.decompress(body, max_body_bytes, &mut reservation)?;
        let (json, binary) = layout.split(&body)?;
        let request = match raw_inputs {
            Some(inputs) => binary::raw_request(&inputs, binary, max_elements),
            None => {
                json::decode_request(json, binary, max_elements).map_err(ServiceError::malformed)
            }
        }?;
        Ok((request, reservation))
    };
    offload("decoding", encoding.work(headers), decode).await
}

/// A body other than an inference request's, decompressed (gzip or deflate) within the size
/// limit as [`decode`] does; hold the reservation while the body is in use.
pub(super) async fn decompressed(
    body: Bytes,
    headers: &HeaderMap,
    options: &RestOptions,
    budget: &Arc<ByteBudget>,
) -> Result<(Bytes, Reservation), ServiceError> {
    let encoding = Encoding::of(headers, options.gzip_enabled)?;
    let max_body_bytes = options.max_body_bytes;
    let mut reservation = budget.reservation();
    if encoding == Encoding::Identity {
        return Ok((body, reservation));
    }
    offload("decompressing", usize::MAX, move || {
        let body = encoding.decompress(body, max_body_bytes, &mut reservation)?;
        Ok((body, reservation))
    })
    .await
}

/// How a request body is compressed (its `Content-Encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity,
    Gzip,
    /// HTTP's `deflate`: zlib's format (RFC 1950); a raw deflate stream is accepted too.
    Deflate,
}

impl Encoding {
    /// The body's encoding, refusing the unknown ones (and every compression when
    /// `gzip_enabled` is off).
    fn of(headers: &HeaderMap, gzip_enabled: bool) -> Result<Encoding, ServiceError> {
        let encoding = headers
            .get(header::CONTENT_ENCODING)
            .map(|value| value.to_str().unwrap_or("").trim().to_ascii_lowercase());
        let encoding = match encoding.as_deref() {
            None | Some("identity") => return Ok(Encoding::Identity),
            Some("gzip" | "x-gzip") => Encoding::Gzip,
            Some("deflate") => Encoding::Deflate,
            Some(other) => {
                return Err(ServiceError::BadRequest(format!(
                    "unsupported Content-Encoding '{}'; send identity, gzip or deflate",
                    crate::codec::quoted(other)
                )));
            }
        };
        if !gzip_enabled {
            return Err(ServiceError::BadRequest(format!(
                "compressed bodies ({}) are disabled (gzip_enabled: false)",
                encoding.name()
            )));
        }
        Ok(encoding)
    }

    fn name(self) -> &'static str {
        match self {
            Encoding::Identity => "identity",
            Encoding::Gzip => "gzip",
            Encoding::Deflate => "deflate",
        }
    }

    /// How much work decoding the body is, for [`offload`]: its announced length, or (a
    /// compressed body, or one without a length) worth a thread whatever it says.
    fn work(self, headers: &HeaderMap) -> usize {
        if self != Encoding::Identity {
            return usize::MAX;
        }
        headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<usize>().ok())
            .unwrap_or(usize::MAX)
    }

    /// The body decompressed, refusing to produce more than `limit` bytes (no zip bombs) or
    /// more than the budget has room for (counted in `reservation` as it is produced).
    fn decompress(
        self,
        body: Bytes,
        limit: usize,
        reservation: &mut Reservation,
    ) -> Result<Bytes, ServiceError> {
        match self {
            Encoding::Identity => Ok(body),
            Encoding::Gzip => read_limited(
                flate2::read::MultiGzDecoder::new(&body[..]),
                self,
                limit,
                reservation,
            ),
            Encoding::Deflate if is_zlib(&body) => read_limited(
                flate2::read::ZlibDecoder::new(&body[..]),
                self,
                limit,
                reservation,
            ),
            Encoding::Deflate => read_limited(
                flate2::read::DeflateDecoder::new(&body[..]),
                self,
                limit,
                reservation,
            ),
        }
    }
}

/// Whether `body` starts with a zlib header (RFC 1950: deflate, and a check sum of 31).
fn is_zlib(body: &[u8]) -> bool {
    match body {
        [cmf, flg, ..] => cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0,
        _ => false,
    }
}

/// Reads `decoder` to its end, refusing more than `limit` bytes and more than the budget has
/// room for.
fn read_limited(
    decoder: impl std::io::Read,
    encoding: Encoding,
    limit: usize,
    reservation: &mut Reservation,
) -> Result<Bytes, ServiceError> {
    use std::io::Read;
    let mut decoder = decoder.take((limit as u64).saturating_add(1));
    let mut decompressed = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let read = decoder
            .read(&mut chunk)
            .map_err(|error| ServiceError::Malformed {
                message: format!("malformed {} body: {error}", encoding.name()),
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
        let message = Encoding::of(&headers, true).unwrap_err().to_string();
        assert!(message.len() < 400, "{message}");
        assert!(
            message.starts_with("unsupported Content-Encoding 'xxx"),
            "{message}"
        );
    }

    /// `data` compressed in `format`: gzip, zlib or raw deflate.
    fn compressed(format: &str, data: &[u8]) -> Bytes {
        use std::io::Write;
        let level = flate2::Compression::default();
        let bytes = match format {
            "gzip" => {
                let mut encoder = flate2::write::GzEncoder::new(Vec::new(), level);
                encoder.write_all(data).unwrap();
                encoder.finish().unwrap()
            }
            "zlib" => {
                let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), level);
                encoder.write_all(data).unwrap();
                encoder.finish().unwrap()
            }
            _ => {
                let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), level);
                encoder.write_all(data).unwrap();
                encoder.finish().unwrap()
            }
        };
        bytes.into()
    }

    #[test]
    fn gzip_zlib_and_raw_deflate_decompress_within_the_limit() {
        let budget = ByteBudget::new(u64::MAX);
        let data = b"{\"inputs\": []}".repeat(100);
        for (format, sent) in [
            ("gzip", Encoding::Gzip),
            ("zlib", Encoding::Deflate),
            // A raw deflate stream sent as `deflate`.
            ("raw", Encoding::Deflate),
        ] {
            let body = compressed(format, &data);
            let mut reservation = budget.reservation();
            let out = sent
                .decompress(body.clone(), 1 << 20, &mut reservation)
                .unwrap();
            assert_eq!(&out[..], &data[..], "{format}");
            let error = sent
                .decompress(body, data.len() - 1, &mut reservation)
                .unwrap_err();
            assert!(matches!(error, ServiceError::TooLarge(_)), "{error}");
        }
        let mut reservation = budget.reservation();
        let error = Encoding::Deflate
            .decompress(
                Bytes::from_static(b"not deflate"),
                1 << 20,
                &mut reservation,
            )
            .unwrap_err();
        assert!(
            error.to_string().starts_with("malformed deflate body"),
            "{error}"
        );
    }

    #[test]
    fn compression_off_refuses_both_encodings() {
        for name in ["gzip", "deflate"] {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_ENCODING, name.parse().unwrap());
            assert!(Encoding::of(&headers, true).is_ok());
            let message = Encoding::of(&headers, false).unwrap_err().to_string();
            assert!(message.contains("gzip_enabled: false"), "{message}");
        }
    }
}

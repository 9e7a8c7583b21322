//! Sends inference requests to a server over REST (HTTP/1.1 JSON, optionally with binary
//! tensor data) or gRPC (`inference.GRPCInferenceService`).

use super::inputs::MAX_ELEMENTS;
use crate::codec::grpc::pb::grpc_inference_service_client::GrpcInferenceServiceClient;
use crate::codec::json::{HEADER_LENGTH as JSON_LENGTH_HEADER, decode_response, encode_request};
use crate::codec::{InferenceRequest, InferenceResponse, grpc as convert};
use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;
use tonic::transport::Channel;

/// The largest response accepted (1 GiB).
const MAX_RESPONSE_BYTES: usize = 1 << 30;

/// The protocol a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Protocol {
    Rest,
    Grpc,
}

/// How a client reaches its server.
#[derive(Debug, Clone)]
pub(crate) struct ClientOptions {
    pub protocol: Protocol,
    /// `host:port` or `http://host:port[/prefix]`.
    pub url: String,
    /// The longest a call may take.
    pub timeout: Duration,
    /// Extra request headers (gRPC metadata), as `(name, value)`, valid for the protocol.
    pub headers: Vec<(String, String)>,
    /// REST: send inputs and ask for outputs as binary tensor data.
    pub binary: bool,
}

/// Why a call failed, and whether trying again may help.
#[derive(Debug, Clone)]
pub(crate) struct RequestError {
    pub message: String,
    /// A connection failure, a timeout or an overloaded server: worth a retry.
    pub retryable: bool,
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A connected client (cheap to clone: clones share connections).
#[derive(Clone)]
pub(crate) struct InferenceClient {
    options: ClientOptions,
    kind: ClientKind,
}

#[derive(Clone)]
enum ClientKind {
    Rest {
        http: HttpClient<HttpConnector, Full<Bytes>>,
        base: String,
    },
    Grpc(GrpcInferenceServiceClient<Channel>),
}

impl InferenceClient {
    /// Makes a client; connections open on the first call.
    pub(crate) fn new(options: ClientOptions) -> anyhow::Result<Self> {
        let base = base_url(&options.url)?;
        let kind = match options.protocol {
            Protocol::Rest => {
                let mut connector = HttpConnector::new();
                connector.set_connect_timeout(Some(options.timeout));
                connector.set_nodelay(true);
                ClientKind::Rest {
                    http: HttpClient::builder(TokioExecutor::new()).build(connector),
                    base,
                }
            }
            Protocol::Grpc => {
                let channel = Channel::from_shared(base.clone())
                    .with_context(|| format!("'{}' is not a valid address", options.url))?
                    .connect_timeout(options.timeout)
                    .connect_lazy();
                ClientKind::Grpc(
                    GrpcInferenceServiceClient::new(channel)
                        .max_decoding_message_size(MAX_RESPONSE_BYTES)
                        .max_encoding_message_size(usize::MAX),
                )
            }
        };
        Ok(InferenceClient { options, kind })
    }

    /// Sends one request to `model` (and `version`) and waits for its response.
    pub(crate) async fn infer(
        &self,
        model: &str,
        version: Option<&str>,
        request: InferenceRequest,
    ) -> Result<InferenceResponse, RequestError> {
        let call = async {
            match &self.kind {
                ClientKind::Rest { http, base } => {
                    self.infer_rest(http, base, model, version, request).await
                }
                ClientKind::Grpc(client) => {
                    self.infer_grpc(client.clone(), model, version, request)
                        .await
                }
            }
        };
        match tokio::time::timeout(self.options.timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(RequestError {
                message: format!("no response within {:?}", self.options.timeout),
                retryable: true,
            }),
        }
    }

    async fn infer_rest(
        &self,
        http: &HttpClient<HttpConnector, Full<Bytes>>,
        base: &str,
        model: &str,
        version: Option<&str>,
        request: InferenceRequest,
    ) -> Result<InferenceResponse, RequestError> {
        let fail = |message: String| RequestError {
            message,
            retryable: false,
        };
        let encoded = encode_request(&request, self.options.binary)
            .map_err(|error| fail(error.to_string()))?;
        let mut path = format!("{base}/v2/models/{}", encode_segment(model));
        if let Some(version) = version {
            path.push_str(&format!("/versions/{}", encode_segment(version)));
        }
        path.push_str("/infer");
        let mut builder =
            http::Request::post(&path).header(http::header::CONTENT_TYPE, "application/json");
        if let Some(length) = encoded.json_length {
            builder = builder.header(JSON_LENGTH_HEADER, length);
        }
        for (name, value) in &self.options.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let http_request = builder
            .body(Full::new(Bytes::from(encoded.body)))
            .map_err(|error| fail(format!("cannot make the request: {error}")))?;
        let response = http
            .request(http_request)
            .await
            .map_err(|error| RequestError {
                message: format!("cannot reach {base}: {}", error_chain(&error)),
                retryable: true,
            })?;
        let status = response.status();
        let json_length = response
            .headers()
            .get(JSON_LENGTH_HEADER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<usize>().ok());
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|error| RequestError {
                message: format!("the response broke off: {error}"),
                retryable: true,
            })?
            .to_bytes();
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|value| value["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            return Err(RequestError {
                message: format!("{status}: {message}"),
                retryable: matches!(status.as_u16(), 429 | 502 | 503 | 504),
            });
        }
        let split = match json_length {
            Some(length) if length > body.len() => {
                return Err(fail(format!(
                    "the server's {JSON_LENGTH_HEADER} of {length} runs past its {}-byte body",
                    body.len()
                )));
            }
            Some(length) => length,
            None => body.len(),
        };
        let (json, binary) = body.split_at(split);
        decode_response(json, binary, MAX_ELEMENTS)
            .map_err(|error| fail(format!("the server's response is not valid: {error}")))
    }

    async fn infer_grpc(
        &self,
        mut client: GrpcInferenceServiceClient<Channel>,
        model: &str,
        version: Option<&str>,
        request: InferenceRequest,
    ) -> Result<InferenceResponse, RequestError> {
        let mut call = tonic::Request::new(convert::encode_request(request, model, version));
        // The headers were checked when the options were parsed (`client::run`).
        for (name, value) in &self.options.headers {
            let key = tonic::metadata::AsciiMetadataKey::from_bytes(name.to_lowercase().as_bytes());
            if let (Ok(key), Ok(value)) = (key, value.parse()) {
                call.metadata_mut().insert(key, value);
            }
        }
        let response = client
            .model_infer(call)
            .await
            .map_err(|status| RequestError {
                message: format!("{:?}: {}", status.code(), status.message()),
                retryable: matches!(
                    status.code(),
                    tonic::Code::Unavailable
                        | tonic::Code::ResourceExhausted
                        | tonic::Code::Aborted
                ),
            })?;
        convert::decode_response(response.into_inner(), MAX_ELEMENTS).map_err(|error| {
            RequestError {
                message: format!("the server's response is not valid: {error}"),
                retryable: false,
            }
        })
    }
}

/// `http://host:port[/prefix]` from what the user gave (a scheme is optional).
fn base_url(url: &str) -> anyhow::Result<String> {
    let url = url.trim_end_matches('/');
    if url.starts_with("https://") {
        bail!("'{url}': mlhost infer speaks plain HTTP only (put TLS in front of it with a proxy)");
    }
    let with_scheme = if url.starts_with("http://") {
        url.to_string()
    } else if url.contains("://") {
        bail!("'{url}': the address must be host:port or http://host:port");
    } else {
        format!("http://{url}")
    };
    with_scheme
        .parse::<http::Uri>()
        .with_context(|| format!("'{url}' is not a valid address"))?;
    Ok(with_scheme)
}

/// A path segment with everything but unreserved characters percent-encoded.
fn encode_segment(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, SEGMENT).to_string()
}

const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// An error and its causes on one line (hyper's errors hide the interesting part in sources).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_take_an_optional_scheme_and_prefix() {
        assert_eq!(base_url("localhost:8080").unwrap(), "http://localhost:8080");
        assert_eq!(base_url("http://h:1/api/").unwrap(), "http://h:1/api");
        assert!(
            base_url("https://h:1")
                .unwrap_err()
                .to_string()
                .contains("plain HTTP")
        );
        assert!(base_url("ftp://h").is_err());
    }

    #[test]
    fn model_names_are_encoded_in_paths() {
        assert_eq!(encode_segment("my-model_1.0"), "my-model_1.0");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
    }
}

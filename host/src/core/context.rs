//! What travels with a request besides its body: the client's deadline and the headers the
//! runtime may read (MLServer's custom headers).
//!
//! Front ends fill a [`RequestContext`] from their transport (`grpc-timeout`, HTTP headers, gRPC
//! metadata); the core turns it into the call's deadline and hands the headers to the workers,
//! which give them to the runtime. Cancellation needs no field: a client that leaves drops the
//! request's future, and the workers skip a request whose answer nobody awaits.

use crate::codec::{InferenceRequest, Parameters};
use crate::workers::headers::{self, Headers, RequestHeaders};
use std::time::Duration;

/// Headers a runtime may not set: they describe the message itself, or they are the server's
/// to decide (cookies, CORS).
const RESERVED: &[&str] = &[
    "connection",
    "content-encoding",
    "content-length",
    "content-type",
    "inference-header-content-length",
    "keep-alive",
    "set-cookie",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "x-request-id",
];

/// Prefixes of headers a runtime may not set.
const RESERVED_PREFIXES: &[&str] = &["grpc-", "access-control-"];

/// A request's deadline and headers, as its front end received them.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RequestContext {
    /// How long the client will wait (gRPC's `grpc-timeout`); the core applies the shortest of
    /// it, the request's `timeout` parameter and the model's limit.
    pub timeout: Option<Duration>,
    /// The headers the runtime reads as its request's `headers` parameter.
    pub headers: RequestHeaders,
}

impl RequestContext {
    /// A context holding `transport` headers, joined over any `headers` parameter the request
    /// body gave (which this takes out of the request: headers travel here, not as parameters).
    pub(crate) fn new(
        request: &mut InferenceRequest,
        transport: http::HeaderMap,
        timeout: Option<Duration>,
    ) -> Self {
        let body = headers::take_parameter(&mut request.parameters).unwrap_or_default();
        RequestContext {
            timeout,
            headers: RequestHeaders::new(body, transport),
        }
    }
}

/// Takes the `headers` parameter out of a runtime's response: the headers to send, leaving out
/// the ones a runtime may not set (front ends also drop names and values their transport cannot
/// carry).
pub(super) fn take_response_headers(parameters: &mut Parameters) -> Headers {
    let mut headers = headers::take_parameter(parameters).unwrap_or_default();
    headers.retain_mut(|(name, _)| {
        name.make_ascii_lowercase();
        let reserved = RESERVED.contains(&name.as_str())
            || RESERVED_PREFIXES
                .iter()
                .any(|prefix| name.starts_with(prefix))
            // gRPC's binary metadata: its value must be base64, which the runtime's is not
            // promised to be.
            || name.ends_with("-bin");
        !reserved
    });
    headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::ParameterValue;

    #[test]
    fn request_headers_join_the_body_s_and_response_headers_are_filtered() {
        let mut request = InferenceRequest {
            parameters: vec![(
                headers::HEADERS_PARAMETER.into(),
                ParameterValue::String(r#"{"x-from-body":"1","x-both":"body"}"#.into()),
            )],
            ..InferenceRequest::default()
        };
        let mut transport = http::HeaderMap::new();
        transport.insert("x-both", http::HeaderValue::from_static("http"));
        transport.insert("x-bad", http::HeaderValue::from_bytes(b"\xff").unwrap());
        let context = RequestContext::new(&mut request, transport, None);
        assert!(request.parameters.is_empty());
        let mut joined = context.headers.pairs();
        joined.sort();
        assert_eq!(
            joined,
            [
                ("x-both".into(), "http".into()),
                ("x-from-body".into(), "1".into())
            ]
        );

        let mut parameters = vec![(
            headers::HEADERS_PARAMETER.into(),
            ParameterValue::String(
                r#"{"X-Model":"m","content-length":"5","bad name":"x","x-n":3,"set-cookie":"a=b","access-control-allow-origin":"*","x-data-bin":"!"}"#.into(),
            ),
        )];
        let headers = take_response_headers(&mut parameters);
        assert!(parameters.is_empty());
        let names: Vec<&str> = headers.iter().map(|(name, _)| name.as_str()).collect();
        // "bad name" is left for the front end, whose transport refuses it.
        assert_eq!(names, ["x-model", "bad name", "x-n"]);
    }
}

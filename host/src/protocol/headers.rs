//! MLServer's custom headers: the request's HTTP headers (or gRPC metadata) reach the runtime as
//! the request parameter `headers`, and a runtime's response parameter `headers` goes back to the
//! client as HTTP headers (or gRPC metadata).
//!
//! Parameters hold scalars only, so `headers` is carried as the text of a JSON object of strings.

use crate::codec::{InferenceRequest, ParameterValue, Parameters};
use axum::http::{HeaderMap, HeaderName, HeaderValue};

/// The parameter carrying headers.
pub const HEADERS: &str = "headers";

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

/// Adds the request's headers to its `headers` parameter (over any the body gave).
pub fn insert(request: &mut InferenceRequest, headers: &HeaderMap) {
    let mut object = match take_parameter(&mut request.parameters) {
        Some(serde_json::Value::Object(object)) => object,
        _ => serde_json::Map::new(),
    };
    for (name, value) in headers {
        if let Ok(value) = value.to_str() {
            object.insert(
                name.as_str().to_string(),
                serde_json::Value::String(value.to_string()),
            );
        }
    }
    request.parameters.push((
        HEADERS.to_string(),
        ParameterValue::String(serde_json::Value::Object(object).to_string()),
    ));
}

/// Takes the `headers` parameter out of a response: the headers to send, leaving out the ones
/// that are not valid or that a runtime may not set.
pub fn take(parameters: &mut Parameters) -> Vec<(HeaderName, HeaderValue)> {
    let Some(serde_json::Value::Object(object)) = take_parameter(parameters) else {
        return Vec::new();
    };
    object
        .into_iter()
        .filter_map(|(name, value)| {
            let value = match value {
                serde_json::Value::String(value) => value,
                other => other.to_string(),
            };
            let name = HeaderName::try_from(name.as_str()).ok()?;
            let reserved = RESERVED.contains(&name.as_str())
                || RESERVED_PREFIXES
                    .iter()
                    .any(|prefix| name.as_str().starts_with(prefix))
                // gRPC's binary metadata: its value must be base64, which the runtime's is not
                // promised to be.
                || name.as_str().ends_with("-bin");
            if reserved {
                return None;
            }
            Some((name, HeaderValue::try_from(value).ok()?))
        })
        .collect()
}

/// Removes the `headers` parameter and parses it (a JSON object given as text).
fn take_parameter(parameters: &mut Parameters) -> Option<serde_json::Value> {
    let index = parameters.iter().position(|(name, _)| name == HEADERS)?;
    match parameters.remove(index).1 {
        ParameterValue::String(text) => serde_json::from_str(&text).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_headers_join_the_body_s_and_response_headers_are_filtered() {
        let mut request = InferenceRequest {
            parameters: vec![(
                HEADERS.into(),
                ParameterValue::String(r#"{"x-from-body":"1","x-both":"body"}"#.into()),
            )],
            ..InferenceRequest::default()
        };
        let mut http = HeaderMap::new();
        http.insert("x-both", HeaderValue::from_static("http"));
        insert(&mut request, &http);
        let ParameterValue::String(text) = &request.parameters[0].1 else {
            panic!("headers are text")
        };
        let object: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            object,
            serde_json::json!({"x-from-body": "1", "x-both": "http"})
        );

        let mut parameters = vec![(
            HEADERS.into(),
            ParameterValue::String(
                r#"{"X-Model":"m","content-length":"5","bad name":"x","x-n":3,"set-cookie":"a=b","access-control-allow-origin":"*","x-data-bin":"!"}"#.into(),
            ),
        )];
        let headers = take(&mut parameters);
        assert!(parameters.is_empty());
        let names: Vec<&str> = headers.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["x-model", "x-n"]);
    }
}

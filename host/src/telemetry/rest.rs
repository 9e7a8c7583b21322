//! The REST front end's traces: a request's span is named as MLServer's FastAPI
//! instrumentation names it (`POST /v2/models/{model_name}/infer`).

use super::Recording;
use opentelemetry::KeyValue;

/// Starts recording a request to the route `path` (axum's template), when requests are traced
/// and it is an inference request (as Triton traces them: `infer`, `generate` and their
/// streams).
pub(crate) fn begin(
    headers: &http::HeaderMap,
    method: &str,
    path: &str,
    id: &str,
) -> Option<Recording> {
    if !super::active() || !is_inference(path) {
        return None;
    }
    let route = || {
        path.replace("{model}", "{model_name}")
            .replace("{version}", "{model_version}")
    };
    Recording::begin(
        headers,
        || format!("{method} {}", route()),
        || {
            vec![
                KeyValue::new("http.request.method", method.to_string()),
                KeyValue::new("http.route", route()),
                KeyValue::new("mlhost.request_id", id.to_string()),
            ]
        },
    )
}

/// The request was answered with `status`.
pub(crate) fn finish(recording: Recording, status: http::StatusCode) {
    let attributes = vec![KeyValue::new(
        "http.response.status_code",
        i64::from(status.as_u16()),
    )];
    recording.finish(attributes, status.is_server_error());
}

/// Whether the route `path` runs an inference.
fn is_inference(path: &str) -> bool {
    ["/infer", "/generate", "/infer_stream", "/generate_stream"]
        .iter()
        .any(|suffix| path.ends_with(suffix))
}

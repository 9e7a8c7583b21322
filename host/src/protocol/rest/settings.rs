//! Triton's logging and trace extensions over REST: `GET`/`POST /v2/logging`,
//! `/v2/trace/setting` and `/v2/models/{model}/trace/setting`. A `POST` applies the fields its
//! JSON object names, then both answer the settings in force.

use super::{ModelPath, RestState};
use crate::core::ServiceError;
use crate::protocol::error::error_response;
use crate::telemetry::{self, SettingsError, triton};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

/// A `POST` body's JSON object (an empty body is an empty object); `None` for a `GET`.
fn fields(
    method: &Method,
    body: Result<Bytes, BytesRejection>,
) -> Result<Option<Map<String, Value>>, (StatusCode, String)> {
    if method != Method::POST {
        return Ok(None);
    }
    let body = body.map_err(|rejection| (rejection.status(), rejection.body_text()))?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Some(Map::new()));
    }
    match serde_json::from_slice(&body) {
        Ok(Value::Object(fields)) => Ok(Some(fields)),
        Ok(_) => Err((
            StatusCode::BAD_REQUEST,
            "expected a JSON object of settings".to_string(),
        )),
        Err(error) => Err((StatusCode::BAD_REQUEST, format!("malformed JSON: {error}"))),
    }
}

fn bad_request(message: &str) -> Response {
    error_response(StatusCode::BAD_REQUEST, message)
}

/// `GET`/`POST /v2/logging`: the log settings (`log_info`, `log_warning`, `log_error`,
/// `log_verbose_level`, `log_format`, `log_file`).
pub(super) async fn logging(method: Method, body: Result<Bytes, BytesRejection>) -> Response {
    let fields = match fields(&method, body) {
        Ok(fields) => fields,
        Err((status, message)) => return error_response(status, message),
    };
    if let Some(fields) = fields {
        let changes: Result<Vec<_>, String> = fields
            .iter()
            .map(|(name, value)| Ok((name.clone(), triton::json_log_value(name, value)?)))
            .collect();
        if let Err(message) = changes.and_then(|changes| telemetry::logging::update(&changes)) {
            return bad_request(&message);
        }
    }
    let settings: Map<String, Value> = telemetry::logging::settings()
        .into_iter()
        .map(|(name, value)| (name.to_string(), triton::log_value_json(value)))
        .collect();
    Json(settings).into_response()
}

/// `GET`/`POST /v2/trace/setting`: the server's trace settings (`trace_level`, `trace_rate`,
/// `trace_count`, `trace_mode`, `url`).
pub(super) async fn trace_setting(method: Method, body: Result<Bytes, BytesRejection>) -> Response {
    trace_settings_of(None, method, body)
}

/// `GET`/`POST /v2/models/{model}/trace/setting`: a model's trace settings (its own, or the
/// server's where it has none).
pub(super) async fn model_trace_setting(
    State(state): State<RestState>,
    Path(path): Path<ModelPath>,
    method: Method,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ServiceError> {
    state.service.model(&path.model, None)?;
    Ok(trace_settings_of(Some(&path.model), method, body))
}

fn trace_settings_of(
    model: Option<&str>,
    method: Method,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let fields = match fields(&method, body) {
        Ok(fields) => fields,
        Err((status, message)) => return error_response(status, message),
    };
    if let Some(fields) = fields.filter(|fields| !fields.is_empty()) {
        let update = fields
            .iter()
            .map(|(name, value)| Ok((name.clone(), triton::json_trace_values(name, value)?)))
            .collect::<Result<Vec<_>, SettingsError>>()
            .and_then(|fields| triton::trace_update(&fields))
            .and_then(|update| telemetry::update_trace_settings(model, &update));
        if let Err(error) = update {
            return bad_request(&error.to_string());
        }
    }
    let settings: Map<String, Value> = telemetry::trace_settings(model)
        .into_iter()
        .map(|(name, values)| {
            let value = match name {
                "trace_level" => Value::from(values),
                _ => Value::from(values.into_iter().next().unwrap_or_default()),
            };
            (name.to_string(), value)
        })
        .collect();
    Json(settings).into_response()
}

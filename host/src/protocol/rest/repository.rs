//! The repository extension over REST: the index, and loading (with Triton's `config` and
//! `file:<path>` parameters) and unloading a model.

use super::body::decompressed;
use super::{ModelPath, RestState};
use crate::core::ServiceError;
use crate::protocol::error::error_response;
use crate::repository::LoadRequest;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Serialize;

#[derive(serde::Deserialize, Default)]
struct IndexRequestJson {
    #[serde(default)]
    ready: bool,
}

#[derive(Serialize)]
struct IndexEntryJson<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    state: &'a str,
    reason: &'a str,
}

/// `POST /v2/repository/index`: every model, or (`{"ready": true}`) only the ready ones.
pub(super) async fn index(
    State(state): State<RestState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ServiceError> {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return Ok(error_response(rejection.status(), rejection.body_text())),
    };
    let request: IndexRequestJson = if body.iter().all(u8::is_ascii_whitespace) {
        IndexRequestJson::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(request) => request,
            Err(error) => {
                return Ok(error_response(
                    StatusCode::BAD_REQUEST,
                    format!("malformed request body: {error}"),
                ));
            }
        }
    };
    let entries = state.service.repository_index(request.ready).await?;
    let entries: Vec<IndexEntryJson> = entries
        .iter()
        .map(|entry| IndexEntryJson {
            name: &entry.name,
            version: entry.version.as_deref(),
            state: entry.state,
            reason: &entry.reason,
        })
        .collect();
    Ok(axum::Json(entries).into_response())
}

/// `POST /v2/repository/models/{model}/load`, with an optional body
/// `{"parameters": {"config": "<json>", "file:<path>": "<base64>"}}` (Triton's repository
/// extension).
pub(super) async fn load(
    State(state): State<RestState>,
    Path(path): Path<ModelPath>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ServiceError> {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return Ok(error_response(rejection.status(), rejection.body_text())),
    };
    let budget = state.service.budget();
    let (body, _decompressed) = decompressed(body, &headers, &state.options, budget).await?;
    let request = load_request(&body)?;
    drop(body);
    state.service.load_model_with(&path.model, request).await?;
    Ok(StatusCode::OK.into_response())
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LoadRequestJson {
    #[serde(default)]
    parameters: serde_json::Map<String, serde_json::Value>,
}

/// A load's body: none, or its `parameters` (`config`: JSON text; `file:<path>`: base64).
fn load_request(body: &[u8]) -> Result<LoadRequest, ServiceError> {
    let mut request = LoadRequest::default();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(request);
    }
    let json: LoadRequestJson = serde_json::from_slice(body)
        .map_err(|error| ServiceError::BadRequest(format!("malformed request body: {error}")))?;
    for (key, value) in json.parameters {
        let quoted = crate::codec::quoted(&key);
        if key == "config" {
            request.config = Some(match value {
                serde_json::Value::String(text) => text,
                object @ serde_json::Value::Object(_) => object.to_string(),
                _ => {
                    return Err(ServiceError::BadRequest(
                        "parameter 'config' is not a string of JSON".to_string(),
                    ));
                }
            });
        } else if let Some(path) = key.strip_prefix("file:") {
            let bytes = value
                .as_str()
                .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok())
                .ok_or_else(|| {
                    ServiceError::BadRequest(format!("parameter '{quoted}' is not base64 text"))
                })?;
            request.files.push((path.to_string(), bytes));
        } else {
            return Err(ServiceError::BadRequest(format!(
                "unsupported load parameter '{quoted}': mlhost reads 'config' and 'file:<path>'"
            )));
        }
    }
    Ok(request)
}

pub(super) async fn unload(
    State(state): State<RestState>,
    Path(path): Path<ModelPath>,
) -> Result<StatusCode, ServiceError> {
    state.service.unload_model(&path.model).await?;
    Ok(StatusCode::OK)
}

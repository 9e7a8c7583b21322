//! The repository extension over REST: the index, and loading and unloading a model.

use super::{ModelPath, RestState};
use crate::core::ServiceError;
use crate::protocol::error::error_response;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
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

pub(super) async fn load(
    State(state): State<RestState>,
    Path(path): Path<ModelPath>,
) -> Result<StatusCode, ServiceError> {
    state.service.load_model(&path.model).await?;
    Ok(StatusCode::OK)
}

pub(super) async fn unload(
    State(state): State<RestState>,
    Path(path): Path<ModelPath>,
) -> Result<StatusCode, ServiceError> {
    state.service.unload_model(&path.model).await?;
    Ok(StatusCode::OK)
}

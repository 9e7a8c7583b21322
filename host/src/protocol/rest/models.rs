//! The REST endpoints that describe the server and its models: health, metadata, readiness,
//! statistics, configuration and the API documents.

use super::{ModelPath, RestState};
use crate::codec::TensorMetadata;
use crate::codec::json::ParametersJson;
use crate::core::{InferenceService, Readiness, ServiceError};
use crate::protocol::error::error_response;
use crate::protocol::model_config::ModelConfig;
use crate::protocol::openapi;
use crate::repository::LoadedModel;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::sync::Arc;

/// Live: `{"live": true}`, the body KServe's servers answer and its SDK's `is_server_live`
/// reads.
pub(super) async fn live() -> Response {
    axum::Json(serde_json::json!({ "live": true })).into_response()
}

/// Ready: `{"ready": true}` (KServe's body), or 400 with the reason while models load.
pub(super) async fn ready(State(state): State<RestState>) -> Response {
    if state.service.is_ready() {
        axum::Json(serde_json::json!({ "ready": true })).into_response()
    } else {
        error_response(
            StatusCode::BAD_REQUEST,
            "the server is not ready: models are loading",
        )
    }
}

#[derive(Serialize)]
struct ServerMetadataJson<'a> {
    name: &'a str,
    version: &'a str,
    extensions: &'a [String],
}

pub(super) async fn server_metadata(State(state): State<RestState>) -> Response {
    let info = state.service.info();
    axum::Json(ServerMetadataJson {
        name: &info.name,
        version: &info.version,
        extensions: &info.extensions,
    })
    .into_response()
}

#[derive(Serialize)]
struct TensorMetadataJson<'a> {
    name: &'a str,
    datatype: &'static str,
    shape: &'a [i64],
    #[serde(skip_serializing_if = "ParametersJson::is_empty")]
    parameters: ParametersJson<'a>,
}

impl<'a> From<&'a TensorMetadata> for TensorMetadataJson<'a> {
    fn from(tensor: &'a TensorMetadata) -> Self {
        TensorMetadataJson {
            name: &tensor.name,
            datatype: tensor.datatype.as_str(),
            shape: &tensor.shape,
            parameters: ParametersJson::new(&tensor.parameters),
        }
    }
}

#[derive(Serialize)]
struct ModelMetadataJson<'a> {
    name: &'a str,
    versions: &'a [String],
    platform: &'a str,
    inputs: Vec<TensorMetadataJson<'a>>,
    outputs: Vec<TensorMetadataJson<'a>>,
    #[serde(skip_serializing_if = "ParametersJson::is_empty")]
    parameters: ParametersJson<'a>,
}

pub(super) async fn model_metadata(
    State(state): State<RestState>,
    Path(path): Path<ModelPath>,
) -> Result<Response, ServiceError> {
    let described = state
        .service
        .describe(&path.model, path.version.as_deref())?;
    let (model, metadata) = (&described.model, &described.model.metadata);
    Ok(axum::Json(ModelMetadataJson {
        name: &model.name,
        versions: &described.versions,
        platform: &metadata.platform,
        inputs: metadata.inputs.iter().map(Into::into).collect(),
        outputs: metadata.outputs.iter().map(Into::into).collect(),
        parameters: ParametersJson::new(&metadata.parameters),
    })
    .into_response())
}

pub(super) async fn model_ready(
    State(state): State<RestState>,
    Path(path): Path<ModelPath>,
) -> Result<Response, ServiceError> {
    Ok(
        match state
            .service
            .readiness(&path.model, path.version.as_deref())?
        {
            // KServe's body: `{"name": ..., "ready": true}`.
            Readiness::Ready => {
                axum::Json(serde_json::json!({ "name": path.model, "ready": true })).into_response()
            }
            // Known but not ready: the protocol's "4xx when false".
            Readiness::NotReady(reason) => error_response(StatusCode::BAD_REQUEST, reason),
        },
    )
}

pub(super) async fn all_statistics(
    State(state): State<RestState>,
) -> Result<Response, ServiceError> {
    statistics(&state.service, None, None)
}

pub(super) async fn model_statistics(
    State(state): State<RestState>,
    Path(path): Path<ModelPath>,
) -> Result<Response, ServiceError> {
    statistics(&state.service, Some(&path.model), path.version.as_deref())
}

/// Triton's statistics extension: `{"model_stats": [...]}` of the models the core selects.
fn statistics(
    service: &InferenceService,
    name: Option<&str>,
    version: Option<&str>,
) -> Result<Response, ServiceError> {
    let models = service.statistics_models(name, version)?;
    let model_stats: Vec<serde_json::Value> = models.iter().map(model_stats).collect();
    Ok(axum::Json(serde_json::json!({ "model_stats": model_stats })).into_response())
}

/// One model's entry of the statistics, in Triton's shape.
fn model_stats(model: &Arc<LoadedModel>) -> serde_json::Value {
    let stats = model.stats.snapshot();
    serde_json::json!({
        "name": model.name,
        "version": model.version.as_deref().unwrap_or(""),
        "last_inference": stats.last_inference,
        "inference_count": stats.inference_count,
        "execution_count": stats.execution_count,
        "inference_stats": {
            "success": stats.success,
            "fail": stats.fail,
            "queue": stats.queue,
            "compute_input": stats.compute_input,
            "compute_infer": stats.compute_infer,
            "compute_output": stats.compute_output,
            "cache_hit": stats.cache_hit,
            "cache_miss": stats.cache_miss,
        },
        "batch_stats": stats.batch_stats,
    })
}

pub(super) async fn model_config(
    State(state): State<RestState>,
    Path(path): Path<ModelPath>,
) -> Result<Response, ServiceError> {
    let model = state.service.model(&path.model, path.version.as_deref())?;
    Ok(axum::Json(ModelConfig::of(&model)).into_response())
}

pub(super) async fn docs_page() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        openapi::DOCS_PAGE,
    )
        .into_response()
}

pub(super) async fn api_document(State(state): State<RestState>) -> Response {
    axum::Json(openapi::document(
        state.service.info(),
        &state.options.root_path,
        None,
    ))
    .into_response()
}

pub(super) async fn model_document(
    State(state): State<RestState>,
    Path(path): Path<ModelPath>,
) -> Result<Response, ServiceError> {
    let model = state.service.model(&path.model, path.version.as_deref())?;
    Ok(axum::Json(openapi::document(
        state.service.info(),
        &state.options.root_path,
        Some(&model),
    ))
    .into_response())
}

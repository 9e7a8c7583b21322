//! The Open Inference Protocol over REST (axum): routes, JSON bodies, `{"error": ...}` answers.

use super::{InferenceService, ServiceError};
use crate::codec::json::{self, ParametersJson};
use crate::codec::{InferenceRequest, InferenceResponse, TensorMetadata};
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use std::sync::Arc;

/// Bodies and responses larger than this are decoded / encoded on a blocking thread, so that
/// the async threads never spend long on one request.
const INLINE_CODEC_BYTES: usize = 256 * 1024;

/// Options of the REST front end.
#[derive(Debug, Clone)]
pub struct RestOptions {
    /// A prefix for every path (MLServer's `root_path`), e.g. `/serving`; empty for none.
    pub root_path: String,
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
}

/// Builds the REST router over the inference core.
pub fn router(service: Arc<InferenceService>, options: &RestOptions) -> Router {
    let routes = Router::new()
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(ready))
        .route("/v2", get(server_metadata))
        .route("/v2/models/{model}", get(model_metadata))
        .route(
            "/v2/models/{model}/versions/{version}",
            get(model_version_metadata),
        )
        .route("/v2/models/{model}/ready", get(model_ready))
        .route(
            "/v2/models/{model}/versions/{version}/ready",
            get(model_version_ready),
        )
        .route("/v2/models/{model}/infer", post(infer))
        .route(
            "/v2/models/{model}/versions/{version}/infer",
            post(infer_version),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(service);
    // MLServer's root_path: the routes answer under the prefix, and without it (as behind a
    // proxy that strips the prefix).
    let root = options.root_path.trim_end_matches('/');
    let routes = if root.is_empty() {
        routes
    } else {
        Router::new().nest(root, routes.clone()).merge(routes)
    };
    let max_body_bytes = options.max_body_bytes;
    routes
        .layer(axum::middleware::from_fn(move |request, next| {
            reject_oversized(max_body_bytes, request, next)
        }))
        .layer(DefaultBodyLimit::max(max_body_bytes))
}

/// Refuses a body whose announced length is over the limit before reading any of it (a body
/// without a length is cut off at the limit by `DefaultBodyLimit`).
async fn reject_oversized(
    max_body_bytes: usize,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    match announced {
        Some(length) if length > max_body_bytes as u64 => error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request body of {length} bytes is over the limit of {max_body_bytes} bytes"
            ),
        ),
        _ => next.run(request).await,
    }
}

/// An error answer: the status and `{"error": "..."}`.
fn error_response(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(serde_json::json!({ "error": message.into() })),
    )
        .into_response()
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        error_response(self.http_status(), self.to_string())
    }
}

async fn live() -> StatusCode {
    StatusCode::OK
}

async fn ready(State(service): State<Arc<InferenceService>>) -> Response {
    if service.is_ready() {
        StatusCode::OK.into_response()
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

async fn server_metadata(State(service): State<Arc<InferenceService>>) -> Response {
    let info = service.info();
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
            parameters: ParametersJson(&tensor.parameters),
        }
    }
}

#[derive(Serialize)]
struct ModelMetadataJson<'a> {
    name: &'a str,
    versions: Vec<String>,
    platform: &'a str,
    inputs: Vec<TensorMetadataJson<'a>>,
    outputs: Vec<TensorMetadataJson<'a>>,
    #[serde(skip_serializing_if = "ParametersJson::is_empty")]
    parameters: ParametersJson<'a>,
}

fn metadata_response(service: &InferenceService, name: &str, version: Option<&str>) -> Response {
    let model = match service.model(name, version) {
        Ok(model) => model,
        Err(error) => return error.into_response(),
    };
    let metadata = &model.metadata;
    axum::Json(ModelMetadataJson {
        name: &model.name,
        versions: service.versions(name),
        platform: &metadata.platform,
        inputs: metadata.inputs.iter().map(Into::into).collect(),
        outputs: metadata.outputs.iter().map(Into::into).collect(),
        parameters: ParametersJson(&metadata.parameters),
    })
    .into_response()
}

async fn model_metadata(
    State(service): State<Arc<InferenceService>>,
    Path(name): Path<String>,
) -> Response {
    metadata_response(&service, &name, None)
}

async fn model_version_metadata(
    State(service): State<Arc<InferenceService>>,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    metadata_response(&service, &name, Some(&version))
}

fn ready_response(service: &InferenceService, name: &str, version: Option<&str>) -> Response {
    match service.model(name, version) {
        Ok(_) => StatusCode::OK.into_response(),
        // Known but not ready: the protocol's "4xx when false".
        Err(ServiceError::Unavailable(message)) => error_response(StatusCode::BAD_REQUEST, message),
        Err(error) => error.into_response(),
    }
}

async fn model_ready(
    State(service): State<Arc<InferenceService>>,
    Path(name): Path<String>,
) -> Response {
    ready_response(&service, &name, None)
}

async fn model_version_ready(
    State(service): State<Arc<InferenceService>>,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    ready_response(&service, &name, Some(&version))
}

async fn infer(
    State(service): State<Arc<InferenceService>>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    infer_response(&service, &name, None, body).await
}

async fn infer_version(
    State(service): State<Arc<InferenceService>>,
    Path((name, version)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    infer_response(&service, &name, Some(&version), body).await
}

async fn infer_response(
    service: &InferenceService,
    name: &str,
    version: Option<&str>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return error_response(rejection.status(), rejection.body_text()),
    };
    // Fail fast on an unknown model before decoding the body.
    if let Err(error) = service.model(name, version) {
        return error.into_response();
    }
    let request = match decode(body).await {
        Ok(request) => request,
        Err(error) => return error.into_response(),
    };
    match service.infer(name, version, request).await {
        Ok(response) => match encode(response).await {
            Ok(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
            Err(error) => error.into_response(),
        },
        Err(error) => error.into_response(),
    }
}

async fn decode(body: Bytes) -> Result<InferenceRequest, ServiceError> {
    let large = body.len() > INLINE_CODEC_BYTES;
    let decode = move || {
        json::decode_request(&body).map_err(|error| ServiceError::BadRequest(error.to_string()))
    };
    if large {
        tokio::task::spawn_blocking(decode)
            .await
            .map_err(|error| ServiceError::Internal(format!("decoding failed: {error}")))?
    } else {
        decode()
    }
}

async fn encode(response: InferenceResponse) -> Result<Vec<u8>, ServiceError> {
    let data_bytes: usize = response
        .outputs
        .iter()
        .map(|output| output.data.len())
        .sum();
    let encode = move || {
        json::encode_response(&response).map_err(|error| ServiceError::Internal(error.to_string()))
    };
    if data_bytes > INLINE_CODEC_BYTES {
        tokio::task::spawn_blocking(encode)
            .await
            .map_err(|error| ServiceError::Internal(format!("encoding failed: {error}")))?
    } else {
        encode()
    }
}

async fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, "not found")
}

async fn method_not_allowed() -> Response {
    error_response(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

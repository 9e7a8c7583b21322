//! The Open Inference Protocol over REST (axum): routes, JSON bodies, `{"error": ...}` answers.

use super::binary::{self, BinaryOutputs, BodyLayout};
use super::model_config::ModelConfig;
use super::openapi;
use super::routes::{Method, Operation, ROUTES, Route};
use super::{InferenceService, ServiceError};
use super::{headers, request_id};
use crate::codec::json::{self, ParametersJson};
use crate::codec::{InferenceRequest, InferenceResponse, TensorMetadata};
use crate::config::CorsSettings;
use crate::metrics::Metrics;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
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
    /// The largest request body accepted, in bytes (after decompression).
    pub max_body_bytes: usize,
    /// The most elements one tensor may hold.
    pub max_tensor_elements: u64,
    /// Accept `Content-Encoding: gzip` bodies.
    pub gzip_enabled: bool,
    /// CORS, when browsers of other origins may call the API.
    pub cors: Option<CorsSettings>,
}

/// What every handler shares.
#[derive(Clone)]
struct RestState {
    service: Arc<InferenceService>,
    options: Arc<RestOptions>,
}

/// Builds the REST router over the inference core; every request is counted and timed in
/// `metrics` and logged under its request id.
pub fn router(
    service: Arc<InferenceService>,
    options: &RestOptions,
    metrics: Arc<Metrics>,
) -> Router {
    let state = RestState {
        service,
        options: Arc::new(options.clone()),
    };
    let mut routes = Router::new();
    for route in ROUTES {
        routes = routes.route(route.path, method_router(route));
    }
    let routes = routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    // MLServer's root_path: the routes answer under the prefix, and without it (as behind a
    // proxy that strips the prefix).
    let root = options.root_path.trim_end_matches('/');
    let routes = if root.is_empty() {
        routes
    } else {
        Router::new().nest(root, routes.clone()).merge(routes)
    };
    let max_body_bytes = options.max_body_bytes;
    let routes = routes
        .layer(axum::middleware::from_fn(move |request, next| {
            reject_oversized(max_body_bytes, request, next)
        }))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn(move |request, next| {
            observe(metrics.clone(), request, next)
        }));
    match &options.cors {
        Some(cors) => routes.layer(super::cors::layer(cors)),
        None => routes,
    }
}

/// Counts and times a request by its route, and runs it in a span named after its request id
/// (the client's `x-request-id`, or a new one), which the response carries back.
async fn observe(
    metrics: Arc<Metrics>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let started = std::time::Instant::now();
    let path = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |path| path.as_str())
        .to_string();
    // Methods the API does not use share one label: no series per method a client invents.
    let method = match request.method().as_str() {
        known @ ("GET" | "POST" | "HEAD" | "OPTIONS" | "PUT" | "DELETE" | "PATCH") => known,
        _ => "OTHER",
    }
    .to_string();
    let id = request_id::of(request.headers());
    let span = tracing::info_span!("request", id = %id);
    let route = metrics.rest_started(&method, &path);
    let mut response = tracing::Instrument::instrument(next.run(request), span).await;
    metrics.rest_finished(route, response.status().as_u16(), started.elapsed());
    if let Ok(value) = header::HeaderValue::from_str(&id) {
        response.headers_mut().insert(request_id::HEADER, value);
    }
    response
}

/// The handler of a route of the table.
fn method_router(route: &Route) -> MethodRouter<RestState> {
    let with_model = route.path.contains("{model}");
    let handler = match (route.operation, with_model) {
        (Operation::Live, _) => get(live),
        (Operation::Ready, _) => get(ready),
        (Operation::ServerMetadata, _) => get(server_metadata),
        (Operation::ModelMetadata, _) => get(model_metadata),
        (Operation::ModelReady, _) => get(model_ready),
        (Operation::Infer, _) => post(infer),
        (Operation::InferStream, _) => post(infer_stream),
        (Operation::Statistics, false) => get(all_statistics),
        (Operation::Statistics, true) => get(model_statistics),
        (Operation::ModelConfig, _) => get(model_config),
        (Operation::RepositoryIndex, _) => post(repository_index),
        (Operation::RepositoryLoad, _) => post(load_model),
        (Operation::RepositoryUnload, _) => post(unload_model),
        (Operation::DocsPage, _) => get(docs_page),
        (Operation::DocsDocument, false) => get(api_document),
        (Operation::DocsDocument, true) => get(model_document),
    };
    debug_assert_eq!(
        route.method,
        if matches!(
            route.operation,
            Operation::Infer
                | Operation::InferStream
                | Operation::RepositoryIndex
                | Operation::RepositoryLoad
                | Operation::RepositoryUnload
        ) {
            Method::Post
        } else {
            Method::Get
        }
    );
    handler
}

/// The model (and version) a path names.
#[derive(serde::Deserialize)]
struct ModelPath {
    model: String,
    version: Option<String>,
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

async fn ready(State(state): State<RestState>) -> Response {
    if state.service.is_ready() {
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

async fn server_metadata(State(state): State<RestState>) -> Response {
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
        parameters: ParametersJson::new(&metadata.parameters),
    })
    .into_response()
}

async fn model_metadata(State(state): State<RestState>, Path(path): Path<ModelPath>) -> Response {
    metadata_response(&state.service, &path.model, path.version.as_deref())
}

fn ready_response(service: &InferenceService, name: &str, version: Option<&str>) -> Response {
    match service.model(name, version) {
        Ok(_) => StatusCode::OK.into_response(),
        // Known but not ready: the protocol's "4xx when false".
        Err(ServiceError::Unavailable(message)) => error_response(StatusCode::BAD_REQUEST, message),
        Err(error) => error.into_response(),
    }
}

async fn model_ready(State(state): State<RestState>, Path(path): Path<ModelPath>) -> Response {
    ready_response(&state.service, &path.model, path.version.as_deref())
}

async fn all_statistics(State(state): State<RestState>) -> Response {
    statistics_response(&state.service, None, None)
}

async fn model_statistics(State(state): State<RestState>, Path(path): Path<ModelPath>) -> Response {
    statistics_response(&state.service, Some(&path.model), path.version.as_deref())
}

/// Triton's statistics extension: `{"model_stats": [...]}` of every ready model, of every ready
/// version of one model, or of one version.
fn statistics_response(
    service: &InferenceService,
    name: Option<&str>,
    version: Option<&str>,
) -> Response {
    let models = match (name, version) {
        (Some(name), Some(version)) => service.model(name, Some(version)).map(|model| vec![model]),
        (name, _) => service.ready_models(name),
    };
    let models = match models {
        Ok(models) => models,
        Err(error) => return error.into_response(),
    };
    let model_stats: Vec<serde_json::Value> = models
        .iter()
        .map(|model| {
            let stats = model.stats.snapshot();
            let none = crate::stats::Measured::default();
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
                    "cache_hit": none,
                    "cache_miss": none,
                },
                "batch_stats": stats.batch_stats,
            })
        })
        .collect();
    axum::Json(serde_json::json!({ "model_stats": model_stats })).into_response()
}

async fn model_config(State(state): State<RestState>, Path(path): Path<ModelPath>) -> Response {
    config_response(&state.service, &path.model, path.version.as_deref())
}

fn config_response(service: &InferenceService, name: &str, version: Option<&str>) -> Response {
    match service.model(name, version) {
        Ok(model) => axum::Json(ModelConfig::of(&model)).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn infer(
    State(state): State<RestState>,
    Path(path): Path<ModelPath>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    infer_response(&state, &path.model, path.version.as_deref(), &headers, body).await
}

async fn infer_stream(
    State(state): State<RestState>,
    Path(path): Path<ModelPath>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    stream_response(&state, &path.model, path.version.as_deref(), &headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// Answers a request with server-sent events, one `data: {json}` event per response; an error
/// after the first event arrives as a `data: {"error": ...}` event that ends the stream.
async fn stream_response(
    state: &RestState,
    name: &str,
    version: Option<&str>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ServiceError> {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return Ok(error_response(rejection.status(), rejection.body_text())),
    };
    state.service.model(name, version)?;
    let mut request = decode(body, headers, &state.options, BodyLayout::Json, None).await?;
    headers::insert(&mut request, headers);
    let responses = state.service.infer_stream(name, version, request)?;
    let events = tokio_stream::StreamExt::map(
        tokio_stream::wrappers::ReceiverStream::new(responses),
        |response| {
            let json = match response {
                Ok(mut response) => {
                    headers::take(&mut response.parameters);
                    json::encode_response(&response, |_| false)
                        .map(|encoded| encoded.body)
                        .unwrap_or_else(|error| error_json(&error.to_string()))
                }
                Err(error) => error_json(&error.to_string()),
            };
            let mut event = Vec::with_capacity(json.len() + 8);
            event.extend_from_slice(b"data: ");
            event.extend_from_slice(&json);
            event.extend_from_slice(b"\n\n");
            Ok::<_, std::convert::Infallible>(Bytes::from(event))
        },
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        axum::body::Body::from_stream(events),
    )
        .into_response())
}

fn error_json(message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "error": message })).unwrap_or_default()
}

async fn infer_response(
    state: &RestState,
    name: &str,
    version: Option<&str>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match run_infer(state, name, version, headers, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn run_infer(
    state: &RestState,
    name: &str,
    version: Option<&str>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ServiceError> {
    let service = &state.service;
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return Ok(error_response(rejection.status(), rejection.body_text())),
    };
    // Fail fast on an unknown model before decoding the body.
    let model = service.model(name, version)?;
    let layout = BodyLayout::from_header(
        headers
            .get(binary::HEADER_LENGTH)
            .map(|value| value.to_str().unwrap_or("?")),
    )?;
    let raw_inputs = (layout == BodyLayout::Raw).then(|| model.metadata.inputs.clone());
    drop(model);
    let mut request = decode(body, headers, &state.options, layout, raw_inputs).await?;
    let binary_outputs = BinaryOutputs::take_from(&mut request)?;
    headers::insert(&mut request, headers);
    let mut response = service.infer(name, version, request).await?;
    let custom_headers = headers::take(&mut response.parameters);
    let encoded = encode(response, binary_outputs).await?;
    let mut reply = match encoded.json_length {
        Some(length) => (
            [
                (
                    header::CONTENT_TYPE,
                    binary::BINARY_CONTENT_TYPE.to_string(),
                ),
                (
                    header::HeaderName::from_static(binary::HEADER_LENGTH),
                    length.to_string(),
                ),
            ],
            encoded.body,
        )
            .into_response(),
        None => ([(header::CONTENT_TYPE, "application/json")], encoded.body).into_response(),
    };
    reply.headers_mut().extend(custom_headers);
    Ok(reply)
}

/// Decodes a request body: gunzips it within the size limit if needed, splits off its binary
/// data, then parses the JSON (or, for a raw body, takes it as the data of the model's only
/// input, described by `raw_inputs`). Large or compressed bodies are handled on a blocking
/// thread.
async fn decode(
    body: Bytes,
    headers: &HeaderMap,
    options: &RestOptions,
    layout: BodyLayout,
    raw_inputs: Option<Vec<TensorMetadata>>,
) -> Result<InferenceRequest, ServiceError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|value| value.to_str().unwrap_or("").trim().to_ascii_lowercase());
    let gzip = match encoding.as_deref() {
        None | Some("identity") => false,
        Some("gzip") if options.gzip_enabled => true,
        Some("gzip") => {
            return Err(ServiceError::BadRequest(
                "gzip bodies are disabled (gzip_enabled: false)".to_string(),
            ));
        }
        Some(other) => {
            return Err(ServiceError::BadRequest(format!(
                "unsupported Content-Encoding '{other}'; send identity or gzip"
            )));
        }
    };
    let (max_body_bytes, max_elements) = (options.max_body_bytes, options.max_tensor_elements);
    let decode = move || {
        let body = if gzip {
            gunzip(&body, max_body_bytes)?
        } else {
            body
        };
        let (json, binary) = layout.split(&body)?;
        match raw_inputs {
            Some(inputs) => binary::raw_request(&inputs, binary, max_elements),
            None => json::decode_request(json, binary, max_elements)
                .map_err(|error| ServiceError::BadRequest(error.to_string())),
        }
    };
    if gzip || body_is_large(headers) {
        tokio::task::spawn_blocking(decode)
            .await
            .map_err(|error| ServiceError::Internal(format!("decoding failed: {error}")))?
    } else {
        decode()
    }
}

fn body_is_large(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<usize>().ok())
        .is_none_or(|length| length > INLINE_CODEC_BYTES)
}

/// Decompresses a gzip body, refusing to produce more than `limit` bytes (no zip bombs).
fn gunzip(body: &[u8], limit: usize) -> Result<Bytes, ServiceError> {
    use std::io::Read;
    let mut decompressed = Vec::new();
    flate2::read::MultiGzDecoder::new(body)
        .take((limit as u64).saturating_add(1))
        .read_to_end(&mut decompressed)
        .map_err(|error| ServiceError::BadRequest(format!("malformed gzip body: {error}")))?;
    if decompressed.len() > limit {
        return Err(ServiceError::TooLarge(format!(
            "the decompressed request body is over the limit of {limit} bytes"
        )));
    }
    Ok(decompressed.into())
}

async fn encode(
    response: InferenceResponse,
    binary_outputs: BinaryOutputs,
) -> Result<json::EncodedBody, ServiceError> {
    let data_bytes: usize = response
        .outputs
        .iter()
        .map(|output| output.data.len())
        .sum();
    let inline = data_bytes <= INLINE_CODEC_BYTES || binary_outputs.any();
    let encode = move || {
        json::encode_response(&response, |output| binary_outputs.is_binary(output))
            .map_err(|error| ServiceError::Internal(error.to_string()))
    };
    // Binary outputs are copied, not formatted: only JSON text is worth a blocking thread.
    if !inline {
        tokio::task::spawn_blocking(encode)
            .await
            .map_err(|error| ServiceError::Internal(format!("encoding failed: {error}")))?
    } else {
        encode()
    }
}

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

async fn repository_index(
    State(state): State<RestState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return error_response(rejection.status(), rejection.body_text()),
    };
    let request: IndexRequestJson = if body.iter().all(u8::is_ascii_whitespace) {
        IndexRequestJson::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(request) => request,
            Err(error) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    format!("malformed request body: {error}"),
                );
            }
        }
    };
    match state.service.repository_index(request.ready).await {
        Ok(entries) => axum::Json(
            entries
                .iter()
                .map(|entry| IndexEntryJson {
                    name: &entry.name,
                    version: entry.version.as_deref(),
                    state: entry.state,
                    reason: &entry.reason,
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(error) => error.into_response(),
    }
}

async fn load_model(State(state): State<RestState>, Path(path): Path<ModelPath>) -> Response {
    match state.service.load_model(&path.model).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(error) => error.into_response(),
    }
}

async fn unload_model(State(state): State<RestState>, Path(path): Path<ModelPath>) -> Response {
    match state.service.unload_model(&path.model).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(error) => error.into_response(),
    }
}

async fn docs_page() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        openapi::DOCS_PAGE,
    )
        .into_response()
}

async fn api_document(State(state): State<RestState>) -> Response {
    axum::Json(openapi::document(
        state.service.info(),
        &state.options.root_path,
        None,
    ))
    .into_response()
}

async fn model_document(State(state): State<RestState>, Path(path): Path<ModelPath>) -> Response {
    match state.service.model(&path.model, path.version.as_deref()) {
        Ok(model) => axum::Json(openapi::document(
            state.service.info(),
            &state.options.root_path,
            Some(&model),
        ))
        .into_response(),
        Err(error) => error.into_response(),
    }
}

async fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, "not found")
}

async fn method_not_allowed() -> Response {
    error_response(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

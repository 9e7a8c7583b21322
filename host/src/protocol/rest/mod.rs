//! The Open Inference Protocol over REST (axum): the router built from the route table, and
//! what every handler shares.
//!
//! Handlers only decode, call the core ([`crate::core::InferenceService`]) and encode: the
//! health, metadata and model endpoints live in [`models`], inference in [`infer`] (bodies in
//! [`body`]), the repository extension in [`repository`], the request-wide layers in
//! [`middleware`].

mod body;
mod compression;
mod infer;
mod middleware;
mod models;
mod repository;
mod settings;

use super::error::error_response;
use super::routes::{Method, Operation, ROUTES, Route};
use crate::config::CorsSettings;
use crate::core::InferenceService;
use crate::metrics::Metrics;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{MethodRouter, get, post};
use std::sync::Arc;

/// Options of the REST front end.
#[derive(Debug, Clone)]
pub(crate) struct RestOptions {
    /// A prefix for every path (MLServer's `root_path`), e.g. `/serving`; empty for none.
    pub root_path: String,
    /// The largest request body accepted, in bytes (after decompression).
    pub max_body_bytes: usize,
    /// The most elements one tensor may hold.
    pub max_tensor_elements: u64,
    /// Accept `Content-Encoding: gzip` and `deflate` bodies, and compress the answers of the
    /// clients that accept it (MLServer's `gzip_enabled`).
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

/// The model (and version) a path names.
#[derive(serde::Deserialize)]
struct ModelPath {
    model: String,
    version: Option<String>,
}

/// Every (method, path) the router answers: each route of the table, and again under
/// `root_path` when there is one (MLServer's `root_path`: the routes answer under the prefix,
/// and without it, as behind a proxy that strips the prefix).
pub(crate) fn served_paths(root_path: &str) -> Vec<(&'static str, String)> {
    let root = root_path.trim_end_matches('/');
    ROUTES
        .iter()
        .flat_map(|route| {
            let method = route.method.http_name();
            let prefixed = (!root.is_empty()).then(|| (method, format!("{root}{}", route.path)));
            std::iter::once((method, route.path.to_string())).chain(prefixed)
        })
        .collect()
}

/// Builds the REST router over the inference core; every request is counted and timed in
/// `metrics` and logged under its request id.
pub(crate) fn router(
    service: Arc<InferenceService>,
    options: &RestOptions,
    metrics: Arc<Metrics>,
) -> Router {
    let state_budget = service.budget().clone();
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
    let root = options.root_path.trim_end_matches('/');
    let routes = if root.is_empty() {
        routes
    } else {
        Router::new().nest(root, routes.clone()).merge(routes)
    };
    // One layer for what every request goes through (each layer of its own would box a
    // future and clone the stack below it per request): its metrics and span, the refusal of a
    // body announced over the limit, the byte budget, and — before routing, which no path
    // ending in a slash passes — MLServer's redirect of a trailing slash.
    let front = Arc::new(Front {
        metrics,
        budget: state_budget,
        max_body_bytes: options.max_body_bytes,
        root_path: root.into(),
    });
    let routes = routes
        .layer(axum::middleware::from_fn(
            move |request, next: axum::middleware::Next| {
                let front = front.clone();
                async move { front.serve(request, next).await }
            },
        ))
        .layer(DefaultBodyLimit::max(options.max_body_bytes));
    let routes = if options.gzip_enabled {
        routes.layer(compression::CompressionLayer)
    } else {
        routes
    };
    match &options.cors {
        Some(cors) => {
            let preflight = super::cors::Preflight::new(cors);
            routes
                .layer(super::cors::layer(cors))
                .layer(axum::middleware::from_fn(move |request, next| {
                    super::cors::refuse_preflight(preflight.clone(), request, next)
                }))
        }
        None => routes,
    }
}

/// What the front layer of every REST request needs.
struct Front {
    metrics: Arc<Metrics>,
    budget: Arc<crate::core::budget::ByteBudget>,
    max_body_bytes: usize,
    root_path: Arc<str>,
}

impl Front {
    /// Observes the request (metrics, span, request id), refuses an announced body over the
    /// limit, holds its bytes in the budget, redirects a trailing slash, and routes it.
    async fn serve(
        &self,
        request: axum::extract::Request,
        next: axum::middleware::Next,
    ) -> axum::response::Response {
        middleware::observe(&self.metrics, request, |request| {
            middleware::reject_oversized(self.max_body_bytes, request, |request| {
                crate::protocol::budget::rest(&self.budget, request, |request| {
                    middleware::redirect_trailing_slash(&self.root_path, request, |request| {
                        next.run(request)
                    })
                })
            })
        })
        .await
    }
}

/// The handler of a route of the table.
fn method_router(route: &Route) -> MethodRouter<RestState> {
    let with_model = route.path.contains("{model}");
    let handler = match (route.operation, with_model) {
        (Operation::Live, _) => get(models::live),
        (Operation::Ready, _) => get(models::ready),
        (Operation::ServerMetadata, _) => get(models::server_metadata),
        (Operation::ModelMetadata, _) => get(models::model_metadata),
        (Operation::ModelReady, _) => get(models::model_ready),
        (Operation::Infer, _) => post(infer::infer),
        (Operation::InferStream, _) => post(infer::infer_stream),
        (Operation::Statistics, false) => get(models::all_statistics),
        (Operation::Statistics, true) => get(models::model_statistics),
        (Operation::ModelConfig, _) => get(models::model_config),
        (Operation::RepositoryIndex, _) => post(repository::index),
        (Operation::RepositoryLoad, _) => post(repository::load),
        (Operation::RepositoryUnload, _) => post(repository::unload),
        (Operation::DocsPage, _) => get(models::docs_page),
        (Operation::DocsDocument, false) => get(models::api_document),
        (Operation::DocsDocument, true) => get(models::model_document),
        (Operation::LogSettings, _) => by_method(route.method, settings::logging),
        (Operation::TraceSettings, false) => by_method(route.method, settings::trace_setting),
        (Operation::TraceSettings, true) => by_method(route.method, settings::model_trace_setting),
        (Operation::SharedMemory, _) => by_method(route.method, shared_memory),
    };
    // The settings are read (GET) and changed (POST) at the same path; the shared-memory
    // routes have both methods too.
    let either = matches!(
        route.operation,
        Operation::LogSettings | Operation::TraceSettings | Operation::SharedMemory
    );
    debug_assert!(
        either
            || route.method
                == if matches!(
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

/// `handler` on `method`.
fn by_method<H, T>(method: Method, handler: H) -> MethodRouter<RestState>
where
    H: axum::handler::Handler<T, RestState>,
    T: 'static,
{
    match method {
        Method::Get => get(handler),
        Method::Post => post(handler),
    }
}

/// Triton's shared-memory endpoints (status, register, unregister): 400, saying that mlhost
/// does not support shared memory.
async fn shared_memory() -> Response {
    error_response(
        StatusCode::BAD_REQUEST,
        crate::codec::shared_memory::UNSUPPORTED,
    )
}

async fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, "not found")
}

async fn method_not_allowed() -> Response {
    error_response(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

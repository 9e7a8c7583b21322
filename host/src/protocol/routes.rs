//! The REST API's routes, in one table: the router is built from it ([`super::rest`]) and so is
//! the OpenAPI document ([`super::openapi`]), so the document lists exactly what the server
//! answers.

/// What a route does; each has one handler (versioned paths share their unversioned route's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    Live,
    Ready,
    ServerMetadata,
    ModelMetadata,
    ModelReady,
    Infer,
    InferStream,
    Statistics,
    ModelConfig,
    RepositoryIndex,
    RepositoryLoad,
    RepositoryUnload,
    /// Triton's shared-memory extension, answered 400: not supported.
    SharedMemory,
    DocsPage,
    DocsDocument,
    /// Triton's logging extension (`GET` reads, `POST` changes).
    LogSettings,
    /// Triton's trace extension, of the server or of a model (`GET` reads, `POST` changes).
    TraceSettings,
}

/// One route: method, path (axum's `{param}` syntax, which is OpenAPI's too) and what it does.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Route {
    pub method: Method,
    pub path: &'static str,
    pub operation: Operation,
    /// A one-line description for the document.
    pub summary: &'static str,
    /// The document's group.
    pub tag: &'static str,
}

/// The HTTP methods the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
}

impl Method {
    /// The HTTP name, e.g. `GET`.
    pub(crate) fn http_name(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }

    /// The lower-case name OpenAPI uses.
    pub(crate) fn openapi_name(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Post => "post",
        }
    }
}

const fn route(
    method: Method,
    path: &'static str,
    operation: Operation,
    tag: &'static str,
    summary: &'static str,
) -> Route {
    Route {
        method,
        path,
        operation,
        summary,
        tag,
    }
}

use Method::{Get, Post};
use Operation::*;

/// Every route of the REST API.
pub(crate) const ROUTES: &[Route] = &[
    route(
        Get,
        "/v2/health/live",
        Live,
        "health",
        "Whether the server is live",
    ),
    route(
        Get,
        "/v2/health/ready",
        Ready,
        "health",
        "Whether the server is ready: its start-up loading has ended",
    ),
    route(
        Get,
        "/v2",
        ServerMetadata,
        "metadata",
        "The server's name, version and extensions",
    ),
    route(
        Get,
        "/v2/models/{model}",
        ModelMetadata,
        "metadata",
        "A model's versions, platform, inputs and outputs",
    ),
    route(
        Get,
        "/v2/models/{model}/versions/{version}",
        ModelMetadata,
        "metadata",
        "A model version's platform, inputs and outputs",
    ),
    route(
        Get,
        "/v2/models/{model}/ready",
        ModelReady,
        "health",
        "Whether a model is ready",
    ),
    route(
        Get,
        "/v2/models/{model}/versions/{version}/ready",
        ModelReady,
        "health",
        "Whether a model version is ready",
    ),
    route(
        Post,
        "/v2/models/{model}/infer",
        Infer,
        "inference",
        "Runs an inference request (JSON, or the binary tensor data extension)",
    ),
    route(
        Post,
        "/v2/models/{model}/versions/{version}/infer",
        Infer,
        "inference",
        "Runs an inference request on a model version",
    ),
    route(
        Post,
        "/v2/models/{model}/generate",
        Infer,
        "inference",
        "MLServer's alias of infer",
    ),
    route(
        Post,
        "/v2/models/{model}/versions/{version}/generate",
        Infer,
        "inference",
        "MLServer's alias of infer, on a model version",
    ),
    route(
        Post,
        "/v2/models/{model}/infer_stream",
        InferStream,
        "inference",
        "Runs a request and streams each response as a server-sent event",
    ),
    route(
        Post,
        "/v2/models/{model}/versions/{version}/infer_stream",
        InferStream,
        "inference",
        "Streams the responses of a model version",
    ),
    route(
        Post,
        "/v2/models/{model}/generate_stream",
        InferStream,
        "inference",
        "MLServer's alias of infer_stream",
    ),
    route(
        Post,
        "/v2/models/{model}/versions/{version}/generate_stream",
        InferStream,
        "inference",
        "MLServer's alias of infer_stream, on a model version",
    ),
    route(
        Get,
        "/v2/models/stats",
        Statistics,
        "statistics",
        "Inference statistics of every ready model",
    ),
    route(
        Get,
        "/v2/models/{model}/stats",
        Statistics,
        "statistics",
        "Inference statistics of every ready version of a model",
    ),
    route(
        Get,
        "/v2/models/{model}/versions/{version}/stats",
        Statistics,
        "statistics",
        "Inference statistics of a model version",
    ),
    route(
        Get,
        "/v2/models/{model}/config",
        ModelConfig,
        "metadata",
        "A model's configuration, in Triton's shape",
    ),
    route(
        Get,
        "/v2/models/{model}/versions/{version}/config",
        ModelConfig,
        "metadata",
        "A model version's configuration",
    ),
    route(
        Post,
        "/v2/repository/index",
        RepositoryIndex,
        "repository",
        "The models of the repository and their states",
    ),
    route(
        Post,
        "/v2/repository/models/{model}/load",
        RepositoryLoad,
        "repository",
        "Loads (or reloads) a model from disk, or with the configuration and files sent",
    ),
    route(
        Post,
        "/v2/repository/models/{model}/unload",
        RepositoryUnload,
        "repository",
        "Unloads a model",
    ),
    route(
        Get,
        "/v2/systemsharedmemory/status",
        SharedMemory,
        "shared memory",
        "Triton's system shared memory (not supported: 400)",
    ),
    route(
        Get,
        "/v2/systemsharedmemory/region/{region}/status",
        SharedMemory,
        "shared memory",
        "Triton's system shared memory (not supported: 400)",
    ),
    route(
        Post,
        "/v2/systemsharedmemory/region/{region}/register",
        SharedMemory,
        "shared memory",
        "Triton's system shared memory (not supported: 400)",
    ),
    route(
        Post,
        "/v2/systemsharedmemory/unregister",
        SharedMemory,
        "shared memory",
        "Triton's system shared memory (not supported: 400)",
    ),
    route(
        Post,
        "/v2/systemsharedmemory/region/{region}/unregister",
        SharedMemory,
        "shared memory",
        "Triton's system shared memory (not supported: 400)",
    ),
    route(
        Get,
        "/v2/cudasharedmemory/status",
        SharedMemory,
        "shared memory",
        "Triton's CUDA shared memory (not supported: 400)",
    ),
    route(
        Get,
        "/v2/cudasharedmemory/region/{region}/status",
        SharedMemory,
        "shared memory",
        "Triton's CUDA shared memory (not supported: 400)",
    ),
    route(
        Post,
        "/v2/cudasharedmemory/region/{region}/register",
        SharedMemory,
        "shared memory",
        "Triton's CUDA shared memory (not supported: 400)",
    ),
    route(
        Post,
        "/v2/cudasharedmemory/unregister",
        SharedMemory,
        "shared memory",
        "Triton's CUDA shared memory (not supported: 400)",
    ),
    route(
        Post,
        "/v2/cudasharedmemory/region/{region}/unregister",
        SharedMemory,
        "shared memory",
        "Triton's CUDA shared memory (not supported: 400)",
    ),
    route(
        Get,
        "/v2/docs",
        DocsPage,
        "docs",
        "This page: the API's documentation",
    ),
    route(
        Get,
        "/v2/docs/dataplane.json",
        DocsDocument,
        "docs",
        "The API's OpenAPI document",
    ),
    route(
        Get,
        "/v2/models/{model}/docs",
        DocsPage,
        "docs",
        "A model's documentation page",
    ),
    route(
        Get,
        "/v2/models/{model}/docs/dataplane.json",
        DocsDocument,
        "docs",
        "The OpenAPI document of a model, with its inputs and outputs",
    ),
    route(
        Get,
        "/v2/models/{model}/versions/{version}/docs",
        DocsPage,
        "docs",
        "A model version's documentation page",
    ),
    route(
        Get,
        "/v2/models/{model}/versions/{version}/docs/dataplane.json",
        DocsDocument,
        "docs",
        "The OpenAPI document of a model version",
    ),
    route(
        Get,
        "/v2/logging",
        LogSettings,
        "settings",
        "The log settings (Triton's logging extension)",
    ),
    route(
        Post,
        "/v2/logging",
        LogSettings,
        "settings",
        "Changes the log's levels at run time",
    ),
    route(
        Get,
        "/v2/trace/setting",
        TraceSettings,
        "settings",
        "The trace settings (Triton's trace extension over OpenTelemetry)",
    ),
    route(
        Post,
        "/v2/trace/setting",
        TraceSettings,
        "settings",
        "Changes the trace level, rate and count at run time",
    ),
    route(
        Get,
        "/v2/models/{model}/trace/setting",
        TraceSettings,
        "settings",
        "A model's trace settings",
    ),
    route(
        Post,
        "/v2/models/{model}/trace/setting",
        TraceSettings,
        "settings",
        "Changes a model's own trace settings",
    ),
];

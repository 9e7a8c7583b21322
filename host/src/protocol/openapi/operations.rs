//! The operations of the document: for each route its path parameters, request body,
//! responses and id.

use super::{json_content, reference};
use crate::protocol::routes::{Operation, Route};
use serde_json::{Map, Value, json};

/// What the default (error) response of an operation says.
const ERRORS: &str = "An error: 400 bad request, 404 unknown model, 413 too large, 503 not ready or overloaded, 504 past its deadline, 500 runtime failure";

/// One operation of the document: `route`'s, at `path` (a model's name may be in place).
pub(super) fn operation(route: &Route, path: &str) -> Value {
    let mut operation = json!({
        "tags": [route.tag],
        "summary": route.summary,
        "operationId": operation_id(route),
        "parameters": path_parameters(path),
        "responses": responses(route.operation),
    });
    if let Some(request) = request_body(route.operation) {
        operation["requestBody"] = request;
    }
    operation
}

/// A unique id: the method and the path's words (`post_v2_models_model_versions_version_infer`).
pub(super) fn operation_id(route: &Route) -> String {
    let words: Vec<String> = route
        .path
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|word| !word.is_empty())
        .map(str::to_string)
        .collect();
    format!("{}_{}", route.method.openapi_name(), words.join("_"))
}

/// The parameters `{model}` and `{version}` of the path, those it has.
fn path_parameters(path: &str) -> Vec<Value> {
    let mut parameters = Vec::new();
    let names = [
        ("model", "The model's name"),
        ("version", "The model's version"),
        ("region", "A shared-memory region's name"),
    ];
    for (name, description) in names {
        if path.contains(&format!("{{{name}}}")) {
            parameters.push(json!({
                "name": name, "in": "path", "required": true, "schema": {"type": "string"},
                "description": description,
            }));
        }
    }
    parameters
}

/// The body an operation takes, if any.
fn request_body(operation: Operation) -> Option<Value> {
    match operation {
        Operation::Infer => Some(json!({
            "required": true,
            "description": "A JSON request, or (application/octet-stream) the binary tensor data extension: the JSON request, its length in the Inference-Header-Content-Length header, followed by the inputs' bytes",
            "content": {
                "application/json": {"schema": reference("InferenceRequest")},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        })),
        Operation::InferStream => {
            Some(json!({"required": true, "content": json_content(reference("InferenceRequest"))}))
        }
        Operation::RepositoryIndex => Some(
            json!({"required": false, "content": json_content(reference("RepositoryIndexRequest"))}),
        ),
        Operation::RepositoryLoad => Some(json!({
            "required": false,
            "description": "Triton's repository extension: `config`, the model's configuration as JSON text (Triton's fields or model-settings.json's), overrides its settings for this load; `file:<path>` parameters, each a file's base64 content, form a fresh folder the model is loaded from",
            "content": json_content(json!({
                "type": "object",
                "properties": {"parameters": {
                    "type": "object",
                    "properties": {"config": {"type": "string"}},
                    "additionalProperties": {"type": "string", "format": "byte"},
                }},
            })),
        })),
        Operation::LogSettings | Operation::TraceSettings => Some(json!({
            "required": false,
            "description": "POST: the settings to change, as a JSON object (the others stay as they are)",
            "content": json_content(json!({"type": "object"})),
        })),
        _ => None,
    }
}

/// The responses of an operation: its success, and errors for all but the few that cannot
/// fail.
fn responses(operation: Operation) -> Map<String, Value> {
    let mut responses = Map::new();
    if operation == Operation::SharedMemory {
        responses.insert(
            "400".to_string(),
            json!({"description": "Shared memory is not supported by mlhost", "content": json_content(reference("Error"))}),
        );
        return responses;
    }
    responses.insert("200".to_string(), success(operation));
    if !matches!(operation, Operation::Live | Operation::DocsPage) {
        responses.insert(
            "default".to_string(),
            json!({"description": ERRORS, "content": json_content(reference("Error"))}),
        );
    }
    responses
}

/// The success response of an operation.
fn success(operation: Operation) -> Value {
    let (description, content) = match operation {
        Operation::Live | Operation::Ready | Operation::ModelReady => ("Yes", None),
        Operation::ServerMetadata => ("The server's metadata", Some(of("ServerMetadata"))),
        Operation::ModelMetadata => ("The model's metadata", Some(of("ModelMetadata"))),
        Operation::Infer => (
            "The inference response (binary outputs follow the JSON when asked for)",
            Some(json!({
                "application/json": {"schema": reference("InferenceResponse")},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            })),
        ),
        Operation::InferStream => (
            "Server-sent events: one `data: {InferenceResponse}` per response",
            Some(json!({"text/event-stream": {"schema": {"type": "string"}}})),
        ),
        Operation::Statistics => (
            "Statistics, in Triton's fields",
            Some(of("ModelStatistics")),
        ),
        Operation::ModelConfig => (
            "The configuration, in Triton's shape",
            Some(of("ModelConfig")),
        ),
        Operation::RepositoryIndex => ("The models and their states", Some(of("RepositoryIndex"))),
        Operation::RepositoryLoad | Operation::RepositoryUnload => ("Done", None),
        Operation::SharedMemory => ("Never: shared memory is not supported", None),
        Operation::DocsPage => (
            "An HTML page",
            Some(json!({"text/html": {"schema": {"type": "string"}}})),
        ),
        Operation::DocsDocument => (
            "An OpenAPI 3 document",
            Some(json_content(json!({"type": "object"}))),
        ),
        Operation::LogSettings => (
            "The log settings: log_info, log_warning, log_error, log_verbose_level, log_format, log_file",
            Some(json_content(json!({"type": "object"}))),
        ),
        Operation::TraceSettings => (
            "The trace settings: trace_level, trace_rate, trace_count, trace_mode, url",
            Some(json_content(json!({"type": "object"}))),
        ),
    };
    match content {
        Some(content) => json!({"description": description, "content": content}),
        None => json!({"description": description}),
    }
}

/// A JSON body of the components' schema `schema`.
fn of(schema: &str) -> Value {
    json_content(reference(schema))
}

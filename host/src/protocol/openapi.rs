//! The OpenAPI 3 document of the REST API (`/v2/docs/dataplane.json`, and per model), built
//! from the route table the router is built from, the server's datatypes and extensions, and
//! a model's metadata; and the page (`/v2/docs`) that renders it with no asset from elsewhere.

use super::ServerInfo;
use super::routes::{Method, Operation, ROUTES, Route};
use crate::codec::{DataType, TensorMetadata};
use crate::repository::LoadedModel;
use serde_json::{Map, Value, json};

/// The documentation page: HTML with its script and style inline; it fetches only the
/// document beside it (`<page>/dataplane.json`).
pub const DOCS_PAGE: &str = include_str!("docs.html");

/// The content types MLServer defines, as the request and input parameter `content_type`.
const CONTENT_TYPES: [&str; 5] = ["np", "pd", "str", "base64", "datetime"];

/// The OpenAPI document of the API, or of one model's part of it (its paths with the model's
/// name in place, and its inputs in the request schema).
pub fn document(info: &ServerInfo, root_path: &str, model: Option<&LoadedModel>) -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let path = match model {
            Some(_) if !route.path.contains("{model}") => continue,
            Some(model) => route.path.replace("{model}", &model.name),
            None => route.path.to_string(),
        };
        let entry = paths
            .entry(path.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        entry
            .as_object_mut()
            .expect("path items are objects")
            .insert(
                route.method.openapi_name().to_string(),
                operation(route, &path),
            );
    }
    let title = match model {
        Some(model) => format!("{} — model {}", info.name, model.name),
        None => format!("{} — Open Inference Protocol", info.name),
    };
    let mut description = format!(
        "The Open Inference Protocol (KServe V2) over REST, with the extensions {}.",
        info.extensions.join(", ")
    );
    if let Some(model) = model {
        description.push_str(&format!(
            " Model `{}` (platform `{}`): inputs {}; outputs {}.",
            model.name,
            model.metadata.platform,
            describe(&model.metadata.inputs),
            describe(&model.metadata.outputs)
        ));
    }
    let server_url = if root_path.trim_end_matches('/').is_empty() {
        "/".to_string()
    } else {
        root_path.trim_end_matches('/').to_string()
    };
    json!({
        "openapi": "3.0.3",
        "info": {"title": title, "version": info.version, "description": description},
        "servers": [{"url": server_url}],
        "tags": tags(),
        "paths": paths,
        "components": {"schemas": schemas(model.map(|model| &model.metadata.inputs[..]))},
    })
}

fn describe(tensors: &[TensorMetadata]) -> String {
    if tensors.is_empty() {
        return "as the runtime decides".to_string();
    }
    tensors
        .iter()
        .map(|tensor| format!("`{}` {} {:?}", tensor.name, tensor.datatype, tensor.shape))
        .collect::<Vec<_>>()
        .join(", ")
}

fn tags() -> Value {
    let mut seen: Vec<&str> = Vec::new();
    for route in ROUTES {
        if !seen.contains(&route.tag) {
            seen.push(route.tag);
        }
    }
    Value::Array(seen.into_iter().map(|tag| json!({"name": tag})).collect())
}

fn reference(schema: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{schema}")})
}

fn json_content(schema: Value) -> Value {
    json!({"application/json": {"schema": schema}})
}

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": json_content(reference("Error"))})
}

/// One operation of the document.
fn operation(route: &Route, path: &str) -> Value {
    let mut parameters = Vec::new();
    for name in ["model", "version"] {
        if path.contains(&format!("{{{name}}}")) {
            parameters.push(json!({
                "name": name, "in": "path", "required": true, "schema": {"type": "string"},
                "description": if name == "model" { "The model's name" } else { "The model's version" },
            }));
        }
    }
    let ok = |description: &str, content: Option<Value>| match content {
        Some(content) => json!({"description": description, "content": content}),
        None => json!({"description": description}),
    };
    let (request, success) = match route.operation {
        Operation::Live | Operation::Ready | Operation::ModelReady => (None, ok("Yes", None)),
        Operation::ServerMetadata => (
            None,
            ok(
                "The server's metadata",
                Some(json_content(reference("ServerMetadata"))),
            ),
        ),
        Operation::ModelMetadata => (
            None,
            ok(
                "The model's metadata",
                Some(json_content(reference("ModelMetadata"))),
            ),
        ),
        Operation::Infer => (
            Some(json!({
                "required": true,
                "description": "A JSON request, or (application/octet-stream) the binary tensor data extension: the JSON request, its length in the Inference-Header-Content-Length header, followed by the inputs' bytes",
                "content": {
                    "application/json": {"schema": reference("InferenceRequest")},
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                },
            })),
            ok(
                "The inference response (binary outputs follow the JSON when asked for)",
                Some(json!({
                    "application/json": {"schema": reference("InferenceResponse")},
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                })),
            ),
        ),
        Operation::InferStream => (
            Some(json!({"required": true, "content": json_content(reference("InferenceRequest"))})),
            ok(
                "Server-sent events: one `data: {InferenceResponse}` per response",
                Some(json!({"text/event-stream": {"schema": {"type": "string"}}})),
            ),
        ),
        Operation::Statistics => (
            None,
            ok(
                "Statistics, in Triton's fields",
                Some(json_content(reference("ModelStatistics"))),
            ),
        ),
        Operation::ModelConfig => (
            None,
            ok(
                "The configuration, in Triton's shape",
                Some(json_content(reference("ModelConfig"))),
            ),
        ),
        Operation::RepositoryIndex => (
            Some(
                json!({"required": false, "content": json_content(reference("RepositoryIndexRequest"))}),
            ),
            ok(
                "The models and their states",
                Some(json_content(reference("RepositoryIndex"))),
            ),
        ),
        Operation::RepositoryLoad | Operation::RepositoryUnload => (None, ok("Done", None)),
        Operation::DocsPage => (
            None,
            ok(
                "An HTML page",
                Some(json!({"text/html": {"schema": {"type": "string"}}})),
            ),
        ),
        Operation::DocsDocument => (
            None,
            ok(
                "An OpenAPI 3 document",
                Some(json_content(json!({"type": "object"}))),
            ),
        ),
    };
    let mut responses = Map::new();
    responses.insert("200".to_string(), success);
    if !matches!(route.operation, Operation::Live | Operation::DocsPage) {
        responses.insert(
            "default".to_string(),
            error_response("An error: 400 bad request, 404 unknown model, 413 too large, 503 not ready or overloaded, 504 past its deadline, 500 runtime failure"),
        );
    }
    let mut operation = json!({
        "tags": [route.tag],
        "summary": route.summary,
        "operationId": operation_id(route),
        "parameters": parameters,
        "responses": responses,
    });
    if let Some(request) = request {
        operation["requestBody"] = request;
    }
    operation
}

/// A unique id: the method and the path's words (`post_v2_models_model_versions_version_infer`).
fn operation_id(route: &Route) -> String {
    let words: Vec<String> = route
        .path
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|word| !word.is_empty())
        .map(str::to_string)
        .collect();
    format!(
        "{}_{}",
        match route.method {
            Method::Get => "get",
            Method::Post => "post",
        },
        words.join("_")
    )
}

/// The schemas; a model's document names its inputs in the request's.
fn schemas(model_inputs: Option<&[TensorMetadata]>) -> Value {
    let datatypes: Vec<&str> = DataType::ALL
        .iter()
        .map(|datatype| datatype.as_str())
        .collect();
    let parameters = json!({
        "type": "object",
        "description": format!(
            "Named parameters: strings, numbers or booleans (`headers` may be an object). \
             `content_type` is one of {CONTENT_TYPES:?}; `binary_data_size` (inputs), `binary_data` \
             (requested outputs) and `binary_data_output` (request) belong to the binary tensor \
             data extension; `timeout` (request, microseconds) shortens the deadline."
        ),
        "additionalProperties": {
            "oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}, {"type": "object"}],
        },
    });
    let shape = json!({"type": "array", "items": {"type": "integer", "format": "int64"}});
    let mut input_name = json!({"type": "string"});
    if let Some(inputs) = model_inputs.filter(|inputs| !inputs.is_empty()) {
        input_name = json!({
            "type": "string",
            "enum": inputs.iter().map(|input| input.name.clone()).collect::<Vec<_>>(),
            "description": describe(inputs),
        });
    }
    let tensor_metadata = json!({
        "type": "object",
        "required": ["name", "datatype", "shape"],
        "properties": {
            "name": {"type": "string"},
            "datatype": reference("Datatype"),
            "shape": shape,
            "parameters": reference("Parameters"),
        },
    });
    json!({
        "Error": {
            "type": "object", "required": ["error"],
            "properties": {"error": {"type": "string"}},
        },
        "Datatype": {"type": "string", "enum": datatypes},
        "Parameters": parameters,
        "TensorData": {
            "description": "The elements in row-major order, flat or nested as the shape; strings for BYTES, booleans for BOOL",
            "type": "array",
            "items": {},
        },
        "RequestInput": {
            "type": "object",
            "required": ["name", "shape", "datatype"],
            "properties": {
                "name": input_name,
                "shape": shape,
                "datatype": reference("Datatype"),
                "parameters": reference("Parameters"),
                "data": reference("TensorData"),
            },
        },
        "RequestOutput": {
            "type": "object", "required": ["name"],
            "properties": {"name": {"type": "string"}, "parameters": reference("Parameters")},
        },
        "InferenceRequest": {
            "type": "object", "required": ["inputs"],
            "properties": {
                "id": {"type": "string"},
                "parameters": reference("Parameters"),
                "inputs": {"type": "array", "items": reference("RequestInput")},
                "outputs": {"type": "array", "items": reference("RequestOutput")},
            },
        },
        "ResponseOutput": {
            "type": "object", "required": ["name", "shape", "datatype"],
            "properties": {
                "name": {"type": "string"},
                "shape": shape,
                "datatype": reference("Datatype"),
                "parameters": reference("Parameters"),
                "data": reference("TensorData"),
            },
        },
        "InferenceResponse": {
            "type": "object", "required": ["model_name", "outputs"],
            "properties": {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "id": {"type": "string"},
                "parameters": reference("Parameters"),
                "outputs": {"type": "array", "items": reference("ResponseOutput")},
            },
        },
        "MetadataTensor": tensor_metadata,
        "ServerMetadata": {
            "type": "object", "required": ["name", "version", "extensions"],
            "properties": {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "extensions": {"type": "array", "items": {"type": "string"}},
            },
        },
        "ModelMetadata": {
            "type": "object", "required": ["name", "platform", "inputs", "outputs"],
            "properties": {
                "name": {"type": "string"},
                "versions": {"type": "array", "items": {"type": "string"}},
                "platform": {"type": "string"},
                "inputs": {"type": "array", "items": reference("MetadataTensor")},
                "outputs": {"type": "array", "items": reference("MetadataTensor")},
                "parameters": reference("Parameters"),
            },
        },
        "RepositoryIndexRequest": {
            "type": "object",
            "properties": {"ready": {"type": "boolean", "description": "Only the ready models"}},
        },
        "RepositoryIndex": {
            "type": "array",
            "items": {
                "type": "object", "required": ["name", "state", "reason"],
                "properties": {
                    "name": {"type": "string"},
                    "version": {"type": "string"},
                    "state": {"type": "string", "enum": ["READY", "LOADING", "UNAVAILABLE"]},
                    "reason": {"type": "string"},
                },
            },
        },
        "Duration": {
            "type": "object",
            "properties": {"count": {"type": "integer"}, "ns": {"type": "integer"}},
        },
        "ModelStatistics": {
            "type": "object",
            "properties": {
                "model_stats": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "version": {"type": "string"},
                            "last_inference": {"type": "integer"},
                            "inference_count": {"type": "integer"},
                            "execution_count": {"type": "integer"},
                            "inference_stats": {
                                "type": "object",
                                "additionalProperties": reference("Duration"),
                            },
                            "batch_stats": {"type": "array", "items": {"type": "object"}},
                        },
                    },
                },
            },
        },
        "ModelConfig": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "platform": {"type": "string"},
                "backend": {"type": "string"},
                "max_batch_size": {"type": "integer"},
                "input": {"type": "array", "items": {"type": "object"}},
                "output": {"type": "array", "items": {"type": "object"}},
                "dynamic_batching": {"type": "object"},
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_lists_every_route_once() {
        let info = ServerInfo {
            name: "mlhost".into(),
            version: "1".into(),
            extensions: vec!["statistics".into()],
        };
        let document = document(&info, "", None);
        let paths = document["paths"].as_object().unwrap();
        for route in ROUTES {
            assert!(
                paths[route.path].get(route.method.openapi_name()).is_some(),
                "{} missing",
                route.path
            );
        }
        let mut ids: Vec<String> = ROUTES.iter().map(operation_id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), ROUTES.len(), "operation ids are unique");
        assert_eq!(
            document["components"]["schemas"]["Datatype"]["enum"]
                .as_array()
                .unwrap()
                .len(),
            14
        );
    }
}

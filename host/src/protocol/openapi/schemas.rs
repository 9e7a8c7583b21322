//! The schemas of the document's components, in groups: the basic types, the inference
//! request and response, the metadata, the repository, the statistics and the configuration.
//! A model's document names its inputs in the request's.

use super::{describe, reference};
use crate::codec::{DataType, TensorMetadata};
use serde_json::{Map, Value, json};

/// The content types MLServer defines, as the request and input parameter `content_type`.
const CONTENT_TYPES: [&str; 5] = ["np", "pd", "str", "base64", "datetime"];

/// The schemas; a model's document names its inputs in the request's.
pub(super) fn schemas(model_inputs: Option<&[TensorMetadata]>) -> Value {
    let mut schemas = Map::new();
    for group in [
        basics(),
        inference(model_inputs),
        metadata(),
        repository(),
        statistics(),
        configuration(),
    ] {
        match group {
            Value::Object(group) => schemas.extend(group),
            _ => unreachable!("schema groups are objects"),
        }
    }
    Value::Object(schemas)
}

/// A tensor's shape.
fn shape() -> Value {
    json!({"type": "array", "items": {"type": "integer", "format": "int64"}})
}

/// An error, the datatypes, parameters and tensor data.
fn basics() -> Value {
    let datatypes: Vec<&str> = DataType::ALL
        .iter()
        .map(|datatype| datatype.as_str())
        .collect();
    json!({
        "Error": {
            "type": "object", "required": ["error"],
            "properties": {"error": {"type": "string"}},
        },
        "Datatype": {"type": "string", "enum": datatypes},
        "Parameters": parameters(),
        "TensorData": {
            "description": "The elements in row-major order, flat or nested as the shape; strings for BYTES, booleans for BOOL",
            "type": "array",
            "items": {},
        },
    })
}

/// Named parameters, of requests, inputs and outputs.
fn parameters() -> Value {
    json!({
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
    })
}

/// An input's name: any string, or one of a model's inputs.
fn input_name(model_inputs: Option<&[TensorMetadata]>) -> Value {
    match model_inputs.filter(|inputs| !inputs.is_empty()) {
        Some(inputs) => json!({
            "type": "string",
            "enum": inputs.iter().map(|input| input.name.clone()).collect::<Vec<_>>(),
            "description": describe(inputs),
        }),
        None => json!({"type": "string"}),
    }
}

/// The inference request and response.
fn inference(model_inputs: Option<&[TensorMetadata]>) -> Value {
    json!({
        "RequestInput": {
            "type": "object",
            "required": ["name", "shape", "datatype"],
            "properties": {
                "name": input_name(model_inputs),
                "shape": shape(),
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
                "shape": shape(),
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
    })
}

/// The server's and models' metadata.
fn metadata() -> Value {
    json!({
        "MetadataTensor": {
            "type": "object",
            "required": ["name", "datatype", "shape"],
            "properties": {
                "name": {"type": "string"},
                "datatype": reference("Datatype"),
                "shape": shape(),
                "parameters": reference("Parameters"),
            },
        },
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
    })
}

/// The repository's index, and its request.
fn repository() -> Value {
    json!({
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
    })
}

/// The statistics, in Triton's fields.
fn statistics() -> Value {
    json!({
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
    })
}

/// A model's configuration, in Triton's shape.
fn configuration() -> Value {
    json!({
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

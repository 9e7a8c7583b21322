//! The OpenAPI 3 document of the REST API (`/v2/docs/dataplane.json`, and per model), built
//! from the route table the router is built from, the server's datatypes and extensions, and
//! a model's metadata; and the page (`/v2/docs`) that renders it with no asset from elsewhere.
//!
//! This module assembles the document (its info, servers, tags and paths); `operations`
//! describes each route's operation and `schemas` the components' schemas.

mod operations;
mod schemas;

use super::routes::ROUTES;
use crate::codec::{ModelMetadata, TensorMetadata};
use crate::core::ServerInfo;
use crate::repository::LoadedModel;
use serde_json::{Map, Value, json};

/// The documentation page: HTML with its script and style inline; it fetches only the
/// document beside it (`<page>/dataplane.json`).
pub(crate) const DOCS_PAGE: &str = include_str!("../docs.html");

/// The model a document is about: its name and what it says of itself.
#[derive(Clone, Copy)]
struct ModelPart<'a> {
    name: &'a str,
    metadata: &'a ModelMetadata,
}

/// The OpenAPI document of the API, or of one model's part of it (its paths with the model's
/// name in place, and its inputs in the request schema).
pub(crate) fn document(info: &ServerInfo, root_path: &str, model: Option<&LoadedModel>) -> Value {
    let model = model.map(|model| ModelPart {
        name: &model.name,
        metadata: &model.metadata,
    });
    document_of(info, root_path, model)
}

/// The document, of the API or of `model`'s part of it.
fn document_of(info: &ServerInfo, root_path: &str, model: Option<ModelPart>) -> Value {
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": title(info, model),
            "version": info.version,
            "description": description(info, model),
        },
        "servers": [{"url": server_url(root_path)}],
        "tags": tags(),
        "paths": paths(model),
        "components": {
            "schemas": schemas::schemas(model.map(|model| &model.metadata.inputs[..])),
        },
    })
}

/// Every route's operation by path, or those of the routes of a model with its name in place.
fn paths(model: Option<ModelPart>) -> Map<String, Value> {
    let mut paths = Map::new();
    for route in ROUTES {
        let path = match model {
            Some(_) if !route.path.contains("{model}") => continue,
            Some(model) => route.path.replace("{model}", model.name),
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
                operations::operation(route, &path),
            );
    }
    paths
}

fn title(info: &ServerInfo, model: Option<ModelPart>) -> String {
    match model {
        Some(model) => format!("{} — model {}", info.name, model.name),
        None => format!("{} — Open Inference Protocol", info.name),
    }
}

fn description(info: &ServerInfo, model: Option<ModelPart>) -> String {
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
    description
}

/// The server's URL: the root path, `/` when there is none.
fn server_url(root_path: &str) -> String {
    if root_path.trim_end_matches('/').is_empty() {
        "/".to_string()
    } else {
        root_path.trim_end_matches('/').to_string()
    }
}

/// Tensors in a line: their names, datatypes and shapes.
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

/// The routes' tags, in the order they first appear.
fn tags() -> Value {
    let mut seen: Vec<&str> = Vec::new();
    for route in ROUTES {
        if !seen.contains(&route.tag) {
            seen.push(route.tag);
        }
    }
    Value::Array(seen.into_iter().map(|tag| json!({"name": tag})).collect())
}

/// A reference to a schema of the components.
fn reference(schema: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{schema}")})
}

/// A JSON body of `schema`.
fn json_content(schema: Value) -> Value {
    json!({"application/json": {"schema": schema}})
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
        let mut ids: Vec<String> = ROUTES.iter().map(operations::operation_id).collect();
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

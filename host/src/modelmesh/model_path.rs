//! What a `loadModel` call names, as a model the repository can load: the folder or file at
//! `modelPath`, served under `modelId`, by the runtime its `model-settings.json` names, else the
//! one its model type (`modelType`, else `modelKey`'s `model_type.name`) or its file's extension
//! points to.

use crate::config::{
    ConfigError, ModelSettings, check_model_settings, parse_model_settings,
    read_model_settings_over,
};
use crate::repository::DiscoveredModel;
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

/// The file that holds a model folder's settings.
const MODEL_SETTINGS_FILE: &str = "model-settings.json";

/// The model types mlhost serves, as ModelMesh Serving's `modelFormat` names them, and the
/// runtime for each (`None`: the folder's `.wasm` component).
pub(super) const MODEL_TYPES: &[(&str, Option<&str>)] = &[
    ("xgboost", Some("xgboost")),
    ("lightgbm", Some("lightgbm")),
    ("catboost", Some("catboost")),
    ("onnx", Some("onnx")),
    ("linear", Some("linear")),
    ("trees", Some("trees")),
    ("wasm", None),
];

/// A `loadModel` call, read: the model to load and what its size estimate needs.
#[derive(Debug)]
pub(super) struct MeshModel {
    pub(super) model: DiscoveredModel,
    /// The bytes of the model's files (the folder's, or the one file's).
    pub(super) disk_bytes: u64,
    /// The bytes of the model's own `.wasm` component, when it has one.
    pub(super) component_bytes: u64,
    /// Its worker threads, each with an instance of its own.
    pub(super) workers: usize,
}

/// What `loadModel` and `predictModelSize` carry.
pub(super) struct Request<'a> {
    pub(super) id: &'a str,
    pub(super) model_type: &'a str,
    pub(super) path: &'a str,
    pub(super) key: &'a str,
}

/// Reads the model `request` names; the error says why it cannot be loaded (no load was tried).
/// Blocking (it reads the disk).
pub(super) fn resolve(request: &Request<'_>, server_workers: usize) -> Result<MeshModel, String> {
    if request.id.is_empty() {
        return Err("modelId is empty".into());
    }
    let path = PathBuf::from(request.path);
    let metadata = std::fs::metadata(&path)
        .map_err(|error| format!("modelPath '{}': {error}", request.path))?;
    let (folder, file) = if metadata.is_dir() {
        (path.clone(), None)
    } else {
        let folder = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned());
        (folder, name)
    };
    let settings_file = folder.join(MODEL_SETTINGS_FILE);
    let settings = if file.is_none() || file.as_deref() == Some(MODEL_SETTINGS_FILE) {
        settings_file
            .is_file()
            .then(|| read_settings(&settings_file))
    } else {
        None
    };
    let settings = match settings {
        Some(settings) => settings,
        None => inferred_settings(request, &folder, file.as_deref())?,
    };
    let workers = settings
        .as_ref()
        .ok()
        .and_then(|settings| settings.parallel_workers)
        .unwrap_or(server_workers);
    let component_bytes = settings
        .as_ref()
        .ok()
        .and_then(|settings| settings.implementation.as_deref())
        .filter(|implementation| implementation.ends_with(".wasm"))
        .and_then(|implementation| std::fs::metadata(folder.join(implementation)).ok())
        .map_or(0, |metadata| metadata.len());
    let disk_bytes = match &file {
        Some(_) if metadata.is_file() => metadata.len(),
        _ => super::size::folder_bytes(&folder),
    };
    let version = settings
        .as_ref()
        .ok()
        .and_then(|settings| settings.parameters.version.clone());
    Ok(MeshModel {
        model: DiscoveredModel {
            folder,
            name: request.id.to_string(),
            version,
            settings,
            problem: None,
        },
        disk_bytes,
        component_bytes,
        workers: workers.max(1),
    })
}

/// The folder's own `model-settings.json`, checked (its `name` is replaced by the model id).
fn read_settings(file: &Path) -> Result<ModelSettings, ConfigError> {
    let settings = read_model_settings_over(file, &Map::new())?;
    check_model_settings(&settings, file)?;
    Ok(settings)
}

/// The settings of a model without `model-settings.json`: its runtime from its model type or its
/// file's extension, its uri the file (or the folder).
fn inferred_settings(
    request: &Request<'_>,
    folder: &Path,
    file: Option<&str>,
) -> Result<Result<ModelSettings, ConfigError>, String> {
    let model_type = model_type(request);
    let runtime = match model_type.as_deref() {
        Some(model_type) => MODEL_TYPES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(model_type))
            .map(|(_, runtime)| *runtime)
            .ok_or_else(|| {
                format!(
                    "model type '{model_type}' is not one mlhost serves ({}); or give the model's \
                     folder a model-settings.json naming its runtime",
                    type_names()
                )
            })?,
        None => runtime_of_extension(file).ok_or_else(|| {
            format!(
                "no model type and no model-settings.json in '{}': give the model type ({}) \
                 or a model-settings.json",
                request.path,
                type_names()
            )
        })?,
    };
    let implementation = match runtime {
        Some(runtime) => runtime.to_string(),
        None => component_in(folder, file)?,
    };
    let uri = match (runtime, file) {
        (Some(_), Some(file)) => file.to_string(),
        _ => ".".to_string(),
    };
    let fields = json!({
        "name": request.id,
        "implementation": implementation,
        "parameters": {"uri": uri},
    });
    let Value::Object(fields) = fields else {
        unreachable!("an object")
    };
    Ok(parse_model_settings(
        fields,
        &format!("model '{}' of ModelMesh", request.id),
    ))
}

/// The model's type: `model_type.name` of `modelKey` (ModelMesh Serving's JSON: the
/// InferenceService's `modelFormat`), else the type `modelType` names. ModelMesh Serving's
/// `modelType` is a placement label: `mt:NAME`, `mt:NAME:VERSION`, either followed by
/// `|pv:PROTOCOL`, or `rt:RUNTIME` (no type); another caller may give the bare type.
fn model_type(request: &Request<'_>) -> Option<String> {
    let from_key = serde_json::from_str::<Value>(request.key)
        .ok()
        .and_then(|key| Some(key.get("model_type")?.get("name")?.as_str()?.to_string()))
        .filter(|name| !name.is_empty());
    from_key.or_else(|| {
        let label = request.model_type.split('|').next().unwrap_or_default();
        let name = match label.split_once(':') {
            Some(("mt", rest)) => rest.split(':').next().unwrap_or_default(),
            Some(_) => "",
            None => label,
        };
        (!name.is_empty()).then(|| name.to_string())
    })
}

/// The runtime a model file's extension points to (`Some(None)`: a component).
fn runtime_of_extension(file: Option<&str>) -> Option<Option<&'static str>> {
    let extension = Path::new(file?).extension()?.to_str()?.to_ascii_lowercase();
    match extension.as_str() {
        "onnx" => Some(Some("onnx")),
        "ubj" => Some(Some("xgboost")),
        "cbm" => Some(Some("catboost")),
        "wasm" => Some(None),
        _ => None,
    }
}

/// The `.wasm` component of a `wasm` model: the file named, else the folder's only one.
fn component_in(folder: &Path, file: Option<&str>) -> Result<String, String> {
    if let Some(file) = file.filter(|file| file.ends_with(".wasm")) {
        return Ok(file.to_string());
    }
    let components: Vec<String> = std::fs::read_dir(folder)
        .map_err(|error| format!("cannot read '{}': {error}", folder.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".wasm"))
        .collect();
    match components.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!(
            "a wasm model needs a .wasm component in '{}'",
            folder.display()
        )),
        _ => Err(format!(
            "'{}' holds several .wasm components: name one in a model-settings.json",
            folder.display()
        )),
    }
}

fn type_names() -> String {
    MODEL_TYPES
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(path: &'a str, model_type: &'a str, key: &'a str) -> Request<'a> {
        Request {
            id: "m-1",
            model_type,
            path,
            key,
        }
    }

    fn implementation(model: &MeshModel) -> (String, Option<String>) {
        let settings = model.model.settings.as_ref().unwrap();
        (
            settings.implementation.clone().unwrap(),
            settings.parameters.uri.clone(),
        )
    }

    #[test]
    fn a_folder_with_model_settings_loads_as_its_file_says_under_the_id() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(MODEL_SETTINGS_FILE),
            r#"{"name": "iris", "implementation": "linear", "parallel_workers": 3,
                "parameters": {"uri": "./linear.json", "version": "2"}}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("linear.json"), "{}").unwrap();
        let model = resolve(&request(dir.path().to_str().unwrap(), "", ""), 1).unwrap();
        assert_eq!(model.model.name, "m-1");
        assert_eq!(model.model.version.as_deref(), Some("2"));
        assert_eq!(model.workers, 3);
        assert!(model.disk_bytes > 2);
        assert_eq!(implementation(&model).0, "linear");
    }

    #[test]
    fn the_runtime_comes_from_the_type_the_key_or_the_extension() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("model.json");
        std::fs::write(&file, "{}").unwrap();
        let path = file.to_str().unwrap();
        let by_type = resolve(&request(path, "XGBoost", ""), 2).unwrap();
        assert_eq!(
            implementation(&by_type),
            ("xgboost".into(), Some("model.json".into()))
        );
        assert_eq!((by_type.workers, by_type.disk_bytes), (2, 2));
        let key = r#"{"model_type": {"name": "lightgbm", "version": "3"}, "bucket": "b"}"#;
        let by_key = resolve(&request(path, "", key), 1).unwrap();
        assert_eq!(implementation(&by_key).0, "lightgbm");
        let onnx = dir.path().join("model.onnx");
        std::fs::write(&onnx, "x").unwrap();
        let by_extension = resolve(&request(onnx.to_str().unwrap(), "", ""), 1).unwrap();
        assert_eq!(implementation(&by_extension).0, "onnx");
        let folder = resolve(&request(dir.path().to_str().unwrap(), "onnx", ""), 1).unwrap();
        assert_eq!(implementation(&folder), ("onnx".into(), Some(".".into())));
    }

    #[test]
    fn the_type_is_the_keys_else_modelmeshs_label_says() {
        let types = |label: &str, key: &str| model_type(&request("p", label, key));
        let key = r#"{"model_type": {"name": "onnx"}}"#;
        assert_eq!(types("rt:mlhost-modelmesh", key).as_deref(), Some("onnx"));
        assert_eq!(types("mt:xgboost", key).as_deref(), Some("onnx"));
        assert_eq!(
            types("mt:xgboost:2|pv:grpc-v2", "").as_deref(),
            Some("xgboost")
        );
        assert_eq!(types("mt:lightgbm", "{}").as_deref(), Some("lightgbm"));
        assert_eq!(types("linear", "").as_deref(), Some("linear"));
        assert_eq!(types("rt:mlhost-modelmesh", "{}"), None);
        assert_eq!(types("", r#"{"model_type": {"name": ""}}"#), None);
    }

    #[test]
    fn what_cannot_be_loaded_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap();
        let refused = |request: Request<'_>| resolve(&request, 1).unwrap_err();
        assert!(refused(request(path, "sklearn", "")).contains("'sklearn' is not one"));
        assert!(refused(request(path, "", "")).contains("no model type"));
        assert!(refused(request(path, "wasm", "")).contains("needs a .wasm component"));
        assert!(refused(request("/no/such/model", "onnx", "")).contains("/no/such/model"));
        let mut empty = request(path, "onnx", "");
        empty.id = "";
        assert!(refused(empty).contains("modelId"));
    }
}

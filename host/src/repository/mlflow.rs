//! MLflow model folders (a folder with an `MLmodel` file), served by the built-in runtime of
//! their flavour, with their signature as the model's declared inputs and outputs.
//!
//! A model is read as an MLflow model when its `parameters.uri` (default: its folder) is a
//! folder holding `MLmodel`, or names that file, and its `implementation` is `mlflow`,
//! MLServer's `mlserver_mlflow.MLflowRuntime`, or not given. The flavours served:
//!
//! | flavour | runtime | file |
//! |---|---|---|
//! | `onnx` | `onnx` | the flavour's `data` (`model.onnx`) |
//! | `xgboost`, `lightgbm`, `catboost` | `trees` | the flavour's `data` (`model.xgb`, `model.lgb`, `model.cb`) |
//! | `sklearn` with a `model.onnx` beside `MLmodel` | `onnx` | `model.onnx` (`mlhost convert` writes it) |
//!
//! `python_function`-only models (custom Python code) and `sklearn`-only models (a pickle) are
//! refused with what to do instead; so is every other flavour.
//!
//! The signature (MLflow's `inputs` / `outputs`: JSON text of column or tensor specs) becomes
//! the declared inputs and outputs where model-settings.json declares none, as MLServer's MLflow
//! runtime makes them: a column is `[-1, 1]` of its type (so a request of columns is assembled
//! into the model's matrix by these names), a tensor keeps its shape, and an unnamed one is
//! `input-N` / `output-N`. Unnamed outputs are left to the runtime (it names them: `predict`),
//! and so are an ONNX model's unnamed inputs (the graph names them).

use crate::config::{ModelSettings, TensorSettings};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The file that makes a folder an MLflow model.
pub(crate) const MLMODEL_FILE: &str = "MLmodel";

/// The `implementation` names that ask for an MLflow model.
pub(crate) const MLFLOW_IMPLEMENTATIONS: &[&str] = &["mlflow", "mlserver_mlflow.MLflowRuntime"];

/// MLServer's scikit-learn runtime: served by `onnx` once `mlhost convert` wrote `model.onnx`
/// beside the pickle.
const MLSERVER_SKLEARN: &str = "mlserver_sklearn.SKLearnModel";

/// The ONNX file `mlhost convert` writes beside a pickle.
pub(crate) const CONVERTED_FILE: &str = "model.onnx";

/// Why an MLflow model cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum MlflowError {
    /// `MLmodel` cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `MLmodel` is not the YAML MLflow writes.
    #[error("{} is not an MLflow MLmodel file: {source}", path.display())]
    Yaml {
        path: PathBuf,
        #[source]
        source: serde_norway::Error,
    },
    /// The signature's `inputs` or `outputs` is not MLflow's JSON schema.
    #[error("{}: signature `{part}` is not MLflow's schema: {reason}", path.display())]
    Signature {
        path: PathBuf,
        part: &'static str,
        reason: String,
    },
    /// The implementation asks for MLflow but the uri holds no `MLmodel`.
    #[error("implementation '{implementation}' serves MLflow model folders, but {} holds no MLmodel file", folder.display())]
    NoMlmodel {
        implementation: String,
        folder: PathBuf,
    },
    /// No flavour of the model can be served; the message says what to do.
    #[error("{}: {reason}", path.display())]
    NotServable { path: PathBuf, reason: String },
}

/// An `MLmodel` file, as far as mlhost reads it.
#[derive(Debug, Deserialize)]
struct MlModelFile {
    #[serde(default)]
    flavors: BTreeMap<String, Flavor>,
    #[serde(default)]
    signature: Option<SignatureFile>,
}

/// One flavour's entry: the fields mlhost uses (others are ignored).
#[derive(Debug, Deserialize, Default)]
struct Flavor {
    /// The model file, relative to the MLflow folder.
    #[serde(default)]
    data: Option<serde_norway::Value>,
    /// sklearn: the pickle.
    #[serde(default)]
    pickled_model: Option<String>,
    /// python_function: the Python module that loads the model.
    #[serde(default)]
    loader_module: Option<String>,
}

/// The signature: each part is the JSON text of a list of specs.
#[derive(Debug, Deserialize)]
struct SignatureFile {
    #[serde(default)]
    inputs: Option<String>,
    #[serde(default)]
    outputs: Option<String>,
}

/// An MLflow model mlhost can serve.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MlflowModel {
    /// The flavour served (`onnx`, `xgboost`, ...).
    pub flavour: String,
    /// The built-in runtime serving it.
    pub runtime: &'static str,
    /// The model file, relative to the MLflow folder.
    pub file: String,
    /// The signature's inputs and outputs, as model-settings.json would declare them.
    pub inputs: Vec<TensorSettings>,
    pub outputs: Vec<TensorSettings>,
}

/// The MLflow folder `uri` (relative to `folder`) names, if it is one.
pub(crate) fn mlflow_folder(folder: &Path, uri: Option<&str>) -> Option<PathBuf> {
    let target = folder.join(uri.unwrap_or("."));
    if target.is_dir() && target.join(MLMODEL_FILE).is_file() {
        return Some(target);
    }
    let named = target.file_name().is_some_and(|name| name == MLMODEL_FILE);
    (named && target.is_file()).then(|| target.parent().unwrap_or(folder).to_path_buf())
}

/// The settings a model is loaded with when it is an MLflow model (or an MLServer scikit-learn
/// folder `mlhost convert` has converted): the runtime, the uri of its model file and the
/// signature's tensors. `None` when the settings are used as they are.
pub(crate) fn adapt(
    settings: &ModelSettings,
    folder: &Path,
) -> Result<Option<ModelSettings>, MlflowError> {
    let implementation = settings.implementation.as_deref();
    let asks_mlflow = implementation.is_some_and(|name| MLFLOW_IMPLEMENTATIONS.contains(&name));
    let uri = settings.parameters.uri.as_deref();
    let Some(mlflow_dir) = mlflow_folder(folder, uri) else {
        if let Some(implementation) = implementation.filter(|_| asks_mlflow) {
            return Err(MlflowError::NoMlmodel {
                implementation: implementation.to_string(),
                folder: folder.join(uri.unwrap_or(".")),
            });
        }
        return Ok((implementation == Some(MLSERVER_SKLEARN))
            .then(|| converted_sklearn(settings, folder))
            .flatten());
    };
    if !(asks_mlflow || implementation.is_none()) {
        return Ok(None);
    }
    let model = read(&mlflow_dir)?;
    let mut adapted = settings.clone();
    adapted.implementation = Some(model.runtime.to_string());
    let base = match uri {
        Some(uri) if !uri.ends_with(MLMODEL_FILE) => Path::new(uri).to_path_buf(),
        Some(uri) => Path::new(uri)
            .parent()
            .unwrap_or(Path::new("."))
            .to_path_buf(),
        None => PathBuf::from("."),
    };
    adapted.parameters.uri = Some(base.join(&model.file).to_string_lossy().into_owned());
    if adapted.inputs.is_empty() {
        adapted.inputs = model.inputs;
    }
    if adapted.outputs.is_empty() {
        adapted.outputs = model.outputs;
    }
    Ok(Some(adapted))
}

/// An MLServer scikit-learn model with `model.onnx` beside its pickle: served by `onnx`.
fn converted_sklearn(settings: &ModelSettings, folder: &Path) -> Option<ModelSettings> {
    let target = folder.join(settings.parameters.uri.as_deref().unwrap_or("."));
    let dir = if target.is_dir() {
        target
    } else {
        target.parent()?.to_path_buf()
    };
    let onnx = dir.join(CONVERTED_FILE);
    if !onnx.is_file() {
        return None;
    }
    let mut adapted = settings.clone();
    adapted.implementation = Some("onnx".to_string());
    adapted.parameters.uri = Some(onnx.to_string_lossy().into_owned());
    Some(adapted)
}

/// Reads the `MLmodel` of `dir` and picks the flavour mlhost serves it by.
pub(crate) fn read(dir: &Path) -> Result<MlflowModel, MlflowError> {
    let path = dir.join(MLMODEL_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| MlflowError::Read {
        path: path.clone(),
        source,
    })?;
    let file: MlModelFile = serde_norway::from_str(&text).map_err(|source| MlflowError::Yaml {
        path: path.clone(),
        source,
    })?;
    let (flavour, runtime, data) =
        served_flavour(&file, dir).map_err(|reason| MlflowError::NotServable {
            path: path.clone(),
            reason,
        })?;
    let (inputs, outputs) = match &file.signature {
        Some(signature) => (
            spec_tensors(&path, "inputs", signature.inputs.as_deref(), "input-")?,
            spec_tensors(&path, "outputs", signature.outputs.as_deref(), "output-")?,
        ),
        None => (Vec::new(), Vec::new()),
    };
    // An unnamed output is the runtime's to name; so is an ONNX graph's unnamed input.
    let named = |tensors: Vec<(TensorSettings, bool)>| {
        tensors
            .into_iter()
            .filter(|(_, named)| *named)
            .map(|(tensor, _)| tensor)
            .collect::<Vec<_>>()
    };
    let inputs = if runtime == "onnx" && inputs.iter().any(|(_, named)| !named) {
        Vec::new()
    } else {
        inputs.into_iter().map(|(tensor, _)| tensor).collect()
    };
    Ok(MlflowModel {
        flavour,
        runtime,
        file: data,
        inputs,
        outputs: named(outputs),
    })
}

/// The flavour served, its runtime and its model file; or what to do instead.
fn served_flavour(
    file: &MlModelFile,
    dir: &Path,
) -> Result<(String, &'static str, String), String> {
    const SERVED: &[(&str, &str)] = &[
        ("onnx", "onnx"),
        ("xgboost", "trees"),
        ("lightgbm", "trees"),
        ("catboost", "trees"),
    ];
    for (flavour, runtime) in SERVED {
        if let Some(entry) = file.flavors.get(*flavour) {
            let data = match &entry.data {
                Some(serde_norway::Value::String(data)) => data.clone(),
                _ => return Err(format!("flavour `{flavour}` names no `data` file")),
            };
            return Ok((flavour.to_string(), runtime, data));
        }
    }
    if let Some(sklearn) = file.flavors.get("sklearn") {
        if dir.join(CONVERTED_FILE).is_file() {
            return Ok(("sklearn".into(), "onnx", CONVERTED_FILE.into()));
        }
        let pickle = sklearn.pickled_model.as_deref().unwrap_or("model.pkl");
        return Err(format!(
            "an MLflow scikit-learn model is a pickle ({pickle}), which mlhost does not load: \
             run `mlhost convert {}` to write {CONVERTED_FILE} beside it (checked against the \
             pickle), then this folder serves with the onnx runtime",
            dir.join(pickle).display()
        ));
    }
    let flavours: Vec<&str> = file.flavors.keys().map(String::as_str).collect();
    if let Some(pyfunc) = file.flavors.get("python_function")
        && flavours.len() == 1
    {
        return Err(format!(
            "a python_function-only MLflow model (loader_module {}) runs Python code: serve it \
             with MLServer, or log the model as ONNX (mlflow.onnx.log_model), or write its code \
             as a runtime (`mlhost init NAME --lang python`)",
            pyfunc.loader_module.as_deref().unwrap_or("none")
        ));
    }
    Err(format!(
        "no flavour mlhost serves (flavours: {}; served: onnx, xgboost, lightgbm, catboost, and \
         sklearn with {CONVERTED_FILE} beside MLmodel): export the model to ONNX and log it with \
         mlflow.onnx.log_model",
        if flavours.is_empty() {
            "none".to_string()
        } else {
            flavours.join(", ")
        }
    ))
}

/// One spec of a signature: a column (`type` a name) or a tensor (`type` `tensor`).
#[derive(Debug, Deserialize)]
struct Spec {
    #[serde(rename = "type")]
    kind: serde_json::Value,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "tensor-spec")]
    tensor_spec: Option<TensorSpec>,
}

#[derive(Debug, Deserialize)]
struct TensorSpec {
    dtype: String,
    shape: Vec<i64>,
}

/// The tensors of one part of a signature, each with whether the signature names it.
fn spec_tensors(
    path: &Path,
    part: &'static str,
    json: Option<&str>,
    prefix: &str,
) -> Result<Vec<(TensorSettings, bool)>, MlflowError> {
    let Some(json) = json.filter(|json| !json.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let invalid = |reason: String| MlflowError::Signature {
        path: path.to_path_buf(),
        part,
        reason,
    };
    let specs: Vec<Spec> = serde_json::from_str(json).map_err(|e| invalid(e.to_string()))?;
    specs
        .into_iter()
        .enumerate()
        .map(|(index, spec)| {
            let (datatype, shape, content_type) = match (&spec.kind, &spec.tensor_spec) {
                (serde_json::Value::String(kind), Some(tensor)) if kind == "tensor" => {
                    let datatype = numpy_datatype(&tensor.dtype).ok_or_else(|| {
                        invalid(format!("tensor dtype `{}` has no datatype", tensor.dtype))
                    })?;
                    (datatype, tensor.shape.clone(), "np")
                }
                (serde_json::Value::String(kind), None) => {
                    let (datatype, content_type) = column_datatype(kind)
                        .ok_or_else(|| invalid(format!("column type `{kind}` is unknown")))?;
                    (datatype, vec![-1, 1], content_type)
                }
                // Arrays, objects and maps: JSON per row (MLServer's `pd_json`).
                _ => ("BYTES", vec![-1, 1], "pd_json"),
            };
            let named = spec.name.is_some();
            let tensor = TensorSettings {
                name: spec.name.unwrap_or_else(|| format!("{prefix}{index}")),
                datatype: datatype.to_string(),
                shape,
                parameters: Some(serde_json::Map::from_iter([(
                    "content_type".to_string(),
                    serde_json::Value::from(content_type),
                )])),
            };
            Ok((tensor, named))
        })
        .collect()
}

/// A column type's datatype and content type, as MLServer's MLflow runtime maps them.
fn column_datatype(kind: &str) -> Option<(&'static str, &'static str)> {
    Some(match kind {
        "boolean" => ("BOOL", "np"),
        "integer" => ("INT32", "np"),
        "long" => ("INT64", "np"),
        "float" => ("FP32", "np"),
        "double" => ("FP64", "np"),
        "string" => ("BYTES", "str"),
        "binary" => ("BYTES", "base64"),
        "datetime" => ("BYTES", "datetime"),
        _ => return None,
    })
}

/// A NumPy dtype's datatype (as MLflow writes it: `float64`, `int32`, `object`, `str`, ...).
fn numpy_datatype(dtype: &str) -> Option<&'static str> {
    Some(match dtype {
        "bool" => "BOOL",
        "int8" => "INT8",
        "int16" => "INT16",
        "int32" => "INT32",
        "int64" => "INT64",
        "uint8" => "UINT8",
        "uint16" => "UINT16",
        "uint32" => "UINT32",
        "uint64" => "UINT64",
        "float16" => "FP16",
        "float32" => "FP32",
        "float64" => "FP64",
        "object" | "str" | "bytes" => "BYTES",
        _ if dtype.starts_with("<U") || dtype.starts_with("|S") => "BYTES",
        _ => return None,
    })
}

#[cfg(test)]
#[path = "mlflow_tests.rs"]
mod tests;

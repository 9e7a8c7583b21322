//! Reading model-settings.json for a load: which runtime, the uri as the guest sees it, the
//! declared tensors, the instances' limits (checked against the server's), and the parameters
//! passed to the runtime.

use super::super::error::LoadError;
use crate::codec::{DataType, Parameters, TensorMetadata};
use crate::config::{ModelSettings, Settings, TensorSettings};
use crate::native::{NativeOptions, default_intra_op_threads};
use crate::wasm::{BUILT_IN_RUNTIMES, ComponentSource, InstanceLimits};
use std::path::{Component, Path, PathBuf};

/// What model-settings.json asks of a load, checked.
pub(super) struct LoadPlan {
    /// The runtime component.
    pub(super) source: ComponentSource,
    /// `parameters.uri` as the guest sees it.
    pub(super) guest_uri: String,
    pub(super) declared_inputs: Vec<TensorMetadata>,
    pub(super) declared_outputs: Vec<TensorMetadata>,
    pub(super) limits: InstanceLimits,
    pub(super) native: NativeOptions,
}

/// The most intra-op threads a model's native sessions may have.
const MAX_INTRA_OP_THREADS: usize = 256;

/// The most workers a model may have: the range of `parallel_workers` in the settings files,
/// checked again here because `--parallel-workers` bypasses the files.
const MAX_WORKERS: usize = 1024;

/// Checks the model's settings (in this order: implementation, uri, inputs, outputs, limits)
/// and works out what its load needs.
pub(super) fn plan(
    settings: &ModelSettings,
    folder: &Path,
    server: &Settings,
) -> Result<LoadPlan, LoadError> {
    Ok(LoadPlan {
        source: resolve_implementation(settings, folder, server)?,
        guest_uri: resolve_uri(settings.parameters.uri.as_deref(), folder)?,
        declared_inputs: declared_tensors(&settings.inputs, "inputs")?,
        declared_outputs: declared_tensors(&settings.outputs, "outputs")?,
        limits: instance_limits(settings, server)?,
        native: native_options(settings, server)?,
    })
}

/// What the model may use of the native backends: its choice, the server's permission, and
/// its sessions' threads (by default the cores shared among its workers).
fn native_options(settings: &ModelSettings, server: &Settings) -> Result<NativeOptions, LoadError> {
    let workers = settings.parallel_workers.unwrap_or(server.parallel_workers);
    if workers > MAX_WORKERS {
        return Err(LoadError::OutOfRange {
            field: "parallel_workers",
            value: workers.to_string(),
            expected: "between 0 and 1024",
        });
    }
    let threads = settings
        .intra_op_threads
        .unwrap_or_else(|| default_intra_op_threads(workers));
    if !(1..=MAX_INTRA_OP_THREADS).contains(&threads) {
        return Err(LoadError::OutOfRange {
            field: "intra_op_threads",
            value: threads.to_string(),
            expected: "between 1 and 256",
        });
    }
    Ok(NativeOptions {
        choice: settings.backend,
        allowed: server.native_backends,
        intra_op_threads: threads,
    })
}

/// The model's limits: its own settings where given, never above the server's.
fn instance_limits(
    settings: &ModelSettings,
    server: &Settings,
) -> Result<InstanceLimits, LoadError> {
    const MIB: u64 = 1024 * 1024;
    let over = |field: &'static str, value: String, limit: String| LoadError::OverServerLimit {
        field,
        value,
        limit,
    };
    let memory_mb = settings.memory_limit_mb.unwrap_or(server.memory_limit_mb);
    if memory_mb > server.memory_limit_mb {
        return Err(over(
            "memory_limit_mb",
            memory_mb.to_string(),
            server.memory_limit_mb.to_string(),
        ));
    }
    let timeout = settings.timeout_seconds.unwrap_or(server.timeout_seconds);
    if !(timeout > 0.0 && timeout <= server.timeout_seconds) {
        return Err(over(
            "timeout_seconds",
            timeout.to_string(),
            server.timeout_seconds.to_string(),
        ));
    }
    let output_mb = settings.max_output_mb.unwrap_or(server.max_output_mb);
    if output_mb > server.max_output_mb {
        return Err(over(
            "max_output_mb",
            output_mb.to_string(),
            server.max_output_mb.to_string(),
        ));
    }
    Ok(InstanceLimits {
        memory_bytes: memory_mb.saturating_mul(MIB),
        timeout: std::time::Duration::from_secs_f64(timeout),
        max_output_bytes: output_mb.saturating_mul(MIB),
        log_budget: usize::try_from(server.guest_log_limit_kb.saturating_mul(1024))
            .unwrap_or(usize::MAX),
    })
}

/// MLServer's runtimes: the mlhost runtime serving the same model format (when there is one),
/// and what to tell a user whose model cannot be served as it is.
const MLSERVER_IMPLEMENTATIONS: &[(&str, Option<&str>, &str)] = &[
    (
        "mlserver_sklearn.SKLearnModel",
        None,
        "scikit-learn pickles (joblib) cannot be loaded safely outside Python: export the model to ONNX \
         with skl2onnx",
    ),
    (
        "mlserver_xgboost.XGBoostModel",
        Some("xgboost"),
        "XGBoost models saved as JSON or UBJSON (model.json, model.ubj) are served by the trees runtime; \
         re-save a legacy binary model with save_model(\"model.json\")",
    ),
    (
        "mlserver_lightgbm.LightGBMModel",
        Some("lightgbm"),
        "LightGBM text models (model.txt, model.bst) are served by the trees runtime",
    ),
    (
        "mlserver_mlflow.MLflowRuntime",
        None,
        "MLflow models run Python: export the model to ONNX, or write a runtime with the guest SDK",
    ),
    (
        "mlserver_huggingface.HuggingFaceRuntime",
        None,
        "Hugging Face pipelines run Python: export the model to ONNX, or write a runtime with the guest SDK",
    ),
];

/// `implementation` → a built-in runtime, or a `.wasm` file in the model's folder or in the
/// server's `runtimes_dir`.
fn resolve_implementation(
    settings: &ModelSettings,
    folder: &Path,
    server: &Settings,
) -> Result<ComponentSource, LoadError> {
    let built_in: Vec<&str> = BUILT_IN_RUNTIMES.iter().map(|(name, _)| *name).collect();
    let Some(implementation) = settings.implementation.as_deref() else {
        return Err(LoadError::Implementation(format!(
            "model-settings.json has no `implementation`: name a built-in runtime ({}) or a .wasm component",
            built_in.join(", ")
        )));
    };
    let built_in_name = MLSERVER_IMPLEMENTATIONS
        .iter()
        .find(|(mlserver, _, _)| *mlserver == implementation)
        .map(|(_, mlhost, advice)| mlhost.ok_or(*advice))
        .transpose()
        .map_err(|advice| {
            LoadError::Implementation(format!(
                "implementation '{implementation}' is MLServer's; mlhost cannot serve it: {advice}"
            ))
        })?
        .unwrap_or(implementation);
    if let Some((name, bytes)) = BUILT_IN_RUNTIMES
        .iter()
        .find(|(name, _)| *name == built_in_name)
    {
        return Ok(ComponentSource::BuiltIn { name, bytes });
    }
    if implementation.ends_with(".wasm") {
        return component_file(implementation, folder, server).map(ComponentSource::File);
    }
    Err(LoadError::Implementation(format!(
        "implementation '{implementation}' is not a runtime mlhost serves: name a built-in runtime ({}) \
         or the path of a .wasm component relative to the model's folder",
        built_in.join(", ")
    )))
}

/// The component file `implementation` names: in the model's folder, or else in the server's
/// `runtimes_dir`, and nowhere else (symbolic links and `..` resolved first); no larger than
/// `max_component_size_mb`, which is checked before the file is read.
fn component_file(
    implementation: &str,
    folder: &Path,
    server: &Settings,
) -> Result<PathBuf, LoadError> {
    let refuse = |reason: String| {
        LoadError::Implementation(format!("implementation '{implementation}': {reason}"))
    };
    let mut allowed = vec![folder.to_path_buf()];
    allowed.extend(server.runtimes_dir.as_deref().map(PathBuf::from));
    let allowed: Vec<PathBuf> = allowed
        .iter()
        .filter_map(|dir| dir.canonicalize().ok())
        .collect();
    let candidates = allowed.iter().map(|dir| dir.join(implementation));
    let Some(path) = candidates
        .filter_map(|path| path.canonicalize().ok())
        .find(|path| path.is_file())
    else {
        return Err(refuse(format!(
            "no such component file in {}",
            places(server)
        )));
    };
    if !allowed.iter().any(|dir| path.starts_with(dir)) {
        return Err(refuse(format!(
            "{} is outside {}: a model's component must lie there",
            path.display(),
            places(server)
        )));
    }
    let limit = server.max_component_size_mb.saturating_mul(1024 * 1024);
    let size = std::fs::metadata(&path)
        .map_err(|error| refuse(format!("cannot read {}: {error}", path.display())))?
        .len();
    if size > limit {
        return Err(refuse(format!(
            "{} holds {size} bytes, over `max_component_size_mb` ({} MiB)",
            path.display(),
            server.max_component_size_mb
        )));
    }
    Ok(path)
}

/// Where a model's component may be, in words.
fn places(server: &Settings) -> String {
    match &server.runtimes_dir {
        Some(dir) => format!("the model's folder or the runtimes folder {dir}"),
        None => "the model's folder".to_string(),
    }
}

/// Works out the uri as the guest sees it: the model's folder is preopened at `/model`, and the
/// uri must lie inside it (a runtime sees nothing else of the host).
fn resolve_uri(uri: Option<&str>, folder: &Path) -> Result<String, LoadError> {
    let canonical = |path: PathBuf| {
        path.canonicalize()
            .map_err(|source| LoadError::Uri { path, source })
    };
    let folder = canonical(folder.to_path_buf())?;
    let target = canonical(folder.join(uri.unwrap_or(".")))?;
    let Ok(relative) = target.strip_prefix(&folder) else {
        return Err(LoadError::UriOutsideFolder { target, folder });
    };
    let mut guest = crate::wasm::GUEST_MODEL_DIR.to_string();
    for part in relative.components() {
        if let Component::Normal(part) = part {
            guest.push('/');
            guest.push_str(&part.to_string_lossy());
        }
    }
    Ok(guest)
}

/// Every entry of `parameters` but `uri`, `version` and `extra`, as JSON text, for the runtime.
pub(super) fn guest_parameters(settings: &ModelSettings) -> Vec<(String, String)> {
    let parameters = &settings.parameters;
    let named = [
        ("format", &parameters.format),
        ("content_type", &parameters.content_type),
    ];
    named
        .into_iter()
        .filter_map(|(name, value)| {
            value
                .as_ref()
                .map(|value| (name.to_string(), serde_json::Value::from(value.clone())))
        })
        .chain(
            parameters
                .other
                .iter()
                .map(|(name, value)| (name.clone(), value.clone())),
        )
        .map(|(name, value)| (name, value.to_string()))
        .collect()
}

/// The tensors model-settings.json declares in `field` (`inputs` or `outputs`).
fn declared_tensors(
    tensors: &[TensorSettings],
    field: &'static str,
) -> Result<Vec<TensorMetadata>, LoadError> {
    tensors
        .iter()
        .enumerate()
        .map(|(index, tensor)| {
            if tensor.shape.iter().any(|dimension| *dimension < -1) {
                return Err(LoadError::Shape {
                    field,
                    index,
                    shape: tensor.shape.clone(),
                });
            }
            let datatype: DataType =
                tensor
                    .datatype
                    .parse()
                    .map_err(|source| LoadError::Datatype {
                        field,
                        index,
                        source,
                    })?;
            let parameters: Parameters = tensor
                .parameters
                .iter()
                .flatten()
                .filter_map(|(name, value)| {
                    value.as_str().map(|text| {
                        (
                            name.clone(),
                            crate::codec::ParameterValue::String(text.to_string()),
                        )
                    })
                })
                .collect();
            Ok(TensorMetadata {
                name: tensor.name.clone(),
                datatype,
                shape: tensor.shape.clone(),
                parameters,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_inside_the_model_folder_is_seen_under_model() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("m/sub")).unwrap();
        std::fs::write(dir.path().join("m/sub/w.json"), "{}").unwrap();
        let folder = dir.path().join("m");

        assert_eq!(resolve_uri(None, &folder).unwrap(), "/model");
        assert_eq!(
            resolve_uri(Some("./sub/w.json"), &folder).unwrap(),
            "/model/sub/w.json"
        );
        let absolute = folder.join("sub").canonicalize().unwrap();
        assert_eq!(
            resolve_uri(absolute.to_str(), &folder).unwrap(),
            "/model/sub"
        );
        assert!(matches!(
            resolve_uri(Some("missing.json"), &folder),
            Err(LoadError::Uri { .. })
        ));
    }

    #[test]
    fn uri_outside_the_model_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("m")).unwrap();
        std::fs::write(dir.path().join("secret.json"), "{}").unwrap();
        let error = resolve_uri(Some("../secret.json"), &dir.path().join("m")).unwrap_err();
        assert!(
            error.to_string().contains("outside the model's folder"),
            "{error}"
        );
    }

    #[test]
    fn unknown_implementations_say_what_to_do() {
        let settings = ModelSettings {
            implementation: Some("mlserver_sklearn.SKLearnModel".into()),
            ..Default::default()
        };
        let server = Settings::default();
        let error = resolve_implementation(&settings, Path::new("."), &server)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("is MLServer's") && error.contains("skl2onnx"),
            "{error}"
        );
        let unknown = ModelSettings {
            implementation: Some("my_module.MyModel".into()),
            ..Default::default()
        };
        let error = resolve_implementation(&unknown, Path::new("."), &server)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("not a runtime mlhost serves") && error.contains("linear"),
            "{error}"
        );
        let missing = ModelSettings::default();
        assert!(resolve_implementation(&missing, Path::new("."), &server).is_err());
    }

    fn wasm(name: &str) -> ModelSettings {
        ModelSettings {
            implementation: Some(name.into()),
            ..Default::default()
        }
    }

    #[test]
    fn components_outside_the_model_folder_are_refused_unless_in_the_runtimes_folder() {
        let dir = tempfile::tempdir().unwrap();
        let (models, runtimes) = (dir.path().join("models"), dir.path().join("runtimes"));
        std::fs::create_dir_all(models.join("m")).unwrap();
        std::fs::create_dir_all(&runtimes).unwrap();
        std::fs::write(dir.path().join("x.wasm"), b"\0asm").unwrap();
        std::fs::write(runtimes.join("r.wasm"), b"\0asm").unwrap();
        std::fs::write(models.join("m/own.wasm"), b"\0asm").unwrap();
        let folder = models.join("m");
        let mut server = Settings::default();
        let outside = dir.path().join("x.wasm");
        for name in [
            "../../x.wasm",
            outside.to_str().unwrap(),
            "../../runtimes/r.wasm",
        ] {
            let error = resolve_implementation(&wasm(name), &folder, &server)
                .err()
                .unwrap()
                .to_string();
            assert!(
                error.contains("outside the model's folder"),
                "{name}: {error}"
            );
        }
        assert!(resolve_implementation(&wasm("own.wasm"), &folder, &server).is_ok());
        assert!(resolve_implementation(&wasm("linear"), &folder, &server).is_ok());
        server.runtimes_dir = Some(runtimes.to_string_lossy().into_owned());
        assert!(resolve_implementation(&wasm("r.wasm"), &folder, &server).is_ok());
        assert!(resolve_implementation(&wasm("../../runtimes/r.wasm"), &folder, &server).is_ok());
        assert!(resolve_implementation(&wasm("../../x.wasm"), &folder, &server).is_err());
    }

    #[test]
    fn declared_shapes_take_sizes_or_minus_one() {
        let tensor = |shape: Vec<i64>| TensorSettings {
            name: "x".into(),
            datatype: "FP32".into(),
            shape,
            parameters: None,
        };
        assert!(declared_tensors(&[tensor(vec![-1, 0, 3])], "inputs").is_ok());
        let error = declared_tensors(&[tensor(vec![1]), tensor(vec![-2, 3])], "outputs")
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains("`outputs[1].shape`: [-2, 3] is not a shape"),
            "{error}"
        );
    }

    #[test]
    fn components_over_the_size_limit_are_refused_before_they_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::File::create(dir.path().join("big.wasm")).unwrap();
        file.set_len(3 << 20).unwrap(); // sparse: nothing is written
        let server = Settings {
            max_component_size_mb: 2,
            ..Settings::default()
        };
        let error = resolve_implementation(&wasm("big.wasm"), dir.path(), &server)
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains("3145728 bytes, over `max_component_size_mb` (2 MiB)"),
            "{error}"
        );
    }
}

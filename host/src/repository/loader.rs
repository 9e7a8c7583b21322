//! Loading one model: settings → runtime component → worker pool → metadata.

use super::discovery::DiscoveredModel;
use crate::batching::{BatchOptions, Batcher};
use crate::codec::{DataType, ModelMetadata, Parameters, TensorMetadata};
use crate::config::{ModelSettings, Settings, TensorSettings};
use crate::metrics::{Metrics, ModelMetrics};
use crate::stats::ModelStats;
use crate::wasm::{
    BUILT_IN_RUNTIMES, ComponentSource, InstanceError, InstanceLimits, ModelContext, WasmEngine,
};
use crate::workers::WorkerPool;
use std::path::{Component, Path};
use std::sync::Arc;

/// Why a model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Settings(String),
    #[error("{0}")]
    Implementation(String),
    #[error("invalid uri: {0}")]
    Uri(String),
    #[error("{0}")]
    Compile(String),
    #[error(transparent)]
    Instance(#[from] InstanceError),
    #[error("{0}")]
    Metadata(String),
}

/// A model version that is loaded and serving.
pub struct LoadedModel {
    pub name: String,
    pub version: Option<String>,
    /// The model's metadata: what model-settings.json declares, else what the runtime says.
    pub metadata: ModelMetadata,
    /// The inputs model-settings.json declares; requests are checked against them.
    pub declared_inputs: Vec<TensorMetadata>,
    /// The bounds the model's instances run within.
    pub limits: InstanceLimits,
    /// The workers running the model.
    pub pool: Arc<WorkerPool>,
    /// The batcher in front of the workers, when the model batches.
    pub batcher: Option<Batcher>,
    /// `max_batch_size` and `max_batch_time` (seconds) of model-settings.json.
    pub max_batch_size: usize,
    pub max_batch_time: f64,
    /// The content type of requests that name none (`parameters.content_type`).
    pub default_content_type: Option<String>,
    /// What the model's requests have cost so far.
    pub stats: Arc<ModelStats>,
    /// The model's Prometheus series.
    pub metrics: Arc<ModelMetrics>,
}

impl LoadedModel {
    /// Runs a request on the model's workers, through its batcher when it has one.
    pub async fn infer(
        &self,
        request: crate::codec::InferenceRequest,
        deadline: std::time::Instant,
        timeout: std::time::Duration,
    ) -> Result<crate::workers::CallOutput, crate::workers::PoolError> {
        match &self.batcher {
            Some(batcher) => batcher.infer(request, deadline, timeout).await,
            None => self.pool.infer(request, deadline, timeout).await,
        }
    }
}

/// Loads a discovered model: compiles (or reuses) its runtime and starts its workers.
///
/// Blocking: call it off the async threads.
pub fn load_model(
    engine: &WasmEngine,
    model: &DiscoveredModel,
    server: &Settings,
    metrics: &Metrics,
) -> Result<LoadedModel, LoadError> {
    if let Some(problem) = &model.problem {
        return Err(LoadError::Settings(problem.clone()));
    }
    let settings = match &model.settings {
        Ok(settings) => settings,
        Err(error) => return Err(LoadError::Settings(error.to_string())),
    };
    let ignored = settings.ignored_fields();
    if !ignored.is_empty() {
        tracing::warn!(model = %model.name, "model-settings.json fields accepted but not used by mlhost: {}", ignored.join(", "));
    }
    let source = resolve_implementation(settings, &model.folder)?;
    let guest_uri = resolve_uri(settings.parameters.uri.as_deref(), &model.folder)?;
    let declared_inputs = declared_tensors(&settings.inputs, "inputs")?;
    let declared_outputs = declared_tensors(&settings.outputs, "outputs")?;

    let limits = instance_limits(settings, server)?;
    let component = engine.component(&source).map_err(LoadError::Compile)?;
    let context = Arc::new(ModelContext {
        name: model.name.clone(),
        host_dir: model.folder.clone(),
        settings: crate::wasm::GuestSettings {
            name: model.name.clone(),
            version: model.version.clone(),
            uri: guest_uri,
            extra: serde_json::to_string(&settings.parameters.extra.clone().unwrap_or_default())
                .expect("JSON values serialize"),
            parameters: guest_parameters(settings),
        },
        limits,
    });
    let workers = settings.parallel_workers.unwrap_or(server.parallel_workers);
    let queue_capacity = settings.max_queue_size.unwrap_or(server.max_queue_size);
    let stats = Arc::new(ModelStats::new(settings.max_batch_size > 0));
    let metrics = Arc::new(metrics.model(&model.name, model.version.as_deref()));
    let (pool, runtime_metadata) = WorkerPool::start(
        component,
        context,
        workers,
        queue_capacity,
        stats.clone(),
        metrics.clone(),
    )?;
    let pool = Arc::new(pool);
    let batcher = (settings.max_batch_size > 1 && settings.max_batch_time > 0.0).then(|| {
        Batcher::start(
            pool.clone(),
            BatchOptions {
                max_batch_size: settings.max_batch_size as u64,
                max_batch_time: std::time::Duration::from_secs_f64(
                    settings.max_batch_time.min(3600.0),
                ),
                queue_capacity,
            },
            metrics.clone(),
        )
    });

    let metadata = ModelMetadata {
        platform: if settings.platform.is_empty() {
            runtime_metadata.platform
        } else {
            settings.platform.clone()
        },
        inputs: if declared_inputs.is_empty() {
            runtime_metadata.inputs
        } else {
            declared_inputs.clone()
        },
        outputs: if declared_outputs.is_empty() {
            runtime_metadata.outputs
        } else {
            declared_outputs
        },
        parameters: runtime_metadata.parameters,
    };
    Ok(LoadedModel {
        name: model.name.clone(),
        version: model.version.clone(),
        metadata,
        declared_inputs,
        limits,
        pool,
        batcher,
        max_batch_size: settings.max_batch_size,
        max_batch_time: settings.max_batch_time,
        default_content_type: settings.parameters.content_type.clone(),
        stats,
        metrics,
    })
}

/// The model's limits: its own settings where given, never above the server's.
fn instance_limits(
    settings: &ModelSettings,
    server: &Settings,
) -> Result<InstanceLimits, LoadError> {
    const MIB: u64 = 1024 * 1024;
    let over = |field: &str, value: String, cap: String| {
        LoadError::Settings(format!(
            "model-settings.json: field `{field}`: {value} is over the server's limit of {cap}"
        ))
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
pub const MLSERVER_IMPLEMENTATIONS: &[(&str, Option<&str>, &str)] = &[
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

/// `implementation` → a built-in runtime or a `.wasm` file in the model's folder.
fn resolve_implementation(
    settings: &ModelSettings,
    folder: &Path,
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
        let path = folder.join(implementation);
        if !path.is_file() {
            return Err(LoadError::Implementation(format!(
                "implementation '{implementation}': no such component file {}",
                path.display()
            )));
        }
        return Ok(ComponentSource::File(path));
    }
    Err(LoadError::Implementation(format!(
        "implementation '{implementation}' is not a runtime mlhost serves: name a built-in runtime ({}) \
         or the path of a .wasm component relative to the model's folder",
        built_in.join(", ")
    )))
}

/// Works out the uri as the guest sees it: the model's folder is preopened at `/model`, and the
/// uri must lie inside it (a runtime sees nothing else of the host).
fn resolve_uri(uri: Option<&str>, folder: &Path) -> Result<String, LoadError> {
    let folder = folder
        .canonicalize()
        .map_err(|error| LoadError::Uri(format!("{}: {error}", folder.display())))?;
    let target = folder.join(uri.unwrap_or("."));
    let target = target
        .canonicalize()
        .map_err(|error| LoadError::Uri(format!("{}: {error}", target.display())))?;
    let relative = target.strip_prefix(&folder).map_err(|_| {
        LoadError::Uri(format!(
            "{} is outside the model's folder {}: a runtime can only read its own folder",
            target.display(),
            folder.display()
        ))
    })?;
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
fn guest_parameters(settings: &ModelSettings) -> Vec<(String, String)> {
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

fn declared_tensors(
    tensors: &[TensorSettings],
    field: &str,
) -> Result<Vec<TensorMetadata>, LoadError> {
    tensors
        .iter()
        .enumerate()
        .map(|(index, tensor)| {
            let datatype: DataType = tensor.datatype.parse().map_err(|error| {
                LoadError::Metadata(format!(
                    "model-settings.json: field `{field}[{index}].datatype`: {error}"
                ))
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
            Err(LoadError::Uri(_))
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
        let error = resolve_implementation(&settings, Path::new("."))
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
        let error = resolve_implementation(&unknown, Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("not a runtime mlhost serves") && error.contains("linear"),
            "{error}"
        );
        let missing = ModelSettings::default();
        assert!(resolve_implementation(&missing, Path::new(".")).is_err());
    }
}

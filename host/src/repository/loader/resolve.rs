//! Reading model-settings.json for a load: which runtime, the uri as the guest sees it, the
//! declared tensors, the instances' limits (checked against the server's), and the parameters
//! passed to the runtime.

use super::super::error::LoadError;
use super::implementation::resolve_implementation;
use crate::codec::{DataType, Parameters, TensorMetadata};
use crate::config::{ModelSettings, Settings, TensorSettings};
use crate::native::{NativeOptions, default_intra_op_threads};
use crate::wasm::{ComponentSource, InstanceLimits};
use std::path::{Component, Path, PathBuf};

/// What model-settings.json asks of a load, checked.
pub(super) struct LoadPlan {
    /// The runtime component.
    pub(super) source: ComponentSource,
    /// `parameters.uri` as the guest sees it.
    pub(super) guest_uri: String,
    /// The folder the guest sees at `/model` when it is not the model's own: a remote uri's
    /// files, fetched into the model cache.
    pub(super) model_dir: Option<PathBuf>,
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
/// and works out what its load needs; an MLflow model folder's settings first become those of
/// the runtime serving its flavour ([`crate::repository::mlflow`]).
pub(super) fn plan(
    settings: &ModelSettings,
    folder: &Path,
    server: &Settings,
) -> Result<LoadPlan, LoadError> {
    // An MLflow folder (or a converted MLServer scikit-learn one) is served by a built-in
    // runtime, its signature declared.
    let adapted = crate::repository::mlflow::adapt(settings, folder)?;
    let settings = adapted.as_ref().unwrap_or(settings);
    let source = resolve_implementation(settings, folder, server)?;
    let (guest_uri, model_dir) = guest_view(settings, folder, server)?;
    Ok(LoadPlan {
        source,
        guest_uri,
        model_dir,
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
pub(super) fn instance_limits(
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

/// The uri as the guest sees it, and the folder it sees at `/model` when that is not the
/// model's: a remote uri (`s3://`, `https://`, ...) is fetched first ([`crate::storage`]), and
/// the guest sees the fetched files.
fn guest_view(
    settings: &ModelSettings,
    folder: &Path,
    server: &Settings,
) -> Result<(String, Option<PathBuf>), LoadError> {
    let uri = settings.parameters.uri.as_deref();
    let sha256 = settings.parameters.uri_sha256.as_ref();
    let Some(remote) = uri.filter(|uri| crate::storage::is_remote(uri)) else {
        if sha256.is_some() {
            let why = "it checks the object of a remote uri (s3://, https://, ...), not a file of \
                       the model's folder";
            return Err(crate::storage::StorageError::Sha256Setting(why.to_string()).into());
        }
        return Ok((resolve_uri(uri, folder)?, None));
    };
    let options = crate::storage::StorageOptions::of(server);
    let fetched = crate::storage::fetch_blocking(remote, sha256, &options)?;
    let mut guest = crate::wasm::GUEST_MODEL_DIR.to_string();
    if let Some(file) = &fetched.file {
        guest.push('/');
        guest.push_str(file);
    }
    Ok((guest, Some(fetched.dir)))
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
pub(super) fn declared_tensors(
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
}

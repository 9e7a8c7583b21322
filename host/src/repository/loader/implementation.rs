//! `implementation`: a built-in runtime, or a `.wasm` component confined to the model's folder
//! (or the server's `runtimes_dir`) and no larger than `max_component_size_mb`.

use super::super::error::LoadError;
use crate::config::{ModelSettings, Settings};
use crate::wasm::{BUILT_IN_RUNTIMES, ComponentSource};
use std::path::{Path, PathBuf};

/// MLServer's runtimes: the mlhost runtime serving the same model format (when there is one),
/// and what to tell a user whose model cannot be served as it is.
const MLSERVER_IMPLEMENTATIONS: &[(&str, Option<&str>, &str)] = &[
    (
        "mlserver_sklearn.SKLearnModel",
        None,
        "scikit-learn pickles (joblib) cannot be loaded safely outside Python: convert the model once \
         with `mlhost convert model.joblib` (skl2onnx writes model.onnx beside it, and this folder then \
         serves on the onnx runtime), or a whole repository with `mlhost import`",
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
        "mlserver_catboost.CatboostModel",
        Some("catboost"),
        "CatBoost models (model.cbm, model.bin, or a JSON export) are served by the trees runtime",
    ),
    (
        "mlserver_mlflow.MLflowRuntime",
        None,
        "MLflow model folders are served by their flavour: `parameters.uri` must name the folder \
         holding the MLmodel file",
    ),
    (
        "mlserver_huggingface.HuggingFaceRuntime",
        None,
        "Hugging Face pipelines run Python: export the model to ONNX, or write a runtime with the guest SDK",
    ),
];

/// `implementation` → a built-in runtime, or a `.wasm` file in the model's folder or in the
/// server's `runtimes_dir`.
pub(super) fn resolve_implementation(
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn mlserver_s_tree_runtimes_map_to_the_trees_runtime() {
        let server = Settings::default();
        for name in [
            "mlserver_xgboost.XGBoostModel",
            "mlserver_lightgbm.LightGBMModel",
            "mlserver_catboost.CatboostModel",
            "catboost",
        ] {
            let settings = ModelSettings {
                implementation: Some(name.into()),
                ..Default::default()
            };
            match resolve_implementation(&settings, Path::new("."), &server) {
                Ok(ComponentSource::BuiltIn { bytes, .. }) => {
                    let trees = BUILT_IN_RUNTIMES
                        .iter()
                        .find(|(n, _)| *n == "trees")
                        .unwrap();
                    assert!(std::ptr::eq(bytes, trees.1), "{name}");
                }
                other => panic!("{name}: {other:?}"),
            }
        }
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

//! Finding models: every `model-settings.json` below the repository root, as MLServer does, and
//! every MLflow model folder (`MLmodel`) no `model-settings.json` speaks for.

use crate::config::{
    ConfigError, EnvModel, ModelSettings, check_model_settings, env_model, parse_model_settings,
    read_model_settings_over, warn_once,
};
use serde_json::Map;
use std::path::{Path, PathBuf};

/// The file that marks a model folder.
const MODEL_SETTINGS_FILE: &str = "model-settings.json";

/// A model folder found on disk, with its settings read (or the reason they could not be).
#[derive(Debug)]
pub(crate) struct DiscoveredModel {
    /// The folder holding `model-settings.json`.
    pub folder: PathBuf,
    /// The model's name: `name`, else the folder's name (its parent's for a version folder).
    pub name: String,
    /// The model's version: `parameters.version`, else a numeric folder name under the model.
    pub version: Option<String>,
    /// The settings, or why they cannot be used.
    pub settings: Result<ModelSettings, ConfigError>,
    /// Why the model must not be loaded even with valid settings (its place in the repository).
    pub problem: Option<String>,
}

/// Walks `root` recursively and reads every `model-settings.json`, sorted by path, and adds the
/// model MLServer's single-model variables define (`MLSERVER_MODEL_NAME`, ...; see
/// [`env_model`]).
///
/// Two folders that define the same name and version, and a model folder that holds another
/// model's folder (its runtime would see the other's files), are reported as errors.
pub(crate) fn discover(root: &Path) -> std::io::Result<Vec<DiscoveredModel>> {
    discover_with(root, |name| std::env::var(name).ok())
}

/// [`discover`], with the environment read through `env`.
fn discover_with(
    root: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> std::io::Result<Vec<DiscoveredModel>> {
    let mut files = Vec::new();
    collect_settings_files(root, &mut files)?;
    files.sort();
    let from_env = env_model(root, env);
    let mut models: Vec<DiscoveredModel> = files
        .iter()
        .map(|file| read_model(file, from_env.as_ref()))
        .collect();
    if let Some(from_env) = from_env {
        let folder = canonical(&from_env.folder);
        if models
            .iter()
            .any(|model| canonical(&model.folder) == folder)
        {
            // Merged into that folder's model-settings.json (read_model).
        } else if models
            .iter()
            .any(|model| canonical(&model.folder).starts_with(&folder))
        {
            // As MLServer, which serves the environment's model only where no file defines one.
            warn_once(&format!(
                "the model of {} is not served: its folder {} holds model-settings.json files",
                from_env.variables.join(", "),
                from_env.folder.display()
            ));
        } else {
            models.push(read_env_model(from_env));
        }
    }
    // MLflow folders no model-settings.json speaks for are models of their own.
    let mut mlflow_dirs = Vec::new();
    collect_mlflow_folders(root, &mut mlflow_dirs)?;
    mlflow_dirs.sort();
    for dir in mlflow_dirs {
        let dir_canonical = canonical(&dir);
        let claimed = models.iter().any(|model| {
            let folder = canonical(&model.folder);
            dir_canonical.starts_with(&folder) || folder.starts_with(&dir_canonical)
        });
        if !claimed {
            models.push(read_mlflow_folder(dir));
        }
    }
    if models.is_empty() {
        warn_once(&format!(
            "nothing to serve: no model-settings.json below {} and no MLSERVER_MODEL_NAME (or MLHOST_MODEL_NAME) set",
            root.display()
        ));
    }
    let folders: Vec<PathBuf> = models.iter().map(|model| model.folder.clone()).collect();
    let keys: Vec<(String, Option<String>)> = models
        .iter()
        .map(|model| (model.name.clone(), model.version.clone()))
        .collect();
    for (index, model) in models.iter_mut().enumerate() {
        if let Some(inner) = folders
            .iter()
            .find(|other| *other != &model.folder && other.starts_with(&model.folder))
        {
            model.problem = Some(format!(
                "its folder {} holds another model's folder {}: move one of them",
                model.folder.display(),
                inner.display()
            ));
        } else if let Some(twin) = keys
            .iter()
            .enumerate()
            .position(|(other, key)| other != index && key == &keys[index])
        {
            model.problem = Some(format!(
                "{} and {} both define this name and version",
                model.folder.display(),
                folders[twin].display()
            ));
        }
    }
    Ok(models)
}

fn collect_settings_files(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let file_type = entry.file_type()?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if file_type.is_dir() && !hidden {
            // Hidden folders are skipped, as MLServer does (Kubernetes keeps `..data` copies of
            // mounted files in them).
            collect_settings_files(&path, files)?;
        } else if entry.file_name() == MODEL_SETTINGS_FILE {
            files.push(path);
        }
    }
    Ok(())
}

/// Every folder below `dir` holding an MLflow `MLmodel` file (hidden folders skipped).
fn collect_mlflow_folders(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if dir.join(super::mlflow::MLMODEL_FILE).is_file() {
        found.push(dir.to_path_buf());
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if entry.file_type()?.is_dir() && !hidden {
            collect_mlflow_folders(&entry.path(), found)?;
        }
    }
    Ok(())
}

/// An MLflow folder without a `model-settings.json`: named after its folder, every setting at
/// its default (its flavour picks the runtime when it loads).
fn read_mlflow_folder(folder: PathBuf) -> DiscoveredModel {
    let origin = format!("the MLflow model {}", folder.display());
    DiscoveredModel {
        name: file_name(&folder),
        version: None,
        settings: parse_model_settings(Map::new(), &origin),
        folder,
        problem: None,
    }
}

/// The model the environment defines, in no `model-settings.json`'s folder.
fn read_env_model(from_env: EnvModel) -> DiscoveredModel {
    let origin = format!(
        "model settings from the environment ({})",
        from_env.variables.join(", ")
    );
    let settings = parse_model_settings(from_env.fields.clone(), &origin);
    let name = from_env.fields["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let version = settings
        .as_ref()
        .ok()
        .and_then(|settings| settings.parameters.version.clone());
    let settings = settings.and_then(|settings| {
        check_model_settings(&settings, Path::new(&origin))?;
        warn_about(&settings);
        Ok(settings)
    });
    DiscoveredModel {
        folder: from_env.folder,
        name,
        version,
        settings,
        problem: None,
    }
}

fn same_folder(a: &Path, b: &Path) -> bool {
    canonical(a) == canonical(b)
}

fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

/// Logs what lenient parsing dropped, once per message.
fn warn_about(settings: &ModelSettings) {
    for warning in &settings.warnings {
        warn_once(warning);
    }
}

/// Reads one `model-settings.json` and works out the model's name and version. The model the
/// environment defines gives the defaults of the file in its folder (as MLServer's do).
fn read_model(file: &Path, from_env: Option<&EnvModel>) -> DiscoveredModel {
    let folder = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let folder_name = file_name(&folder);
    // Triton's layout: `name/1/model-settings.json` is version 1 of `name`.
    let version_folder = !folder_name.is_empty() && folder_name.bytes().all(|b| b.is_ascii_digit());
    // The name and version come from the file even when one of its values is out of range, so
    // that the model is reported unavailable under its own name.
    let empty = Map::new();
    let defaults = match from_env {
        Some(from_env) if same_folder(&folder, &from_env.folder) => &from_env.fields,
        _ => &empty,
    };
    let read = read_model_settings_over(file, defaults);
    if let Ok(settings) = &read {
        warn_about(settings);
    }
    let declared = read.as_ref().ok();
    let name = declared
        .and_then(|settings| settings.name.clone())
        .unwrap_or_else(|| match (version_folder, folder.parent()) {
            (true, Some(parent)) => file_name(parent),
            _ => folder_name.clone(),
        });
    let version = declared
        .and_then(|settings| settings.parameters.version.clone())
        .or_else(|| version_folder.then(|| folder_name.clone()));
    let settings = read.and_then(|settings| {
        check_model_settings(&settings, file)?;
        Ok(settings)
    });
    DiscoveredModel {
        folder,
        name,
        version,
        settings,
        problem: None,
    }
}

fn file_name(path: &Path) -> String {
    path.canonicalize()
        .ok()
        .as_deref()
        .unwrap_or(path)
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn finds_models_recursively_with_names_and_versions() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        write(
            &root.join("a/model-settings.json"),
            r#"{"implementation": "linear"}"#,
        );
        write(
            &root.join("deep/er/b/model-settings.json"),
            r#"{"name": "bee", "parameters": {"version": "v2"}}"#,
        );
        write(
            &root.join("c/3/model-settings.json"),
            r#"{"implementation": "linear"}"#,
        );
        write(
            &root.join("d/model-settings.json"),
            r#"{"nmae": "typo", "max_batch_size": "lots"}"#,
        );
        write(&root.join("e/settings.json"), "{}");

        let found = discover_with(root, |_| None).unwrap();
        let summary: Vec<_> = found
            .iter()
            .map(|model| {
                (
                    model.name.as_str(),
                    model.version.as_deref(),
                    model.settings.is_ok(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("a", None, true),
                ("c", Some("3"), true),
                ("d", None, false),
                ("bee", Some("v2"), true),
            ]
        );
    }

    #[test]
    fn hidden_folders_are_skipped_and_clashes_reported() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        write(
            &root.join("..data/m/model-settings.json"),
            r#"{"name": "m"}"#,
        );
        write(&root.join("m/model-settings.json"), r#"{"name": "m"}"#);
        write(&root.join("twin/model-settings.json"), r#"{"name": "m"}"#);
        write(&root.join("outer/model-settings.json"), "{}");
        write(&root.join("outer/inner/model-settings.json"), "{}");

        let found = discover_with(root, |_| None).unwrap();
        let problems: Vec<_> = found
            .iter()
            .map(|model| {
                (
                    file_name(&model.folder),
                    model.problem.clone().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(problems.len(), 4, "{problems:?}");
        let problem = |folder: &str| &problems.iter().find(|(name, _)| name == folder).unwrap().1;
        assert!(problem("m").contains("both define"), "{problems:?}");
        assert!(problem("twin").contains("both define"), "{problems:?}");
        assert!(
            problem("outer").contains("holds another model's folder"),
            "{problems:?}"
        );
        assert_eq!(problem("inner"), "");
    }

    #[test]
    fn mlflow_folders_without_settings_are_models_of_their_own() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        write(&root.join("runs/wine/MLmodel"), "flavors: {}");
        write(&root.join("m/model-settings.json"), r#"{"name": "m"}"#);
        write(&root.join("m/model/MLmodel"), "flavors: {}");
        write(&root.join("env/MLmodel"), "flavors: {}");
        let env = |name: &str| match name {
            "MLSERVER_MODEL_NAME" => Some("from-env".to_string()),
            "MLSERVER_MODEL_URI" => Some(root.join("env").display().to_string()),
            _ => None,
        };
        let found = discover_with(root, env).unwrap();
        let names: Vec<_> = found.iter().map(|model| model.name.as_str()).collect();
        assert_eq!(names, ["m", "from-env", "wine"]);
        assert!(found[2].settings.is_ok() && found[2].problem.is_none());
        assert_eq!(found[2].folder, root.join("runs/wine"));
    }

    #[test]
    fn the_environments_model_is_served_besides_the_folders() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        write(&root.join("a/model-settings.json"), "{}");
        write(&root.join("env/linear.json"), "{}");
        write(
            &root.join("b/model-settings.json"),
            r#"{"parameters": {"version": "v9"}}"#,
        );
        let env = |uri: PathBuf| {
            move |name: &str| match name {
                "MLSERVER_MODEL_NAME" => Some("from-env".to_string()),
                "MLSERVER_MODEL_MAX_BATCH_SIZE" => Some("8".to_string()),
                "MLSERVER_MODEL_URI" => Some(uri.display().to_string()),
                _ => None,
            }
        };
        let found = discover_with(root, env(root.join("env/linear.json"))).unwrap();
        let names: Vec<_> = found.iter().map(|model| model.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "from-env"]);
        let settings = found[2].settings.as_ref().unwrap();
        assert_eq!(settings.max_batch_size, 8);
        assert_eq!(found[2].folder, root.join("env"));

        // In a model-settings.json's folder, the variables are that file's defaults.
        let found = discover_with(root, env(root.join("b"))).unwrap();
        let names: Vec<_> = found.iter().map(|model| model.name.as_str()).collect();
        assert_eq!(names, ["a", "from-env"]);
        assert_eq!(found[1].version.as_deref(), Some("v9"));
        assert_eq!(found[1].settings.as_ref().unwrap().max_batch_size, 8);

        // Above the files' folders, it is not served (MLServer serves it only without files).
        let found = discover_with(root, env(root.to_path_buf())).unwrap();
        assert_eq!(found.len(), 2);
    }
}

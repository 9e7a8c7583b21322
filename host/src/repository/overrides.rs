//! Loads with what the request sends (Triton's model repository extension): a `config` that
//! overrides the model's settings, and `file:<path>` contents that form a fresh folder for the
//! model, which it is then loaded from.

use super::error::{LoadFailures, RepositoryError};
use super::triton_config::{merge, settings_override};
use super::{DiscoveredModel, ModelState, Repository, load_model};
use crate::codec::quoted;
use crate::config::{ConfigError, ModelSettings, check_model_settings, parse_model_settings};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// The settings file of a model folder.
const SETTINGS_FILE: &str = "model-settings.json";

/// The most files one load may send.
const MAX_FILES: usize = 10_000;

/// What a load request sends beyond the model's name.
#[derive(Debug, Default)]
pub(crate) struct LoadRequest {
    /// Triton's `config`: the model's configuration as JSON text.
    pub config: Option<String>,
    /// Triton's `file:<path>` parameters: each file's path in the model's folder and content.
    pub files: Vec<(String, Vec<u8>)>,
}

impl LoadRequest {
    /// Whether the request sends nothing: a load from disk.
    pub(crate) fn is_plain(&self) -> bool {
        self.config.is_none() && self.files.is_empty()
    }
}

/// A load request, checked: the settings it overrides and the files it sends.
#[derive(Debug)]
pub(crate) struct LoadOverride {
    settings: Map<String, Value>,
    /// The files (paths checked), with the settings they hold when one is `model-settings.json`.
    files: BTreeMap<PathBuf, Vec<u8>>,
    sent_settings: Option<Map<String, Value>>,
}

impl Repository {
    /// Checks a load request for model `name`: its config (see [`settings_override`]), its
    /// files' paths (relative, inside the model's folder) and total size (at most
    /// `max_request_body_mb`). The error says what is wrong.
    pub(crate) fn check_load(
        &self,
        name: &str,
        request: LoadRequest,
    ) -> Result<LoadOverride, String> {
        let settings = match &request.config {
            Some(config) => settings_override(name, config)?,
            None => Map::new(),
        };
        if request.files.len() > MAX_FILES {
            return Err(format!("a load sends {MAX_FILES} files at most"));
        }
        let limit = self
            .settings
            .max_request_body_mb
            .saturating_mul(1024 * 1024);
        let total: u64 = request
            .files
            .iter()
            .map(|(_, bytes)| bytes.len() as u64)
            .sum();
        if total > limit {
            return Err(format!(
                "the load's files hold {total} bytes, over the limit of {limit} bytes (max_request_body_mb)"
            ));
        }
        let mut files = BTreeMap::new();
        for (path, bytes) in request.files {
            let checked = checked_path(&path)?;
            if files.insert(checked, bytes).is_some() {
                return Err(format!("file:{} is sent twice", quoted(&path)));
            }
        }
        for path in files.keys() {
            if let Some(folder) = path
                .ancestors()
                .skip(1)
                .find(|folder| files.contains_key(*folder))
            {
                return Err(format!(
                    "file:{} is both a file and the folder of file:{}",
                    folder.display(),
                    path.display()
                ));
            }
        }
        let sent_settings = match files.get(Path::new(SETTINGS_FILE)) {
            Some(bytes) => match serde_json::from_slice(bytes) {
                Ok(Value::Object(fields)) => Some(fields),
                _ => return Err(format!("file:{SETTINGS_FILE} is not a JSON object")),
            },
            None => None,
        };
        if !files.is_empty() && request.config.is_none() && sent_settings.is_none() {
            return Err(format!(
                "a load with files needs its config (or a file:{SETTINGS_FILE} among them)"
            ));
        }
        Ok(LoadOverride {
            settings,
            files,
            sent_settings,
        })
    }

    /// Loads model `name` as [`Repository::load`] does, with its settings overridden and, when
    /// files are sent, from a fresh folder holding them (kept until the model's next load with
    /// an override).
    pub(crate) async fn load_with(
        self: &Arc<Self>,
        name: &str,
        load: LoadOverride,
    ) -> Result<(), RepositoryError> {
        let (repository, model) = (self.clone(), name.to_string());
        let task = tokio::spawn(async move {
            let load = repository.load_overridden(&model, load);
            repository.operations.serialized(&model, load).await
        });
        task.await.unwrap_or_else(|joined| {
            Err(RepositoryError::LoadFailed {
                name: name.to_string(),
                failures: LoadFailures(vec![super::error::VersionFailure {
                    version: None,
                    error: super::error::LoadError::from_join(joined),
                }]),
            })
        })
    }

    async fn load_overridden(&self, name: &str, load: LoadOverride) -> Result<(), RepositoryError> {
        let (found, folder) = if load.files.is_empty() {
            (self.discover_overridden(name, &load.settings).await?, None)
        } else {
            let name = name.to_string();
            let (model, folder) = tokio::task::spawn_blocking(move || write_folder(&name, load))
                .await
                .map_err(std::io::Error::other)??;
            (vec![model], Some(folder))
        };
        self.load_discovered(name, found).await?;
        // The previous folder sent for the model goes once the new load serves.
        let previous = {
            let mut uploads = self.uploads.lock().expect("uploads lock");
            match folder {
                Some(folder) => uploads.insert(name.to_string(), folder),
                None => uploads.remove(name),
            }
        };
        drop(previous);
        Ok(())
    }

    /// The versions of model `name` on disk, their settings overridden by `over`.
    async fn discover_overridden(
        &self,
        name: &str,
        over: &Map<String, Value>,
    ) -> Result<Vec<DiscoveredModel>, RepositoryError> {
        let mut found: Vec<DiscoveredModel> = self
            .discover()
            .await?
            .into_iter()
            .filter(|model| model.name == name)
            .collect();
        if found.is_empty() {
            return Err(RepositoryError::NotFound(name.to_string()));
        }
        for model in &mut found {
            let settings = std::mem::replace(&mut model.settings, Ok(ModelSettings::default()));
            model.settings =
                settings.and_then(|settings| overridden(settings, over, &model.folder));
            if let Ok(settings) = &model.settings
                && settings.parameters.version.is_some()
            {
                model.version = settings.parameters.version.clone();
            }
        }
        Ok(found)
    }

    /// Loads `found`, the versions of model `name`, as a load from disk does: each built beside
    /// the serving one and swapped in when ready; once all are, the versions not found are
    /// unloaded (after a failure, they serve on).
    async fn load_discovered(
        &self,
        name: &str,
        found: Vec<DiscoveredModel>,
    ) -> Result<(), RepositoryError> {
        for model in &found {
            if !self.is_serving(name, &model.version) {
                self.insert(name, model.version.clone(), ModelState::Loading);
            }
        }
        let kept: Vec<Option<String>> = found.iter().map(|model| model.version.clone()).collect();
        let loads = found.into_iter().map(|model| {
            let (version, folder) = (model.version.clone(), model.folder.clone());
            let (engine, settings, metrics, slots) = (
                self.engine.clone(),
                self.settings.clone(),
                self.metrics.clone(),
                self.slots.clone(),
            );
            let load = move || load_model(&engine, &slots, model, &settings, &metrics);
            async move { self.load_version(name, version, &folder, load).await }
        });
        let failures: Vec<_> = futures_util::future::join_all(loads)
            .await
            .into_iter()
            .filter_map(Result::err)
            .collect();
        if failures.is_empty() {
            // A version the load did not bring is gone with the folder or settings it was in.
            self.retain_versions(name, &kept);
            Ok(())
        } else {
            Err(RepositoryError::LoadFailed {
                name: name.to_string(),
                failures: LoadFailures(failures),
            })
        }
    }
}

/// `path` of a `file:<path>` parameter, if it stays inside the model's folder: relative, no
/// `..` or `.`, no `\` or `:` (which Windows reads as separators and drives).
fn checked_path(path: &str) -> Result<PathBuf, String> {
    let refused = |why: &str| Err(format!("file:{} {why}", quoted(path)));
    if path.is_empty() || path.len() > 1024 || path.contains('\0') {
        return refused("is not a file path");
    }
    if path.contains('\\') || path.contains(':') {
        return refused("has a `\\` or `:`: send paths with `/` between folders");
    }
    let checked = Path::new(path);
    if checked
        .components()
        .any(|part| !matches!(part, Component::Normal(_)))
        || checked.components().next().is_none()
    {
        return refused("must stay inside the model's folder: a relative path without `..` or `.`");
    }
    Ok(checked.components().collect())
}

/// Settings with `over` applied; errors name the folder's settings file and the config.
fn overridden(
    settings: ModelSettings,
    over: &Map<String, Value>,
    folder: &Path,
) -> Result<ModelSettings, ConfigError> {
    let origin = folder.join(SETTINGS_FILE);
    let origin = format!("{} with the load's config", origin.display());
    let mut fields = match serde_json::to_value(&settings) {
        Ok(Value::Object(fields)) => fields,
        _ => Map::new(),
    };
    merge(&mut fields, over.clone());
    let settings = parse_model_settings(fields, &origin)?;
    check_model_settings(&settings, Path::new(&origin))?;
    Ok(settings)
}

/// Writes the files of `load` to a fresh folder with the model's settings (the file sent, if
/// any, then the config) as its `model-settings.json`, and finds the model there.
fn write_folder(
    name: &str,
    load: LoadOverride,
) -> std::io::Result<(DiscoveredModel, tempfile::TempDir)> {
    let folder = tempfile::Builder::new().prefix("mlhost-model-").tempdir()?;
    let mut fields = load.sent_settings.unwrap_or_default();
    merge(&mut fields, load.settings);
    fields.insert("name".into(), name.into());
    triton_layout(&mut fields, load.files.keys());
    for (path, bytes) in &load.files {
        let target = folder.path().join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(target, bytes)?;
    }
    let file = folder.path().join(SETTINGS_FILE);
    let text = serde_json::to_vec_pretty(&fields).map_err(std::io::Error::other)?;
    std::fs::write(&file, text)?;
    let settings = parse_model_settings(fields, &file.display().to_string()).and_then(|settings| {
        check_model_settings(&settings, &file)?;
        Ok(settings)
    });
    let version = settings
        .as_ref()
        .ok()
        .and_then(|settings| settings.parameters.version.clone());
    let model = DiscoveredModel {
        folder: folder.path().to_path_buf(),
        name: name.to_string(),
        version,
        settings,
        problem: None,
    };
    Ok((model, folder))
}

/// Triton's layout, files under a version folder (`1/model.onnx`): without a `parameters.uri`,
/// the uri is that folder and, without a version, so is the version.
fn triton_layout<'a>(fields: &mut Map<String, Value>, paths: impl Iterator<Item = &'a PathBuf>) {
    let folders: BTreeSet<&str> = paths
        .filter(|path| path.as_path() != Path::new(SETTINGS_FILE))
        .filter_map(|path| match path.components().next() {
            Some(Component::Normal(first)) if path.components().count() > 1 => first.to_str(),
            _ => Some(""),
        })
        .collect();
    let [folder] = folders.into_iter().collect::<Vec<_>>()[..] else {
        return;
    };
    if folder.is_empty() || !folder.bytes().all(|byte| byte.is_ascii_digit()) {
        return;
    }
    let parameters = fields
        .entry("parameters")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(parameters) = parameters
        && parameters.get("uri").is_none_or(Value::is_null)
    {
        parameters.insert("uri".into(), folder.into());
        if parameters.get("version").is_none_or(Value::is_null) {
            parameters.insert("version".into(), folder.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_must_stay_inside_the_models_folder() {
        assert_eq!(checked_path("a/b.json").unwrap(), Path::new("a/b.json"));
        // Paths are normalized as std reads them: `//` and an inner `.` are nothing.
        assert_eq!(checked_path("a//b").unwrap(), Path::new("a/b"));
        assert_eq!(checked_path("a/./b").unwrap(), Path::new("a/b"));
        for bad in [
            "",
            "../x",
            "a/../../x",
            "/etc/passwd",
            "./x",
            "a\\b",
            "C:x",
            "..",
        ] {
            assert!(checked_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tritons_version_folder_is_the_uri_and_version() {
        let paths = [PathBuf::from("1/model.onnx"), PathBuf::from(SETTINGS_FILE)];
        let mut fields = Map::new();
        triton_layout(&mut fields, paths.iter());
        assert_eq!(
            Value::Object(fields),
            serde_json::json!({"parameters": {"uri": "1", "version": "1"}})
        );
        let paths = [PathBuf::from("1/model.onnx"), PathBuf::from("other.txt")];
        let mut fields = Map::new();
        triton_layout(&mut fields, paths.iter());
        assert!(fields.is_empty());
    }
}

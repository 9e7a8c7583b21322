//! MLServer's single-model environment variables: `MLSERVER_MODEL_NAME`,
//! `MLSERVER_MODEL_IMPLEMENTATION`, `MLSERVER_MODEL_URI`, ... (and the same with `MLHOST_MODEL_`,
//! which wins). MLServer's `ModelSettings` and `ModelParameters` both read the prefix
//! `MLSERVER_MODEL_`: a model field (`NAME`, `MAX_BATCH_SIZE`, `INPUTS`, ...) or a parameter
//! (`URI`, `VERSION`, `EXTRA`, ...); lists and objects are JSON, as pydantic-settings reads them.

use super::{ModelParameters, ModelSettings};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// Prefixes, highest precedence first.
const PREFIXES: [&str; 2] = ["MLHOST_MODEL_", "MLSERVER_MODEL_"];

/// Fields read as text whatever they look like (a name such as `123` stays a string).
const TEXT_FIELDS: [&str; 11] = [
    "name",
    "implementation",
    "platform",
    "backend",
    "uri",
    "version",
    "format",
    "content_type",
    "environment_path",
    "environment_tarball",
    "inference_pool_gid",
];

/// Parameters MLServer has besides those [`ModelParameters`] names.
const MLSERVER_PARAMETERS: [&str; 4] = [
    "environment_path",
    "environment_tarball",
    "inference_pool_gid",
    "autogenerate_inference_pool_gid",
];

/// The model the environment defines.
#[derive(Debug, Clone)]
pub(crate) struct EnvModel {
    /// Its settings' fields, as a model-settings.json would hold them (`uri` made absolute).
    pub fields: Map<String, Value>,
    /// The folder the model's runtime sees: the uri's folder (the uri itself if a folder),
    /// else the repository root.
    pub folder: PathBuf,
    /// The variables read, for messages.
    pub variables: Vec<String>,
}

/// The model defined by `MLHOST_MODEL_*` / `MLSERVER_MODEL_*` variables read through `env`, if
/// `..._NAME` is set. A relative uri is relative to the working directory, as in MLServer.
pub(crate) fn env_model(root: &Path, env: impl Fn(&str) -> Option<String>) -> Option<EnvModel> {
    let read = |field: &str| {
        PREFIXES.iter().find_map(|prefix| {
            let variable = format!("{prefix}{}", field.to_uppercase());
            env(&variable).map(|raw| (variable, raw))
        })
    };
    read("name")?;
    let model_fields = match serde_json::to_value(ModelSettings::default()) {
        Ok(Value::Object(fields)) => fields,
        _ => unreachable!("model settings serialize to an object"),
    };
    let parameter_fields = match serde_json::to_value(ModelParameters::default()) {
        Ok(Value::Object(fields)) => fields,
        _ => unreachable!("model parameters serialize to an object"),
    };
    let mut fields = Map::new();
    let mut parameters = Map::new();
    let mut variables = Vec::new();
    let parameter_names = parameter_fields
        .keys()
        .map(String::as_str)
        .chain(MLSERVER_PARAMETERS);
    let model_names = model_fields
        .keys()
        .map(String::as_str)
        .filter(|f| *f != "parameters");
    for (field, is_parameter) in model_names
        .map(|field| (field, false))
        .chain(parameter_names.map(|field| (field, true)))
    {
        let Some((variable, raw)) = read(field) else {
            continue;
        };
        let value = if TEXT_FIELDS.contains(&field) {
            Value::String(raw)
        } else {
            serde_json::from_str(&raw).unwrap_or(Value::String(raw))
        };
        let target = if is_parameter {
            &mut parameters
        } else {
            &mut fields
        };
        target.insert(field.to_string(), value);
        variables.push(variable);
    }
    let folder = match parameters.get("uri").and_then(Value::as_str) {
        // Object storage (s3://, https://, ...): fetched when the model loads.
        Some(uri) if crate::storage::is_remote(uri) => root.to_path_buf(),
        Some(uri) => {
            let uri = std::env::current_dir()
                .map(|cwd| cwd.join(uri))
                .unwrap_or_else(|_| PathBuf::from(uri));
            let folder = if uri.is_dir() {
                uri.clone()
            } else {
                uri.parent().map(Path::to_path_buf).unwrap_or_default()
            };
            parameters.insert("uri".into(), Value::String(uri.display().to_string()));
            folder
        }
        None => root.to_path_buf(),
    };
    if !parameters.is_empty() {
        fields.insert("parameters".into(), Value::Object(parameters));
    }
    Some(EnvModel {
        fields,
        folder,
        variables,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    #[test]
    fn reads_mlservers_variables_and_mlhosts_win() {
        let dir = tempfile::tempdir().unwrap();
        let uri = dir.path().join("linear.json");
        std::fs::write(&uri, "{}").unwrap();
        let env: HashMap<String, String> = [
            ("MLSERVER_MODEL_NAME", "123"),
            ("MLSERVER_MODEL_IMPLEMENTATION", "linear"),
            ("MLSERVER_MODEL_URI", uri.to_str().unwrap()),
            ("MLSERVER_MODEL_VERSION", "v1"),
            ("MLSERVER_MODEL_MAX_BATCH_SIZE", "8"),
            ("MLHOST_MODEL_MAX_BATCH_SIZE", "4"),
            ("MLSERVER_MODEL_MAX_BATCH_TIME", "0.5"),
            ("MLSERVER_MODEL_PARALLEL_WORKERS", "2"),
            ("MLSERVER_MODEL_EXTRA", r#"{"k": 1}"#),
            ("MLSERVER_MODEL_REPOSITORY_ROOT", "/elsewhere"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let model = env_model(Path::new("/root"), |name| env.get(name).cloned()).unwrap();
        assert_eq!(model.folder, dir.path());
        assert_eq!(
            Value::Object(model.fields),
            json!({
                "name": "123", "implementation": "linear", "max_batch_size": 4,
                "max_batch_time": 0.5, "parallel_workers": 2,
                "parameters": {"uri": uri.to_str().unwrap(), "version": "v1", "extra": {"k": 1}}
            })
        );
        assert!(env_model(Path::new("."), |_| None).is_none());
    }

    #[test]
    fn a_uri_in_object_storage_is_kept_as_written() {
        let env = |name: &str| match name {
            "MLSERVER_MODEL_NAME" => Some("m".to_string()),
            "MLSERVER_MODEL_URI" => Some("s3://models/m/model.json".to_string()),
            _ => None,
        };
        let model = env_model(Path::new("/root"), env).unwrap();
        assert_eq!(model.folder, Path::new("/root"));
        assert_eq!(
            model.fields["parameters"]["uri"],
            json!("s3://models/m/model.json")
        );
    }
}

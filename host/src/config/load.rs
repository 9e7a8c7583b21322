//! Reading settings files and environment overrides, with errors that name the field.

mod ranges;

use super::{ModelSettings, Settings};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// A configuration that cannot be used, and where it came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not valid JSON: {source}", path.display())]
    Syntax {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{origin}: {}{message}", field.as_ref().map(|f| format!("field `{f}`: ")).unwrap_or_default())]
    Field {
        origin: String,
        field: Option<String>,
        message: String,
    },
}

/// Environment prefixes, highest precedence first.
const ENV_PREFIXES: [&str; 2] = ["MLHOST_", "MLSERVER_"];

/// Loads `settings.json` (when `file` is given and exists), then applies environment overrides
/// read through `env` (`MLHOST_HTTP_PORT`, `MLSERVER_HTTP_PORT`, ...).
pub(crate) fn load_settings(
    file: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Settings, ConfigError> {
    let mut fields = match file {
        Some(path) if path.exists() => {
            let fields = read_object(path)?;
            // Check the file on its own first, so that its errors name the file.
            deserialize::<Settings>(Value::Object(fields.clone()), &path.display().to_string())?;
            fields
        }
        _ => Map::new(),
    };

    let defaults = match serde_json::to_value(Settings::default()) {
        Ok(Value::Object(defaults)) => defaults,
        _ => unreachable!("Settings serialize to an object"),
    };
    let mut used = Vec::new();
    for (field, default) in &defaults {
        let found = ENV_PREFIXES.iter().find_map(|prefix| {
            let variable = format!("{prefix}{}", field.to_uppercase());
            env(&variable).map(|raw| (variable, raw))
        });
        if let Some((variable, raw)) = found {
            fields.insert(field.clone(), env_value(default, raw));
            used.push(variable);
        }
    }
    let origin = if used.is_empty() {
        "settings".to_string()
    } else {
        format!("settings from the environment ({})", used.join(", "))
    };
    let settings: Settings = deserialize(Value::Object(fields), &origin)?;
    ranges::check_settings(&settings)
        .and_then(|()| settings.validate())
        .map_err(|(field, message)| ConfigError::Field {
            origin,
            field: Some(field.to_string()),
            message,
        })?;
    Ok(settings)
}

/// Loads one `model-settings.json` and checks its ranges.
#[cfg(test)]
pub(crate) fn load_model_settings(path: &Path) -> Result<ModelSettings, ConfigError> {
    let settings = read_model_settings(path)?;
    check_model_settings(&settings, path)?;
    Ok(settings)
}

/// Reads one `model-settings.json` (types only; see [`check_model_settings`]).
pub(crate) fn read_model_settings(path: &Path) -> Result<ModelSettings, ConfigError> {
    let fields = read_object(path)?;
    deserialize(Value::Object(fields), &path.display().to_string())
}

/// Checks the ranges of the numeric fields of the model settings read from `path`.
pub(crate) fn check_model_settings(
    settings: &ModelSettings,
    path: &Path,
) -> Result<(), ConfigError> {
    ranges::check_model_settings(settings).map_err(|(field, message)| ConfigError::Field {
        origin: path.display().to_string(),
        field: Some(field.to_string()),
        message,
    })
}

/// Interprets an environment variable's text: as a string where the field is a string, as a
/// boolean the way pydantic reads one (`true`/`1`/`yes`/`on`, any case) where it is a boolean,
/// otherwise as JSON (numbers, lists), falling back to a string.
fn env_value(default: &Value, raw: String) -> Value {
    if default.is_string() {
        return Value::String(raw);
    }
    if default.is_boolean() {
        match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => return Value::Bool(true),
            "false" | "0" | "no" | "off" => return Value::Bool(false),
            _ => {}
        }
    }
    serde_json::from_str(&raw).unwrap_or(Value::String(raw))
}

fn read_object(path: &Path) -> Result<Map<String, Value>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    match serde_json::from_str(&text) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(ConfigError::Field {
            origin: path.display().to_string(),
            field: None,
            message: "expected a JSON object".to_string(),
        }),
        Err(source) => Err(ConfigError::Syntax {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn deserialize<T: DeserializeOwned>(value: Value, origin: &str) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        ConfigError::Field {
            origin: origin.to_string(),
            field: (path != ".").then_some(path),
            message: error.into_inner().to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn defaults_are_mlservers() {
        let settings = load_settings(None, no_env).unwrap();
        assert_eq!(settings.http_port, 8080);
        assert_eq!(settings.grpc_port, 8081);
        assert_eq!(settings.metrics_port, 8082);
        assert_eq!(settings.parallel_workers, 1);
        assert_eq!(settings.host, "0.0.0.0");
        assert!(settings.load_models_at_startup);
        assert_eq!(settings.metrics_endpoint.as_deref(), Some("/metrics"));
    }

    #[test]
    fn environment_overrides_file_and_mlhost_wins_over_mlserver() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "settings.json",
            r#"{"http_port": 9000, "server_name": "a"}"#,
        );
        let env: HashMap<&str, &str> = [
            ("MLSERVER_HTTP_PORT", "9001"),
            ("MLHOST_HTTP_PORT", "9002"),
            ("MLSERVER_SERVER_NAME", "123"),
            ("MLSERVER_DEBUG", "True"),
            ("MLHOST_LOAD_MODELS_AT_STARTUP", "0"),
        ]
        .into();
        let settings =
            load_settings(Some(&path), |name| env.get(name).map(|v| v.to_string())).unwrap();
        assert_eq!(settings.http_port, 9002);
        assert_eq!(settings.server_name, "123");
        assert!(settings.debug);
        assert!(!settings.load_models_at_startup);
    }

    #[test]
    fn errors_name_the_file_and_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "settings.json", r#"{"http_port": "eighty"}"#);
        let error = load_settings(Some(&path), no_env).unwrap_err().to_string();
        assert!(
            error.contains("settings.json") && error.contains("`http_port`"),
            "{error}"
        );

        let path = write(dir.path(), "settings.json", r#"{"http_prot": 1}"#);
        let error = load_settings(Some(&path), no_env).unwrap_err().to_string();
        assert!(
            error.contains("settings.json") && error.contains("unknown field `http_prot`"),
            "{error}"
        );

        let error = load_settings(None, |name| {
            (name == "MLHOST_GRPC_PORT").then(|| "x".into())
        })
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("MLHOST_GRPC_PORT") && error.contains("`grpc_port`"),
            "{error}"
        );

        for (text, field) in [
            (r#"{"timeout_seconds": 0}"#, "`timeout_seconds`"),
            (r#"{"timeout_seconds": 1e300}"#, "`timeout_seconds`"),
            (r#"{"root_path": "/v2/x/"}"#, "`root_path`"),
            (r#"{"memory_limit_mb": 0}"#, "`memory_limit_mb`"),
        ] {
            let path = write(dir.path(), "settings.json", text);
            let error = load_settings(Some(&path), no_env).unwrap_err().to_string();
            assert!(error.contains(field), "{text}: {error}");
        }

        let path = write(
            dir.path(),
            "model-settings.json",
            r#"{"name": "m", "max_batch_size": -1}"#,
        );
        let error = load_model_settings(&path).unwrap_err().to_string();
        assert!(
            error.contains("model-settings.json") && error.contains("`max_batch_size`"),
            "{error}"
        );

        let path = write(
            dir.path(),
            "model-settings.json",
            r#"{"name": "m", "inputs": [{"name": "x"}]}"#,
        );
        let error = load_model_settings(&path).unwrap_err().to_string();
        assert!(
            error.contains("`inputs[0]`") && error.contains("datatype"),
            "{error}"
        );
    }

    #[test]
    fn reads_an_mlserver_model_settings_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "model-settings.json",
            r#"{
                "name": "iris", "implementation": "mlserver_sklearn.SKLearnModel",
                "max_batch_size": 8, "max_batch_time": 0.5,
                "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
                "parameters": {"uri": "./model.joblib", "version": "v1",
                               "extra": {"k": 1}, "environment_tarball": null}
            }"#,
        );
        let settings = load_model_settings(&path).unwrap();
        assert_eq!(settings.name.as_deref(), Some("iris"));
        assert_eq!(settings.max_batch_size, 8);
        assert_eq!(settings.parameters.version.as_deref(), Some("v1"));
        assert_eq!(settings.parameters.uri.as_deref(), Some("./model.joblib"));
        assert!(
            settings
                .parameters
                .other
                .contains_key("environment_tarball")
        );
    }
}

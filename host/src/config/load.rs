//! Reading settings files and environment overrides, with errors that name the field.

mod lenient;
mod ranges;

use super::{ModelSettings, Settings};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

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
///
/// Unless `strict_settings` is set (in the file or as `MLHOST_STRICT_SETTINGS`), unknown fields
/// are dropped and string numbers coerced as MLServer does; the warnings are in
/// [`Settings::warnings`].
pub(crate) fn load_settings(
    file: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Settings, ConfigError> {
    let mut fields = match file {
        Some(path) if path.exists() => read_object(path)?,
        _ => Map::new(),
    };
    let strict = strict_setting(&fields, &env);
    let mut warnings = Vec::new();
    if file.is_some_and(Path::exists) {
        // Check the file on its own first, so that its errors name the file.
        let origin = file
            .map(|path| path.display().to_string())
            .unwrap_or_default();
        let (_, relaxed, found) =
            lenient::relax::<Settings>(Value::Object(fields), &origin, strict)?;
        warnings = found;
        fields = match relaxed {
            Value::Object(fields) => fields,
            _ => unreachable!("an object stays an object"),
        };
    }

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
    let (mut settings, _, _): (Settings, _, _) =
        lenient::relax(Value::Object(fields), &origin, strict)?;
    settings.warnings = warnings;
    ranges::check_settings(&settings)
        .and_then(|()| settings.validate())
        .map_err(|(field, message)| ConfigError::Field {
            origin,
            field: Some(field.to_string()),
            message,
        })?;
    Ok(settings)
}

/// Whether the settings ask for strict parsing: `MLHOST_STRICT_SETTINGS` (or `MLSERVER_...`),
/// else the file's `strict_settings`, read leniently.
fn strict_setting(fields: &Map<String, Value>, env: impl Fn(&str) -> Option<String>) -> bool {
    let from_env = ENV_PREFIXES
        .iter()
        .find_map(|prefix| env(&format!("{prefix}STRICT_SETTINGS")))
        .map(|raw| env_value(&Value::Bool(false), raw));
    match from_env.as_ref().or(fields.get("strict_settings")) {
        Some(Value::Bool(strict)) => *strict,
        Some(Value::String(text)) => matches!(
            text.trim().to_ascii_lowercase().as_str(),
            "true" | "1" | "yes" | "on"
        ),
        Some(Value::Number(n)) => n.as_f64() == Some(1.0),
        _ => false,
    }
}

/// Whether model-settings.json files are read strictly (set once the server's settings are).
static STRICT_MODELS: AtomicBool = AtomicBool::new(false);

/// Makes every later [`read_model_settings`] strict (or lenient), as `strict_settings` says.
pub(crate) fn set_strict(strict: bool) {
    STRICT_MODELS.store(strict, Ordering::Relaxed);
}

/// Logs `message` as a warning the first time it is given (a repository is read again on
/// every index and load request).
pub(crate) fn warn_once(message: &str) {
    static WARNED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let mut warned = WARNED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if warned.insert(message.to_string()) {
        tracing::warn!("{message}");
    }
}

/// Loads one `model-settings.json` and checks its ranges.
#[cfg(test)]
pub(crate) fn load_model_settings(path: &Path) -> Result<ModelSettings, ConfigError> {
    let settings = read_model_settings(path)?;
    check_model_settings(&settings, path)?;
    Ok(settings)
}

/// Reads one `model-settings.json` (types only; see [`check_model_settings`]); unknown fields and
/// coercions are in [`ModelSettings::warnings`] unless settings are strict.
#[cfg(test)]
pub(crate) fn read_model_settings(path: &Path) -> Result<ModelSettings, ConfigError> {
    read_model_settings_over(path, &Map::new())
}

/// Reads one `model-settings.json` whose fields override `defaults` (the model settings of the
/// environment, for the model in the folder they name, as MLServer's environment defaults).
pub(crate) fn read_model_settings_over(
    path: &Path,
    defaults: &Map<String, Value>,
) -> Result<ModelSettings, ConfigError> {
    let mut fields = defaults.clone();
    for (key, value) in read_object(path)? {
        match (fields.get_mut(&key), value) {
            (Some(Value::Object(under)), Value::Object(over)) if key == "parameters" => {
                under.extend(over)
            }
            (_, value) => {
                fields.insert(key, value);
            }
        }
    }
    parse_model_settings(fields, &path.display().to_string())
}

/// Model settings from their JSON fields; `origin` names where they came from in errors.
pub(crate) fn parse_model_settings(
    fields: Map<String, Value>,
    origin: &str,
) -> Result<ModelSettings, ConfigError> {
    let strict = STRICT_MODELS.load(Ordering::Relaxed);
    let (mut settings, _, warnings): (ModelSettings, _, _) =
        lenient::relax(Value::Object(fields), origin, strict)?;
    settings.warnings = warnings;
    Ok(settings)
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
        let settings = load_settings(Some(&path), no_env).unwrap();
        assert!(
            settings.warnings[0].contains("settings.json")
                && settings.warnings[0]
                    .contains("unknown field `http_prot` ignored (did you mean `http_port`?)"),
            "{:?}",
            settings.warnings
        );
        let strict = |name: &str| (name == "MLHOST_STRICT_SETTINGS").then(|| "1".to_string());
        let error = load_settings(Some(&path), strict).unwrap_err().to_string();
        assert!(
            error.contains("settings.json") && error.contains("unknown field `http_prot`"),
            "{error}"
        );
        let path = write(
            dir.path(),
            "settings.json",
            r#"{"http_port": "9000", "strict_settings": "true"}"#,
        );
        let error = load_settings(Some(&path), no_env).unwrap_err().to_string();
        assert!(error.contains("`http_port`"), "{error}");

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

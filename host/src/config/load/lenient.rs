//! Lenient parsing, as MLServer's pydantic settings parse: an unknown field is dropped with a
//! warning naming the nearest known field, and a number or boolean written as a string (or a
//! boolean written as 0 / 1, an integer written as `8.0`) is coerced as pydantic's lax mode
//! does. The typed structs say which fields exist and what they hold: a value is deserialized,
//! and each error serde reports is repaired in the JSON value where pydantic would accept it.

use super::ConfigError;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_path_to_error::{Error, Segment};

/// At most this many repairs per file (each is one field).
const MAX_REPAIRS: usize = 1024;

/// Deserializes `value` as `T`; unless `strict`, unknown fields are dropped and coercible
/// values coerced first. Returns the value as repaired and one warning per dropped field.
pub(super) fn relax<T: DeserializeOwned>(
    mut value: Value,
    origin: &str,
    strict: bool,
) -> Result<(T, Value, Vec<String>), ConfigError> {
    let mut warnings = Vec::new();
    for _ in 0..MAX_REPAIRS {
        let error = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(typed) => return Ok((typed, value, warnings)),
            Err(error) => error,
        };
        if strict {
            return Err(field_error(error, origin));
        }
        match repair(&mut value, &error) {
            Some(Repair::Dropped(warning)) => warnings.push(format!("{origin}: {warning}")),
            Some(Repair::Coerced) => {}
            None => return Err(field_error(error, origin)),
        }
    }
    Err(ConfigError::Field {
        origin: origin.to_string(),
        field: None,
        message: format!("more than {MAX_REPAIRS} fields to repair"),
    })
}

/// The error serde reported, with the file (or environment) and the field's path.
pub(super) fn field_error(error: Error<serde_json::Error>, origin: &str) -> ConfigError {
    let path = error.path().to_string();
    ConfigError::Field {
        origin: origin.to_string(),
        field: (path != ".").then_some(path),
        message: error.into_inner().to_string(),
    }
}

enum Repair {
    Dropped(String),
    Coerced,
}

fn repair(value: &mut Value, error: &Error<serde_json::Error>) -> Option<Repair> {
    let message = error.inner().to_string();
    let segments: Vec<&Segment> = error.path().iter().collect();
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (field, expected) = rest.split_once('`')?;
        let object = object_holding(value, &segments, field)?;
        object.remove(field)?;
        let mut warning = format!("unknown field `{}` ignored", qualified(&segments, field));
        if let Some(known) = nearest(field, expected) {
            warning.push_str(&format!(" (did you mean `{known}`?)"));
        }
        return Some(Repair::Dropped(warning));
    }
    let target = at_path(value, &segments)?;
    let coerced = coerce(target, &message).filter(|coerced| coerced != target)?;
    *target = coerced;
    Some(Repair::Coerced)
}

/// The object that holds the unknown `field`: the path may end at the field or at its object.
fn object_holding<'a>(
    value: &'a mut Value,
    segments: &[&Segment],
    field: &str,
) -> Option<&'a mut serde_json::Map<String, Value>> {
    let ends_at_field = matches!(segments.last(), Some(Segment::Map { key }) if key == field);
    let parent = if ends_at_field {
        &segments[..segments.len() - 1]
    } else {
        segments
    };
    at_path(value, parent)?.as_object_mut()
}

/// `field` with the path of the object holding it (`cors_settings.allow_origin`).
fn qualified(segments: &[&Segment], field: &str) -> String {
    let mut path = String::new();
    for segment in segments {
        match segment {
            Segment::Map { key } if key == field => {}
            Segment::Map { key } if path.is_empty() => path.push_str(key),
            Segment::Map { key } => path.push_str(&format!(".{key}")),
            Segment::Seq { index } => path.push_str(&format!("[{index}]")),
            _ => {}
        }
    }
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

fn at_path<'a>(value: &'a mut Value, segments: &[&Segment]) -> Option<&'a mut Value> {
    segments
        .iter()
        .try_fold(value, |value, segment| match segment {
            Segment::Map { key } => value.get_mut(key.as_str()),
            Segment::Seq { index } => value.get_mut(*index),
            _ => None,
        })
}

/// The value pydantic's lax mode makes of `value` where serde expected something else, if any.
fn coerce(value: &Value, message: &str) -> Option<Value> {
    let expected = message.split_once(", expected ").map(|(_, e)| e)?;
    let wants_bool = expected == "a boolean";
    let wants_float = matches!(expected, "f64" | "f32");
    let wants_integer = expected
        .strip_prefix(['u', 'i'])
        .is_some_and(|bits| matches!(bits, "8" | "16" | "32" | "64" | "128" | "size"));
    match value {
        Value::String(text) if wants_bool => string_bool(text).map(Value::Bool),
        Value::Number(n) if wants_bool => match n.as_f64()? {
            0.0 => Some(Value::Bool(false)),
            1.0 => Some(Value::Bool(true)),
            _ => None,
        },
        Value::String(text) if wants_integer => {
            let text = text.trim();
            let n = text.parse::<i64>().map(Value::from);
            n.or_else(|_| text.parse::<u64>().map(Value::from)).ok()
        }
        Value::String(text) if wants_float => {
            let float: f64 = text.trim().parse().ok()?;
            serde_json::Number::from_f64(float).map(Value::Number)
        }
        Value::Number(n) if wants_integer && n.is_f64() => {
            let float = n.as_f64()?;
            (float.fract() == 0.0 && float.abs() < 9.0e15).then(|| Value::from(float as i64))
        }
        _ => None,
    }
}

/// A boolean as pydantic reads one from a string.
fn string_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "t" | "y" => Some(true),
        "false" | "0" | "no" | "off" | "f" | "n" => Some(false),
        _ => None,
    }
}

/// The known name nearest to `field` among those serde lists (`expected one of `a`, `b``).
fn nearest<'a>(field: &str, expected: &'a str) -> Option<&'a str> {
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|known| (strsim::damerau_levenshtein(field, known), known))
        .filter(|(distance, known)| *distance <= (known.len() / 3).max(2))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, known)| known)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ModelSettings, Settings};
    use serde_json::json;

    #[test]
    fn strings_become_numbers_and_booleans_and_unknown_fields_are_dropped() {
        let value = json!({
            "http_port": "32380", "debug": "true", "gzip_enabled": 0,
            "timeout_seconds": "0.5", "parallel_workers": 2.0, "htp_port": 1,
            "cors_settings": {"max_age": "60", "allow_origin": ["*"]}
        });
        let (settings, _, warnings) = relax::<Settings>(value, "settings.json", false).unwrap();
        assert_eq!(settings.http_port, 32380);
        assert!(settings.debug && !settings.gzip_enabled);
        assert_eq!(settings.timeout_seconds, 0.5);
        assert_eq!(settings.parallel_workers, 2);
        assert_eq!(settings.cors_settings.unwrap().max_age, 60);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        let warned = |text: &str| warnings.iter().any(|warning| warning.contains(text));
        assert!(
            warned("settings.json: unknown field `htp_port` ignored (did you mean `http_port`?)"),
            "{warnings:?}"
        );
        assert!(
            warned("`cors_settings.allow_origin` ignored (did you mean `allow_origins`?)"),
            "{warnings:?}"
        );
    }

    #[test]
    fn model_settings_are_relaxed_to_the_declared_tensors() {
        let value = json!({
            "name": "m", "max_batch_size": "8", "max_batch_time": "0.5", "colour": "red",
            "inputs": [{"name": "x", "datatype": "FP32", "shape": ["-1", 3], "shap": 1}]
        });
        let (settings, _, warnings) =
            relax::<ModelSettings>(value, "model-settings.json", false).unwrap();
        assert_eq!(settings.max_batch_size, 8);
        assert_eq!(settings.max_batch_time, 0.5);
        assert_eq!(settings.inputs[0].shape, vec![-1, 3]);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(!warnings[0].contains("did you mean"), "{warnings:?}");
        assert!(
            warnings[1].contains("(did you mean `shape`?)"),
            "{warnings:?}"
        );
    }

    #[test]
    fn what_cannot_be_coerced_fails_with_the_field_and_strict_refuses() {
        for (value, field) in [
            (json!({"http_port": "eighty"}), "`http_port`"),
            (json!({"http_port": "0.5"}), "`http_port`"),
            (json!({"debug": "maybe"}), "`debug`"),
            (json!({"server_name": 5}), "`server_name`"),
            (json!({"parallel_workers": 1.5}), "`parallel_workers`"),
        ] {
            let error = relax::<Settings>(value.clone(), "s.json", false).unwrap_err();
            let error = error.to_string();
            assert!(
                error.contains("s.json") && error.contains(field),
                "{value}: {error}"
            );
        }
        for value in [json!({"http_port": "1"}), json!({"htp_port": 1})] {
            assert!(relax::<Settings>(value, "s.json", true).is_err());
        }
    }
}

//! Triton's logging and trace extensions over this module's settings: the fields as the
//! extensions name them, parsed from REST's JSON and gRPC's messages alike.

use super::SettingsError;
use super::logging::Value;
use super::sampling::Update;

/// Reads a change of trace settings: each field with its values (`None`: JSON `null` or an
/// empty gRPC list, which clears it). Triton's `trace_file` and `log_frequency` belong to its
/// file mode: mlhost exports over OTLP only, and says so.
pub(crate) fn trace_update(
    fields: &[(String, Option<Vec<String>>)],
) -> Result<Update, SettingsError> {
    let mut update = Update::default();
    for (name, values) in fields {
        match name.as_str() {
            "trace_level" => update.on = Some(values.as_deref().map(trace_level).transpose()?),
            "trace_rate" => {
                let rate = values
                    .as_deref()
                    .map(|values| number(name, values, 1))
                    .transpose()?;
                update.rate = Some(rate.map(|rate| rate as f64));
            }
            "trace_count" => {
                update.count = Some(
                    values
                        .as_deref()
                        .map(|values| number(name, values, -1))
                        .transpose()?,
                );
            }
            "trace_file" | "log_frequency" | "trace_mode" | "url" => {
                return Err(SettingsError::Unsupported(format!(
                    "{name} cannot be changed: mlhost exports traces over OTLP/gRPC to \
                     tracing_server (trace_mode opentelemetry), not to a file"
                )));
            }
            other => {
                return Err(SettingsError::Invalid(format!(
                    "unknown trace setting '{}'; the settings are trace_level, trace_rate and \
                     trace_count",
                    crate::codec::quoted(other)
                )));
            }
        }
    }
    Ok(update)
}

/// `["TIMESTAMPS"]` → on, `["OFF"]` → off.
fn trace_level(values: &[String]) -> Result<bool, SettingsError> {
    match values {
        [level] if level == "OFF" => Ok(false),
        [level] if level == "TIMESTAMPS" => Ok(true),
        levels if levels.iter().any(|level| level == "TENSORS") => Err(SettingsError::Unsupported(
            "trace_level TENSORS is not supported: mlhost's traces hold the stages' timestamps \
             (spans), not tensors"
                .to_string(),
        )),
        levels if levels.len() > 1 && levels.iter().any(|level| level == "OFF") => Err(
            SettingsError::Invalid("Expect only one trace level 'OFF' is specified".to_string()),
        ),
        levels => Err(SettingsError::Invalid(format!(
            "trace_level must be [\"TIMESTAMPS\"] or [\"OFF\"], got {:?}",
            levels
                .iter()
                .map(|level| crate::codec::quoted(level).to_string())
                .collect::<Vec<_>>()
        ))),
    }
}

/// One integer of at least `min`, written as a string (as Triton's clients send it).
fn number(name: &str, values: &[String], min: i64) -> Result<i64, SettingsError> {
    let [value] = values else {
        return Err(SettingsError::Invalid(format!(
            "expect one value for '{name}'"
        )));
    };
    match value.trim().parse::<i64>() {
        Ok(number) if number >= min && number <= i64::from(i32::MAX) => Ok(number),
        _ => Err(SettingsError::Invalid(format!(
            "Unable to parse '{name}', got: '{}' (an integer from {min} to {})",
            crate::codec::quoted(value),
            i32::MAX
        ))),
    }
}

/// A REST trace setting's values: a string, a number or an array of strings; `null` clears.
pub(crate) fn json_trace_values(
    name: &str,
    value: &serde_json::Value,
) -> Result<Option<Vec<String>>, SettingsError> {
    use serde_json::Value as Json;
    let one = |value: &Json| match value {
        Json::String(text) => Some(text.clone()),
        Json::Number(number) => Some(number.to_string()),
        _ => None,
    };
    let values = match value {
        Json::Null => return Ok(None),
        Json::Array(values) => values.iter().map(one).collect::<Option<Vec<_>>>(),
        value => one(value).map(|value| vec![value]),
    };
    values.map(Some).ok_or_else(|| {
        SettingsError::Invalid(format!(
            "expect a string or an array of strings for '{name}'"
        ))
    })
}

/// A REST log setting's value: `null` leaves it as it is.
pub(crate) fn json_log_value(
    name: &str,
    value: &serde_json::Value,
) -> Result<Option<Value>, String> {
    use serde_json::Value as Json;
    Ok(match value {
        Json::Null => None,
        Json::Bool(on) => Some(Value::Bool(*on)),
        Json::String(text) => Some(Value::String(text.clone())),
        Json::Number(number) => match number
            .as_u64()
            .and_then(|number| u32::try_from(number).ok())
        {
            Some(number) => Some(Value::Uint(number)),
            None => {
                return Err(format!(
                    "expect unsigned integer for '{name}', got {number}"
                ));
            }
        },
        _ => return Err(format!("unexpected value for '{name}'")),
    })
}

/// A log setting's value as JSON.
pub(crate) fn log_value_json(value: Value) -> serde_json::Value {
    match value {
        Value::Bool(on) => on.into(),
        Value::Uint(number) => number.into(),
        Value::String(text) => text.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, values: &[&str]) -> (String, Option<Vec<String>>) {
        (
            name.to_string(),
            Some(values.iter().map(|value| value.to_string()).collect()),
        )
    }

    #[test]
    fn triton_s_trace_fields_are_read_and_the_rest_refused() {
        let update = trace_update(&[
            field("trace_level", &["TIMESTAMPS"]),
            field("trace_rate", &["10"]),
            ("trace_count".to_string(), None),
        ])
        .unwrap();
        assert_eq!(update.on, Some(Some(true)));
        assert_eq!(update.rate, Some(Some(10.0)));
        assert_eq!(update.count, Some(None));
        for (fields, expected) in [
            (
                field("trace_level", &["TENSORS"]),
                "TENSORS is not supported",
            ),
            (field("trace_file", &["/tmp/t"]), "not to a file"),
            (field("log_frequency", &["5"]), "not to a file"),
            (field("trace_rate", &["0"]), "Unable to parse 'trace_rate'"),
            (
                field("trace_count", &["-2"]),
                "Unable to parse 'trace_count'",
            ),
            (field("sample", &["1"]), "unknown trace setting 'sample'"),
        ] {
            let error = trace_update(&[fields]).unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
        }
    }
}

//! Reading a model's settings: `parameters` of model-settings.json.

use crate::{Error, ModelSettings};
use serde_json::{Map, Value};

impl ModelSettings {
    /// `parameters.extra` of model-settings.json: the runtime's own settings, as a JSON object
    /// (empty when model-settings.json has none).
    ///
    /// Fails with [`Error::InvalidModel`] when `extra` is not a JSON object: return the error
    /// from [`Model::load`](crate::Model::load) and the model is not loaded, with the reason.
    ///
    /// ```
    /// # use mlhost_guest::ModelSettings;
    /// // model-settings.json: {"parameters": {"extra": {"factor": 3}}, ...}
    /// # let settings = ModelSettings { name: "scale".into(), version: None, uri: "/model".into(),
    /// #     extra: r#"{"factor": 3}"#.into(), parameters: vec![] };
    /// let extra = settings.extra_settings()?;
    /// let factor = extra.get("factor").and_then(|v| v.as_f64()).unwrap_or(2.0);
    /// assert_eq!(factor, 3.0);
    /// # Ok::<(), mlhost_guest::Error>(())
    /// ```
    pub fn extra_settings(&self) -> Result<Map<String, Value>, Error> {
        // The host always sends JSON ("{}" when absent); empty text comes from hand-made
        // settings in tests.
        if self.extra.trim().is_empty() {
            return Ok(Map::new());
        }
        match serde_json::from_str(&self.extra) {
            Ok(Value::Object(object)) => Ok(object),
            Ok(other) => Err(Error::invalid_model(format!(
                "model '{}': parameters.extra must be a JSON object, got {}",
                self.name,
                json_kind(&other)
            ))),
            Err(error) => Err(Error::invalid_model(format!(
                "model '{}': parameters.extra is not valid JSON: {error}",
                self.name
            ))),
        }
    }

    /// The entry `name` of model-settings.json's `parameters`, or `None` when there is none.
    ///
    /// Every entry but `uri`, `version` and `extra` (which are [`ModelSettings::uri`],
    /// [`ModelSettings::version`] and [`ModelSettings::extra_settings`]) is here: `format`,
    /// `content_type`, and any other the file gives.
    ///
    /// ```
    /// # use mlhost_guest::{ModelSettings, serde_json::json};
    /// // model-settings.json: {"parameters": {"format": "json", "threshold": 0.5}}
    /// # let settings = ModelSettings { name: "m".into(), version: None, uri: "/model".into(),
    /// #     extra: "{}".into(), parameters: vec![("format".into(), r#""json""#.into()),
    /// #     ("threshold".into(), "0.5".into())] };
    /// assert_eq!(settings.parameter("format"), Some(json!("json")));
    /// assert_eq!(settings.parameter("threshold").and_then(|v| v.as_f64()), Some(0.5));
    /// assert_eq!(settings.parameter("missing"), None);
    /// ```
    pub fn parameter(&self, name: &str) -> Option<Value> {
        let (_, text) = self.parameters.iter().find(|(key, _)| key == name)?;
        // The host sends valid JSON; text that is not comes from hand-made settings.
        serde_json::from_str(text).ok()
    }
}

/// What kind of JSON value `value` is, for messages.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(extra: &str, parameters: &[(&str, &str)]) -> ModelSettings {
        ModelSettings {
            name: "m".to_string(),
            version: None,
            uri: "/model".to_string(),
            extra: extra.to_string(),
            parameters: parameters
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        }
    }

    #[test]
    fn extra_settings_are_a_json_object() {
        let extra = settings(r#"{"factor": 3, "labels": ["a", "b"]}"#, &[])
            .extra_settings()
            .unwrap();
        assert_eq!(extra.get("factor"), Some(&json!(3)));
        assert_eq!(extra.get("labels"), Some(&json!(["a", "b"])));
        assert!(settings("{}", &[]).extra_settings().unwrap().is_empty());
        assert!(settings("", &[]).extra_settings().unwrap().is_empty());
    }

    #[test]
    fn extra_settings_that_are_not_an_object_do_not_load() {
        for (extra, expected) in [
            (
                "[1, 2]",
                "model 'm': parameters.extra must be a JSON object, got an array",
            ),
            (
                "3",
                "model 'm': parameters.extra must be a JSON object, got a number",
            ),
            (
                "null",
                "model 'm': parameters.extra must be a JSON object, got null",
            ),
            (
                "{\"factor\":",
                "model 'm': parameters.extra is not valid JSON",
            ),
        ] {
            match settings(extra, &[]).extra_settings() {
                Err(Error::InvalidModel(message)) => {
                    assert!(message.starts_with(expected), "{extra}: {message}")
                }
                other => panic!("{extra}: {other:?}"),
            }
        }
    }

    #[test]
    fn parameters_are_parsed_json() {
        let settings = settings(
            "{}",
            &[
                ("format", r#""json""#),
                ("threshold", "0.25"),
                ("labels", r#"{"0": "cat"}"#),
                ("broken", "{"),
            ],
        );
        assert_eq!(settings.parameter("format"), Some(json!("json")));
        assert_eq!(settings.parameter("threshold"), Some(json!(0.25)));
        assert_eq!(settings.parameter("labels"), Some(json!({"0": "cat"})));
        assert_eq!(settings.parameter("broken"), None);
        assert_eq!(settings.parameter("uri"), None);
    }
}

//! Parameter objects of requests, tensors and responses: decoded from JSON objects, encoded as
//! them.

use super::DecodeError;
use crate::codec::{HEADERS_PARAMETER, ParameterValue, Parameters};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// A `parameters` object as it arrives in JSON (absent when the field is).
pub(super) type ParametersIn = Option<serde_json::Map<String, serde_json::Value>>;

/// Decodes a `parameters` object: strings, numbers and booleans become [`ParameterValue`]s,
/// `null`s are dropped, and anything else is refused (but for a `headers` object).
pub(super) fn decode_parameters(parameters: ParametersIn) -> Result<Parameters, DecodeError> {
    let mut decoded = Parameters::new();
    for (name, value) in parameters.unwrap_or_default() {
        let value = match value {
            serde_json::Value::Null => continue,
            serde_json::Value::Bool(value) => ParameterValue::Bool(value),
            serde_json::Value::String(value) => ParameterValue::String(value),
            serde_json::Value::Number(number) => {
                if let Some(value) = number.as_i64() {
                    ParameterValue::Int64(value)
                } else if let Some(value) = number.as_u64() {
                    ParameterValue::Uint64(value)
                } else {
                    ParameterValue::Double(number.as_f64().unwrap_or(f64::NAN))
                }
            }
            // MLServer's custom headers: an object, carried as its JSON text.
            object @ serde_json::Value::Object(_) if name == HEADERS_PARAMETER => {
                ParameterValue::String(object.to_string())
            }
            serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
                return Err(DecodeError::Parameter(name));
            }
        };
        decoded.push((name, value));
    }
    Ok(decoded)
}

/// Parameters as a JSON object (with a few more of the server's own, if any).
pub(crate) struct ParametersJson<'a>(
    &'a [(String, ParameterValue)],
    &'a [(String, ParameterValue)],
);

impl<'a> ParametersJson<'a> {
    /// The parameters as they are.
    pub(crate) fn new(parameters: &'a Parameters) -> Self {
        ParametersJson(parameters, &[])
    }

    /// The parameters followed by `extra`.
    pub(crate) fn with_extra(
        parameters: &'a Parameters,
        extra: &'a [(String, ParameterValue)],
    ) -> Self {
        ParametersJson(parameters, extra)
    }

    /// Whether there are no parameters (the field is then left out).
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty() && self.1.is_empty()
    }
}

impl Serialize for ParametersJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len() + self.1.len()))?;
        for (name, value) in self.0.iter().chain(self.1) {
            match value {
                ParameterValue::Bool(value) => map.serialize_entry(name, value)?,
                ParameterValue::Int64(value) => map.serialize_entry(name, value)?,
                ParameterValue::Uint64(value) => map.serialize_entry(name, value)?,
                ParameterValue::Double(value) => map.serialize_entry(name, value)?,
                ParameterValue::String(value) => map.serialize_entry(name, value)?,
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::super::DecodeError;
    use super::super::testing::decode;
    use crate::codec::ParameterValue;

    #[test]
    fn decodes_parameters_and_outputs() {
        let request = decode(
            r#"{"id":"7","parameters":{"a":1,"b":"s","c":true,"d":0.5,"e":null},
                "inputs":[],"outputs":[{"name":"y","parameters":{"binary_data":false}}]}"#,
        )
        .unwrap();
        assert_eq!(request.id.as_deref(), Some("7"));
        assert_eq!(
            request.parameters,
            vec![
                ("a".into(), ParameterValue::Int64(1)),
                ("b".into(), ParameterValue::String("s".into())),
                ("c".into(), ParameterValue::Bool(true)),
                ("d".into(), ParameterValue::Double(0.5)),
            ]
        );
        assert_eq!(request.outputs[0].name, "y");
        assert!(matches!(
            decode(r#"{"inputs":[],"parameters":{"h":{"x":1}}}"#),
            Err(DecodeError::Parameter(_))
        ));
    }
}

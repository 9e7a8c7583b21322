//! How headers reach a runtime and come back from it: the `headers` parameter of its request
//! and of its response (MLServer's custom headers), the text of a JSON object of strings, as
//! parameters hold scalars only.

use crate::codec::{ParameterValue, Parameters};

pub(crate) use crate::codec::HEADERS_PARAMETER;

/// Headers, as (name, value) pairs.
pub(crate) type Headers = Vec<(String, String)>;

/// The runtime's view of request headers: the `headers` parameter, as JSON text (an object,
/// names in order, a later value of a name in place of an earlier one), written straight from
/// the pairs.
pub(crate) fn to_parameter(headers: &Headers) -> (String, ParameterValue) {
    let mut sorted: Vec<(&str, &str)> = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    // Stable: of the pairs of a name, the last given stays last and wins.
    sorted.sort_by_key(|(name, _)| *name);
    sorted.dedup_by(|later, earlier| {
        let same = later.0 == earlier.0;
        if same {
            earlier.1 = later.1;
        }
        same
    });
    let text = serde_json::to_string(&JsonObject(&sorted)).unwrap_or_else(|_| "{}".to_string());
    (HEADERS_PARAMETER.to_string(), ParameterValue::String(text))
}

/// Pairs serialized as a JSON object.
struct JsonObject<'a>(&'a [(&'a str, &'a str)]);

impl serde::Serialize for JsonObject<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().copied())
    }
}

/// Removes the `headers` parameter and reads it: (name, value) pairs, a value that is not a
/// JSON string given as its JSON text. `None` when there is none, or it is not a JSON object.
pub(crate) fn take_parameter(parameters: &mut Parameters) -> Option<Headers> {
    let index = parameters
        .iter()
        .position(|(name, _)| name == HEADERS_PARAMETER)?;
    let ParameterValue::String(text) = parameters.remove(index).1 else {
        return None;
    };
    let serde_json::Value::Object(object) = serde_json::from_str(&text).ok()? else {
        return None;
    };
    Some(
        object
            .into_iter()
            .map(|(name, value)| match value {
                serde_json::Value::String(value) => (name, value),
                other => (name, other.to_string()),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_cross_as_json_text_both_ways() {
        let headers = vec![
            ("x-b".to_string(), "2".to_string()),
            ("x-a".into(), "1".into()),
        ];
        let mut parameters = vec![to_parameter(&headers)];
        assert_eq!(
            parameters[0].1,
            ParameterValue::String(r#"{"x-a":"1","x-b":"2"}"#.into())
        );
        let repeated = vec![
            ("x-b".to_string(), "1".to_string()),
            ("x-a".into(), "q\"uote".into()),
            ("x-b".into(), "2".into()),
        ];
        assert_eq!(
            to_parameter(&repeated).1,
            ParameterValue::String(r#"{"x-a":"q\"uote","x-b":"2"}"#.into())
        );
        let mut back = take_parameter(&mut parameters).unwrap();
        back.sort();
        assert_eq!(
            back,
            [("x-a".into(), "1".into()), ("x-b".into(), "2".into())]
        );
        assert!(parameters.is_empty());

        let mut odd = vec![(
            HEADERS_PARAMETER.into(),
            ParameterValue::String(r#"{"n":3}"#.into()),
        )];
        assert_eq!(
            take_parameter(&mut odd),
            Some(vec![("n".into(), "3".into())])
        );
        let mut not_object = vec![(
            HEADERS_PARAMETER.into(),
            ParameterValue::String("[1]".into()),
        )];
        assert_eq!(take_parameter(&mut not_object), None);
        assert!(not_object.is_empty());
    }
}

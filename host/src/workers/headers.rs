//! How headers reach a runtime and come back from it: the `headers` parameter of its request
//! and of its response (MLServer's custom headers), the text of a JSON object of strings, as
//! parameters hold scalars only.

use crate::codec::{ParameterValue, Parameters};

pub(crate) use crate::codec::HEADERS_PARAMETER;

/// Headers, as (name, value) pairs.
pub(crate) type Headers = Vec<(String, String)>;

/// A request's headers as its front end received them: the transport's (moved, not copied),
/// over the pairs of the body's `headers` parameter. They become pairs only for what reads them
/// (a runtime that may, the response cache's key), not on every request.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RequestHeaders {
    body: Headers,
    transport: http::HeaderMap,
}

impl RequestHeaders {
    /// The `body`'s pairs with the `transport`'s headers over them.
    pub(crate) fn new(body: Headers, transport: http::HeaderMap) -> Self {
        RequestHeaders { body, transport }
    }

    /// Whether there is no header at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.body.is_empty() && self.transport.is_empty()
    }

    /// The headers as pairs: the body's, each replaced by the transport's value of its name,
    /// then the transport's other headers (a value that is not visible ASCII is left out).
    pub(crate) fn pairs(&self) -> Headers {
        let mut joined = self.body.clone();
        let transport = self
            .transport
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)));
        for (name, value) in transport {
            match joined.iter_mut().find(|(known, _)| known == name) {
                Some(slot) => slot.1 = value.to_string(),
                None => joined.push((name.to_string(), value.to_string())),
            }
        }
        joined
    }
}

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

//! Shows responses: as the protocol's JSON for scripts, or one line per output for people.

use crate::codec::InferenceResponse;
use crate::codec::json::{ParametersJson, encode_response};

/// The response as the protocol's JSON body, on one line.
pub fn response_json(response: &InferenceResponse) -> String {
    let encoded = encode_response(response, |_| false).expect("a decoded response encodes");
    String::from_utf8(encoded.body).expect("JSON is UTF-8")
}

/// The response for people: a heading, then `NAME DATATYPE [SHAPE] = DATA` per output, the data
/// nested along the shape.
pub fn response_text(response: &InferenceResponse) -> String {
    let json: serde_json::Value =
        serde_json::from_str(&response_json(response)).expect("our own JSON parses");
    let mut text = format!("model: {}", response.model_name);
    if let Some(version) = &response.model_version {
        text.push_str(&format!(" (version {version})"));
    }
    if let Some(id) = &response.id {
        text.push_str(&format!(", id: {id}"));
    }
    text.push('\n');
    if !response.parameters.is_empty() {
        let parameters = serde_json::to_string(&ParametersJson::new(&response.parameters))
            .expect("parameters encode");
        text.push_str(&format!("parameters: {parameters}\n"));
    }
    for (output, encoded) in response
        .outputs
        .iter()
        .zip(json["outputs"].as_array().into_iter().flatten())
    {
        let data = encoded["data"].as_array().cloned().unwrap_or_default();
        let nested = nest(&data, &output.shape);
        text.push_str(&format!(
            "{} {} {:?} = {}\n",
            output.name,
            output.datatype,
            output.shape,
            serde_json::to_string(&nested).expect("values encode")
        ));
    }
    text
}

/// Flat row-major values → nested arrays following `shape`.
fn nest(values: &[serde_json::Value], shape: &[u64]) -> serde_json::Value {
    match shape {
        [] | [_] => serde_json::Value::Array(values.to_vec()),
        [_, inner @ ..] => {
            let step = inner.iter().product::<u64>().max(1) as usize;
            serde_json::Value::Array(
                values
                    .chunks(step)
                    .map(|chunk| nest(chunk, inner))
                    .collect(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::json::decode_request;

    #[test]
    fn outputs_print_nested_along_their_shape() {
        let request = decode_request(
            br#"{"inputs":[{"name":"y","datatype":"FP64","shape":[2,2],"data":[2,4,6,8]}]}"#,
            &[],
            100,
        )
        .unwrap();
        let response = InferenceResponse {
            model_name: "scale".into(),
            model_version: None,
            id: Some("7".into()),
            outputs: request.inputs,
            parameters: vec![],
        };
        assert_eq!(
            response_text(&response),
            "model: scale, id: 7\ny FP64 [2, 2] = [[2.0,4.0],[6.0,8.0]]\n"
        );
    }
}

//! Shows responses: as the protocol's JSON for scripts, or one line per output for people.

use crate::codec::json::{ParametersJson, encode_response};
use crate::codec::{DataType, InferenceResponse, ParameterValue, Tensor};

/// The response as the protocol's JSON body, on one line. JSON carries text only: a BYTES
/// output with an element that is not UTF-8 is written in base64, all of it, with the
/// `content_type` parameter `base64` (MLServer's codec for such data).
pub(crate) fn response_json(response: &InferenceResponse) -> String {
    let needs_base64 = |output: &Tensor| {
        output.datatype == DataType::Bytes
            && output
                .bytes_elements()
                .any(|element| element.is_ok_and(|bytes| std::str::from_utf8(bytes).is_err()))
    };
    let encoded = if response.outputs.iter().any(needs_base64) {
        let mut printable = response.clone();
        for output in printable
            .outputs
            .iter_mut()
            .filter(|output| needs_base64(output))
        {
            *output = base64_elements(output);
        }
        encode_response(&printable, |_| false)
    } else {
        encode_response(response, |_| false)
    };
    let body = encoded.expect("every output is numbers or text").body;
    String::from_utf8(body).expect("JSON is UTF-8")
}

/// A BYTES tensor with each element replaced by its base64 text.
fn base64_elements(tensor: &Tensor) -> Tensor {
    use base64::Engine;
    let mut data = Vec::with_capacity(tensor.data.len() * 4 / 3 + 8);
    // Decoded tensors were validated: every element is there.
    for element in tensor.bytes_elements().map_while(Result::ok) {
        let text = base64::engine::general_purpose::STANDARD.encode(element);
        data.extend_from_slice(&(text.len() as u32).to_le_bytes());
        data.extend_from_slice(text.as_bytes());
    }
    let mut parameters: Vec<_> = tensor
        .parameters
        .iter()
        .filter(|(name, _)| name != "content_type")
        .cloned()
        .collect();
    parameters.push((
        "content_type".into(),
        ParameterValue::String("base64".into()),
    ));
    Tensor {
        name: tensor.name.clone(),
        datatype: DataType::Bytes,
        shape: tensor.shape.clone(),
        data,
        parameters,
    }
}

/// The response for people: a heading, then `NAME DATATYPE [SHAPE] = DATA` per output, the data
/// nested along the shape.
pub(crate) fn response_text(response: &InferenceResponse) -> String {
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
            let step = inner
                .iter()
                .fold(1u64, |product, &dim| product.saturating_mul(dim))
                .clamp(1, usize::MAX as u64) as usize;
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

    #[test]
    fn bytes_that_are_not_text_print_as_base64() {
        let response = InferenceResponse {
            model_name: "m".into(),
            model_version: None,
            id: None,
            outputs: vec![Tensor {
                name: "b".into(),
                datatype: DataType::Bytes,
                shape: vec![2],
                data: b"\x02\0\0\0hi\x01\0\0\0\xff".to_vec(),
                parameters: vec![],
            }],
            parameters: vec![],
        };
        let json: serde_json::Value = serde_json::from_str(&response_json(&response)).unwrap();
        assert_eq!(
            json["outputs"][0]["data"],
            serde_json::json!(["aGk=", "/w=="])
        );
        assert_eq!(json["outputs"][0]["parameters"]["content_type"], "base64");
        assert!(response_text(&response).contains(r#"b BYTES [2] = ["aGk=","/w=="]"#));
    }
}

//! The request envelope: decoded by the server from a body (JSON and the binary part), encoded
//! by clients such as `mlhost infer`.

use super::parameters::{ParametersIn, ParametersJson, decode_parameters};
use super::tensor::{InputJson, TensorJson, decode_tensors};
use super::{DecodeError, EncodeError, EncodedBody};
use crate::codec::{InferenceRequest, ParameterValue, RequestedOutput, quoted, shared_memory};
use serde::ser::{self, SerializeMap};
use serde::{Deserialize, Serialize, Serializer};

#[derive(Deserialize)]
struct RequestJson<'a> {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    parameters: ParametersIn,
    #[serde(borrow)]
    inputs: Vec<InputJson<'a>>,
    #[serde(default)]
    outputs: Option<Vec<RequestedOutputJson>>,
}

#[derive(Deserialize)]
struct RequestedOutputJson {
    name: String,
    #[serde(default)]
    parameters: ParametersIn,
}

/// Decodes a JSON inference request, checking every tensor against its shape and datatype, and
/// its element count against `max_elements`.
///
/// `binary` is what follows the JSON in a body of the binary tensor data extension (empty
/// otherwise): inputs with a `binary_data_size` parameter take their data from it, in order.
pub(crate) fn decode_request(
    json: &[u8],
    binary: &[u8],
    max_elements: u64,
) -> Result<InferenceRequest, DecodeError> {
    let request: RequestJson<'_> = serde_json::from_slice(json)?;
    let inputs = decode_tensors(request.inputs, binary, max_elements)?;
    let outputs = request
        .outputs
        .unwrap_or_default()
        .into_iter()
        .map(|output| {
            let names = output
                .parameters
                .iter()
                .flat_map(|parameters| parameters.keys());
            if shared_memory::refers_to_region(names.map(String::as_str)) {
                return Err(DecodeError::SharedMemory(format!(
                    "output '{}'",
                    quoted(&output.name)
                )));
            }
            Ok(RequestedOutput {
                name: output.name,
                parameters: decode_parameters(output.parameters)?,
            })
        })
        .collect::<Result<Vec<_>, DecodeError>>()?;
    Ok(InferenceRequest {
        id: request.id,
        inputs,
        outputs,
        parameters: decode_parameters(request.parameters)?,
    })
}

/// Encodes an inference request as the protocol's JSON (for clients such as `mlhost infer`);
/// with `binary`, input data goes after the JSON as raw bytes and outputs are asked for as
/// binary (the binary tensor data extension).
pub(crate) fn encode_request(
    request: &InferenceRequest,
    binary: bool,
) -> Result<EncodedBody, EncodeError> {
    let json = serde_json::to_vec(&RequestOut(request, binary))?;
    let data = binary.then(|| {
        request
            .inputs
            .iter()
            .map(|input| input.data.as_slice())
            .collect()
    });
    Ok(EncodedBody::new(json, data))
}

/// A request to send, and whether its data goes as binary.
struct RequestOut<'a>(&'a InferenceRequest, bool);

impl Serialize for RequestOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let RequestOut(request, binary) = *self;
        let mut map = serializer.serialize_map(None)?;
        if let Some(id) = &request.id {
            map.serialize_entry("id", id)?;
        }
        // With binary data, every output comes back binary (the extension's request-level
        // `binary_data_output`), not only those asked for by name.
        let binary_outputs = [("binary_data_output".to_string(), ParameterValue::Bool(true))];
        let parameters = ParametersJson::with_extra(
            &request.parameters,
            if binary { &binary_outputs } else { &[] },
        );
        if !parameters.is_empty() {
            map.serialize_entry("parameters", &parameters)?;
        }
        let inputs: Vec<_> = request
            .inputs
            .iter()
            .map(|input| TensorJson(input, binary))
            .collect();
        map.serialize_entry("inputs", &inputs)?;
        if !request.outputs.is_empty() {
            let binary_data = [("binary_data".to_string(), ParameterValue::Bool(true))];
            let extra: &[(String, ParameterValue)] = if binary { &binary_data } else { &[] };
            let outputs: Vec<_> = request
                .outputs
                .iter()
                .map(|output| {
                    let mut entry = serde_json::Map::new();
                    entry.insert("name".into(), output.name.clone().into());
                    let parameters = ParametersJson::with_extra(&output.parameters, extra);
                    if !parameters.is_empty() {
                        entry.insert(
                            "parameters".into(),
                            serde_json::to_value(&parameters).map_err(ser::Error::custom)?,
                        );
                    }
                    Ok(serde_json::Value::Object(entry))
                })
                .collect::<Result<_, S::Error>>()?;
            map.serialize_entry("outputs", &outputs)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::super::DecodeError;
    use super::super::testing::decode;
    use super::*;

    #[test]
    fn rejects_malformed_envelopes() {
        for body in [
            "",
            "{",
            "[]",
            r#"{"inputs":{}}"#,
            r#"{"inputs":[{"name":"x"}]}"#,
        ] {
            assert!(
                matches!(decode(body), Err(DecodeError::Syntax(_))),
                "{body}"
            );
        }
    }

    #[test]
    fn a_request_encoded_for_sending_decodes_to_itself_json_or_binary() {
        let request = decode(
            r#"{"id":"r1","parameters":{"p":1},"inputs":[
                {"name":"x","datatype":"FP64","shape":[2],"data":[1.5,-2]},
                {"name":"s","datatype":"BYTES","shape":[1],"data":["hi"]}],
                "outputs":[{"name":"y"}]}"#,
        )
        .unwrap();
        let plain = encode_request(&request, false).unwrap();
        assert_eq!(plain.json_length, None);
        assert_eq!(decode_request(&plain.body, &[], 1 << 20).unwrap(), request);
        let binary = encode_request(&request, true).unwrap();
        let split = binary.json_length.unwrap();
        let (json, data) = binary.body.split_at(split);
        let text = std::str::from_utf8(json).unwrap();
        assert!(text.contains(r#""binary_data":true"#), "{text}");
        assert!(text.contains(r#""binary_data_output":true"#), "{text}");
        let mut decoded = decode_request(json, data, 1 << 20).unwrap();
        decoded.outputs[0].parameters.clear();
        decoded
            .parameters
            .retain(|(name, _)| name != "binary_data_output");
        assert_eq!(decoded, request);
    }
}

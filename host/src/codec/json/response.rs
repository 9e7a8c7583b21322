//! The response envelope: encoded by the server (outputs inline or as binary data after the
//! JSON), decoded by clients.

use super::parameters::{ParametersIn, ParametersJson, decode_parameters};
use super::tensor::{InputJson, TensorJson, decode_tensors};
use super::{DecodeError, EncodeError, EncodedBody};
use crate::codec::{InferenceResponse, Tensor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

/// Encodes an inference response as the protocol's JSON; the outputs for which `binary` says
/// so go after the JSON as raw bytes (the binary tensor data extension).
pub(crate) fn encode_response(
    response: &InferenceResponse,
    binary: impl Fn(&Tensor) -> bool,
) -> Result<EncodedBody, EncodeError> {
    let binary: Vec<bool> = response.outputs.iter().map(binary).collect();
    let json = serde_json::to_vec(&ResponseJson(response, &binary))?;
    let data = binary.contains(&true).then(|| {
        response
            .outputs
            .iter()
            .zip(&binary)
            .filter(|(_, binary)| **binary)
            .map(|(output, _)| output.data.as_slice())
            .collect()
    });
    Ok(EncodedBody::new(json, data))
}

/// A response as it arrives at a client.
#[derive(Deserialize)]
struct ResponseIn<'a> {
    model_name: String,
    #[serde(default)]
    model_version: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    parameters: ParametersIn,
    #[serde(borrow, default)]
    outputs: Vec<InputJson<'a>>,
}

/// Decodes a JSON inference response (for clients), checking each output as the server checks
/// inputs; `binary` is what follows the JSON when outputs came as binary data.
pub(crate) fn decode_response(
    json: &[u8],
    binary: &[u8],
    max_elements: u64,
) -> Result<InferenceResponse, DecodeError> {
    let response: ResponseIn<'_> = serde_json::from_slice(json)?;
    let outputs = decode_tensors(response.outputs, binary, max_elements)?;
    Ok(InferenceResponse {
        model_name: response.model_name,
        model_version: response.model_version,
        id: response.id,
        outputs,
        parameters: decode_parameters(response.parameters)?,
    })
}

/// A response and, per output, whether its data goes as binary.
struct ResponseJson<'a>(&'a InferenceResponse, &'a [bool]);

impl Serialize for ResponseJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let response = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("model_name", &response.model_name)?;
        if let Some(version) = &response.model_version {
            map.serialize_entry("model_version", version)?;
        }
        if let Some(id) = &response.id {
            map.serialize_entry("id", id)?;
        }
        if !response.parameters.is_empty() {
            map.serialize_entry("parameters", &ParametersJson::new(&response.parameters))?;
        }
        let outputs: Vec<_> = response
            .outputs
            .iter()
            .zip(self.1)
            .map(|(output, &binary)| TensorJson(output, binary))
            .collect();
        map.serialize_entry("outputs", &outputs)?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{decode, input};
    use super::*;
    use crate::codec::{DataType, ParameterValue};

    #[test]
    fn encodes_outputs_as_flat_arrays() {
        let response = InferenceResponse {
            model_name: "m".into(),
            model_version: Some("1".into()),
            id: Some("r".into()),
            outputs: vec![
                Tensor {
                    name: "p".into(),
                    datatype: DataType::Fp64,
                    shape: vec![2, 1],
                    data: [0.5f64.to_le_bytes(), 2f64.to_le_bytes()].concat(),
                    parameters: vec![],
                },
                Tensor {
                    name: "s".into(),
                    datatype: DataType::Bytes,
                    shape: vec![1],
                    data: vec![2, 0, 0, 0, b'h', b'i'],
                    parameters: vec![("content_type".into(), ParameterValue::String("str".into()))],
                },
            ],
            parameters: vec![],
        };
        let json: serde_json::Value =
            serde_json::from_slice(&encode_response(&response, |_| false).unwrap().body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "model_name": "m", "model_version": "1", "id": "r",
                "outputs": [
                    {"name": "p", "datatype": "FP64", "shape": [2, 1], "data": [0.5, 2.0]},
                    {"name": "s", "datatype": "BYTES", "shape": [1],
                     "parameters": {"content_type": "str"}, "data": ["hi"]}
                ]
            })
        );
    }

    #[test]
    fn a_response_decodes_from_json_and_binary_outputs() {
        let response = InferenceResponse {
            model_name: "m".into(),
            model_version: Some("2".into()),
            id: Some("r1".into()),
            outputs: decode(&input("INT32", "[3]", "[1,2,3]")).unwrap().inputs,
            parameters: vec![("k".into(), ParameterValue::String("v".into()))],
        };
        for binary in [false, true] {
            let encoded = encode_response(&response, |_| binary).unwrap();
            let split = encoded.json_length.unwrap_or(encoded.body.len());
            let (json, data) = encoded.body.split_at(split);
            assert_eq!(decode_response(json, data, 1 << 20).unwrap(), response);
        }
    }
}

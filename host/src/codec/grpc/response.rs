//! Responses: encoded by the server (raw or typed contents), decoded by clients.

use super::DecodeError;
use super::contents::bytes_to_typed;
use super::parameters::{decode_parameters, encode_parameters};
use super::pb;
use super::tensors::decode_tensors;
use crate::codec::{DataType, InferenceResponse};

/// Encodes a response: raw contents when the request used them or an output has no typed field
/// (FP16, BF16), typed contents otherwise.
pub(crate) fn encode_response(response: InferenceResponse, raw: bool) -> pb::ModelInferResponse {
    let raw = raw
        || response
            .outputs
            .iter()
            .any(|output| matches!(output.datatype, DataType::Fp16 | DataType::Bf16));
    let mut raw_output_contents = Vec::new();
    let outputs = response
        .outputs
        .into_iter()
        .map(|tensor| {
            let contents = if raw {
                None
            } else {
                Some(bytes_to_typed(&tensor))
            };
            let output = pb::model_infer_response::InferOutputTensor {
                name: tensor.name,
                datatype: tensor.datatype.as_str().to_string(),
                shape: tensor.shape.iter().map(|&dim| dim as i64).collect(),
                parameters: encode_parameters(tensor.parameters),
                contents,
            };
            if raw {
                raw_output_contents.push(tensor.data);
            }
            output
        })
        .collect();
    pb::ModelInferResponse {
        model_name: response.model_name,
        model_version: response.model_version.unwrap_or_default(),
        id: response.id.unwrap_or_default(),
        parameters: encode_parameters(response.parameters),
        outputs,
        raw_output_contents,
    }
}

/// Decodes a response (for clients), raw or typed, checking each output as inputs are checked.
pub(crate) fn decode_response(
    response: pb::ModelInferResponse,
    max_elements: u64,
) -> Result<InferenceResponse, DecodeError> {
    let outputs = response
        .outputs
        .into_iter()
        .map(|output| pb::model_infer_request::InferInputTensor {
            name: output.name,
            datatype: output.datatype,
            shape: output.shape,
            parameters: output.parameters,
            contents: output.contents,
        })
        .collect();
    let outputs = decode_tensors(outputs, response.raw_output_contents, max_elements)?;
    Ok(InferenceResponse {
        model_name: response.model_name,
        model_version: (!response.model_version.is_empty()).then_some(response.model_version),
        id: (!response.id.is_empty()).then_some(response.id),
        outputs,
        parameters: decode_parameters(response.parameters)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Tensor;

    #[test]
    fn responses_are_raw_when_asked_or_needed() {
        let tensor = |datatype, data: Vec<u8>| Tensor {
            name: "y".into(),
            datatype,
            shape: vec![1],
            data,
            parameters: vec![],
        };
        let response = |outputs| InferenceResponse {
            model_name: "m".into(),
            model_version: None,
            id: None,
            outputs,
            parameters: vec![],
        };
        let typed = encode_response(
            response(vec![tensor(DataType::Fp64, 2.5f64.to_le_bytes().to_vec())]),
            false,
        );
        assert_eq!(
            typed.outputs[0].contents.as_ref().unwrap().fp64_contents,
            vec![2.5]
        );
        assert!(typed.raw_output_contents.is_empty());
        let raw = encode_response(
            response(vec![tensor(DataType::Fp64, 2.5f64.to_le_bytes().to_vec())]),
            true,
        );
        assert_eq!(raw.raw_output_contents, vec![2.5f64.to_le_bytes().to_vec()]);
        let half = encode_response(response(vec![tensor(DataType::Fp16, vec![0, 60])]), false);
        assert_eq!(half.raw_output_contents.len(), 1);
    }
}

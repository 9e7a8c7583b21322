//! Requests: decoded by the server from a `ModelInferRequest`, encoded by clients such as
//! `mlhost infer`.

use super::DecodeError;
use super::parameters::{decode_parameters, encode_parameters};
use super::pb;
use super::tensors::decode_tensors;
use crate::codec::{InferenceRequest, RequestedOutput, quoted, shared_memory};

/// Decodes a `ModelInferRequest`; returns the request and whether it used raw contents (the
/// response then answers in raw contents too, as tritonclient expects).
pub(crate) fn decode_request(
    request: pb::ModelInferRequest,
    max_elements: u64,
) -> Result<(InferenceRequest, bool), DecodeError> {
    let raw = !request.raw_input_contents.is_empty();
    refuse_shared_memory(&request)?;
    let inputs = decode_tensors(request.inputs, request.raw_input_contents, max_elements)?;
    let outputs = request
        .outputs
        .into_iter()
        .map(|output| {
            Ok(RequestedOutput {
                name: output.name,
                parameters: decode_parameters(output.parameters)?,
            })
        })
        .collect::<Result<Vec<_>, DecodeError>>()?;
    Ok((
        InferenceRequest {
            id: (!request.id.is_empty()).then_some(request.id),
            inputs,
            outputs,
            parameters: decode_parameters(request.parameters)?,
        },
        raw,
    ))
}

/// Refuses a request whose inputs or outputs name a shared-memory region (before their missing
/// data is reported instead).
fn refuse_shared_memory(request: &pb::ModelInferRequest) -> Result<(), DecodeError> {
    let refers = |parameters: &std::collections::HashMap<String, pb::InferParameter>| {
        shared_memory::refers_to_region(parameters.keys().map(String::as_str))
    };
    let tensor = |kind: &str, name: &str| format!("{kind} '{}'", quoted(name));
    if let Some(input) = request
        .inputs
        .iter()
        .find(|input| refers(&input.parameters))
    {
        return Err(DecodeError::SharedMemory(tensor("input", &input.name)));
    }
    if let Some(output) = request
        .outputs
        .iter()
        .find(|output| refers(&output.parameters))
    {
        return Err(DecodeError::SharedMemory(tensor("output", &output.name)));
    }
    Ok(())
}

/// Encodes a request for sending (clients such as `mlhost infer`): data as raw contents, as
/// tritonclient sends it.
pub(crate) fn encode_request(
    request: InferenceRequest,
    model_name: &str,
    model_version: Option<&str>,
) -> pb::ModelInferRequest {
    let mut raw_input_contents = Vec::with_capacity(request.inputs.len());
    let inputs = request
        .inputs
        .into_iter()
        .map(|tensor| {
            raw_input_contents.push(tensor.data);
            pb::model_infer_request::InferInputTensor {
                name: tensor.name,
                datatype: tensor.datatype.as_str().to_string(),
                shape: tensor.shape.iter().map(|&dim| dim as i64).collect(),
                parameters: encode_parameters(tensor.parameters),
                contents: None,
            }
        })
        .collect();
    let outputs = request
        .outputs
        .into_iter()
        .map(
            |output| pb::model_infer_request::InferRequestedOutputTensor {
                name: output.name,
                parameters: encode_parameters(output.parameters),
            },
        )
        .collect();
    pb::ModelInferRequest {
        model_name: model_name.to_string(),
        model_version: model_version.unwrap_or_default().to_string(),
        id: request.id.unwrap_or_default(),
        parameters: encode_parameters(request.parameters),
        inputs,
        outputs,
        raw_input_contents,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn input(
        datatype: &str,
        shape: Vec<i64>,
        contents: Option<pb::InferTensorContents>,
    ) -> pb::model_infer_request::InferInputTensor {
        pb::model_infer_request::InferInputTensor {
            name: "x".into(),
            datatype: datatype.into(),
            shape,
            parameters: HashMap::new(),
            contents,
        }
    }

    #[test]
    fn typed_and_raw_contents_decode_alike() {
        let typed = pb::ModelInferRequest {
            inputs: vec![input(
                "INT16",
                vec![2],
                Some(pb::InferTensorContents {
                    int_contents: vec![-1, 300],
                    ..Default::default()
                }),
            )],
            ..Default::default()
        };
        let raw = pb::ModelInferRequest {
            inputs: vec![input("INT16", vec![2], None)],
            raw_input_contents: vec![[(-1i16).to_le_bytes(), 300i16.to_le_bytes()].concat()],
            ..Default::default()
        };
        let (typed, typed_raw) = decode_request(typed, 1 << 20).unwrap();
        let (raw, raw_raw) = decode_request(raw, 1 << 20).unwrap();
        assert_eq!(typed.inputs, raw.inputs);
        assert!(!typed_raw && raw_raw);
    }

    #[test]
    fn bad_contents_are_refused() {
        let cases = [
            (
                input(
                    "INT8",
                    vec![1],
                    Some(pb::InferTensorContents {
                        int_contents: vec![200],
                        ..Default::default()
                    }),
                ),
                vec![],
                "out of range for INT8",
            ),
            (
                input("FP16", vec![1], Some(pb::InferTensorContents::default())),
                vec![],
                "raw_input_contents",
            ),
            (
                input(
                    "FP32",
                    vec![2],
                    Some(pb::InferTensorContents {
                        fp32_contents: vec![1.0],
                        ..Default::default()
                    }),
                ),
                vec![],
                "holds 2 elements but 1",
            ),
            (
                input("FP32", vec![1], None),
                vec![vec![0u8; 3]],
                "3 bytes of FP32 data is not a whole number of elements",
            ),
            (
                input("FP32", vec![-1], None),
                vec![vec![]],
                "negative dimension",
            ),
        ];
        for (tensor, raw, needle) in cases {
            let request = pb::ModelInferRequest {
                inputs: vec![tensor],
                raw_input_contents: raw,
                ..Default::default()
            };
            let error = decode_request(request, 1 << 20).unwrap_err().to_string();
            assert!(error.contains(needle), "{error}");
        }
        let mismatched = pb::ModelInferRequest {
            inputs: vec![],
            raw_input_contents: vec![vec![]],
            ..Default::default()
        };
        assert!(matches!(
            decode_request(mismatched, 10),
            Err(DecodeError::RawCount { .. })
        ));
    }
}

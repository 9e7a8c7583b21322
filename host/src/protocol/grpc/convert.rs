//! gRPC messages ↔ the codec's types: typed `contents` and `raw_input_contents` in, typed or raw
//! contents out, with the same checks as the REST decoder.

use super::pb;
use crate::codec::{
    DataType, InferenceRequest, InferenceResponse, ModelMetadata, ParameterValue, Parameters,
    RequestedOutput, Tensor, TensorError, TensorMetadata, checked_shape,
};
use std::collections::HashMap;

/// Why a gRPC request could not be decoded: always INVALID_ARGUMENT.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("input '{input}': {source}")]
    Tensor {
        input: String,
        #[source]
        source: TensorError,
    },
    #[error("input '{input}': {message}")]
    Contents { input: String, message: String },
    #[error("raw_input_contents has {raw} entries for {inputs} inputs")]
    RawCount { raw: usize, inputs: usize },
    #[error("parameter '{0}' has no value")]
    Parameter(String),
}

/// Decodes a `ModelInferRequest`; returns the request and whether it used raw contents (the
/// response then answers in raw contents too, as tritonclient expects).
pub fn decode_request(
    request: pb::ModelInferRequest,
    max_elements: u64,
) -> Result<(InferenceRequest, bool), DecodeError> {
    let raw = !request.raw_input_contents.is_empty();
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

/// Decodes a request's inputs (or a response's outputs), with their data either all in `raw`
/// (one entry per tensor) or all typed when `raw` is empty.
fn decode_tensors(
    tensors: Vec<pb::model_infer_request::InferInputTensor>,
    raw: Vec<Vec<u8>>,
    max_elements: u64,
) -> Result<Vec<Tensor>, DecodeError> {
    let is_raw = !raw.is_empty();
    if is_raw && raw.len() != tensors.len() {
        return Err(DecodeError::RawCount {
            raw: raw.len(),
            inputs: tensors.len(),
        });
    }
    let mut raw = raw.into_iter();
    tensors
        .into_iter()
        .map(|tensor| decode_input(tensor, is_raw.then(|| raw.next()).flatten(), max_elements))
        .collect()
}

fn decode_input(
    input: pb::model_infer_request::InferInputTensor,
    raw: Option<Vec<u8>>,
    max_elements: u64,
) -> Result<Tensor, DecodeError> {
    let name = input.name;
    let tensor_error = |source| DecodeError::Tensor {
        input: name.clone(),
        source,
    };
    let datatype: DataType = input.datatype.parse().map_err(tensor_error)?;
    let (shape, count) = checked_shape(&input.shape, max_elements).map_err(tensor_error)?;
    let data = match (raw, input.contents) {
        (Some(_), Some(_)) => {
            return Err(DecodeError::Contents {
                input: name,
                message: "contents given both raw and typed".to_string(),
            });
        }
        (Some(raw), None) => raw,
        (None, contents) => {
            typed_to_bytes(datatype, contents.unwrap_or_default()).map_err(|message| {
                DecodeError::Contents {
                    input: name.clone(),
                    message,
                }
            })?
        }
    };
    let tensor = Tensor {
        parameters: decode_parameters(input.parameters)?,
        name,
        datatype,
        shape,
        data,
    };
    tensor.validate().map_err(|source| DecodeError::Tensor {
        input: tensor.name.clone(),
        source,
    })?;
    debug_assert_eq!(tensor.num_elements(), count);
    Ok(tensor)
}

/// Typed contents → little-endian bytes, with range checks for the narrow integer types.
fn typed_to_bytes(
    datatype: DataType,
    contents: pb::InferTensorContents,
) -> Result<Vec<u8>, String> {
    fn narrow<T, S: Copy + std::fmt::Display>(
        values: &[S],
        datatype: DataType,
        convert: impl Fn(S) -> Option<T>,
        bytes: impl Fn(T) -> Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        let mut data = Vec::with_capacity(values.len());
        for &value in values {
            let value =
                convert(value).ok_or_else(|| format!("{value} is out of range for {datatype}"))?;
            data.extend(bytes(value));
        }
        Ok(data)
    }
    let data = match datatype {
        DataType::Bool => contents
            .bool_contents
            .iter()
            .map(|&value| u8::from(value))
            .collect(),
        DataType::Int8 => narrow(
            &contents.int_contents,
            datatype,
            |v| i8::try_from(v).ok(),
            |v| v.to_le_bytes().to_vec(),
        )?,
        DataType::Int16 => narrow(
            &contents.int_contents,
            datatype,
            |v| i16::try_from(v).ok(),
            |v| v.to_le_bytes().to_vec(),
        )?,
        DataType::Int32 => contents
            .int_contents
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DataType::Int64 => contents
            .int64_contents
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DataType::Uint8 => narrow(
            &contents.uint_contents,
            datatype,
            |v| u8::try_from(v).ok(),
            |v| vec![v],
        )?,
        DataType::Uint16 => narrow(
            &contents.uint_contents,
            datatype,
            |v| u16::try_from(v).ok(),
            |v| v.to_le_bytes().to_vec(),
        )?,
        DataType::Uint32 => contents
            .uint_contents
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DataType::Uint64 => contents
            .uint64_contents
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DataType::Fp32 => contents
            .fp32_contents
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DataType::Fp64 => contents
            .fp64_contents
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DataType::Bytes => {
            let mut data = Vec::new();
            for element in &contents.bytes_contents {
                let length = u32::try_from(element.len())
                    .map_err(|_| "an element over 4 GiB".to_string())?;
                data.extend(length.to_le_bytes());
                data.extend(element);
            }
            data
        }
        DataType::Fp16 | DataType::Bf16 => {
            return Err(format!(
                "{datatype} has no typed contents: send it in raw_input_contents"
            ));
        }
    };
    Ok(data)
}

fn decode_parameters(
    parameters: HashMap<String, pb::InferParameter>,
) -> Result<Parameters, DecodeError> {
    let mut decoded: Parameters = parameters
        .into_iter()
        .map(|(name, parameter)| {
            use pb::infer_parameter::ParameterChoice;
            let value = match parameter.parameter_choice {
                Some(ParameterChoice::BoolParam(value)) => ParameterValue::Bool(value),
                Some(ParameterChoice::Int64Param(value)) => ParameterValue::Int64(value),
                Some(ParameterChoice::StringParam(value)) => ParameterValue::String(value),
                Some(ParameterChoice::DoubleParam(value)) => ParameterValue::Double(value),
                Some(ParameterChoice::Uint64Param(value)) => ParameterValue::Uint64(value),
                None => return Err(DecodeError::Parameter(name)),
            };
            Ok((name, value))
        })
        .collect::<Result<_, _>>()?;
    decoded.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(decoded)
}

fn encode_parameters(parameters: Parameters) -> HashMap<String, pb::InferParameter> {
    use pb::infer_parameter::ParameterChoice;
    parameters
        .into_iter()
        .map(|(name, value)| {
            let choice = match value {
                ParameterValue::Bool(value) => ParameterChoice::BoolParam(value),
                ParameterValue::Int64(value) => ParameterChoice::Int64Param(value),
                ParameterValue::Uint64(value) => ParameterChoice::Uint64Param(value),
                ParameterValue::Double(value) => ParameterChoice::DoubleParam(value),
                ParameterValue::String(value) => ParameterChoice::StringParam(value),
            };
            (
                name,
                pb::InferParameter {
                    parameter_choice: Some(choice),
                },
            )
        })
        .collect()
}

/// Encodes a request for sending (clients such as `mlhost infer`): data as raw contents, as
/// tritonclient sends it.
pub fn encode_request(
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

/// Decodes a response (for clients), raw or typed, checking each output as inputs are checked.
pub fn decode_response(
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

/// Encodes a response: raw contents when the request used them or an output has no typed field
/// (FP16, BF16), typed contents otherwise.
pub fn encode_response(response: InferenceResponse, raw: bool) -> pb::ModelInferResponse {
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

fn bytes_to_typed(tensor: &Tensor) -> pb::InferTensorContents {
    macro_rules! read {
        ($ty:ty) => {
            tensor
                .data
                .chunks_exact(std::mem::size_of::<$ty>())
                .map(|chunk| {
                    <$ty>::from_le_bytes(chunk.try_into().expect("chunk of the type's size"))
                })
        };
    }
    let mut contents = pb::InferTensorContents::default();
    match tensor.datatype {
        DataType::Bool => {
            contents.bool_contents = tensor.data.iter().map(|&byte| byte != 0).collect()
        }
        DataType::Int8 => contents.int_contents = read!(i8).map(i32::from).collect(),
        DataType::Int16 => contents.int_contents = read!(i16).map(i32::from).collect(),
        DataType::Int32 => contents.int_contents = read!(i32).collect(),
        DataType::Int64 => contents.int64_contents = read!(i64).collect(),
        DataType::Uint8 => {
            contents.uint_contents = tensor.data.iter().map(|&byte| u32::from(byte)).collect()
        }
        DataType::Uint16 => contents.uint_contents = read!(u16).map(u32::from).collect(),
        DataType::Uint32 => contents.uint_contents = read!(u32).collect(),
        DataType::Uint64 => contents.uint64_contents = read!(u64).collect(),
        DataType::Fp32 => contents.fp32_contents = read!(f32).collect(),
        DataType::Fp64 => contents.fp64_contents = read!(f64).collect(),
        DataType::Bytes => {
            contents.bytes_contents = tensor
                .bytes_elements()
                .map_while(Result::ok)
                .map(<[u8]>::to_vec)
                .collect()
        }
        DataType::Fp16 | DataType::Bf16 => unreachable!("FP16 and BF16 are always sent raw"),
    }
    contents
}

/// A model's metadata as the gRPC message.
pub fn encode_metadata(
    name: &str,
    versions: Vec<String>,
    metadata: &ModelMetadata,
) -> pb::ModelMetadataResponse {
    let tensors = |tensors: &[TensorMetadata]| {
        tensors
            .iter()
            .map(|tensor| pb::model_metadata_response::TensorMetadata {
                name: tensor.name.clone(),
                datatype: tensor.datatype.as_str().to_string(),
                shape: tensor.shape.clone(),
            })
            .collect()
    };
    pb::ModelMetadataResponse {
        name: name.to_string(),
        versions,
        platform: metadata.platform.clone(),
        inputs: tensors(&metadata.inputs),
        outputs: tensors(&metadata.outputs),
    }
}

/// A model's configuration as Triton's `ModelConfig` message.
pub fn encode_config(config: crate::protocol::model_config::ModelConfig) -> pb::ModelConfig {
    use crate::protocol::model_config::triton_type_number;
    pb::ModelConfig {
        name: config.name,
        platform: config.platform,
        backend: config.backend,
        max_batch_size: config.max_batch_size,
        input: config
            .input
            .into_iter()
            .map(|tensor| pb::ModelInput {
                name: tensor.name,
                data_type: triton_type_number(tensor.data_type),
                dims: tensor.dims,
            })
            .collect(),
        output: config
            .output
            .into_iter()
            .map(|tensor| pb::ModelOutput {
                name: tensor.name,
                data_type: triton_type_number(tensor.data_type),
                dims: tensor.dims,
            })
            .collect(),
        scheduling_choice: config.dynamic_batching.map(|batching| {
            pb::model_config::SchedulingChoice::DynamicBatching(pb::ModelDynamicBatching {
                preferred_batch_size: batching.preferred_batch_size,
                max_queue_delay_microseconds: batching.max_queue_delay_microseconds,
            })
        }),
    }
}

/// One model version's statistics as Triton's `ModelStatistics` message.
pub fn encode_statistics(
    name: &str,
    version: Option<&str>,
    stats: crate::stats::StatsSnapshot,
) -> pb::ModelStatistics {
    let duration = |measured: crate::stats::Measured| {
        Some(pb::StatisticDuration {
            count: measured.count,
            ns: measured.ns,
        })
    };
    pb::ModelStatistics {
        name: name.to_string(),
        version: version.unwrap_or_default().to_string(),
        last_inference: stats.last_inference,
        inference_count: stats.inference_count,
        execution_count: stats.execution_count,
        inference_stats: Some(pb::InferStatistics {
            success: duration(stats.success),
            fail: duration(stats.fail),
            queue: duration(stats.queue),
            compute_input: duration(stats.compute_input),
            compute_infer: duration(stats.compute_infer),
            compute_output: duration(stats.compute_output),
            cache_hit: duration(Default::default()),
            cache_miss: duration(Default::default()),
        }),
        batch_stats: stats
            .batch_stats
            .into_iter()
            .map(|batch| pb::InferBatchStatistics {
                batch_size: batch.batch_size,
                compute_input: duration(batch.compute_input),
                compute_infer: duration(batch.compute_infer),
                compute_output: duration(batch.compute_output),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                "holds 1 elements but 0",
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

    #[test]
    fn a_request_and_response_survive_the_client_round_trip() {
        let tensor = Tensor {
            name: "x".into(),
            datatype: DataType::Fp32,
            shape: vec![2],
            data: [1.5f32.to_le_bytes(), (-2f32).to_le_bytes()].concat(),
            parameters: vec![("content_type".into(), ParameterValue::String("np".into()))],
        };
        let request = InferenceRequest {
            id: Some("r1".into()),
            inputs: vec![tensor.clone()],
            outputs: vec![RequestedOutput {
                name: "y".into(),
                parameters: vec![],
            }],
            parameters: vec![("p".into(), ParameterValue::Int64(3))],
        };
        let sent = encode_request(request.clone(), "m", Some("2"));
        assert_eq!(
            (sent.model_name.as_str(), sent.model_version.as_str()),
            ("m", "2")
        );
        let (received, raw) = decode_request(sent, 1 << 20).unwrap();
        assert!(raw);
        assert_eq!(received, request);
        let response = InferenceResponse {
            model_name: "m".into(),
            model_version: None,
            id: Some("r1".into()),
            outputs: vec![tensor],
            parameters: vec![],
        };
        for raw in [false, true] {
            let decoded = decode_response(encode_response(response.clone(), raw), 1 << 20);
            assert_eq!(decoded.unwrap(), response);
        }
    }
}

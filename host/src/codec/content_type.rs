//! MLServer's content types, as far as the host takes part in them.
//!
//! A request says how its data is to be read with `parameters.content_type`: at request level
//! (`np`, `pd`, `str`) and per input (`np`, `str`, `base64`, `datetime`). Missing ones come from
//! model-settings.json (the model's `parameters.content_type`, then each declared input's), so
//! that the runtime always sees the content type in force. `base64` is a wire encoding: the host
//! decodes such inputs to their bytes before the runtime sees them, and encodes `base64` outputs
//! back. Outputs without a content type get the one their datatype implies (`np`, or `str` for
//! text).

use super::{
    DataType, InferenceRequest, ParameterValue, Parameters, Tensor, TensorMetadata, quoted,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The parameter naming a content type.
pub(crate) const CONTENT_TYPE: &str = "content_type";

/// The content type in `parameters`, if it names one.
pub(crate) fn of(parameters: &Parameters) -> Option<&str> {
    parameters.iter().find_map(|(name, value)| match value {
        ParameterValue::String(value) if name == CONTENT_TYPE => Some(value.as_str()),
        _ => None,
    })
}

/// Fills in the content types the request leaves out from the model's settings: the model's
/// default for the request, and each declared input's for that input.
pub(crate) fn apply_defaults(
    request: &mut InferenceRequest,
    model_default: Option<&str>,
    declared_inputs: &[TensorMetadata],
) {
    if let Some(default) = model_default
        && of(&request.parameters).is_none()
    {
        request.parameters.push((
            CONTENT_TYPE.to_string(),
            ParameterValue::String(default.to_string()),
        ));
    }
    for input in &mut request.inputs {
        if of(&input.parameters).is_some() {
            continue;
        }
        let declared = declared_inputs
            .iter()
            .find(|declared| declared.name == input.name)
            .and_then(|declared| of(&declared.parameters));
        if let Some(content_type) = declared {
            input.parameters.push((
                CONTENT_TYPE.to_string(),
                ParameterValue::String(content_type.to_string()),
            ));
        }
    }
}

/// Checks inputs against their content types and decodes the `base64` ones to their bytes.
pub(crate) fn decode_inputs(request: &mut InferenceRequest) -> Result<(), String> {
    for input in &mut request.inputs {
        match of(&input.parameters) {
            Some("base64") => {
                require_bytes(input, "base64")?;
                input.data = map_elements(input, |element| {
                    STANDARD
                        .decode(strip_ascii_whitespace(element))
                        .map_err(|error| format!("is not valid base64: {error}"))
                })?;
            }
            Some(text @ ("str" | "datetime")) => {
                require_bytes(input, text)?;
                for (index, element) in input.bytes_elements().enumerate() {
                    let element = element.map_err(|error| error.to_string())?;
                    if std::str::from_utf8(element).is_err() {
                        return Err(format!(
                            "input '{}': element {index} is not UTF-8 text (content type '{text}')",
                            quoted(&input.name)
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Gives every output a content type (the runtime's, or the one its datatype implies) and
/// encodes `base64` outputs.
pub(crate) fn encode_outputs(outputs: &mut [Tensor]) -> Result<(), String> {
    for output in outputs {
        let content_type = match of(&output.parameters) {
            Some("base64") => {
                require_bytes(output, "base64")?;
                output.data = map_elements(output, |element| Ok(STANDARD.encode(element).into()))?;
                continue;
            }
            Some(_) => continue,
            None if output.datatype != DataType::Bytes => "np",
            None if output
                .bytes_elements()
                .all(|element| element.is_ok_and(|bytes| std::str::from_utf8(bytes).is_ok())) =>
            {
                "str"
            }
            // Bytes that are not text: left as they are (raw over gRPC and binary REST).
            None => continue,
        };
        output.parameters.push((
            CONTENT_TYPE.to_string(),
            ParameterValue::String(content_type.to_string()),
        ));
    }
    Ok(())
}

fn require_bytes(tensor: &Tensor, content_type: &str) -> Result<(), String> {
    if tensor.datatype == DataType::Bytes {
        Ok(())
    } else {
        Err(format!(
            "'{}' has content type '{}' but datatype {}; it must be BYTES",
            quoted(&tensor.name),
            quoted(content_type),
            tensor.datatype
        ))
    }
}

/// Rewrites each element of a BYTES tensor.
fn map_elements(
    tensor: &Tensor,
    mut map: impl FnMut(&[u8]) -> Result<Vec<u8>, String>,
) -> Result<Vec<u8>, String> {
    let mut data = Vec::with_capacity(tensor.data.len());
    for (index, element) in tensor.bytes_elements().enumerate() {
        let element = element.map_err(|error| format!("'{}': {error}", quoted(&tensor.name)))?;
        let mapped = map(element)
            .map_err(|error| format!("'{}': element {index} {error}", quoted(&tensor.name)))?;
        let length = u32::try_from(mapped.len())
            .map_err(|_| format!("'{}': element {index} is over 4 GiB", quoted(&tensor.name)))?;
        data.extend(length.to_le_bytes());
        data.extend(mapped);
    }
    Ok(data)
}

fn strip_ascii_whitespace(text: &[u8]) -> Vec<u8> {
    text.iter()
        .copied()
        .filter(|byte| !byte.is_ascii_whitespace())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_tensor(name: &str, elements: &[&[u8]], content_type: Option<&str>) -> Tensor {
        let mut data = Vec::new();
        for element in elements {
            data.extend((element.len() as u32).to_le_bytes());
            data.extend(*element);
        }
        Tensor {
            name: name.into(),
            datatype: DataType::Bytes,
            shape: vec![elements.len() as u64],
            data,
            parameters: content_type
                .map(|ct| vec![(CONTENT_TYPE.into(), ParameterValue::String(ct.into()))])
                .unwrap_or_default(),
        }
    }

    #[test]
    fn defaults_come_from_the_model_then_its_declared_inputs() {
        let mut request = InferenceRequest {
            inputs: vec![
                bytes_tensor("a", &[], None),
                bytes_tensor("b", &[], Some("str")),
            ],
            ..InferenceRequest::default()
        };
        let declared = vec![TensorMetadata {
            name: "a".into(),
            datatype: DataType::Bytes,
            shape: vec![-1],
            parameters: vec![(CONTENT_TYPE.into(), ParameterValue::String("base64".into()))],
        }];
        apply_defaults(&mut request, Some("pd"), &declared);
        assert_eq!(of(&request.parameters), Some("pd"));
        assert_eq!(of(&request.inputs[0].parameters), Some("base64"));
        assert_eq!(of(&request.inputs[1].parameters), Some("str"));
    }

    #[test]
    fn base64_inputs_are_decoded_and_outputs_encoded() {
        let mut request = InferenceRequest {
            inputs: vec![bytes_tensor("a", &[b"aGk=", b"AP8="], Some("base64"))],
            ..InferenceRequest::default()
        };
        decode_inputs(&mut request).unwrap();
        assert_eq!(
            request.inputs[0],
            bytes_tensor("a", &[b"hi", b"\0\xff"], Some("base64"))
        );

        let mut outputs = vec![
            bytes_tensor("b", &[b"\0\xff"], Some("base64")),
            bytes_tensor("t", &[b"text"], None),
            bytes_tensor("raw", &[b"\xff"], None),
        ];
        encode_outputs(&mut outputs).unwrap();
        assert_eq!(outputs[0], bytes_tensor("b", &[b"AP8="], Some("base64")));
        assert_eq!(of(&outputs[1].parameters), Some("str"));
        assert_eq!(of(&outputs[2].parameters), None);

        let mut bad = InferenceRequest {
            inputs: vec![bytes_tensor("a", &[b"not base64!"], Some("base64"))],
            ..InferenceRequest::default()
        };
        assert!(decode_inputs(&mut bad).unwrap_err().contains("base64"));
        let mut not_text = InferenceRequest {
            inputs: vec![bytes_tensor("a", &[b"\xff"], Some("str"))],
            ..InferenceRequest::default()
        };
        assert!(decode_inputs(&mut not_text).is_err());
    }
}

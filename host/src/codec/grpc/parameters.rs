//! Parameters of requests, tensors and responses ↔ the `InferParameter` map.

use super::DecodeError;
use super::pb;
use crate::codec::{ParameterValue, Parameters};
use std::collections::HashMap;

/// Decodes a parameter map, sorted by name (a map has no order of its own); a parameter with no
/// value is refused.
pub(super) fn decode_parameters(
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

/// Encodes parameters as the message's map.
pub(super) fn encode_parameters(parameters: Parameters) -> HashMap<String, pb::InferParameter> {
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

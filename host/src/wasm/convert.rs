//! Moves data between the codec's types and the WIT types (no tensor bytes are copied here).

use super::bindings::types as wit;
use crate::codec::{DataType, InferenceRequest, ParameterValue, Parameters, Tensor};

/// The settings a runtime's `load` receives.
#[derive(Debug, Clone)]
pub struct GuestSettings {
    pub name: String,
    pub version: Option<String>,
    /// The artefacts' path as the guest sees it (under `/model`).
    pub uri: String,
    /// `parameters.extra` as JSON text.
    pub extra: String,
    /// The other entries of `parameters`, values as JSON text.
    pub parameters: Vec<(String, String)>,
}

impl GuestSettings {
    pub(super) fn to_wit(&self) -> wit::ModelSettings {
        wit::ModelSettings {
            name: self.name.clone(),
            version: self.version.clone(),
            uri: self.uri.clone(),
            extra: self.extra.clone(),
            parameters: self.parameters.clone(),
        }
    }
}

pub(super) fn error_message(error: wit::Error) -> String {
    match error {
        wit::Error::InvalidInput(message)
        | wit::Error::InvalidModel(message)
        | wit::Error::Internal(message) => message,
    }
}

pub(super) fn datatype_to_wit(datatype: DataType) -> wit::Datatype {
    match datatype {
        DataType::Bool => wit::Datatype::Bool,
        DataType::Uint8 => wit::Datatype::Uint8,
        DataType::Uint16 => wit::Datatype::Uint16,
        DataType::Uint32 => wit::Datatype::Uint32,
        DataType::Uint64 => wit::Datatype::Uint64,
        DataType::Int8 => wit::Datatype::Int8,
        DataType::Int16 => wit::Datatype::Int16,
        DataType::Int32 => wit::Datatype::Int32,
        DataType::Int64 => wit::Datatype::Int64,
        DataType::Fp16 => wit::Datatype::Fp16,
        DataType::Fp32 => wit::Datatype::Fp32,
        DataType::Fp64 => wit::Datatype::Fp64,
        DataType::Bf16 => wit::Datatype::Bf16,
        DataType::Bytes => wit::Datatype::Bytes,
    }
}

pub(super) fn datatype_from_wit(datatype: wit::Datatype) -> DataType {
    match datatype {
        wit::Datatype::Bool => DataType::Bool,
        wit::Datatype::Uint8 => DataType::Uint8,
        wit::Datatype::Uint16 => DataType::Uint16,
        wit::Datatype::Uint32 => DataType::Uint32,
        wit::Datatype::Uint64 => DataType::Uint64,
        wit::Datatype::Int8 => DataType::Int8,
        wit::Datatype::Int16 => DataType::Int16,
        wit::Datatype::Int32 => DataType::Int32,
        wit::Datatype::Int64 => DataType::Int64,
        wit::Datatype::Fp16 => DataType::Fp16,
        wit::Datatype::Fp32 => DataType::Fp32,
        wit::Datatype::Fp64 => DataType::Fp64,
        wit::Datatype::Bf16 => DataType::Bf16,
        wit::Datatype::Bytes => DataType::Bytes,
    }
}

fn parameters_to_wit(parameters: Parameters) -> Vec<wit::Parameter> {
    parameters
        .into_iter()
        .map(|(name, value)| wit::Parameter {
            name,
            value: match value {
                ParameterValue::Bool(value) => wit::ParameterValue::Bool(value),
                ParameterValue::Int64(value) => wit::ParameterValue::Int64(value),
                ParameterValue::Uint64(value) => wit::ParameterValue::Uint64(value),
                ParameterValue::Double(value) => wit::ParameterValue::Double(value),
                ParameterValue::String(value) => wit::ParameterValue::String(value),
            },
        })
        .collect()
}

pub(super) fn request_to_wit(request: InferenceRequest) -> wit::InferenceRequest {
    wit::InferenceRequest {
        id: request.id,
        inputs: request
            .inputs
            .into_iter()
            .map(|tensor| wit::Tensor {
                name: tensor.name,
                datatype: datatype_to_wit(tensor.datatype),
                shape: tensor.shape,
                data: tensor.data,
                parameters: parameters_to_wit(tensor.parameters),
            })
            .collect(),
        outputs: request
            .outputs
            .into_iter()
            .map(|output| wit::RequestedOutput {
                name: output.name,
                parameters: parameters_to_wit(output.parameters),
            })
            .collect(),
        parameters: parameters_to_wit(request.parameters),
    }
}

/// Checks each of the runtime's outputs against its shape: a guest is never trusted.
pub(super) fn check_outputs(outputs: &[Tensor]) -> Result<(), String> {
    for tensor in outputs {
        let shape: Vec<i64> = tensor
            .shape
            .iter()
            .map(|&dim| i64::try_from(dim).unwrap_or(-1))
            .collect();
        crate::codec::checked_shape(&shape, u64::MAX)
            .and_then(|_| tensor.validate())
            .map_err(|error| format!("output '{}': {error}", tensor.name))?;
    }
    Ok(())
}

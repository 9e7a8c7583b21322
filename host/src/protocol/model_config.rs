//! A model's configuration in Triton's shape (`model_config.proto`), for the tools that read it
//! before they send anything (perf_analyzer, Triton clients).

use crate::codec::{DataType, TensorMetadata};
use crate::repository::LoadedModel;
use serde::Serialize;

/// The backend every mlhost model reports.
pub(crate) const BACKEND: &str = "mlhost";

/// Triton's `ModelConfig`, as far as mlhost has the facts.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct ModelConfig {
    pub name: String,
    pub platform: String,
    pub backend: String,
    /// The largest batch along dimension 0, or 0 when the model does not batch (its `dims` then
    /// include every dimension).
    pub max_batch_size: i32,
    pub input: Vec<ConfigTensor>,
    pub output: Vec<ConfigTensor>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dynamic_batching: Option<DynamicBatching>,
}

/// An input or output: `ModelInput` / `ModelOutput`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct ConfigTensor {
    pub name: String,
    /// Triton's name of the datatype, e.g. `TYPE_FP32`.
    pub data_type: &'static str,
    pub dims: Vec<i64>,
}

/// `ModelDynamicBatching`: how mlhost batches the model.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct DynamicBatching {
    pub preferred_batch_size: Vec<i32>,
    pub max_queue_delay_microseconds: u64,
}

impl ModelConfig {
    /// The configuration of a loaded model. A model batches (`max_batch_size` > 0) when its
    /// settings give a `max_batch_size` and every input and output has a variable dimension 0,
    /// which the `dims` then leave out.
    pub(crate) fn of(model: &LoadedModel) -> Self {
        let metadata = &model.metadata;
        let batch_dimension = model.max_batch_size > 0
            && metadata
                .inputs
                .iter()
                .chain(&metadata.outputs)
                .all(|tensor| tensor.shape.first() == Some(&-1));
        let tensors = |tensors: &[TensorMetadata]| {
            tensors
                .iter()
                .map(|tensor| ConfigTensor {
                    name: tensor.name.clone(),
                    data_type: triton_type_name(tensor.datatype),
                    dims: if batch_dimension {
                        tensor.shape[1..].to_vec()
                    } else {
                        tensor.shape.clone()
                    },
                })
                .collect()
        };
        let batcher = matches!(
            model.runner,
            crate::repository::Runner::Workers {
                batcher: Some(_),
                ..
            }
        );
        ModelConfig {
            name: model.name.clone(),
            platform: metadata.platform.clone(),
            backend: BACKEND.to_string(),
            max_batch_size: if batch_dimension {
                i32::try_from(model.max_batch_size).unwrap_or(i32::MAX)
            } else {
                0
            },
            input: tensors(&metadata.inputs),
            output: tensors(&metadata.outputs),
            dynamic_batching: (batch_dimension && batcher).then(|| DynamicBatching {
                preferred_batch_size: Vec::new(),
                max_queue_delay_microseconds: (model.max_batch_time * 1e6) as u64,
            }),
        }
    }
}

/// The number of Triton's `DataType` enum value named `name` (0, `TYPE_INVALID`, if none).
pub(crate) fn triton_type_number(name: &str) -> i32 {
    DataType::ALL
        .into_iter()
        .map(triton_type)
        .find(|(known, _)| *known == name)
        .map_or(0, |(_, number)| number)
}

/// Triton's `DataType` enum: its name and number.
fn triton_type(datatype: DataType) -> (&'static str, i32) {
    match datatype {
        DataType::Bool => ("TYPE_BOOL", 1),
        DataType::Uint8 => ("TYPE_UINT8", 2),
        DataType::Uint16 => ("TYPE_UINT16", 3),
        DataType::Uint32 => ("TYPE_UINT32", 4),
        DataType::Uint64 => ("TYPE_UINT64", 5),
        DataType::Int8 => ("TYPE_INT8", 6),
        DataType::Int16 => ("TYPE_INT16", 7),
        DataType::Int32 => ("TYPE_INT32", 8),
        DataType::Int64 => ("TYPE_INT64", 9),
        DataType::Fp16 => ("TYPE_FP16", 10),
        DataType::Fp32 => ("TYPE_FP32", 11),
        DataType::Fp64 => ("TYPE_FP64", 12),
        DataType::Bytes => ("TYPE_STRING", 13),
        DataType::Bf16 => ("TYPE_BF16", 14),
    }
}

fn triton_type_name(datatype: DataType) -> &'static str {
    triton_type(datatype).0
}

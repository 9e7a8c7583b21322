//! Tensors in: a request's inputs (or a response's outputs) with their data raw or typed,
//! checked as the REST decoder checks them.

use super::DecodeError;
use super::contents::typed_to_bytes;
use super::parameters::decode_parameters;
use super::pb;
use crate::codec::{DataType, Tensor, checked_shape};

/// Decodes a request's inputs (or a response's outputs), with their data either all in `raw`
/// (one entry per tensor) or all typed when `raw` is empty.
pub(super) fn decode_tensors(
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

/// Decodes one tensor, its data from `raw` when given, else from its typed contents.
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

//! One tensor's JSON form, in both directions: a request's input (or a response's output)
//! decoded with its data inline or in the binary tensor data extension, and encoded back.

use super::data::parse_data;
use super::parameters::{ParametersIn, ParametersJson, decode_parameters};
use super::{BINARY_DATA_SIZE, DecodeError};
use crate::codec::{
    DataType, ParameterValue, Tensor, TensorError, checked_shape, quoted, shared_memory,
};
use serde::ser::{self, SerializeMap, SerializeSeq};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

/// A tensor as it arrives: its `data` left as raw JSON for [`parse_data`].
#[derive(Deserialize)]
pub(super) struct InputJson<'a> {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: ParametersIn,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

/// Decodes a request's inputs (or a response's outputs); those with a `binary_data_size` take
/// their data from `binary` in order, which they must use up.
pub(super) fn decode_tensors(
    tensors: Vec<InputJson<'_>>,
    mut binary: &[u8],
    max_elements: u64,
) -> Result<Vec<Tensor>, DecodeError> {
    let tensors = tensors
        .into_iter()
        .map(|tensor| decode_input(tensor, &mut binary, max_elements))
        .collect::<Result<Vec<_>, _>>()?;
    if !binary.is_empty() {
        return Err(DecodeError::TrailingBinary(binary.len()));
    }
    Ok(tensors)
}

/// Decodes one tensor, checking its datatype, shape and data; binary data comes from the front
/// of `binary`.
fn decode_input(
    mut input: InputJson<'_>,
    binary: &mut &[u8],
    max_elements: u64,
) -> Result<Tensor, DecodeError> {
    let tensor_error = |source| DecodeError::Tensor {
        input: input.name.clone(),
        source,
    };
    let names = input
        .parameters
        .iter()
        .flat_map(|parameters| parameters.keys());
    if shared_memory::refers_to_region(names.map(String::as_str)) {
        return Err(DecodeError::SharedMemory(format!(
            "input '{}'",
            quoted(&input.name)
        )));
    }
    let datatype: DataType = input.datatype.parse().map_err(tensor_error)?;
    let (shape, expected) = checked_shape(&input.shape, max_elements).map_err(tensor_error)?;

    let binary_size = input
        .parameters
        .as_mut()
        .and_then(|parameters| parameters.remove(BINARY_DATA_SIZE));
    let is_binary = binary_size.is_some();
    let data = match (binary_size, input.data) {
        (Some(size), None) => take_binary(&input.name, &size, binary)?.to_vec(),
        (Some(_), Some(_)) => {
            return Err(DecodeError::Binary {
                input: input.name,
                reason: "it has both `data` and `binary_data_size`".to_string(),
            });
        }
        (None, None) => {
            return Err(DecodeError::Binary {
                input: input.name,
                reason: "it has no `data` (nor a `binary_data_size`)".to_string(),
            });
        }
        (None, Some(raw)) => inline_data(&input.name, raw.get(), datatype, &shape, expected)?,
    };
    let tensor = Tensor {
        parameters: decode_parameters(input.parameters)?,
        name: input.name,
        datatype,
        shape,
        data,
    };
    // Inline data was checked as it was parsed; binary data is taken as it comes.
    if is_binary {
        tensor.validate().map_err(|source| DecodeError::Tensor {
            input: tensor.name.clone(),
            source,
        })?;
    }
    Ok(tensor)
}

/// Parses an input's inline `data`, which must hold exactly `expected` elements.
fn inline_data(
    input: &str,
    raw: &str,
    datatype: DataType,
    shape: &[u64],
    expected: u64,
) -> Result<Vec<u8>, DecodeError> {
    let (data, count) =
        parse_data(raw, datatype, shape, expected).map_err(|source| DecodeError::Data {
            input: input.to_string(),
            source,
        })?;
    if count != expected {
        return Err(DecodeError::Tensor {
            input: input.to_string(),
            source: TensorError::ElementCount {
                shape: shape.to_vec(),
                expected,
                actual: count,
            },
        });
    }
    Ok(data)
}

/// Takes the `size` bytes of an input's binary data from the front of `binary`.
fn take_binary<'b>(
    input: &str,
    size: &serde_json::Value,
    binary: &mut &'b [u8],
) -> Result<&'b [u8], DecodeError> {
    let error = |reason: String| DecodeError::Binary {
        input: input.to_string(),
        reason,
    };
    let size = size.as_u64().ok_or_else(|| {
        error(format!(
            "`binary_data_size` must be a non-negative integer, not {}",
            crate::codec::quoted(&size.to_string())
        ))
    })?;
    let size = usize::try_from(size)
        .ok()
        .filter(|&size| size <= binary.len())
        .ok_or_else(|| {
            error(format!(
                "`binary_data_size` of {size} bytes runs past the end of the body ({} bytes left)",
                binary.len()
            ))
        })?;
    let (data, rest) = binary.split_at(size);
    *binary = rest;
    Ok(data)
}

/// A tensor (a response's output or a sent request's input), with its data inline or (when the
/// flag is set) announced as binary.
pub(super) struct TensorJson<'a>(pub(super) &'a Tensor, pub(super) bool);

impl Serialize for TensorJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let TensorJson(tensor, binary) = *self;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("name", &tensor.name)?;
        map.serialize_entry("datatype", tensor.datatype.as_str())?;
        map.serialize_entry("shape", &tensor.shape)?;
        if binary {
            let size = [(
                BINARY_DATA_SIZE.to_string(),
                ParameterValue::Uint64(tensor.data.len() as u64),
            )];
            map.serialize_entry(
                "parameters",
                &ParametersJson::with_extra(&tensor.parameters, &size),
            )?;
        } else {
            if !tensor.parameters.is_empty() {
                map.serialize_entry("parameters", &ParametersJson::new(&tensor.parameters))?;
            }
            map.serialize_entry("data", &DataJson(tensor))?;
        }
        map.end()
    }
}

/// A tensor's data as a flat JSON array.
struct DataJson<'a>(&'a Tensor);

impl Serialize for DataJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let tensor = self.0;
        let mut seq = serializer.serialize_seq(None)?;
        macro_rules! each {
            ($ty:ty, |$v:ident| $convert:expr) => {
                for chunk in tensor.data.chunks_exact(std::mem::size_of::<$ty>()) {
                    let $v =
                        <$ty>::from_le_bytes(chunk.try_into().expect("chunk of the type's size"));
                    seq.serialize_element(&$convert)?;
                }
            };
        }
        match tensor.datatype {
            DataType::Bool => each!(u8, |v| v != 0),
            DataType::Uint8 => each!(u8, |v| v),
            DataType::Uint16 => each!(u16, |v| v),
            DataType::Uint32 => each!(u32, |v| v),
            DataType::Uint64 => each!(u64, |v| v),
            DataType::Int8 => each!(i8, |v| v),
            DataType::Int16 => each!(i16, |v| v),
            DataType::Int32 => each!(i32, |v| v),
            DataType::Int64 => each!(i64, |v| v),
            DataType::Fp16 => each!(half::f16, |v| v.to_f32()),
            DataType::Bf16 => each!(half::bf16, |v| v.to_f32()),
            DataType::Fp32 => each!(f32, |v| v),
            DataType::Fp64 => each!(f64, |v| v),
            DataType::Bytes => {
                for element in tensor.bytes_elements() {
                    let element = element.map_err(ser::Error::custom)?;
                    let text = std::str::from_utf8(element).map_err(|_| {
                        ser::Error::custom(format_args!(
                            "output '{}' holds bytes that are not UTF-8 text",
                            tensor.name
                        ))
                    })?;
                    seq.serialize_element(text)?;
                }
            }
        }
        seq.end()
    }
}

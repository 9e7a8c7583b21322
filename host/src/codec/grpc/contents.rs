//! Typed tensor contents (`InferTensorContents`) ↔ the codec's little-endian bytes, one helper
//! per kind of datatype.

use super::pb;
use crate::codec::{DataType, Tensor};

/// Typed contents → little-endian bytes, with range checks for the narrow integer types.
pub(super) fn typed_to_bytes(
    datatype: DataType,
    contents: pb::InferTensorContents,
) -> Result<Vec<u8>, String> {
    let data = match datatype {
        DataType::Bool => bools(&contents.bool_contents),
        DataType::Int8 => narrowed(
            &contents.int_contents,
            datatype,
            i8::try_from,
            i8::to_le_bytes,
        )?,
        DataType::Int16 => narrowed(
            &contents.int_contents,
            datatype,
            i16::try_from,
            i16::to_le_bytes,
        )?,
        DataType::Int32 => little_endian(&contents.int_contents, i32::to_le_bytes),
        DataType::Int64 => little_endian(&contents.int64_contents, i64::to_le_bytes),
        DataType::Uint8 => narrowed(
            &contents.uint_contents,
            datatype,
            u8::try_from,
            u8::to_le_bytes,
        )?,
        DataType::Uint16 => narrowed(
            &contents.uint_contents,
            datatype,
            u16::try_from,
            u16::to_le_bytes,
        )?,
        DataType::Uint32 => little_endian(&contents.uint_contents, u32::to_le_bytes),
        DataType::Uint64 => little_endian(&contents.uint64_contents, u64::to_le_bytes),
        DataType::Fp32 => little_endian(&contents.fp32_contents, f32::to_le_bytes),
        DataType::Fp64 => little_endian(&contents.fp64_contents, f64::to_le_bytes),
        DataType::Bytes => length_prefixed(&contents.bytes_contents)?,
        DataType::Fp16 | DataType::Bf16 => {
            return Err(format!(
                "{datatype} has no typed contents: send it in raw_input_contents"
            ));
        }
    };
    Ok(data)
}

/// BOOL: one byte per element, 0 or 1.
fn bools(values: &[bool]) -> Vec<u8> {
    values.iter().map(|&value| u8::from(value)).collect()
}

/// Types whose typed field is their own width: each value's little-endian bytes.
fn little_endian<T: Copy, const N: usize>(values: &[T], bytes: fn(T) -> [u8; N]) -> Vec<u8> {
    values.iter().flat_map(|&value| bytes(value)).collect()
}

/// Types narrower than their typed field (INT8, INT16, UINT8, UINT16): each value converted,
/// refused when out of range, then as little-endian bytes.
fn narrowed<S, T, E, const N: usize>(
    values: &[S],
    datatype: DataType,
    convert: fn(S) -> Result<T, E>,
    bytes: fn(T) -> [u8; N],
) -> Result<Vec<u8>, String>
where
    S: Copy + std::fmt::Display,
{
    let mut data = Vec::with_capacity(values.len() * N);
    for &value in values {
        let value =
            convert(value).map_err(|_| format!("{value} is out of range for {datatype}"))?;
        data.extend(bytes(value));
    }
    Ok(data)
}

/// BYTES: each element prefixed by its length as a little-endian `u32`.
fn length_prefixed(elements: &[Vec<u8>]) -> Result<Vec<u8>, String> {
    let mut data = Vec::new();
    for element in elements {
        let length =
            u32::try_from(element.len()).map_err(|_| "an element over 4 GiB".to_string())?;
        data.extend(length.to_le_bytes());
        data.extend(element);
    }
    Ok(data)
}

/// Little-endian bytes → typed contents (never called for FP16 and BF16, which go raw).
pub(super) fn bytes_to_typed(tensor: &Tensor) -> pb::InferTensorContents {
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

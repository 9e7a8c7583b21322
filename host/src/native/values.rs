//! Tensors as mlhost carries them (Open Inference Protocol datatypes, little-endian bytes, BYTES
//! elements each after a 4-byte length) to and from ONNX Runtime's values.
//!
//! A sequence of maps (scikit-learn's ZipMap: one map of class to probability per row) becomes
//! an FP32 matrix `[rows, classes]` with the classes in key order, as MLServer's scikit-learn
//! runtime answers `predict_proba`.

use crate::codec::DataType;
use ort::session::SessionInputValue;
use ort::value::{
    DynMapValueType, DynValue, PrimitiveTensorElementType, Tensor, TensorElementType, TensorRef,
    ValueType,
};

/// A tensor as bytes: what crosses between the runtime and the backend.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawTensor {
    pub name: String,
    pub datatype: DataType,
    pub shape: Vec<u64>,
    pub data: Vec<u8>,
}

/// The protocol datatype of an ONNX Runtime element type, when mlhost can carry it.
pub(super) fn datatype_of(element: TensorElementType) -> Option<DataType> {
    Some(match element {
        TensorElementType::Bool => DataType::Bool,
        TensorElementType::Uint8 => DataType::Uint8,
        TensorElementType::Uint16 => DataType::Uint16,
        TensorElementType::Uint32 => DataType::Uint32,
        TensorElementType::Uint64 => DataType::Uint64,
        TensorElementType::Int8 => DataType::Int8,
        TensorElementType::Int16 => DataType::Int16,
        TensorElementType::Int32 => DataType::Int32,
        TensorElementType::Int64 => DataType::Int64,
        TensorElementType::Float16 => DataType::Fp16,
        TensorElementType::Float32 => DataType::Fp32,
        TensorElementType::Float64 => DataType::Fp64,
        TensorElementType::Bfloat16 => DataType::Bf16,
        TensorElementType::String => DataType::Bytes,
        _ => return None,
    })
}

/// How a graph's input or output is carried: its datatype and shape (`-1`: variable), or
/// `None` when mlhost cannot carry that kind of value.
pub(super) fn port_type(value_type: &ValueType) -> Option<(DataType, Vec<i64>)> {
    match value_type {
        ValueType::Tensor { ty, shape, .. } => Some((datatype_of(*ty)?, shape.to_vec())),
        ValueType::Sequence(inner) => match inner.as_ref() {
            ValueType::Map { value, .. } if datatype_of(*value).is_some() => {
                Some((DataType::Fp32, vec![-1, -1]))
            }
            _ => None,
        },
        _ => None,
    }
}

/// An ONNX Runtime value holding `tensor`'s elements (already checked to be of the graph's
/// datatype): a view of its bytes where they are aligned for the element type (no copy), a
/// decoded copy otherwise. Fails when the bytes do not fit the shape, or a BYTES element is not
/// UTF-8.
pub(super) fn to_value(tensor: &RawTensor) -> Result<SessionInputValue<'_>, String> {
    let shape: Vec<i64> = tensor.shape.iter().map(|&d| d as i64).collect();
    let count = tensor.shape.iter().product::<u64>() as usize;
    let data = tensor.data.as_slice();
    let value = match tensor.datatype {
        DataType::Bool => numeric(shape, data, count, |[b]: [u8; 1]| b != 0),
        DataType::Uint8 => view(shape, data, count, u8::from_le_bytes),
        DataType::Uint16 => view(shape, data, count, u16::from_le_bytes),
        DataType::Uint32 => view(shape, data, count, u32::from_le_bytes),
        DataType::Uint64 => view(shape, data, count, u64::from_le_bytes),
        DataType::Int8 => view(shape, data, count, i8::from_le_bytes),
        DataType::Int16 => view(shape, data, count, i16::from_le_bytes),
        DataType::Int32 => view(shape, data, count, i32::from_le_bytes),
        DataType::Int64 => view(shape, data, count, i64::from_le_bytes),
        DataType::Fp16 => numeric(shape, data, count, |b| {
            half::f16::from_bits(u16::from_le_bytes(b))
        }),
        DataType::Bf16 => numeric(shape, data, count, |b| {
            half::bf16::from_bits(u16::from_le_bytes(b))
        }),
        DataType::Fp32 => view(shape, data, count, f32::from_le_bytes),
        DataType::Fp64 => view(shape, data, count, f64::from_le_bytes),
        DataType::Bytes => strings(shape, data, count),
    };
    value.map_err(|error| format!("input '{}': {error}", tensor.name))
}

/// Checks that `count` elements of `N` bytes make up `data`.
fn check_length<const N: usize>(data: &[u8], count: usize) -> Result<(), String> {
    if data.len() != count * N {
        return Err(format!(
            "holds {} bytes where its shape needs {}",
            data.len(),
            count * N
        ));
    }
    Ok(())
}

/// A tensor of `T` viewing `data` in place when its elements are aligned little-endian `T`s (as
/// a host allocation normally is), else decoded by `decode` into a copy.
fn view<T, const N: usize>(
    shape: Vec<i64>,
    data: &[u8],
    count: usize,
    decode: fn([u8; N]) -> T,
) -> Result<SessionInputValue<'_>, String>
where
    T: PrimitiveTensorElementType + bytemuck::Pod + std::fmt::Debug + Clone + 'static,
{
    check_length::<N>(data, count)?;
    if cfg!(target_endian = "little")
        && let Ok(elements) = bytemuck::try_cast_slice::<u8, T>(data)
    {
        return TensorRef::from_array_view((shape, elements))
            .map(SessionInputValue::from)
            .map_err(|error| error.to_string());
    }
    numeric(shape, data, count, decode)
}

/// A tensor of `T` from `count` little-endian elements of `N` bytes, decoded into a copy.
fn numeric<T, const N: usize>(
    shape: Vec<i64>,
    data: &[u8],
    count: usize,
    decode: fn([u8; N]) -> T,
) -> Result<SessionInputValue<'static>, String>
where
    T: PrimitiveTensorElementType + std::fmt::Debug + Clone + 'static,
{
    check_length::<N>(data, count)?;
    let values: Vec<T> = data
        .chunks_exact(N)
        .map(|chunk| decode(chunk.try_into().expect("chunks of N bytes")))
        .collect();
    Tensor::from_array((shape, values))
        .map(SessionInputValue::from)
        .map_err(|error| error.to_string())
}

/// A string tensor from BYTES elements (each a 4-byte little-endian length, then the bytes).
fn strings(
    shape: Vec<i64>,
    mut data: &[u8],
    count: usize,
) -> Result<SessionInputValue<'static>, String> {
    let mut values = Vec::with_capacity(count.min(data.len() / 4));
    while let Some((length, rest)) = data.split_first_chunk::<4>() {
        let length = u32::from_le_bytes(*length) as usize;
        if rest.len() < length {
            return Err("has a BYTES element longer than its data".to_string());
        }
        let (element, rest) = rest.split_at(length);
        let text = std::str::from_utf8(element)
            .map_err(|_| "has a BYTES element that is not UTF-8 text".to_string())?;
        values.push(text.to_string());
        data = rest;
    }
    if !data.is_empty() || values.len() != count {
        return Err(format!(
            "holds {} BYTES elements where its shape needs {count}",
            values.len()
        ));
    }
    Tensor::from_string_array((shape, values.as_slice()))
        .map(SessionInputValue::from)
        .map_err(|error| error.to_string())
}

/// `value` as a tensor of bytes named `name`.
pub(super) fn from_value(name: &str, value: &DynValue) -> Result<RawTensor, String> {
    let (datatype, shape, data) = match value.dtype() {
        ValueType::Tensor { ty, .. } => tensor_bytes(value, *ty)?,
        ValueType::Sequence(_) => zipmap_matrix(value)?,
        other => {
            return Err(format!(
                "output '{name}' is a {other}, which mlhost cannot carry"
            ));
        }
    };
    Ok(RawTensor {
        name: name.to_string(),
        datatype,
        shape,
        data,
    })
}

type Bytes = (DataType, Vec<u64>, Vec<u8>);

/// A tensor's datatype, shape and little-endian bytes.
fn tensor_bytes(value: &DynValue, element: TensorElementType) -> Result<Bytes, String> {
    let datatype = datatype_of(element)
        .ok_or_else(|| format!("a tensor of {element} cannot be carried by mlhost"))?;
    let shape: Vec<u64> = value
        .dtype()
        .tensor_shape()
        .map(|shape| shape.iter().map(|&d| d.max(0) as u64).collect())
        .unwrap_or_default();
    let data = match datatype {
        DataType::Bool => {
            let (_, elements) = value
                .try_extract_tensor::<bool>()
                .map_err(|e| e.to_string())?;
            elements.iter().map(|&b| b as u8).collect()
        }
        DataType::Uint8 => le(value, u8::to_le_bytes)?,
        DataType::Uint16 => le(value, u16::to_le_bytes)?,
        DataType::Uint32 => le(value, u32::to_le_bytes)?,
        DataType::Uint64 => le(value, u64::to_le_bytes)?,
        DataType::Int8 => le(value, i8::to_le_bytes)?,
        DataType::Int16 => le(value, i16::to_le_bytes)?,
        DataType::Int32 => le(value, i32::to_le_bytes)?,
        DataType::Int64 => le(value, i64::to_le_bytes)?,
        DataType::Fp16 => le_each(value, |v: half::f16| v.to_bits().to_le_bytes())?,
        DataType::Bf16 => le_each(value, |v: half::bf16| v.to_bits().to_le_bytes())?,
        DataType::Fp32 => le(value, f32::to_le_bytes)?,
        DataType::Fp64 => le(value, f64::to_le_bytes)?,
        DataType::Bytes => {
            let (_, texts) = value.try_extract_strings().map_err(|e| e.to_string())?;
            let mut data = Vec::with_capacity(texts.iter().map(|t| t.len() + 4).sum());
            for text in &texts {
                data.extend_from_slice(&(text.len() as u32).to_le_bytes());
                data.extend_from_slice(text.as_bytes());
            }
            data
        }
    };
    Ok((datatype, shape, data))
}

/// The elements of a tensor of `T` as little-endian bytes: one copy of its memory (each element
/// encoded by `encode` on a big-endian host).
fn le<T, const N: usize>(value: &DynValue, encode: fn(T) -> [u8; N]) -> Result<Vec<u8>, String>
where
    T: PrimitiveTensorElementType + bytemuck::Pod,
{
    if cfg!(target_endian = "big") {
        return le_each(value, encode);
    }
    let (_, elements) = value
        .try_extract_tensor::<T>()
        .map_err(|error| error.to_string())?;
    Ok(bytemuck::cast_slice(elements).to_vec())
}

/// The elements of a tensor of `T`, each encoded by `encode`.
fn le_each<T, const N: usize>(value: &DynValue, encode: fn(T) -> [u8; N]) -> Result<Vec<u8>, String>
where
    T: PrimitiveTensorElementType + Copy,
{
    let (_, elements) = value
        .try_extract_tensor::<T>()
        .map_err(|error| error.to_string())?;
    let mut data = Vec::with_capacity(elements.len() * N);
    for &element in elements {
        data.extend_from_slice(&encode(element));
    }
    Ok(data)
}

/// A sequence of maps (one per row) as an FP32 matrix `[rows, keys]`, keys in order.
fn zipmap_matrix(value: &DynValue) -> Result<Bytes, String> {
    let rows = value
        .try_extract_sequence::<DynMapValueType>()
        .map_err(|error| error.to_string())?;
    let mut data = Vec::new();
    let mut width = None;
    for row in &rows {
        let mut values = map_values(row)?;
        values.sort_by(|a, b| a.0.cmp(&b.0));
        if *width.get_or_insert(values.len()) != values.len() {
            return Err("the maps of the sequence have different keys".to_string());
        }
        for (_, probability) in values {
            data.extend_from_slice(&probability.to_le_bytes());
        }
    }
    let shape = vec![rows.len() as u64, width.unwrap_or(0) as u64];
    Ok((DataType::Fp32, shape, data))
}

/// A map's entries, keys made comparable (integers before text), values as f32.
fn map_values(map: &ort::value::DynMap) -> Result<Vec<(MapKey, f32)>, String> {
    if let Ok(pairs) = map.try_extract_key_values::<i64, f32>() {
        return Ok(pairs
            .into_iter()
            .map(|(k, v)| (MapKey::Int(k), v))
            .collect());
    }
    if let Ok(pairs) = map.try_extract_key_values::<String, f32>() {
        return Ok(pairs
            .into_iter()
            .map(|(k, v)| (MapKey::Text(k), v))
            .collect());
    }
    if let Ok(pairs) = map.try_extract_key_values::<i64, f64>() {
        return Ok(pairs
            .into_iter()
            .map(|(k, v)| (MapKey::Int(k), v as f32))
            .collect());
    }
    map.try_extract_key_values::<String, f64>()
        .map(|pairs| {
            pairs
                .into_iter()
                .map(|(k, v)| (MapKey::Text(k), v as f32))
                .collect()
        })
        .map_err(|error| error.to_string())
}

/// A map key, ordered as scikit-learn orders classes.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum MapKey {
    Int(i64),
    Text(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::{LibraryStatus, library_status};
    use ort::value::{Map, Sequence};

    fn require_library() {
        if let LibraryStatus::Missing { reason } = library_status() {
            panic!("these tests need ONNX Runtime (run scripts/setup): {reason}");
        }
    }

    fn raw(datatype: DataType, shape: &[u64], data: Vec<u8>) -> RawTensor {
        RawTensor {
            name: "t".into(),
            datatype,
            shape: shape.to_vec(),
            data,
        }
    }

    #[test]
    fn every_datatype_crosses_both_ways_unchanged() {
        require_library();
        let cases = [
            raw(DataType::Bool, &[3], vec![1, 0, 1]),
            raw(DataType::Uint8, &[2], vec![7, 255]),
            raw(
                DataType::Int16,
                &[2],
                [(-2i16).to_le_bytes(), 300i16.to_le_bytes()].concat(),
            ),
            raw(DataType::Uint64, &[1], u64::MAX.to_le_bytes().to_vec()),
            raw(
                DataType::Int64,
                &[2, 1],
                [(-5i64).to_le_bytes(), 9i64.to_le_bytes()].concat(),
            ),
            raw(
                DataType::Fp16,
                &[1],
                half::f16::from_f32(1.5).to_bits().to_le_bytes().to_vec(),
            ),
            raw(
                DataType::Bf16,
                &[1],
                half::bf16::from_f32(-2.0).to_bits().to_le_bytes().to_vec(),
            ),
            raw(
                DataType::Fp32,
                &[2],
                [0.25f32.to_le_bytes(), (-1f32).to_le_bytes()].concat(),
            ),
            raw(DataType::Fp64, &[1], 3.5f64.to_le_bytes().to_vec()),
            raw(DataType::Bytes, &[2], b"\x02\0\0\0hi\x03\0\0\0caf".to_vec()),
        ];
        for tensor in cases {
            let value = to_value(&tensor).unwrap();
            assert_eq!(from_value("t", &value).unwrap(), tensor);
        }
    }

    #[test]
    fn aligned_inputs_are_viewed_and_unaligned_ones_copied() {
        require_library();
        let values = [1.5f32, -2.0, 0.25];
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let aligned = view(vec![3], &bytes, 3, f32::from_le_bytes).unwrap();
        assert!(matches!(aligned, SessionInputValue::View(_)));
        let mut shifted = vec![0u8];
        shifted.extend_from_slice(&bytes);
        let unaligned = view(vec![3], &shifted[1..], 3, f32::from_le_bytes).unwrap();
        assert!(matches!(unaligned, SessionInputValue::Owned(_)));
        for value in [aligned, unaligned] {
            assert_eq!(from_value("t", &value).unwrap().data, bytes);
        }
    }

    #[test]
    fn data_that_does_not_fit_the_shape_is_refused() {
        require_library();
        let refusal = |tensor: &RawTensor| to_value(tensor).err().expect("refused");
        let short = raw(DataType::Fp32, &[2], vec![0; 4]);
        assert!(refusal(&short).contains("holds 4 bytes"));
        let bad_text = raw(DataType::Bytes, &[1], b"\x02\0\0\0\xff\xfe".to_vec());
        assert!(refusal(&bad_text).contains("UTF-8"));
        let missing = raw(DataType::Bytes, &[2], b"\x01\0\0\0a".to_vec());
        assert!(refusal(&missing).contains("needs 2"));
    }

    #[test]
    fn a_sequence_of_maps_becomes_a_matrix_in_key_order() {
        require_library();
        let rows = [[(1i64, 0.75f32), (0, 0.25)], [(0, 0.5), (1, 0.5)]]
            .map(|pairs| Map::<i64, f32>::new(pairs).unwrap());
        let sequence = Sequence::new(rows).unwrap().into_dyn();
        let matrix = from_value("p", &sequence).unwrap();
        assert_eq!(
            (matrix.datatype, matrix.shape.clone()),
            (DataType::Fp32, vec![2, 2])
        );
        let values: Vec<f32> = matrix
            .data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(values, [0.25, 0.75, 0.5, 0.5]);
    }
}

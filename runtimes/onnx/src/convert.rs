//! Conversions between the protocol's tensors (little-endian bytes) and tract's tensors.
//!
//! Inputs are converted to the element type of the graph's input when that loses nothing a
//! model would notice: any number to a float (FP64 to FP32 as MLServer does), an integer or BOOL
//! to an integer type that holds every value, BYTES to strings. Anything else is refused.

use mlhost_guest::{Datatype, Error, Tensor as Wire};
use tract_onnx::prelude::tract_ndarray::{ArrayD, IxDyn};
use tract_onnx::prelude::*;

/// The protocol datatype of a tract element type; `None` for types the protocol cannot carry.
pub fn datatype(datum_type: DatumType) -> Option<Datatype> {
    Some(match datum_type {
        DatumType::Bool => Datatype::Bool,
        DatumType::U8 => Datatype::Uint8,
        DatumType::U16 => Datatype::Uint16,
        DatumType::U32 => Datatype::Uint32,
        DatumType::U64 => Datatype::Uint64,
        DatumType::I8 => Datatype::Int8,
        DatumType::I16 => Datatype::Int16,
        DatumType::I32 => Datatype::Int32,
        DatumType::I64 | DatumType::TDim => Datatype::Int64,
        DatumType::F16 => Datatype::Fp16,
        DatumType::F32 => Datatype::Fp32,
        DatumType::F64 => Datatype::Fp64,
        DatumType::String => Datatype::Bytes,
        _ => return None,
    })
}

/// Converts the request's tensor `wire` to a tract tensor of `target`'s element type and of
/// `wire`'s shape.
pub fn to_tract(wire: &Wire, target: DatumType) -> Result<Tensor, Error> {
    let shape = wire
        .shape
        .iter()
        .map(|&dim| usize::try_from(dim))
        .collect::<Result<Vec<usize>, _>>()
        .map_err(|_| Error::invalid_input(format!("input '{}' is too large", wire.name)))?;
    let refuse = || {
        let wanted = datatype(target).map_or("?", Datatype::protocol_name);
        Error::invalid_input(format!(
            "input '{}' is {} but the model takes {wanted}; send {wanted}",
            wire.name,
            wire.datatype.protocol_name(),
        ))
    };
    match target {
        DatumType::F32 if wire.datatype == Datatype::Fp32 => {
            array(wire, &shape, wire.values::<f32>()?)
        }
        DatumType::F64 if wire.datatype == Datatype::Fp64 => {
            array(wire, &shape, wire.values::<f64>()?)
        }
        DatumType::F16 if wire.datatype == Datatype::Fp16 => {
            array(wire, &shape, wire.values::<f16>()?)
        }
        DatumType::F32 | DatumType::F64 | DatumType::F16 => {
            if matches!(wire.datatype, Datatype::Bool | Datatype::Bytes) {
                return Err(refuse());
            }
            let values = wire.to_f64_vec()?;
            match target {
                DatumType::F32 => array(wire, &shape, values.iter().map(|&v| v as f32).collect()),
                DatumType::F64 => array(wire, &shape, values),
                _ => array(
                    wire,
                    &shape,
                    values.iter().map(|&v| f16::from_f64(v)).collect(),
                ),
            }
        }
        DatumType::Bool if wire.datatype == Datatype::Bool => {
            array(wire, &shape, wire.values::<bool>()?)
        }
        DatumType::String if wire.datatype == Datatype::Bytes => {
            let strings = wire.strings()?;
            array(
                wire,
                &shape,
                strings.into_iter().map(str::to_owned).collect(),
            )
        }
        DatumType::I8 => integers::<i8>(wire, &shape, target),
        DatumType::I16 => integers::<i16>(wire, &shape, target),
        DatumType::I32 => integers::<i32>(wire, &shape, target),
        DatumType::I64 => integers::<i64>(wire, &shape, target),
        DatumType::U8 => integers::<u8>(wire, &shape, target),
        DatumType::U16 => integers::<u16>(wire, &shape, target),
        DatumType::U32 => integers::<u32>(wire, &shape, target),
        DatumType::U64 => integers::<u64>(wire, &shape, target),
        _ => Err(refuse()),
    }
}

/// An integer input: any integer (or BOOL) datatype whose every value fits `T`.
fn integers<T>(wire: &Wire, shape: &[usize], target: DatumType) -> Result<Tensor, Error>
where
    T: Datum + TryFrom<i128>,
{
    let wanted = datatype(target).map_or("?", Datatype::protocol_name);
    let Some(values) = wide_integers(wire) else {
        return Err(Error::invalid_input(format!(
            "input '{}' is {} but the model takes {wanted}; send {wanted}",
            wire.name,
            wire.datatype.protocol_name(),
        )));
    };
    let values = values
        .into_iter()
        .map(|value| {
            T::try_from(value).map_err(|_| {
                Error::invalid_input(format!(
                    "input '{}' holds {value}, which does not fit the model's {wanted}",
                    wire.name
                ))
            })
        })
        .collect::<Result<Vec<T>, Error>>()?;
    array(wire, shape, values)
}

/// The elements of an integer or BOOL tensor, widened; `None` for other datatypes.
fn wide_integers(wire: &Wire) -> Option<Vec<i128>> {
    fn widen<T: mlhost_guest::Element + Into<i128>>(wire: &Wire) -> Option<Vec<i128>> {
        let size = std::mem::size_of::<T>();
        Some(
            wire.data
                .chunks_exact(size)
                .map(|bytes| T::read_le(bytes).into())
                .collect(),
        )
    }
    match wire.datatype {
        Datatype::Bool => Some(
            wire.data
                .iter()
                .map(|&byte| i128::from(byte != 0))
                .collect(),
        ),
        Datatype::Uint8 => widen::<u8>(wire),
        Datatype::Uint16 => widen::<u16>(wire),
        Datatype::Uint32 => widen::<u32>(wire),
        Datatype::Uint64 => widen::<u64>(wire),
        Datatype::Int8 => widen::<i8>(wire),
        Datatype::Int16 => widen::<i16>(wire),
        Datatype::Int32 => widen::<i32>(wire),
        Datatype::Int64 => widen::<i64>(wire),
        _ => None,
    }
}

/// A tract tensor of `shape` from `values`, which must hold exactly as many elements.
fn array<T: Datum>(wire: &Wire, shape: &[usize], values: Vec<T>) -> Result<Tensor, Error> {
    let count = values.len();
    ArrayD::from_shape_vec(IxDyn(shape), values)
        .map(Tensor::from)
        .map_err(|_| {
            Error::invalid_input(format!(
                "input '{}' has {count} elements, its shape {:?} holds {}",
                wire.name,
                wire.shape,
                wire.num_elements()
            ))
        })
}

/// Converts an output of the plan to the protocol's tensor named `name`.
pub fn from_tract(name: &str, value: &Tensor) -> Result<Wire, Error> {
    let shape: Vec<u64> = value.shape().iter().map(|&dim| dim as u64).collect();
    let failed = |error: TractError| Error::internal(format!("output '{name}': {error:#}"));
    match value.datum_type() {
        DatumType::Bool => Wire::from_values(name, &shape, &plain::<bool>(value).map_err(failed)?),
        DatumType::U8 => Wire::from_values(name, &shape, &plain::<u8>(value).map_err(failed)?),
        DatumType::U16 => Wire::from_values(name, &shape, &plain::<u16>(value).map_err(failed)?),
        DatumType::U32 => Wire::from_values(name, &shape, &plain::<u32>(value).map_err(failed)?),
        DatumType::U64 => Wire::from_values(name, &shape, &plain::<u64>(value).map_err(failed)?),
        DatumType::I8 => Wire::from_values(name, &shape, &plain::<i8>(value).map_err(failed)?),
        DatumType::I16 => Wire::from_values(name, &shape, &plain::<i16>(value).map_err(failed)?),
        DatumType::I32 => Wire::from_values(name, &shape, &plain::<i32>(value).map_err(failed)?),
        DatumType::I64 => Wire::from_values(name, &shape, &plain::<i64>(value).map_err(failed)?),
        DatumType::F16 => Wire::from_values(name, &shape, &plain::<f16>(value).map_err(failed)?),
        DatumType::F32 => Wire::from_values(name, &shape, &plain::<f32>(value).map_err(failed)?),
        DatumType::F64 => Wire::from_values(name, &shape, &plain::<f64>(value).map_err(failed)?),
        DatumType::TDim => {
            let dims = plain::<TDim>(value).map_err(failed)?;
            let values = dims
                .iter()
                .map(|dim| dim.to_i64())
                .collect::<Result<Vec<i64>, _>>()
                .map_err(|_| {
                    Error::internal(format!("output '{name}' holds an unresolved dimension"))
                })?;
            Wire::from_values(name, &shape, &values)
        }
        DatumType::String => {
            let view = value.to_plain_array_view::<String>().map_err(failed)?;
            let strings: Vec<&String> = view.iter().collect();
            Wire::from_bytes_elements(name, &shape, &strings)
        }
        other => Err(Error::internal(format!(
            "output '{name}' has element type {other:?}, which the protocol cannot carry"
        ))),
    }
}

/// The elements of `value` in row-major order.
fn plain<T: Datum + Clone>(value: &Tensor) -> TractResult<Vec<T>> {
    Ok(value.to_plain_array_view::<T>()?.iter().cloned().collect())
}

//! Rust element types of tensors and their little-endian encodings.

use crate::Datatype;

/// A Rust type that is the element of a tensor datatype.
///
/// Implemented for `bool` (BOOL), `u8`..`u64` (UINT8..UINT64), `i8`..`i64` (INT8..INT64),
/// `f32` (FP32), `f64` (FP64), and `half::f16` / `half::bf16` (FP16 / BF16, from the `half`
/// crate). BYTES has no element type: see
/// [`Tensor::bytes_elements`](crate::Tensor::bytes_elements).
///
/// Write code generic over the element type with it:
///
/// ```
/// use mlhost_guest::{Datatype, Element, Error, Tensor};
///
/// /// Reverses a tensor of 1 dimension, keeping its datatype.
/// fn reversed<T: Element>(x: &Tensor) -> Result<Tensor, Error> {
///     let mut values = x.values::<T>()?;
///     values.reverse();
///     Tensor::from_values(&x.name, &x.shape, &values)
/// }
///
/// let x = Tensor::from_values("x", &[3], &[1u16, 2, 3])?;
/// let y = match x.datatype {
///     Datatype::Uint16 => reversed::<u16>(&x)?,
///     Datatype::Fp32 => reversed::<f32>(&x)?,
///     _ => return Err(Error::invalid_input("x must be UINT16 or FP32")),
/// };
/// assert_eq!(y.values::<u16>()?, vec![3, 2, 1]);
/// assert_eq!(<u16 as Element>::DATATYPE, Datatype::Uint16);
/// # Ok::<(), Error>(())
/// ```
pub trait Element: Copy + Sized {
    /// The tensor datatype whose elements are `Self`.
    const DATATYPE: Datatype;
    /// Bytes per element.
    const SIZE: usize;
    /// Reads one element from exactly `SIZE` little-endian bytes.
    fn read_le(bytes: &[u8]) -> Self;
    /// Appends the element's little-endian bytes.
    fn write_le(self, out: &mut Vec<u8>);
}

macro_rules! numeric_element {
    ($($ty:ty => $datatype:ident),* $(,)?) => {$(
        impl Element for $ty {
            const DATATYPE: Datatype = Datatype::$datatype;
            const SIZE: usize = std::mem::size_of::<$ty>();
            fn read_le(bytes: &[u8]) -> Self {
                let mut array = [0u8; std::mem::size_of::<$ty>()];
                array.copy_from_slice(bytes);
                <$ty>::from_le_bytes(array)
            }
            fn write_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}

numeric_element! {
    u8 => Uint8, u16 => Uint16, u32 => Uint32, u64 => Uint64,
    i8 => Int8, i16 => Int16, i32 => Int32, i64 => Int64,
    f32 => Fp32, f64 => Fp64,
    half::f16 => Fp16, half::bf16 => Bf16,
}

impl Element for bool {
    const DATATYPE: Datatype = Datatype::Bool;
    const SIZE: usize = 1;
    fn read_le(bytes: &[u8]) -> Self {
        bytes[0] != 0
    }
    fn write_le(self, out: &mut Vec<u8>) {
        out.push(u8::from(self));
    }
}

/// Bytes per element of a fixed-size datatype; `None` for BYTES.
pub(crate) fn element_size(datatype: Datatype) -> Option<usize> {
    Some(match datatype {
        Datatype::Bool | Datatype::Uint8 | Datatype::Int8 => 1,
        Datatype::Uint16 | Datatype::Int16 | Datatype::Fp16 | Datatype::Bf16 => 2,
        Datatype::Uint32 | Datatype::Int32 | Datatype::Fp32 => 4,
        Datatype::Uint64 | Datatype::Int64 | Datatype::Fp64 => 8,
        Datatype::Bytes => return None,
    })
}

impl Datatype {
    /// The protocol's name of the datatype, as clients write it: `FP32`, `BYTES`, ...
    ///
    /// ```
    /// assert_eq!(mlhost_guest::Datatype::Fp32.protocol_name(), "FP32");
    /// ```
    pub fn protocol_name(self) -> &'static str {
        match self {
            Datatype::Bool => "BOOL",
            Datatype::Uint8 => "UINT8",
            Datatype::Uint16 => "UINT16",
            Datatype::Uint32 => "UINT32",
            Datatype::Uint64 => "UINT64",
            Datatype::Int8 => "INT8",
            Datatype::Int16 => "INT16",
            Datatype::Int32 => "INT32",
            Datatype::Int64 => "INT64",
            Datatype::Fp16 => "FP16",
            Datatype::Fp32 => "FP32",
            Datatype::Fp64 => "FP64",
            Datatype::Bf16 => "BF16",
            Datatype::Bytes => "BYTES",
        }
    }
}

/// Reads one element of a numeric or BOOL datatype, from its little-endian bytes, as `f64`.
pub(crate) fn read_as_f64(datatype: Datatype, bytes: &[u8]) -> f64 {
    match datatype {
        Datatype::Bool => f64::from(u8::from(bool::read_le(bytes))),
        Datatype::Uint8 => f64::from(u8::read_le(bytes)),
        Datatype::Uint16 => f64::from(u16::read_le(bytes)),
        Datatype::Uint32 => f64::from(u32::read_le(bytes)),
        Datatype::Uint64 => u64::read_le(bytes) as f64,
        Datatype::Int8 => f64::from(i8::read_le(bytes)),
        Datatype::Int16 => f64::from(i16::read_le(bytes)),
        Datatype::Int32 => f64::from(i32::read_le(bytes)),
        Datatype::Int64 => i64::read_le(bytes) as f64,
        Datatype::Fp16 => f64::from(half::f16::read_le(bytes)),
        Datatype::Bf16 => f64::from(half::bf16::read_le(bytes)),
        Datatype::Fp32 => f64::from(f32::read_le(bytes)),
        Datatype::Fp64 => f64::read_le(bytes),
        Datatype::Bytes => unreachable!("BYTES has no numeric value"),
    }
}

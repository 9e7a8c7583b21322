//! Datatypes and tensors, with the checks every decoder applies.

use super::Parameters;
use std::fmt;
use std::str::FromStr;

/// The Open Inference Protocol datatypes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    Bool,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Int8,
    Int16,
    Int32,
    Int64,
    Fp16,
    Fp32,
    Fp64,
    Bf16,
    Bytes,
}

impl DataType {
    /// Every datatype, in the protocol's order.
    pub const ALL: [DataType; 14] = [
        DataType::Bool,
        DataType::Uint8,
        DataType::Uint16,
        DataType::Uint32,
        DataType::Uint64,
        DataType::Int8,
        DataType::Int16,
        DataType::Int32,
        DataType::Int64,
        DataType::Fp16,
        DataType::Fp32,
        DataType::Fp64,
        DataType::Bf16,
        DataType::Bytes,
    ];

    /// The protocol's name of the datatype, e.g. `"FP32"`.
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::Bool => "BOOL",
            DataType::Uint8 => "UINT8",
            DataType::Uint16 => "UINT16",
            DataType::Uint32 => "UINT32",
            DataType::Uint64 => "UINT64",
            DataType::Int8 => "INT8",
            DataType::Int16 => "INT16",
            DataType::Int32 => "INT32",
            DataType::Int64 => "INT64",
            DataType::Fp16 => "FP16",
            DataType::Fp32 => "FP32",
            DataType::Fp64 => "FP64",
            DataType::Bf16 => "BF16",
            DataType::Bytes => "BYTES",
        }
    }

    /// Bytes per element; `None` for BYTES, whose elements vary in size.
    pub fn element_size(self) -> Option<usize> {
        Some(match self {
            DataType::Bool | DataType::Uint8 | DataType::Int8 => 1,
            DataType::Uint16 | DataType::Int16 | DataType::Fp16 | DataType::Bf16 => 2,
            DataType::Uint32 | DataType::Int32 | DataType::Fp32 => 4,
            DataType::Uint64 | DataType::Int64 | DataType::Fp64 => 8,
            DataType::Bytes => return None,
        })
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DataType {
    type Err = TensorError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        DataType::ALL
            .into_iter()
            .find(|datatype| datatype.as_str() == name)
            .ok_or_else(|| TensorError::UnknownDatatype(name.to_string()))
    }
}

/// Why a tensor is not valid.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TensorError {
    #[error(
        "unknown datatype '{}'; expected one of BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64, BF16, BYTES",
        super::quoted(.0)
    )]
    UnknownDatatype(String),
    #[error("shape {0:?} has a negative dimension")]
    NegativeDimension(Vec<i64>),
    #[error("shape {0:?} holds more than the {1} elements a tensor may have")]
    ShapeTooLarge(Vec<i64>, u64),
    #[error("shape {shape:?} holds {expected} elements but {actual} were given")]
    ElementCount {
        shape: Vec<u64>,
        expected: u64,
        actual: u64,
    },
    #[error(
        "{bytes} bytes of {datatype} data is not a whole number of elements: each takes {size} bytes"
    )]
    PartialElement {
        datatype: DataType,
        bytes: usize,
        size: usize,
    },
    #[error("BYTES data is malformed: {0}")]
    MalformedBytes(&'static str),
}

/// Converts a protocol shape to unsigned dimensions, checking for negative dimensions and for
/// an element count that overflows or passes `max_elements`. Returns the shape and its count.
pub(crate) fn checked_shape(
    shape: &[i64],
    max_elements: u64,
) -> Result<(Vec<u64>, u64), TensorError> {
    let mut dims = Vec::with_capacity(shape.len());
    let mut count: u64 = 1;
    for &dim in shape {
        let dim = u64::try_from(dim).map_err(|_| TensorError::NegativeDimension(shape.to_vec()))?;
        count = count
            .checked_mul(dim)
            .filter(|&count| count <= max_elements)
            .ok_or_else(|| TensorError::ShapeTooLarge(shape.to_vec(), max_elements))?;
        dims.push(dim);
    }
    Ok((dims, count))
}

/// A named tensor whose data is little-endian bytes in row-major order.
///
/// BYTES elements are each a 4-byte little-endian length followed by the bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub datatype: DataType,
    pub shape: Vec<u64>,
    pub data: Vec<u8>,
    pub parameters: Parameters,
}

impl Tensor {
    /// The product of the shape (callers validated it on decoding).
    pub fn num_elements(&self) -> u64 {
        self.shape.iter().product()
    }

    /// Checks that `data` holds exactly the elements the shape calls for.
    pub fn validate(&self) -> Result<(), TensorError> {
        let expected = self.num_elements();
        let actual = match self.datatype.element_size() {
            Some(size) => {
                if !self.data.len().is_multiple_of(size) {
                    return Err(TensorError::PartialElement {
                        datatype: self.datatype,
                        bytes: self.data.len(),
                        size,
                    });
                }
                (self.data.len() / size) as u64
            }
            None => count_bytes_elements(&self.data)?,
        };
        if actual == expected {
            Ok(())
        } else {
            Err(TensorError::ElementCount {
                shape: self.shape.clone(),
                expected,
                actual,
            })
        }
    }

    /// The elements of a BYTES tensor, each without its length prefix.
    pub fn bytes_elements(&self) -> BytesElements<'_> {
        BytesElements { rest: &self.data }
    }
}

/// Iterates over the elements of length-prefixed BYTES data.
pub struct BytesElements<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for BytesElements<'a> {
    type Item = Result<&'a [u8], TensorError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let Some((length, tail)) = self.rest.split_first_chunk::<4>() else {
            self.rest = &[];
            return Some(Err(TensorError::MalformedBytes("truncated length prefix")));
        };
        let length = u32::from_le_bytes(*length) as usize;
        if tail.len() < length {
            self.rest = &[];
            return Some(Err(TensorError::MalformedBytes(
                "element longer than the data",
            )));
        }
        let (element, tail) = tail.split_at(length);
        self.rest = tail;
        Some(Ok(element))
    }
}

fn count_bytes_elements(data: &[u8]) -> Result<u64, TensorError> {
    let mut count = 0;
    for element in (BytesElements { rest: data }) {
        element?;
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datatype_names_round_trip() {
        for datatype in DataType::ALL {
            assert_eq!(datatype.as_str().parse::<DataType>(), Ok(datatype));
        }
        assert!(matches!(
            "FLOAT".parse::<DataType>(),
            Err(TensorError::UnknownDatatype(_))
        ));
    }

    #[test]
    fn shape_checks_catch_negative_and_overflowing_dimensions() {
        assert_eq!(checked_shape(&[2, 3], 6), Ok((vec![2, 3], 6)));
        assert_eq!(checked_shape(&[], 6), Ok((vec![], 1)));
        assert!(matches!(
            checked_shape(&[2, -1], 6),
            Err(TensorError::NegativeDimension(_))
        ));
        assert!(matches!(
            checked_shape(&[i64::MAX, i64::MAX, 4], u64::MAX),
            Err(TensorError::ShapeTooLarge(..))
        ));
        assert!(matches!(
            checked_shape(&[2, 4], 7),
            Err(TensorError::ShapeTooLarge(_, 7))
        ));
    }

    #[test]
    fn validate_counts_fixed_and_bytes_elements() {
        let mut tensor = Tensor {
            name: "x".into(),
            datatype: DataType::Fp32,
            shape: vec![2],
            data: vec![0; 8],
            parameters: vec![],
        };
        assert_eq!(tensor.validate(), Ok(()));
        tensor.data.truncate(4);
        assert!(matches!(
            tensor.validate(),
            Err(TensorError::ElementCount {
                expected: 2,
                actual: 1,
                ..
            })
        ));

        tensor.data = vec![0; 17];
        tensor.shape = vec![1, 4];
        assert_eq!(
            tensor.validate().unwrap_err().to_string(),
            "17 bytes of FP32 data is not a whole number of elements: each takes 4 bytes"
        );
        tensor.shape = vec![2];

        tensor.datatype = DataType::Bytes;
        tensor.data = [&2u32.to_le_bytes()[..], b"hi", &0u32.to_le_bytes()].concat();
        assert_eq!(tensor.validate(), Ok(()));
        tensor.data.truncate(5);
        assert!(matches!(
            tensor.validate(),
            Err(TensorError::MalformedBytes(_))
        ));
    }
}

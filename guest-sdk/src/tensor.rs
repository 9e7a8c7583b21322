//! Typed views of tensors and builders for outputs.
//!
//! A [`Tensor`]'s `data` holds its elements in row-major order as little-endian bytes (1 byte per
//! BOOL, 0 or 1), or, for BYTES, each element as a 4-byte little-endian length and its bytes. The
//! methods here read and write that encoding; errors name the tensor, and those of the readers
//! are [`Error::InvalidInput`] (the client gets a 400), those of the builders
//! [`Error::Internal`] (a 500: a wrong output is the runtime's fault).

use crate::element::{element_size, read_as_f64};
use crate::{Datatype, Element, Error, Parameter, Tensor};

impl Tensor {
    /// The number of elements: the product of the shape (saturating at `usize::MAX`, which
    /// no real tensor reaches).
    ///
    /// ```
    /// # use mlhost_guest::Tensor;
    /// let x = Tensor::from_values("x", &[2, 3], &[0u8; 6])?;
    /// assert_eq!(x.num_elements(), 6);
    /// # Ok::<(), mlhost_guest::Error>(())
    /// ```
    pub fn num_elements(&self) -> usize {
        saturating_product(&self.shape)
    }

    /// The size of dimension 0 (the rows of a batch); 1 for a scalar.
    ///
    /// ```
    /// # use mlhost_guest::Tensor;
    /// let x = Tensor::from_values("x", &[2, 3], &[0u8; 6])?;
    /// assert_eq!(x.rows(), 2);
    /// assert_eq!(Tensor::from_values("s", &[], &[7u8])?.rows(), 1);
    /// # Ok::<(), mlhost_guest::Error>(())
    /// ```
    pub fn rows(&self) -> usize {
        self.shape
            .first()
            .map_or(1, |&dim| usize::try_from(dim).unwrap_or(usize::MAX))
    }

    /// Elements per row: the product of every dimension after the first (saturating); 1 for a
    /// tensor of rank 0 or 1.
    ///
    /// ```
    /// # use mlhost_guest::Tensor;
    /// let x = Tensor::from_values("x", &[2, 3, 4], &[0u8; 24])?;
    /// assert_eq!(x.row_len(), 12);
    /// # Ok::<(), mlhost_guest::Error>(())
    /// ```
    pub fn row_len(&self) -> usize {
        saturating_product(self.shape.get(1..).unwrap_or_default())
    }

    /// Checks that the tensor has `rank` dimensions; [`Error::InvalidInput`], naming the tensor
    /// and its shape, when it has not.
    ///
    /// ```
    /// # use mlhost_guest::{Error, Tensor};
    /// let x = Tensor::from_values("x", &[2, 2], &[1.0f64, 2.0, 3.0, 4.0])?;
    /// x.expect_rank(2)?;
    /// assert!(matches!(x.expect_rank(1),
    ///     Err(Error::InvalidInput(m))
    ///         if m == "input 'x' must have 1 dimensions, got shape [2, 2]"));
    /// # Ok::<(), mlhost_guest::Error>(())
    /// ```
    pub fn expect_rank(&self, rank: usize) -> Result<(), Error> {
        if self.shape.len() == rank {
            Ok(())
        } else {
            Err(Error::invalid_input(format!(
                "input '{}' must have {rank} dimensions, got shape {:?}",
                self.name, self.shape
            )))
        }
    }

    /// The elements as `T`, which must be the tensor's own datatype (see [`Element`]): `f32` for
    /// FP32, `i64` for INT64, `bool` for BOOL, `half::f16` for FP16, ...
    ///
    /// Copies: the data of a `list<u8>` is not aligned for `T` in guest memory. To take any
    /// numeric datatype, use [`Tensor::to_f64_vec`] or [`Tensor::to_f32_vec`].
    ///
    /// ```
    /// # use mlhost_guest::{Error, Tensor};
    /// let x = Tensor::from_values("x", &[3], &[1i64, -2, 3])?;
    /// assert_eq!(x.values::<i64>()?, vec![1, -2, 3]);
    /// assert!(matches!(x.values::<f32>(),
    ///     Err(Error::InvalidInput(m)) if m == "input 'x' has datatype INT64, expected FP32"));
    /// # Ok::<(), mlhost_guest::Error>(())
    /// ```
    pub fn values<T: Element>(&self) -> Result<Vec<T>, Error> {
        if self.datatype != T::DATATYPE {
            return Err(Error::invalid_input(format!(
                "input '{}' has datatype {}, expected {}",
                self.name,
                self.datatype.protocol_name(),
                T::DATATYPE.protocol_name()
            )));
        }
        Ok(self.data.chunks_exact(T::SIZE).map(T::read_le).collect())
    }

    /// The elements of any numeric or BOOL datatype, converted to `f64` (BOOL as 0 or 1;
    /// 64-bit integers past 2⁵³ are rounded). BYTES is an [`Error::InvalidInput`].
    ///
    /// ```
    /// # use mlhost_guest::Tensor;
    /// let x = Tensor::from_values("x", &[2], &[1.5f32, -2.0])?;
    /// assert_eq!(x.to_f64_vec()?, vec![1.5, -2.0]);
    /// let flags = Tensor::from_values("flags", &[2], &[true, false])?;
    /// assert_eq!(flags.to_f64_vec()?, vec![1.0, 0.0]);
    /// # Ok::<(), mlhost_guest::Error>(())
    /// ```
    pub fn to_f64_vec(&self) -> Result<Vec<f64>, Error> {
        let size = self.numeric_size()?;
        Ok(self
            .data
            .chunks_exact(size)
            .map(|bytes| read_as_f64(self.datatype, bytes))
            .collect())
    }

    /// The elements of any numeric or BOOL datatype, converted to `f32` (rounded to the nearest
    /// `f32`). BYTES is an [`Error::InvalidInput`].
    ///
    /// ```
    /// # use mlhost_guest::Tensor;
    /// let x = Tensor::from_values("x", &[3], &[1i32, 2, 3])?;
    /// assert_eq!(x.to_f32_vec()?, vec![1.0f32, 2.0, 3.0]);
    /// # Ok::<(), mlhost_guest::Error>(())
    /// ```
    pub fn to_f32_vec(&self) -> Result<Vec<f32>, Error> {
        let size = self.numeric_size()?;
        Ok(self
            .data
            .chunks_exact(size)
            .map(|bytes| read_as_f64(self.datatype, bytes) as f32)
            .collect())
    }

    /// The elements of a BYTES tensor, each as a byte slice (borrowed from `data`: no copy).
    ///
    /// Another datatype, or data that is not length-prefixed elements, is an
    /// [`Error::InvalidInput`].
    ///
    /// ```
    /// # use mlhost_guest::Tensor;
    /// let blobs = Tensor::from_bytes_elements("blobs", &[2], &[&[0xffu8, 0x00][..], b"ab"])?;
    /// assert_eq!(blobs.bytes_elements()?, vec![&[0xff, 0x00][..], b"ab"]);
    /// // On the wire each element is a 4-byte little-endian length, then its bytes.
    /// assert_eq!(&blobs.data[..6], &[2, 0, 0, 0, 0xff, 0x00]);
    /// # Ok::<(), mlhost_guest::Error>(())
    /// ```
    pub fn bytes_elements(&self) -> Result<Vec<&[u8]>, Error> {
        if self.datatype != Datatype::Bytes {
            return Err(Error::invalid_input(format!(
                "input '{}' has datatype {}, expected BYTES",
                self.name,
                self.datatype.protocol_name()
            )));
        }
        let mut elements = Vec::with_capacity(self.num_elements());
        let mut rest = self.data.as_slice();
        while !rest.is_empty() {
            let malformed =
                || Error::invalid_input(format!("input '{}' has malformed BYTES data", self.name));
            let (length, tail) = rest.split_first_chunk::<4>().ok_or_else(malformed)?;
            let length = u32::from_le_bytes(*length) as usize;
            if tail.len() < length {
                return Err(malformed());
            }
            let (element, tail) = tail.split_at(length);
            elements.push(element);
            rest = tail;
        }
        Ok(elements)
    }

    /// The elements of a BYTES tensor as UTF-8 strings (content type `str`), borrowed from
    /// `data`. An element that is not UTF-8 is an [`Error::InvalidInput`].
    ///
    /// ```
    /// # use mlhost_guest::Tensor;
    /// let text = Tensor::from_bytes_elements("text", &[2], &["hello", "wörld"])?;
    /// assert_eq!(text.strings()?, vec!["hello", "wörld"]);
    /// # Ok::<(), mlhost_guest::Error>(())
    /// ```
    pub fn strings(&self) -> Result<Vec<&str>, Error> {
        self.bytes_elements()?
            .into_iter()
            .map(|bytes| {
                std::str::from_utf8(bytes).map_err(|_| {
                    Error::invalid_input(format!("input '{}' holds a non-UTF-8 string", self.name))
                })
            })
            .collect()
    }

    /// Builds a tensor from typed values, its datatype from `T` (see [`Element`]); `shape`
    /// must hold exactly `values.len()` elements, else [`Error::Internal`].
    ///
    /// ```
    /// # use mlhost_guest::{Datatype, Tensor};
    /// let y = Tensor::from_values("y", &[2, 2], &[1.0f64, 2.0, 3.0, 4.0])?;
    /// assert_eq!(y.datatype, Datatype::Fp64);
    /// assert_eq!(y.shape, vec![2, 2]);
    /// assert!(Tensor::from_values("y", &[3], &[1.0f64]).is_err());
    /// # Ok::<(), mlhost_guest::Error>(())
    /// ```
    pub fn from_values<T: Element>(
        name: &str,
        shape: &[u64],
        values: &[T],
    ) -> Result<Tensor, Error> {
        check_count(name, shape, values.len())?;
        let mut data = Vec::with_capacity(values.len() * T::SIZE);
        for &value in values {
            value.write_le(&mut data);
        }
        Ok(Tensor {
            name: name.to_string(),
            datatype: T::DATATYPE,
            shape: shape.to_vec(),
            data,
            parameters: Vec::new(),
        })
    }

    /// Builds a BYTES tensor from strings or byte strings; `shape` must hold exactly
    /// `elements.len()` elements, else [`Error::Internal`].
    ///
    /// ```
    /// # use mlhost_guest::{Datatype, Tensor};
    /// let labels = Tensor::from_bytes_elements("label", &[2], &["cat", "dog"])?;
    /// assert_eq!(labels.datatype, Datatype::Bytes);
    /// assert_eq!(labels.strings()?, vec!["cat", "dog"]);
    /// # Ok::<(), mlhost_guest::Error>(())
    /// ```
    pub fn from_bytes_elements<B: AsRef<[u8]>>(
        name: &str,
        shape: &[u64],
        elements: &[B],
    ) -> Result<Tensor, Error> {
        check_count(name, shape, elements.len())?;
        let total: usize = elements
            .iter()
            .map(|element| 4 + element.as_ref().len())
            .sum();
        let mut data = Vec::with_capacity(total);
        for element in elements {
            let bytes = element.as_ref();
            let length = u32::try_from(bytes.len()).map_err(|_| {
                Error::internal(format!("output '{name}' has an element over 4 GiB"))
            })?;
            data.extend_from_slice(&length.to_le_bytes());
            data.extend_from_slice(bytes);
        }
        Ok(Tensor {
            name: name.to_string(),
            datatype: Datatype::Bytes,
            shape: shape.to_vec(),
            data,
            parameters: Vec::new(),
        })
    }

    /// Adds a parameter. (For `content_type`, use [`Tensor::with_content_type`], which replaces
    /// the one the tensor had.)
    ///
    /// ```
    /// # use mlhost_guest::{find_parameter, Parameter, ParameterValue, Tensor};
    /// let y = Tensor::from_values("y", &[1], &[0.5f64])?
    ///     .with_parameter(Parameter::string("unit", "kg"));
    /// assert!(matches!(find_parameter(&y.parameters, "unit"),
    ///     Some(ParameterValue::String(unit)) if unit == "kg"));
    /// # Ok::<(), mlhost_guest::Error>(())
    /// ```
    pub fn with_parameter(mut self, parameter: Parameter) -> Tensor {
        self.parameters.push(parameter);
        self
    }

    fn numeric_size(&self) -> Result<usize, Error> {
        element_size(self.datatype).ok_or_else(|| {
            Error::invalid_input(format!("input '{}' is BYTES, expected numbers", self.name))
        })
    }
}

/// The product of `dims` in `usize`, saturating: a dimension too large for a 32-bit guest never
/// wraps into a small number.
fn saturating_product(dims: &[u64]) -> usize {
    dims.iter()
        .map(|&dim| usize::try_from(dim).unwrap_or(usize::MAX))
        .fold(1usize, usize::saturating_mul)
}

fn check_count(name: &str, shape: &[u64], count: usize) -> Result<(), Error> {
    // Checked: a product that overflows must not wrap into `count` (or panic in debug builds).
    let expected = if shape.contains(&0) {
        Some(0)
    } else {
        shape
            .iter()
            .try_fold(1u64, |product, &dim| product.checked_mul(dim))
    };
    if expected == Some(count as u64) {
        Ok(())
    } else {
        Err(Error::internal(format!(
            "output '{name}' has {count} elements but shape {shape:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_values_round_trip_through_little_endian_bytes() {
        let tensor = Tensor::from_values("t", &[2, 2], &[1i32, -2, 3, i32::MAX]).unwrap();
        assert_eq!(tensor.datatype, Datatype::Int32);
        assert_eq!(&tensor.data[..4], &1i32.to_le_bytes());
        assert_eq!(tensor.values::<i32>().unwrap(), vec![1, -2, 3, i32::MAX]);
        assert_eq!(
            tensor.to_f64_vec().unwrap(),
            vec![1.0, -2.0, 3.0, i32::MAX as f64]
        );
        assert_eq!(
            (tensor.rows(), tensor.row_len(), tensor.num_elements()),
            (2, 2, 4)
        );
        assert!(
            matches!(tensor.values::<f32>(),
                Err(Error::InvalidInput(message))
                    if message == "input 't' has datatype INT32, expected FP32"),
            "wrong element type, named as the protocol names it"
        );
        assert!(
            Tensor::from_values("t", &[3], &[1.0f64]).is_err(),
            "shape mismatch"
        );
        assert!(
            Tensor::from_values("t", &[1 << 32, 1 << 32, 0], &[] as &[f64]).is_ok(),
            "an empty tensor"
        );
        assert!(
            Tensor::from_values("t", &[1 << 32, 1 << 32], &[1.0f64]).is_err(),
            "a shape whose product overflows"
        );
    }

    #[test]
    fn half_precision_and_bool_convert_to_f64() {
        let halves = Tensor::from_values(
            "h",
            &[2],
            &[half::f16::from_f32(0.5), half::f16::from_f32(-4.0)],
        )
        .unwrap();
        assert_eq!(halves.to_f64_vec().unwrap(), vec![0.5, -4.0]);
        let flags = Tensor::from_values("b", &[2], &[true, false]).unwrap();
        assert_eq!(flags.data, vec![1, 0]);
        assert_eq!(flags.to_f32_vec().unwrap(), vec![1.0, 0.0]);
    }

    #[test]
    fn bytes_tensors_hold_length_prefixed_elements() {
        let tensor = Tensor::from_bytes_elements("s", &[2], &["hé", ""]).unwrap();
        assert_eq!(
            tensor.data,
            [
                &3u32.to_le_bytes()[..],
                "hé".as_bytes(),
                &0u32.to_le_bytes()
            ]
            .concat()
        );
        assert_eq!(tensor.strings().unwrap(), vec!["hé", ""]);
        assert!(tensor.to_f64_vec().is_err());

        let mut truncated = tensor.clone();
        truncated.data.truncate(5);
        assert!(matches!(
            truncated.bytes_elements(),
            Err(Error::InvalidInput(_))
        ));
    }
}

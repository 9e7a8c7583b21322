//! The streaming deserializer of a tensor's `data`: a flat or nested JSON array, read element by
//! element straight into little-endian bytes of the tensor's datatype, with its range, kind and
//! shape checked on the way.

use crate::codec::DataType;
use serde::Deserializer;
use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use std::fmt;

/// Parses a tensor's `data` (raw JSON, flat or nested after `shape`) into little-endian bytes of
/// `datatype`; returns them with the number of elements found, never more than `expected`.
pub(super) fn parse_data(
    raw: &str,
    datatype: DataType,
    shape: &[u64],
    expected: u64,
) -> Result<(Vec<u8>, u64), serde_json::Error> {
    // Each element takes at least two characters of JSON ("1,"): never reserve more than the
    // text can hold, whatever the shape claims.
    let bound = expected.min(raw.len() as u64 / 2 + 1) as usize;
    let mut sink = DataSink {
        datatype,
        data: Vec::with_capacity(bound * datatype.element_size().unwrap_or(8)),
        count: 0,
        expected,
        shape: shape.to_vec(),
        depth: 0,
        nested: false,
    };
    let mut deserializer = serde_json::Deserializer::from_str(raw);
    Elements(&mut sink).deserialize(&mut deserializer)?;
    Ok((sink.data, sink.count))
}

/// Where decoded elements of one tensor accumulate.
struct DataSink {
    datatype: DataType,
    data: Vec<u8>,
    count: u64,
    expected: u64,
    /// The tensor's shape: nested data must follow it level by level.
    shape: Vec<u64>,
    /// How many arrays deep the parser is.
    depth: usize,
    /// Whether the data is nested (an array inside the top-level array) rather than flat.
    nested: bool,
}

impl DataSink {
    fn claim_one<E: de::Error>(&mut self) -> Result<(), E> {
        if self.nested && self.depth != self.shape.len() {
            return Err(E::custom(format_args!(
                "nested data does not follow the shape {:?}",
                self.shape
            )));
        }
        self.count += 1;
        if self.count > self.expected {
            return Err(E::custom(format_args!(
                "more than the {} elements of the shape",
                self.expected
            )));
        }
        Ok(())
    }

    fn push_integer<E: de::Error>(&mut self, value: i128) -> Result<(), E> {
        if matches!(
            self.datatype,
            DataType::Fp16 | DataType::Fp32 | DataType::Fp64 | DataType::Bf16
        ) {
            return self.push_float(value as f64);
        }
        self.claim_one()?;
        let out_of_range = || {
            E::custom(format_args!(
                "{value} is out of range for {}",
                self.datatype
            ))
        };
        let data = &mut self.data;
        match self.datatype {
            DataType::Uint8 => data.push(u8::try_from(value).map_err(|_| out_of_range())?),
            DataType::Uint16 => data.extend(
                u16::try_from(value)
                    .map_err(|_| out_of_range())?
                    .to_le_bytes(),
            ),
            DataType::Uint32 => data.extend(
                u32::try_from(value)
                    .map_err(|_| out_of_range())?
                    .to_le_bytes(),
            ),
            DataType::Uint64 => data.extend(
                u64::try_from(value)
                    .map_err(|_| out_of_range())?
                    .to_le_bytes(),
            ),
            DataType::Int8 => data.extend(
                i8::try_from(value)
                    .map_err(|_| out_of_range())?
                    .to_le_bytes(),
            ),
            DataType::Int16 => data.extend(
                i16::try_from(value)
                    .map_err(|_| out_of_range())?
                    .to_le_bytes(),
            ),
            DataType::Int32 => data.extend(
                i32::try_from(value)
                    .map_err(|_| out_of_range())?
                    .to_le_bytes(),
            ),
            DataType::Int64 => data.extend(
                i64::try_from(value)
                    .map_err(|_| out_of_range())?
                    .to_le_bytes(),
            ),
            DataType::Bool
            | DataType::Bytes
            | DataType::Fp16
            | DataType::Fp32
            | DataType::Fp64
            | DataType::Bf16 => {
                return Err(E::custom(format_args!(
                    "expected {}, got the number {value}",
                    self.expected_kind()
                )));
            }
        }
        Ok(())
    }

    fn push_float<E: de::Error>(&mut self, value: f64) -> Result<(), E> {
        match self.datatype {
            DataType::Fp64 => self.data.extend(value.to_le_bytes()),
            DataType::Fp32 => {
                let narrowed = value as f32;
                if narrowed.is_infinite() {
                    return Err(E::custom(format_args!("{value} is out of range for FP32")));
                }
                self.data.extend(narrowed.to_le_bytes());
            }
            DataType::Fp16 => {
                let narrowed = half::f16::from_f64(value);
                if narrowed.is_infinite() {
                    return Err(E::custom(format_args!("{value} is out of range for FP16")));
                }
                self.data.extend(narrowed.to_le_bytes());
            }
            DataType::Bf16 => {
                let narrowed = half::bf16::from_f64(value);
                if narrowed.is_infinite() {
                    return Err(E::custom(format_args!("{value} is out of range for BF16")));
                }
                self.data.extend(narrowed.to_le_bytes());
            }
            _ if value.fract() == 0.0 && value.abs() < 2f64.powi(64) => {
                return self.push_integer(value as i128);
            }
            _ => {
                return Err(E::custom(format_args!(
                    "expected {}, got the number {value}",
                    self.expected_kind()
                )));
            }
        }
        self.claim_one()
    }

    fn expected_kind(&self) -> &'static str {
        match self.datatype {
            DataType::Bool => "a boolean",
            DataType::Bytes => "a string",
            DataType::Fp16 | DataType::Fp32 | DataType::Fp64 | DataType::Bf16 => "a number",
            _ => "an integer",
        }
    }
}

/// Deserializes a (possibly nested) array of elements into a [`DataSink`].
struct Elements<'s>(&'s mut DataSink);

impl<'de> DeserializeSeed<'de> for Elements<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Elements<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} or an array of them", self.0.expected_kind())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let sink = self.0;
        let level = sink.depth;
        if level == 1 {
            if sink.count > 0 && !sink.nested {
                return Err(de::Error::custom(
                    "data mixes flat elements and nested arrays",
                ));
            }
            sink.nested = true;
        }
        sink.depth += 1;
        let mut length = 0u64;
        while seq.next_element_seed(Elements(&mut *sink))?.is_some() {
            length += 1;
        }
        sink.depth -= 1;
        // Nested data holds, at each level, as many arrays (or elements) as that dimension.
        if sink.nested && sink.shape.get(level) != Some(&length) {
            return Err(de::Error::custom(format_args!(
                "nested data does not follow the shape {:?}",
                sink.shape
            )));
        }
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<(), E> {
        if self.0.datatype != DataType::Bool {
            return Err(E::custom(format_args!(
                "expected {}, got {value}",
                self.0.expected_kind()
            )));
        }
        self.0.claim_one()?;
        self.0.data.push(u8::from(value));
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<(), E> {
        self.0.push_integer(i128::from(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<(), E> {
        self.0.push_integer(i128::from(value))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<(), E> {
        self.0.push_float(value)
    }

    /// `null` is a missing value of a float tensor (NaN), as MLServer's codecs write NaN.
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        match self.0.datatype {
            DataType::Fp16 | DataType::Fp32 | DataType::Fp64 | DataType::Bf16
                if self.0.depth > 0 =>
            {
                self.0.push_float(f64::NAN)
            }
            _ => Err(E::custom(format_args!(
                "expected {}, got null (null is NaN, and only floats have it)",
                self.0.expected_kind()
            ))),
        }
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<(), E> {
        if self.0.datatype != DataType::Bytes {
            return Err(E::custom(format_args!(
                "expected {}, got the string {value:?}",
                self.0.expected_kind()
            )));
        }
        let length = u32::try_from(value.len()).map_err(|_| E::custom("string over 4 GiB"))?;
        self.0.claim_one()?;
        self.0.data.extend(length.to_le_bytes());
        self.0.data.extend(value.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{decode, input};

    #[test]
    fn decodes_flat_and_nested_data_alike() {
        let flat = decode(&input("FP32", "[2,2]", "[1,2,3,4.5]")).unwrap();
        let nested = decode(&input("FP32", "[2,2]", "[[1,2],[3,4.5]]")).unwrap();
        assert_eq!(flat, nested);
        let expected: Vec<u8> = [1f32, 2.0, 3.0, 4.5]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(flat.inputs[0].data, expected);
        assert_eq!(flat.inputs[0].shape, vec![2, 2]);
    }

    #[test]
    fn null_is_nan_in_float_data() {
        let request = decode(&input("FP64", "[3]", "[1.5,null,2]")).unwrap();
        let values: Vec<f64> = request.inputs[0]
            .data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!((values[0], values[2]), (1.5, 2.0));
        assert!(values[1].is_nan());
        let request = decode(&input("FP32", "[1,2]", "[[null,1]]")).unwrap();
        assert!(f32::from_le_bytes(request.inputs[0].data[..4].try_into().unwrap()).is_nan());
    }

    #[test]
    fn decodes_every_datatype() {
        let cases: &[(&str, &str, Vec<u8>)] = &[
            ("BOOL", "[true,false]", vec![1, 0]),
            ("UINT8", "[0,255]", vec![0, 255]),
            ("INT8", "[-128,127]", vec![0x80, 0x7f]),
            ("UINT16", "[1,65535]", vec![1, 0, 255, 255]),
            ("INT16", "[-1,2]", vec![255, 255, 2, 0]),
            ("UINT32", "[1,2]", vec![1, 0, 0, 0, 2, 0, 0, 0]),
            ("INT32", "[-1,2.0]", vec![255, 255, 255, 255, 2, 0, 0, 0]),
            (
                "UINT64",
                "[18446744073709551615,0]",
                [u64::MAX.to_le_bytes(), [0; 8]].concat(),
            ),
            (
                "INT64",
                "[-9223372036854775808,1]",
                [i64::MIN.to_le_bytes(), 1i64.to_le_bytes()].concat(),
            ),
            (
                "FP16",
                "[1.0,-2]",
                [
                    half::f16::from_f32(1.0).to_le_bytes(),
                    half::f16::from_f32(-2.0).to_le_bytes(),
                ]
                .concat(),
            ),
            (
                "BF16",
                "[1.0,0.5]",
                [
                    half::bf16::from_f32(1.0).to_le_bytes(),
                    half::bf16::from_f32(0.5).to_le_bytes(),
                ]
                .concat(),
            ),
            (
                "FP64",
                "[0.1,2]",
                [0.1f64.to_le_bytes(), 2f64.to_le_bytes()].concat(),
            ),
            (
                "BYTES",
                r#"["ab",""]"#,
                vec![2, 0, 0, 0, b'a', b'b', 0, 0, 0, 0],
            ),
        ];
        for (datatype, data, bytes) in cases {
            let request =
                decode(&input(datatype, "[2]", data)).unwrap_or_else(|e| panic!("{datatype}: {e}"));
            assert_eq!(&request.inputs[0].data, bytes, "{datatype}");
            request.inputs[0].validate().unwrap();
        }
    }

    #[test]
    fn fp64_values_are_the_nearest_double_as_python_parses_them() {
        // Python's repr of doubles; without serde_json's `float_roundtrip` the last four (and
        // about one full-precision value in ten) come out one ULP off.
        let texts = [
            "0.30000000000000004",
            "2.2250738585072014e-308",
            "1.7976931348623157e308",
            "5e-324",
            "-0.1",
            "1.9912786788935177",
            "243.98422522574026",
            "0.0009067979265841685",
            "946.0527003294959",
        ];
        let data = format!("[{}]", texts.join(","));
        let request = decode(&input("FP64", &format!("[{}]", texts.len()), &data)).unwrap();
        let values = request.inputs[0].data.chunks_exact(8);
        for (text, bytes) in texts.iter().zip(values) {
            let value = f64::from_le_bytes(bytes.try_into().unwrap());
            let nearest: f64 = text.parse().unwrap();
            assert_eq!(
                value.to_bits(),
                nearest.to_bits(),
                "{text} read as {value:?}"
            );
        }
    }

    #[test]
    fn rejects_data_that_does_not_fit() {
        for (datatype, shape, data, needle) in [
            ("FP32", "[3]", "[1,2]", "holds 3 elements but 2"),
            ("FP32", "[1]", "[1,2]", "more than the 1 elements"),
            ("UINT8", "[1]", "[256]", "out of range for UINT8"),
            ("INT8", "[1]", "[-129]", "out of range for INT8"),
            ("INT32", "[1]", "[1.5]", "expected an integer"),
            ("FP32", "[1]", r#"["a"]"#, "expected a number"),
            ("FP32", "[1]", "[1e300]", "out of range for FP32"),
            ("FP16", "[1]", "[70000]", "out of range for FP16"),
            ("BOOL", "[1]", "[1]", "expected a boolean"),
            ("BYTES", "[1]", "[1]", "expected a string"),
            ("INT32", "[1]", "[null]", "got null"),
            (
                "FP32",
                "[2,2]",
                "[[1,2,3],[4]]",
                "does not follow the shape",
            ),
            ("FP32", "[2,2]", "[[1,2],3,4]", "does not follow the shape"),
            (
                "FP32",
                "[2,2]",
                "[1,2,[3,4]]",
                "mixes flat elements and nested arrays",
            ),
            (
                "FP32",
                "[2,2]",
                "[[[1,2]],[[3,4]]]",
                "does not follow the shape",
            ),
            ("FLOAT32", "[1]", "[1]", "unknown datatype 'FLOAT32'"),
            ("FP32", "[-1]", "[1]", "negative dimension"),
            (
                "FP32",
                "[4294967296,4294967296]",
                "[1]",
                "more than the 2147483648 elements",
            ),
        ] {
            let error = decode(&input(datatype, shape, data))
                .unwrap_err()
                .to_string();
            assert!(error.contains(needle), "{datatype} {shape} {data}: {error}");
            assert!(error.contains("input 'x'"), "{error}");
        }
    }
}

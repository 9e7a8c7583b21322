//! Reads NumPy's `.npy` files (format versions 1 to 3) into tensors.
//!
//! The format is small and fixed: a magic string, a version, a header that is a Python dict
//! literal (`{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }`), then the raw
//! elements. Numeric, boolean and fixed-width string arrays are read; object arrays (pickles)
//! and Fortran-ordered arrays are refused with a message saying how to save the array instead.

use crate::codec::{DataType, Tensor, checked_shape};

/// The longest header accepted: NumPy writes a few hundred bytes at most.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Reads an `.npy` file's bytes as the tensor `name`, with at most `max_elements` elements.
pub(crate) fn read_npy(bytes: &[u8], name: &str, max_elements: u64) -> Result<Tensor, String> {
    let rest = bytes
        .strip_prefix(b"\x93NUMPY")
        .ok_or("not a .npy file (no \\x93NUMPY magic)")?;
    let (version, rest) = rest.split_first_chunk::<2>().ok_or("truncated header")?;
    let (header_len, rest) = match version[0] {
        1 => {
            let (len, rest) = rest.split_first_chunk::<2>().ok_or("truncated header")?;
            (u16::from_le_bytes(*len) as usize, rest)
        }
        2 | 3 => {
            let (len, rest) = rest.split_first_chunk::<4>().ok_or("truncated header")?;
            (u32::from_le_bytes(*len) as usize, rest)
        }
        other => return Err(format!(".npy format version {other} is not supported")),
    };
    if header_len > MAX_HEADER_BYTES || header_len > rest.len() {
        return Err(format!(
            "header of {header_len} bytes is too long or truncated"
        ));
    }
    let (header, data) = rest.split_at(header_len);
    let header = std::str::from_utf8(header).map_err(|_| "the header is not text")?;
    let descr = dict_value(header, "descr").ok_or("the header has no 'descr'")?;
    let descr = unquote(descr).ok_or("'descr' is not a plain dtype string (a record array?)")?;
    if dict_value(header, "fortran_order").is_some_and(|value| value.starts_with("True")) {
        return Err(
            "Fortran-ordered arrays are not supported: save np.ascontiguousarray(a)".into(),
        );
    }
    let shape = parse_shape(dict_value(header, "shape").ok_or("the header has no 'shape'")?)?;
    let (shape, count) = checked_shape(&shape, max_elements).map_err(|error| error.to_string())?;
    let element = Element::parse(descr)?;
    let expected = usize::try_from(count)
        .ok()
        .and_then(|count| count.checked_mul(element.size))
        .ok_or("the array is too large")?;
    if data.len() != expected {
        return Err(format!(
            "the data holds {} bytes where shape {shape:?} of '{descr}' needs {expected}",
            data.len()
        ));
    }
    let tensor = Tensor {
        name: name.to_string(),
        datatype: element.datatype,
        shape,
        data: element.to_tensor_bytes(data)?,
        parameters: Vec::new(),
    };
    tensor.validate().map_err(|error| error.to_string())?;
    Ok(tensor)
}

/// The text of `key`'s value in the header dict, up to the end of the dict.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let quoted = [format!("'{key}'"), format!("\"{key}\"")];
    let start = quoted
        .iter()
        .find_map(|quoted| header.find(quoted.as_str()))?
        + key.len()
        + 2;
    let rest = header[start..].trim_start();
    Some(rest.strip_prefix(':')?.trim_start())
}

/// The contents of a quoted string at the start of `text`.
fn unquote(text: &str) -> Option<&str> {
    let quote = text.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let rest = &text[1..];
    Some(&rest[..rest.find(quote)?])
}

/// `(2, 3)`, `(5,)` or `()` → dimensions.
fn parse_shape(text: &str) -> Result<Vec<i64>, String> {
    let inner = text
        .strip_prefix('(')
        .and_then(|rest| rest.split_once(')'))
        .map(|(inner, _)| inner)
        .ok_or("'shape' is not a tuple")?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|dim| !dim.is_empty())
        .map(|dim| {
            dim.trim_end_matches('L')
                .parse::<i64>()
                .map_err(|_| format!("'shape' has a dimension '{dim}' that is not a number"))
        })
        .collect()
}

/// A dtype: its protocol datatype, its size in the file and its byte order.
struct Element {
    datatype: DataType,
    size: usize,
    big_endian: bool,
    /// Fixed-width strings: `S` (bytes) or `U` (UTF-32 code points).
    string: Option<char>,
}

impl Element {
    fn parse(descr: &str) -> Result<Element, String> {
        let unsupported = || format!("dtype '{descr}' is not supported");
        let (order, kind_and_size) = match descr.chars().next() {
            Some(order @ ('<' | '>' | '|' | '=')) => (order, &descr[1..]),
            _ => ('=', descr),
        };
        let mut chars = kind_and_size.chars();
        let kind = chars.next().ok_or_else(unsupported)?;
        if kind == 'O' {
            return Err("object arrays (pickles) are not read: save numbers or strings".into());
        }
        let size: usize = chars.as_str().parse().map_err(|_| unsupported())?;
        if size == 0 {
            return Err(unsupported());
        }
        let datatype = match (kind, size) {
            ('b', 1) => DataType::Bool,
            ('u', 1) => DataType::Uint8,
            ('u', 2) => DataType::Uint16,
            ('u', 4) => DataType::Uint32,
            ('u', 8) => DataType::Uint64,
            ('i', 1) => DataType::Int8,
            ('i', 2) => DataType::Int16,
            ('i', 4) => DataType::Int32,
            ('i', 8) => DataType::Int64,
            ('f', 2) => DataType::Fp16,
            ('f', 4) => DataType::Fp32,
            ('f', 8) => DataType::Fp64,
            ('S', _) => DataType::Bytes,
            ('U', _) => DataType::Bytes,
            _ => return Err(unsupported()),
        };
        let string = matches!(kind, 'S' | 'U').then_some(kind);
        Ok(Element {
            datatype,
            size: if kind == 'U' {
                size.checked_mul(4).ok_or_else(unsupported)?
            } else {
                size
            },
            big_endian: order == '>',
            string,
        })
    }

    /// The elements as the protocol's little-endian bytes (BYTES: length-prefixed).
    fn to_tensor_bytes(&self, data: &[u8]) -> Result<Vec<u8>, String> {
        match self.string {
            None if self.big_endian && self.size > 1 => Ok(data
                .chunks_exact(self.size)
                .flat_map(|element| element.iter().rev().copied())
                .collect()),
            None if self.datatype == DataType::Bool => {
                Ok(data.iter().map(|&b| (b != 0) as u8).collect())
            }
            None => Ok(data.to_vec()),
            Some(kind) => {
                let mut out = Vec::with_capacity(data.len() + data.len() / self.size.max(1) * 4);
                for element in data.chunks_exact(self.size.max(1)) {
                    let text: Vec<u8> = if kind == 'S' {
                        let end = element.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
                        element[..end].to_vec()
                    } else {
                        let mut text = String::new();
                        for unit in element.chunks_exact(4) {
                            let unit: [u8; 4] = unit.try_into().expect("4 bytes");
                            let code = if self.big_endian {
                                u32::from_be_bytes(unit)
                            } else {
                                u32::from_le_bytes(unit)
                            };
                            if code == 0 {
                                break;
                            }
                            text.push(char::from_u32(code).ok_or("a string is not valid Unicode")?);
                        }
                        text.into_bytes()
                    };
                    out.extend_from_slice(&(text.len() as u32).to_le_bytes());
                    out.extend_from_slice(&text);
                }
                Ok(out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An .npy file as NumPy 1.x writes it (version 1.0, header padded to 64 bytes).
    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        npy_ordered(descr, shape, data, "False")
    }

    fn npy_ordered(descr: &str, shape: &str, data: &[u8], fortran: &str) -> Vec<u8> {
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut file = b"\x93NUMPY\x01\x00".to_vec();
        file.extend_from_slice(&(header.len() as u16).to_le_bytes());
        file.extend_from_slice(header.as_bytes());
        file.extend_from_slice(data);
        file
    }

    #[test]
    fn reads_numbers_of_either_byte_order() {
        let little: Vec<u8> = [1.5f64, -2.0, 3.0, 4.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let tensor = read_npy(&npy("<f8", "(2, 2)", &little), "x", 100).unwrap();
        assert_eq!(
            (tensor.datatype, tensor.shape.clone()),
            (DataType::Fp64, vec![2, 2])
        );
        assert_eq!(tensor.data, little);
        let big: Vec<u8> = [7i32, -1].iter().flat_map(|v| v.to_be_bytes()).collect();
        let tensor = read_npy(&npy(">i4", "(2,)", &big), "x", 100).unwrap();
        assert_eq!(
            tensor.data,
            [7i32.to_le_bytes(), (-1i32).to_le_bytes()].concat()
        );
    }

    #[test]
    fn reads_strings_as_bytes_elements() {
        let tensor = read_npy(&npy("|S3", "(2,)", b"ab\0xyz"), "s", 100).unwrap();
        assert_eq!(tensor.datatype, DataType::Bytes);
        assert_eq!(tensor.data, b"\x02\0\0\0ab\x03\0\0\0xyz");
        let unicode: Vec<u8> = ['h', 'é', '\0']
            .iter()
            .flat_map(|c| (*c as u32).to_le_bytes())
            .collect();
        let tensor = read_npy(&npy("<U3", "(1,)", &unicode), "s", 100).unwrap();
        assert_eq!(
            tensor.data,
            [&3u32.to_le_bytes()[..], "hé".as_bytes()].concat()
        );
    }

    #[test]
    fn refuses_what_it_cannot_read_in_words() {
        let error = |file: &[u8]| read_npy(file, "x", 100).unwrap_err();
        assert!(error(b"PK\x03\x04").contains("not a .npy file"));
        assert!(error(&npy("|O", "(1,)", &[0; 8])).contains("pickles"));
        assert!(error(&npy("<f8", "(3,)", &[0; 16])).contains("needs 24"));
        assert!(error(&npy("<f8", "(1000,)", &[0; 8000])).contains("1000"));
        assert!(error(&npy("<c16", "(1,)", &[0; 16])).contains("not supported"));
        assert!(error(&npy("|S0", "(3,)", &[])).contains("not supported"));
        assert!(error(&npy("<é8", "(1,)", &[0; 8])).contains("not supported"));
        let huge = format!("<U{}", usize::MAX / 2);
        assert!(error(&npy(&huge, "(1,)", &[0; 8])).contains("not supported"));
        assert!(error(&npy_ordered("<f8", "(1,)", &[0; 8], "True")).contains("Fortran"));
    }
}

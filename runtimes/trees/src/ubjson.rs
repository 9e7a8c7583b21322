//! A reader of UBJSON (Universal Binary JSON, draft 12), the format of XGBoost's `model.ubj`.
//!
//! It turns the document into a `serde_json::Value`, so that the XGBoost reader serves both
//! forms. Numbers are big-endian; containers may be optimized (`$` element type, `#` count),
//! as XGBoost writes its float and integer arrays. Nesting is limited to 64 levels and a count
//! can never exceed the bytes left, so a hostile file cannot exhaust the stack or memory.

use serde_json::{Map, Number, Value};

/// Deepest nesting accepted.
const MAX_DEPTH: usize = 64;

/// Parses a whole UBJSON document.
pub fn parse(bytes: &[u8]) -> Result<Value, String> {
    let mut reader = Reader { bytes, at: 0 };
    let marker = reader.byte()?;
    let value = reader.value(marker, 0)?;
    if reader.at != bytes.len() {
        return Err(format!(
            "{} bytes after the document",
            bytes.len() - reader.at
        ));
    }
    Ok(value)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, String> {
        let byte = *self
            .bytes
            .get(self.at)
            .ok_or_else(|| format!("truncated at byte {}", self.at))?;
        self.at += 1;
        Ok(byte)
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let end = self
            .at
            .checked_add(N)
            .filter(|&end| end <= self.bytes.len());
        let end = end.ok_or_else(|| format!("truncated at byte {}", self.at))?;
        let mut array = [0u8; N];
        array.copy_from_slice(&self.bytes[self.at..end]);
        self.at = end;
        Ok(array)
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    /// An integer of the type `marker` (a length or a count).
    fn integer(&mut self, marker: u8) -> Result<i64, String> {
        Ok(match marker {
            b'i' => i64::from(i8::from_be_bytes(self.take()?)),
            b'U' => i64::from(u8::from_be_bytes(self.take()?)),
            b'I' => i64::from(i16::from_be_bytes(self.take()?)),
            b'l' => i64::from(i32::from_be_bytes(self.take()?)),
            b'L' => i64::from_be_bytes(self.take()?),
            other => {
                return Err(format!(
                    "expected an integer type at byte {}, found {:?}",
                    self.at - 1,
                    other as char
                ));
            }
        })
    }

    /// A length or count: an integer with its own type marker, at most the bytes left.
    fn length(&mut self) -> Result<usize, String> {
        let marker = self.byte()?;
        let length = self.integer(marker)?;
        usize::try_from(length)
            .ok()
            .filter(|&length| length <= self.remaining())
            .ok_or_else(|| format!("length {length} at byte {} is out of range", self.at))
    }

    fn string(&mut self) -> Result<String, String> {
        let length = self.length()?;
        let bytes = &self.bytes[self.at..self.at + length];
        self.at += length;
        String::from_utf8(bytes.to_vec()).map_err(|_| "a string that is not UTF-8".to_string())
    }

    fn value(&mut self, marker: u8, depth: usize) -> Result<Value, String> {
        Ok(match marker {
            b'Z' => Value::Null,
            b'T' => Value::Bool(true),
            b'F' => Value::Bool(false),
            b'i' | b'U' | b'I' | b'l' | b'L' => Value::from(self.integer(marker)?),
            b'd' => float(f64::from(f32::from_be_bytes(self.take()?)))?,
            b'D' => float(f64::from_be_bytes(self.take()?))?,
            b'C' => Value::String(char::from(self.byte()?).to_string()),
            b'S' => Value::String(self.string()?),
            b'H' => {
                let text = self.string()?;
                serde_json::from_str::<Number>(&text)
                    .map(Value::Number)
                    .map_err(|_| format!("high-precision number '{text}'"))?
            }
            b'[' | b'{' => {
                if depth >= MAX_DEPTH {
                    return Err(format!("nested deeper than {MAX_DEPTH} levels"));
                }
                self.container(marker == b'{', depth + 1)?
            }
            other => {
                return Err(format!(
                    "unknown type marker {:?} at byte {}",
                    other as char,
                    self.at - 1
                ));
            }
        })
    }

    /// An array or object after its opening marker.
    fn container(&mut self, object: bool, depth: usize) -> Result<Value, String> {
        let mut element_type = None;
        let mut count = None;
        let mut next = self.byte()?;
        if next == b'$' {
            element_type = Some(self.byte()?);
            next = self.byte()?;
            if next != b'#' {
                return Err("a container with a type ('$') but no count ('#')".to_string());
            }
        }
        if next == b'#' {
            count = Some(self.length()?);
        } else {
            self.at -= 1;
        }

        let mut items = Vec::new();
        let mut map = Map::new();
        let mut index = 0usize;
        loop {
            match count {
                Some(count) if index == count => break,
                None => {
                    let marker = self.byte()?;
                    if marker == if object { b'}' } else { b']' } {
                        break;
                    }
                    if marker == b'N' {
                        continue;
                    }
                    self.at -= 1;
                }
                _ => {}
            }
            let key = if object { Some(self.string()?) } else { None };
            let marker = match element_type {
                Some(marker) => marker,
                None => self.byte()?,
            };
            let value = self.value(marker, depth)?;
            match key {
                Some(key) => {
                    map.insert(key, value);
                }
                None => items.push(value),
            }
            index += 1;
        }
        Ok(if object {
            Value::Object(map)
        } else {
            Value::Array(items)
        })
    }
}

fn float(value: f64) -> Result<Value, String> {
    Number::from_f64(value)
        .map(Value::Number)
        .ok_or_else(|| format!("a non-finite number ({value})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_optimized_and_plain_containers() {
        let mut bytes = b"{U\x01a[$d#U\x02".to_vec();
        bytes.extend_from_slice(&1.5f32.to_be_bytes());
        bytes.extend_from_slice(&(-2.0f32).to_be_bytes());
        bytes.extend_from_slice(b"U\x01b[U\x07SU\x02hiTZ]U\x01cl\x00\x00\x01\x00}");
        let value = parse(&bytes).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"a": [1.5, -2.0], "b": [7, "hi", true, null], "c": 256})
        );
    }

    #[test]
    fn hostile_documents_are_refused() {
        assert!(
            parse(b"[$Z#L\x7f\xff\xff\xff\xff\xff\xff\xff").is_err(),
            "huge count"
        );
        assert!(parse(&[b'['; 1000]).is_err(), "deep nesting");
        assert!(parse(b"{U\x05ab").is_err(), "truncated");
        assert!(parse(b"[$d#U\x01\x7f\x80\x00\x00").is_err(), "infinity");
        assert!(parse(b"[]]").is_err(), "trailing bytes");
    }
}

//! The REST (JSON) encoding of inference requests and responses.
//!
//! Requests are parsed in one pass: the envelope with serde, and each input's `data` (flat or
//! nested, borrowed from the body as raw JSON) straight into little-endian bytes of the input's
//! datatype, with no intermediate `serde_json::Value`. Responses are written the same way back.

use super::tensor::checked_shape;
use super::{
    DataType, InferenceRequest, InferenceResponse, ParameterValue, Parameters, RequestedOutput,
    Tensor, TensorError,
};
use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use serde::ser::{self, SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use std::fmt;

/// Why a request body could not be decoded: always the client's fault (400).
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed request body: {0}")]
    Syntax(#[from] serde_json::Error),
    #[error("input '{input}': {source}")]
    Tensor {
        input: String,
        #[source]
        source: TensorError,
    },
    #[error("input '{input}': invalid data: {source}")]
    Data {
        input: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("parameter '{0}' must be a string, a number or a boolean")]
    Parameter(String),
    #[error("input '{input}': {reason}")]
    Binary { input: String, reason: String },
    #[error("the body holds {0} bytes of binary data past the last input's")]
    TrailingBinary(usize),
}

/// Why a response could not be encoded as JSON (a runtime's output that JSON cannot carry).
#[derive(Debug, thiserror::Error)]
#[error("cannot encode the response as JSON: {0}")]
pub struct EncodeError(#[from] serde_json::Error);

#[derive(Deserialize)]
struct RequestJson<'a> {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    parameters: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(borrow)]
    inputs: Vec<InputJson<'a>>,
    #[serde(default)]
    outputs: Option<Vec<RequestedOutputJson>>,
}

#[derive(Deserialize)]
struct InputJson<'a> {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct RequestedOutputJson {
    name: String,
    #[serde(default)]
    parameters: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Decodes a JSON inference request, checking every tensor against its shape and datatype, and
/// its element count against `max_elements`.
///
/// `binary` is what follows the JSON in a body of the binary tensor data extension (empty
/// otherwise): inputs with a `binary_data_size` parameter take their data from it, in order.
pub fn decode_request(
    json: &[u8],
    binary: &[u8],
    max_elements: u64,
) -> Result<InferenceRequest, DecodeError> {
    let request: RequestJson<'_> = serde_json::from_slice(json)?;
    let inputs = decode_tensors(request.inputs, binary, max_elements)?;
    let outputs = request
        .outputs
        .unwrap_or_default()
        .into_iter()
        .map(|output| {
            Ok(RequestedOutput {
                name: output.name,
                parameters: decode_parameters(output.parameters)?,
            })
        })
        .collect::<Result<Vec<_>, DecodeError>>()?;
    Ok(InferenceRequest {
        id: request.id,
        inputs,
        outputs,
        parameters: decode_parameters(request.parameters)?,
    })
}

/// Decodes a request's inputs (or a response's outputs); those with a `binary_data_size` take
/// their data from `binary` in order, which they must use up.
fn decode_tensors(
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

fn decode_input(
    mut input: InputJson<'_>,
    binary: &mut &[u8],
    max_elements: u64,
) -> Result<Tensor, DecodeError> {
    let tensor_error = |source| DecodeError::Tensor {
        input: input.name.clone(),
        source,
    };
    let datatype: DataType = input.datatype.parse().map_err(tensor_error)?;
    let (shape, expected) = checked_shape(&input.shape, max_elements).map_err(tensor_error)?;

    let binary_size = input
        .parameters
        .as_mut()
        .and_then(|parameters| parameters.remove(BINARY_DATA_SIZE));
    let raw = match (binary_size, input.data) {
        (Some(size), None) => {
            let data = take_binary(&input.name, &size, binary)?.to_vec();
            let tensor = Tensor {
                parameters: decode_parameters(input.parameters)?,
                name: input.name,
                datatype,
                shape,
                data,
            };
            tensor.validate().map_err(|source| DecodeError::Tensor {
                input: tensor.name.clone(),
                source,
            })?;
            return Ok(tensor);
        }
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
        (None, Some(raw)) => raw.get(),
    };
    // Each element takes at least two characters of JSON ("1,"): never reserve more than the
    // text can hold, whatever the shape claims.
    let bound = expected.min(raw.len() as u64 / 2 + 1) as usize;
    let mut sink = DataSink {
        datatype,
        data: Vec::with_capacity(bound * datatype.element_size().unwrap_or(8)),
        count: 0,
        expected,
        shape: shape.clone(),
        depth: 0,
        nested: false,
    };
    let mut deserializer = serde_json::Deserializer::from_str(raw);
    Elements(&mut sink)
        .deserialize(&mut deserializer)
        .map_err(|source| DecodeError::Data {
            input: input.name.clone(),
            source,
        })?;
    if sink.count != expected {
        return Err(tensor_error(TensorError::ElementCount {
            shape,
            expected,
            actual: sink.count,
        }));
    }
    Ok(Tensor {
        parameters: decode_parameters(input.parameters)?,
        name: input.name,
        datatype,
        shape,
        data: sink.data,
    })
}

/// The parameter of inputs (and response outputs) whose data is binary, and its size in bytes.
pub const BINARY_DATA_SIZE: &str = "binary_data_size";

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
            "`binary_data_size` must be a non-negative integer, not {size}"
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

fn decode_parameters(
    parameters: Option<serde_json::Map<String, serde_json::Value>>,
) -> Result<Parameters, DecodeError> {
    let mut decoded = Parameters::new();
    for (name, value) in parameters.unwrap_or_default() {
        let value = match value {
            serde_json::Value::Null => continue,
            serde_json::Value::Bool(value) => ParameterValue::Bool(value),
            serde_json::Value::String(value) => ParameterValue::String(value),
            serde_json::Value::Number(number) => {
                if let Some(value) = number.as_i64() {
                    ParameterValue::Int64(value)
                } else if let Some(value) = number.as_u64() {
                    ParameterValue::Uint64(value)
                } else {
                    ParameterValue::Double(number.as_f64().unwrap_or(f64::NAN))
                }
            }
            // MLServer's custom headers: an object, carried as its JSON text.
            object @ serde_json::Value::Object(_) if name == "headers" => {
                ParameterValue::String(object.to_string())
            }
            serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
                return Err(DecodeError::Parameter(name));
            }
        };
        decoded.push((name, value));
    }
    Ok(decoded)
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

/// An encoded body: a response, or a request a client sends.
#[derive(Debug)]
pub struct EncodedBody {
    /// The JSON, followed by the binary data of the outputs sent as binary.
    pub body: Vec<u8>,
    /// The length of the JSON part when some output is binary (the
    /// `Inference-Header-Content-Length` header); `None` for a plain JSON body.
    pub json_length: Option<usize>,
}

/// Encodes an inference response as the protocol's JSON; the outputs for which `binary` says
/// so go after the JSON as raw bytes (the binary tensor data extension).
pub fn encode_response(
    response: &InferenceResponse,
    binary: impl Fn(&Tensor) -> bool,
) -> Result<EncodedBody, EncodeError> {
    let binary: Vec<bool> = response.outputs.iter().map(binary).collect();
    let mut body = serde_json::to_vec(&ResponseJson(response, &binary))?;
    if !binary.contains(&true) {
        return Ok(EncodedBody {
            body,
            json_length: None,
        });
    }
    let json_length = body.len();
    let binary_bytes: usize = response
        .outputs
        .iter()
        .zip(&binary)
        .filter(|(_, binary)| **binary)
        .map(|(output, _)| output.data.len())
        .sum();
    body.reserve_exact(binary_bytes);
    for (output, _) in response.outputs.iter().zip(&binary).filter(|(_, b)| **b) {
        body.extend_from_slice(&output.data);
    }
    Ok(EncodedBody {
        body,
        json_length: Some(json_length),
    })
}

/// Encodes an inference request as the protocol's JSON (for clients such as `mlhost infer`);
/// with `binary`, input data goes after the JSON as raw bytes and outputs are asked for as
/// binary (the binary tensor data extension).
pub fn encode_request(
    request: &InferenceRequest,
    binary: bool,
) -> Result<EncodedBody, EncodeError> {
    let mut body = serde_json::to_vec(&RequestOut(request, binary))?;
    if !binary {
        return Ok(EncodedBody {
            body,
            json_length: None,
        });
    }
    let json_length = body.len();
    body.reserve_exact(request.inputs.iter().map(|input| input.data.len()).sum());
    for input in &request.inputs {
        body.extend_from_slice(&input.data);
    }
    Ok(EncodedBody {
        body,
        json_length: Some(json_length),
    })
}

/// A request to send, and whether its data goes as binary.
struct RequestOut<'a>(&'a InferenceRequest, bool);

impl Serialize for RequestOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let RequestOut(request, binary) = *self;
        let mut map = serializer.serialize_map(None)?;
        if let Some(id) = &request.id {
            map.serialize_entry("id", id)?;
        }
        // With binary data, every output comes back binary (the extension's request-level
        // `binary_data_output`), not only those asked for by name.
        let binary_outputs = [("binary_data_output".to_string(), ParameterValue::Bool(true))];
        let parameters = ParametersJson::with_extra(
            &request.parameters,
            if binary { &binary_outputs } else { &[] },
        );
        if !parameters.is_empty() {
            map.serialize_entry("parameters", &parameters)?;
        }
        let inputs: Vec<_> = request
            .inputs
            .iter()
            .map(|input| TensorJson(input, binary))
            .collect();
        map.serialize_entry("inputs", &inputs)?;
        if !request.outputs.is_empty() {
            let binary_data = [("binary_data".to_string(), ParameterValue::Bool(true))];
            let extra: &[(String, ParameterValue)] = if binary { &binary_data } else { &[] };
            let outputs: Vec<_> = request
                .outputs
                .iter()
                .map(|output| {
                    let mut entry = serde_json::Map::new();
                    entry.insert("name".into(), output.name.clone().into());
                    let parameters = ParametersJson::with_extra(&output.parameters, extra);
                    if !parameters.is_empty() {
                        entry.insert(
                            "parameters".into(),
                            serde_json::to_value(&parameters).map_err(ser::Error::custom)?,
                        );
                    }
                    Ok(serde_json::Value::Object(entry))
                })
                .collect::<Result<_, S::Error>>()?;
            map.serialize_entry("outputs", &outputs)?;
        }
        map.end()
    }
}

#[derive(Deserialize)]
struct ResponseIn<'a> {
    model_name: String,
    #[serde(default)]
    model_version: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    parameters: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(borrow, default)]
    outputs: Vec<InputJson<'a>>,
}

/// Decodes a JSON inference response (for clients), checking each output as the server checks
/// inputs; `binary` is what follows the JSON when outputs came as binary data.
pub fn decode_response(
    json: &[u8],
    binary: &[u8],
    max_elements: u64,
) -> Result<InferenceResponse, DecodeError> {
    let response: ResponseIn<'_> = serde_json::from_slice(json)?;
    let outputs = decode_tensors(response.outputs, binary, max_elements)?;
    Ok(InferenceResponse {
        model_name: response.model_name,
        model_version: response.model_version,
        id: response.id,
        outputs,
        parameters: decode_parameters(response.parameters)?,
    })
}

/// A response and, per output, whether its data goes as binary.
struct ResponseJson<'a>(&'a InferenceResponse, &'a [bool]);

impl Serialize for ResponseJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let response = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("model_name", &response.model_name)?;
        if let Some(version) = &response.model_version {
            map.serialize_entry("model_version", version)?;
        }
        if let Some(id) = &response.id {
            map.serialize_entry("id", id)?;
        }
        if !response.parameters.is_empty() {
            map.serialize_entry("parameters", &ParametersJson::new(&response.parameters))?;
        }
        let outputs: Vec<_> = response
            .outputs
            .iter()
            .zip(self.1)
            .map(|(output, &binary)| TensorJson(output, binary))
            .collect();
        map.serialize_entry("outputs", &outputs)?;
        map.end()
    }
}

/// A tensor (a response's output or a sent request's input), with its data inline or (when the
/// flag is set) announced as binary.
struct TensorJson<'a>(&'a Tensor, bool);

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

/// Parameters as a JSON object (with a few more of the server's own, if any).
pub struct ParametersJson<'a>(
    &'a [(String, ParameterValue)],
    &'a [(String, ParameterValue)],
);

impl<'a> ParametersJson<'a> {
    /// The parameters as they are.
    pub fn new(parameters: &'a Parameters) -> Self {
        ParametersJson(parameters, &[])
    }

    /// The parameters followed by `extra`.
    pub fn with_extra(parameters: &'a Parameters, extra: &'a [(String, ParameterValue)]) -> Self {
        ParametersJson(parameters, extra)
    }

    /// Whether there are no parameters (the field is then left out).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty() && self.1.is_empty()
    }
}

impl Serialize for ParametersJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len() + self.1.len()))?;
        for (name, value) in self.0.iter().chain(self.1) {
            match value {
                ParameterValue::Bool(value) => map.serialize_entry(name, value)?,
                ParameterValue::Int64(value) => map.serialize_entry(name, value)?,
                ParameterValue::Uint64(value) => map.serialize_entry(name, value)?,
                ParameterValue::Double(value) => map.serialize_entry(name, value)?,
                ParameterValue::String(value) => map.serialize_entry(name, value)?,
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(body: &str) -> Result<InferenceRequest, DecodeError> {
        decode_request(body.as_bytes(), &[], 1 << 31)
    }

    fn input(datatype: &str, shape: &str, data: &str) -> String {
        format!(
            r#"{{"inputs":[{{"name":"x","datatype":"{datatype}","shape":{shape},"data":{data}}}]}}"#
        )
    }

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
            ("FP32", "[1]", "[null]", "invalid type"),
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

    #[test]
    fn rejects_malformed_envelopes() {
        for body in [
            "",
            "{",
            "[]",
            r#"{"inputs":{}}"#,
            r#"{"inputs":[{"name":"x"}]}"#,
        ] {
            assert!(
                matches!(decode(body), Err(DecodeError::Syntax(_))),
                "{body}"
            );
        }
    }

    #[test]
    fn decodes_parameters_and_outputs() {
        let request = decode(
            r#"{"id":"7","parameters":{"a":1,"b":"s","c":true,"d":0.5,"e":null},
                "inputs":[],"outputs":[{"name":"y","parameters":{"binary_data":false}}]}"#,
        )
        .unwrap();
        assert_eq!(request.id.as_deref(), Some("7"));
        assert_eq!(
            request.parameters,
            vec![
                ("a".into(), ParameterValue::Int64(1)),
                ("b".into(), ParameterValue::String("s".into())),
                ("c".into(), ParameterValue::Bool(true)),
                ("d".into(), ParameterValue::Double(0.5)),
            ]
        );
        assert_eq!(request.outputs[0].name, "y");
        assert!(matches!(
            decode(r#"{"inputs":[],"parameters":{"h":{"x":1}}}"#),
            Err(DecodeError::Parameter(_))
        ));
    }

    #[test]
    fn encodes_outputs_as_flat_arrays() {
        let response = InferenceResponse {
            model_name: "m".into(),
            model_version: Some("1".into()),
            id: Some("r".into()),
            outputs: vec![
                Tensor {
                    name: "p".into(),
                    datatype: DataType::Fp64,
                    shape: vec![2, 1],
                    data: [0.5f64.to_le_bytes(), 2f64.to_le_bytes()].concat(),
                    parameters: vec![],
                },
                Tensor {
                    name: "s".into(),
                    datatype: DataType::Bytes,
                    shape: vec![1],
                    data: vec![2, 0, 0, 0, b'h', b'i'],
                    parameters: vec![("content_type".into(), ParameterValue::String("str".into()))],
                },
            ],
            parameters: vec![],
        };
        let json: serde_json::Value =
            serde_json::from_slice(&encode_response(&response, |_| false).unwrap().body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "model_name": "m", "model_version": "1", "id": "r",
                "outputs": [
                    {"name": "p", "datatype": "FP64", "shape": [2, 1], "data": [0.5, 2.0]},
                    {"name": "s", "datatype": "BYTES", "shape": [1],
                     "parameters": {"content_type": "str"}, "data": ["hi"]}
                ]
            })
        );
    }

    #[test]
    fn a_request_encoded_for_sending_decodes_to_itself_json_or_binary() {
        let request = decode(
            r#"{"id":"r1","parameters":{"p":1},"inputs":[
                {"name":"x","datatype":"FP64","shape":[2],"data":[1.5,-2]},
                {"name":"s","datatype":"BYTES","shape":[1],"data":["hi"]}],
                "outputs":[{"name":"y"}]}"#,
        )
        .unwrap();
        let plain = encode_request(&request, false).unwrap();
        assert_eq!(plain.json_length, None);
        assert_eq!(decode_request(&plain.body, &[], 1 << 20).unwrap(), request);
        let binary = encode_request(&request, true).unwrap();
        let split = binary.json_length.unwrap();
        let (json, data) = binary.body.split_at(split);
        let text = std::str::from_utf8(json).unwrap();
        assert!(text.contains(r#""binary_data":true"#), "{text}");
        assert!(text.contains(r#""binary_data_output":true"#), "{text}");
        let mut decoded = decode_request(json, data, 1 << 20).unwrap();
        decoded.outputs[0].parameters.clear();
        decoded
            .parameters
            .retain(|(name, _)| name != "binary_data_output");
        assert_eq!(decoded, request);
    }

    #[test]
    fn a_response_decodes_from_json_and_binary_outputs() {
        let response = InferenceResponse {
            model_name: "m".into(),
            model_version: Some("2".into()),
            id: Some("r1".into()),
            outputs: decode(&input("INT32", "[3]", "[1,2,3]")).unwrap().inputs,
            parameters: vec![("k".into(), ParameterValue::String("v".into()))],
        };
        for binary in [false, true] {
            let encoded = encode_response(&response, |_| binary).unwrap();
            let split = encoded.json_length.unwrap_or(encoded.body.len());
            let (json, data) = encoded.body.split_at(split);
            assert_eq!(decode_response(json, data, 1 << 20).unwrap(), response);
        }
    }
}

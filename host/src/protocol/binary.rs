//! The binary tensor data extension of REST: how a body splits into JSON and binary data, the
//! raw single-input body, and which outputs are answered as binary.

use crate::codec::quoted;
use crate::codec::{
    InferenceRequest, ParameterValue, Parameters, Tensor, TensorMetadata, checked_shape,
};
use crate::core::ServiceError;

pub(crate) use crate::codec::json::HEADER_LENGTH;
/// Request parameter: answer every output not chosen otherwise as binary.
const BINARY_DATA_OUTPUT: &str = "binary_data_output";
/// Requested-output parameter: answer this output as binary (or not).
const BINARY_DATA: &str = "binary_data";

/// How a request body is laid out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum BodyLayout {
    /// Plain JSON.
    Json,
    /// JSON of this many bytes, then the inputs' binary data.
    JsonThenBinary(usize),
    /// The raw data of the model's only input, without JSON (`Inference-Header-Content-Length: 0`).
    Raw,
}

impl BodyLayout {
    /// The layout the `Inference-Header-Content-Length` header announces.
    pub(crate) fn from_header(value: Option<&str>) -> Result<Self, ServiceError> {
        let Some(value) = value else {
            return Ok(BodyLayout::Json);
        };
        match value.trim().parse::<usize>() {
            Ok(0) => Ok(BodyLayout::Raw),
            Ok(length) => Ok(BodyLayout::JsonThenBinary(length)),
            Err(_) => Err(ServiceError::BadRequest(format!(
                "Inference-Header-Content-Length must be a non-negative integer, not '{}'",
                quoted(value)
            ))),
        }
    }

    /// Splits a body into its JSON and binary parts.
    pub(crate) fn split(self, body: &[u8]) -> Result<(&[u8], &[u8]), ServiceError> {
        match self {
            BodyLayout::Json => Ok((body, &[])),
            BodyLayout::JsonThenBinary(length) if length <= body.len() => Ok(body.split_at(length)),
            BodyLayout::JsonThenBinary(length) => Err(ServiceError::BadRequest(format!(
                "Inference-Header-Content-Length of {length} bytes is past the end of the {}-byte body",
                body.len()
            ))),
            BodyLayout::Raw => Ok((&[], body)),
        }
    }
}

/// Builds the request of a raw body: all of it is the data of the model's only input, whose
/// datatype and shape come from the model's metadata (one variable dimension is inferred from
/// the body's length; a BYTES input takes the whole body as one element).
pub(crate) fn raw_request(
    inputs: &[TensorMetadata],
    body: &[u8],
    max_elements: u64,
) -> Result<InferenceRequest, ServiceError> {
    let [input] = inputs else {
        return Err(ServiceError::BadRequest(format!(
            "a raw body (Inference-Header-Content-Length: 0) needs a model with exactly one input; this one has {}",
            inputs.len()
        )));
    };
    let bad = |message: String| ServiceError::BadRequest(format!("raw body: {message}"));
    let (shape, data) = match input.datatype.element_size() {
        None => {
            let length = u32::try_from(body.len()).map_err(|_| bad("over 4 GiB".to_string()))?;
            let mut data = Vec::with_capacity(body.len() + 4);
            data.extend(length.to_le_bytes());
            data.extend_from_slice(body);
            (single_element_shape(&input.shape), data)
        }
        Some(size) => {
            if !body.len().is_multiple_of(size) {
                return Err(bad(format!(
                    "{} bytes are not a whole number of {} elements",
                    body.len(),
                    input.datatype
                )));
            }
            let count = (body.len() / size) as i64;
            (
                infer_shape(&input.shape, count).map_err(bad)?,
                body.to_vec(),
            )
        }
    };
    let (shape, _) = checked_shape(&shape, max_elements)
        .map_err(|error| bad(format!("input '{}': {error}", quoted(&input.name))))?;
    let tensor = Tensor {
        name: input.name.clone(),
        datatype: input.datatype,
        shape,
        data,
        parameters: Parameters::new(),
    };
    tensor
        .validate()
        .map_err(|error| bad(format!("input '{}': {error}", quoted(&tensor.name))))?;
    Ok(InferenceRequest {
        id: None,
        inputs: vec![tensor],
        outputs: Vec::new(),
        // The answer to a raw body is binary, as Triton's.
        parameters: vec![(BINARY_DATA_OUTPUT.to_string(), ParameterValue::Bool(true))],
    })
}

/// The declared shape with every variable dimension set to 1 (one BYTES element).
fn single_element_shape(declared: &[i64]) -> Vec<i64> {
    if declared.is_empty() {
        return vec![1];
    }
    declared.iter().map(|&dim| dim.max(1)).collect()
}

/// The declared shape with its (at most one) variable dimension set so that it holds `count`
/// elements.
fn infer_shape(declared: &[i64], count: i64) -> Result<Vec<i64>, String> {
    if declared.is_empty() {
        return Ok(vec![count]);
    }
    let fixed: i64 = declared.iter().filter(|&&dim| dim >= 0).product();
    let variable = declared.iter().filter(|&&dim| dim < 0).count();
    let mismatch = || format!("{count} elements do not fit the model's input shape {declared:?}");
    match variable {
        0 if fixed == count => Ok(declared.to_vec()),
        1 if fixed > 0 && count % fixed == 0 => Ok(declared
            .iter()
            .map(|&dim| if dim < 0 { count / fixed } else { dim })
            .collect()),
        0 | 1 => Err(mismatch()),
        _ => Err(format!(
            "the model's input shape {declared:?} has more than one variable dimension; send JSON"
        )),
    }
}

/// Which outputs the client wants as binary data: those it asked so by name, and the others
/// when the request says `binary_data_output`.
#[derive(Debug, Default)]
pub(crate) struct BinaryOutputs {
    default: bool,
    chosen: Vec<(String, bool)>,
}

impl BinaryOutputs {
    /// Takes the extension's parameters out of the request (they are for the front end, not for
    /// the runtime) and remembers what they ask.
    pub(crate) fn take_from(request: &mut InferenceRequest) -> Result<Self, ServiceError> {
        let mut outputs = BinaryOutputs {
            default: take_flag(&mut request.parameters, BINARY_DATA_OUTPUT)?.unwrap_or(false),
            chosen: Vec::new(),
        };
        for output in &mut request.outputs {
            if let Some(binary) = take_flag(&mut output.parameters, BINARY_DATA)? {
                outputs.chosen.push((output.name.clone(), binary));
            }
        }
        Ok(outputs)
    }

    /// Whether `output` goes as binary data.
    pub(crate) fn is_binary(&self, output: &Tensor) -> bool {
        self.chosen
            .iter()
            .find(|(name, _)| *name == output.name)
            .map_or(self.default, |(_, binary)| *binary)
    }
}

fn take_flag(parameters: &mut Parameters, name: &str) -> Result<Option<bool>, ServiceError> {
    let Some(index) = parameters.iter().position(|(key, _)| key == name) else {
        return Ok(None);
    };
    match parameters.remove(index).1 {
        ParameterValue::Bool(flag) => Ok(Some(flag)),
        other => Err(ServiceError::BadRequest(format!(
            "the `{name}` parameter must be a boolean, not {other:?}"
        ))),
    }
}

/// The content type of a reply with binary data.
pub(crate) const BINARY_CONTENT_TYPE: &str = "application/octet-stream";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::DataType;

    fn metadata(datatype: DataType, shape: &[i64]) -> Vec<TensorMetadata> {
        vec![TensorMetadata {
            name: "x".into(),
            datatype,
            shape: shape.to_vec(),
            parameters: vec![],
        }]
    }

    #[test]
    fn layouts_split_bodies() {
        assert_eq!(BodyLayout::from_header(None).unwrap(), BodyLayout::Json);
        assert_eq!(BodyLayout::from_header(Some("0")).unwrap(), BodyLayout::Raw);
        let layout = BodyLayout::from_header(Some("3")).unwrap();
        assert_eq!(layout.split(b"abcde").unwrap(), (&b"abc"[..], &b"de"[..]));
        assert!(layout.split(b"ab").is_err());
        assert!(BodyLayout::from_header(Some("-1")).is_err());
        assert!(BodyLayout::from_header(Some("x")).is_err());
    }

    #[test]
    fn raw_bodies_take_the_shape_of_the_only_input() {
        let body: Vec<u8> = [1f32, 2., 3., 4., 5., 6.]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let request = raw_request(&metadata(DataType::Fp32, &[-1, 3]), &body, 1 << 20).unwrap();
        assert_eq!(request.inputs[0].shape, vec![2, 3]);
        assert!(raw_request(&metadata(DataType::Fp32, &[-1, 4]), &body, 1 << 20).is_err());
        assert!(raw_request(&metadata(DataType::Fp32, &[-1, -1]), &body, 1 << 20).is_err());
        assert!(raw_request(&metadata(DataType::Fp64, &[-1]), &body[..12], 1 << 20).is_err());
        assert!(raw_request(&[], &body, 1 << 20).is_err());
        let text = raw_request(&metadata(DataType::Bytes, &[-1]), b"hello", 1 << 20).unwrap();
        assert_eq!(text.inputs[0].shape, vec![1]);
        assert_eq!(text.inputs[0].data, b"\x05\0\0\0hello");
    }

    #[test]
    fn binary_choices_are_taken_out_of_the_request() {
        let mut request = InferenceRequest {
            parameters: vec![(BINARY_DATA_OUTPUT.into(), ParameterValue::Bool(true))],
            outputs: vec![crate::codec::RequestedOutput {
                name: "b".into(),
                parameters: vec![(BINARY_DATA.into(), ParameterValue::Bool(false))],
            }],
            ..InferenceRequest::default()
        };
        let choice = BinaryOutputs::take_from(&mut request).unwrap();
        assert!(request.parameters.is_empty() && request.outputs[0].parameters.is_empty());
        let tensor = |name: &str| Tensor {
            name: name.into(),
            datatype: DataType::Fp32,
            shape: vec![],
            data: vec![],
            parameters: vec![],
        };
        assert!(choice.is_binary(&tensor("a")));
        assert!(!choice.is_binary(&tensor("b")));
        let mut bad = InferenceRequest {
            parameters: vec![(BINARY_DATA_OUTPUT.into(), ParameterValue::Int64(1))],
            ..InferenceRequest::default()
        };
        assert!(BinaryOutputs::take_from(&mut bad).is_err());
    }
}

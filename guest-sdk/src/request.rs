//! Helpers on requests, responses and metadata.

use crate::{Datatype, Error, InferenceRequest, Parameter, ParameterValue, Tensor, find_parameter};

/// The answer to one inference request: its outputs and parameters.
#[derive(Debug, Clone, Default)]
pub struct InferenceResponse {
    pub outputs: Vec<Tensor>,
    pub parameters: Vec<Parameter>,
}

/// What a model says of itself: its platform, inputs, outputs and parameters.
#[derive(Debug, Clone)]
pub struct ModelMetadata {
    pub platform: String,
    pub inputs: Vec<TensorMetadata>,
    pub outputs: Vec<TensorMetadata>,
    pub parameters: Vec<Parameter>,
}

/// The description of one input or output; `-1` in `shape` is a variable dimension.
#[derive(Debug, Clone)]
pub struct TensorMetadata {
    pub name: String,
    pub datatype: Datatype,
    pub shape: Vec<i64>,
    pub parameters: Vec<Parameter>,
}

impl InferenceRequest {
    /// The input named `name`.
    pub fn input(&self, name: &str) -> Result<&Tensor, Error> {
        self.inputs
            .iter()
            .find(|input| input.name == name)
            .ok_or_else(|| Error::invalid_input(format!("missing input '{name}'")))
    }

    /// The HTTP headers (or gRPC metadata) of the request, names in lower case (MLServer's
    /// `parameters.headers`). Empty for a request that ran in a batch.
    pub fn headers(&self) -> Vec<(String, String)> {
        let Some(ParameterValue::String(text)) = find_parameter(&self.parameters, HEADERS) else {
            return Vec::new();
        };
        match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text) {
            Ok(object) => object
                .into_iter()
                .filter_map(|(name, value)| Some((name, value.as_str()?.to_string())))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The request's one input, for models that take exactly one.
    pub fn only_input(&self) -> Result<&Tensor, Error> {
        match self.inputs.as_slice() {
            [input] => Ok(input),
            inputs => Err(Error::invalid_input(format!(
                "expected exactly one input, got {}",
                inputs.len()
            ))),
        }
    }

    /// The outputs to produce: the requested ones, or `defaults` when none were requested.
    ///
    /// Every requested name must be in `available`.
    pub fn output_names<'a>(
        &'a self,
        defaults: &[&'a str],
        available: &[&str],
    ) -> Result<Vec<&'a str>, Error> {
        if self.outputs.is_empty() {
            return Ok(defaults.to_vec());
        }
        self.outputs
            .iter()
            .map(|output| {
                if available.contains(&output.name.as_str()) {
                    Ok(output.name.as_str())
                } else {
                    Err(Error::invalid_input(format!(
                        "unknown output '{}'; this model has {available:?}",
                        output.name
                    )))
                }
            })
            .collect()
    }
}

impl InferenceResponse {
    /// An empty response.
    pub fn new() -> Self {
        InferenceResponse {
            outputs: Vec::new(),
            parameters: Vec::new(),
        }
    }

    /// Adds an output tensor.
    pub fn output(mut self, tensor: Tensor) -> Self {
        self.outputs.push(tensor);
        self
    }

    /// Adds a header to send back to the client (an HTTP header, or gRPC metadata). Headers
    /// that describe the message itself (`content-type`, `content-length`, ...) are not sent.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let mut object = match find_parameter(&self.parameters, HEADERS) {
            Some(ParameterValue::String(text)) => {
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text)
                    .unwrap_or_default()
            }
            _ => serde_json::Map::new(),
        };
        object.insert(
            name.to_string(),
            serde_json::Value::String(value.to_string()),
        );
        self.parameters
            .retain(|parameter| parameter.name != HEADERS);
        self.parameters.push(Parameter::string(
            HEADERS,
            &serde_json::Value::Object(object).to_string(),
        ));
        self
    }
}

/// The parameter carrying headers, as the text of a JSON object of strings.
const HEADERS: &str = "headers";

impl ModelMetadata {
    /// Metadata with no inputs or outputs yet; `platform` names the framework or format.
    pub fn new(platform: &str) -> Self {
        ModelMetadata {
            platform: platform.to_string(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            parameters: Vec::new(),
        }
    }

    /// Adds an input.
    pub fn input(mut self, input: TensorMetadata) -> Self {
        self.inputs.push(input);
        self
    }

    /// Adds an output.
    pub fn output(mut self, output: TensorMetadata) -> Self {
        self.outputs.push(output);
        self
    }
}

impl TensorMetadata {
    /// Describes a tensor; `-1` in `shape` is a variable dimension.
    pub fn new(name: &str, datatype: Datatype, shape: &[i64]) -> Self {
        TensorMetadata {
            name: name.to_string(),
            datatype,
            shape: shape.to_vec(),
            parameters: Vec::new(),
        }
    }
}

impl Parameter {
    /// A string parameter, such as `content_type`.
    pub fn string(name: &str, value: &str) -> Self {
        Parameter {
            name: name.to_string(),
            value: ParameterValue::String(value.to_string()),
        }
    }
}

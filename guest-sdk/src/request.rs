//! Helpers on requests, responses and metadata.

use crate::{Datatype, Error, InferenceRequest, Parameter, ParameterValue, Tensor};

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
}

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

//! Helpers on requests, responses and metadata.

use crate::{Datatype, Error, InferenceRequest, Parameter, ParameterValue, Tensor, find_parameter};

/// The answer to one inference request: its outputs and parameters.
///
/// The host adds the model's name and version and the request's `id`.
///
/// ```
/// # use mlhost_guest::{InferenceResponse, Tensor};
/// let response = InferenceResponse::new()
///     .output(Tensor::from_values("y", &[2], &[2.0f64, 4.0])?)
///     .output(Tensor::from_bytes_elements("label", &[2], &["low", "high"])?);
/// assert_eq!(response.outputs[1].strings()?, vec!["low", "high"]);
/// # Ok::<(), mlhost_guest::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct InferenceResponse {
    /// The output tensors, in the order the client gets them.
    pub outputs: Vec<Tensor>,
    /// The response's parameters (see [`InferenceResponse::header`]).
    pub parameters: Vec<Parameter>,
}

/// What a model says of itself, returned by [`Model::metadata`](crate::Model::metadata): its
/// platform, inputs, outputs and parameters.
///
/// The host serves it at `GET /v2/models/{name}` (and gRPC ModelMetadata), and refuses with a
/// 400 a request whose input names are not among `inputs` (when there are any). Inputs and
/// outputs declared in model-settings.json take the place of the runtime's; those declarations
/// are also checked on datatype and shape.
///
/// ```
/// # use mlhost_guest::{Datatype, ModelMetadata, TensorMetadata};
/// let metadata = ModelMetadata::new("scale")
///     .input(TensorMetadata::new("x", Datatype::Fp64, &[-1]))
///     .output(TensorMetadata::new("y", Datatype::Fp64, &[-1]));
/// assert_eq!((metadata.inputs.len(), metadata.outputs[0].name.as_str()), (1, "y"));
/// ```
#[derive(Debug, Clone)]
pub struct ModelMetadata {
    /// The framework or format the model runs, e.g. `"linear"` (model-settings.json's
    /// `platform`, when set, is reported instead).
    pub platform: String,
    /// The inputs the model takes.
    pub inputs: Vec<TensorMetadata>,
    /// The outputs the model can produce.
    pub outputs: Vec<TensorMetadata>,
    /// The model's parameters.
    pub parameters: Vec<Parameter>,
}

/// The description of one input or output; `-1` in `shape` is a variable dimension.
///
/// ```
/// # use mlhost_guest::{Datatype, Parameter, TensorMetadata};
/// // Rows of 4 features, any number of rows.
/// let mut features = TensorMetadata::new("features", Datatype::Fp32, &[-1, 4]);
/// features.parameters.push(Parameter::string("content_type", "np"));
/// assert_eq!(features.shape, vec![-1, 4]);
/// ```
#[derive(Debug, Clone)]
pub struct TensorMetadata {
    /// The tensor's name.
    pub name: String,
    /// Its datatype.
    pub datatype: Datatype,
    /// Its shape; `-1` is a dimension of any size.
    pub shape: Vec<i64>,
    /// Its parameters (e.g. `content_type`).
    pub parameters: Vec<Parameter>,
}

impl InferenceRequest {
    /// The input named `name`; [`Error::InvalidInput`] ("missing input 'name'") when the
    /// request has none.
    ///
    /// ```
    /// # use mlhost_guest::{InferenceRequest, Tensor};
    /// # let request = InferenceRequest { id: None, outputs: vec![], parameters: vec![],
    /// #     inputs: vec![Tensor::from_values("x", &[2], &[1.0f64, 2.0])?] };
    /// let x = request.input("x")?.to_f64_vec()?;
    /// assert_eq!(x, vec![1.0, 2.0]);
    /// assert!(request.input("z").is_err());
    /// # Ok::<(), mlhost_guest::Error>(())
    /// ```
    pub fn input(&self, name: &str) -> Result<&Tensor, Error> {
        self.inputs
            .iter()
            .find(|input| input.name == name)
            .ok_or_else(|| Error::invalid_input(format!("missing input '{name}'")))
    }

    /// The HTTP headers (or gRPC metadata) of the request, names in lower case (MLServer's
    /// `parameters.headers`). Empty for a request that ran in an adaptive batch (each request of
    /// the batch has its own).
    ///
    /// ```
    /// # use mlhost_guest::{InferenceRequest, Parameter};
    /// # let request = InferenceRequest { id: None, inputs: vec![], outputs: vec![],
    /// #     parameters: vec![Parameter::string("headers", r#"{"x-tenant": "acme"}"#)] };
    /// // curl -H 'X-Tenant: acme' ...
    /// let tenant = request.headers().into_iter().find(|(name, _)| name == "x-tenant");
    /// assert_eq!(tenant, Some(("x-tenant".to_string(), "acme".to_string())));
    /// ```
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

    /// The request's one input, for models that take exactly one; [`Error::InvalidInput`] when
    /// it has none or several.
    ///
    /// ```
    /// # use mlhost_guest::{InferenceRequest, Tensor};
    /// # let mut request = InferenceRequest { id: None, outputs: vec![], parameters: vec![],
    /// #     inputs: vec![Tensor::from_values("x", &[1], &[1.0f64])?] };
    /// assert_eq!(request.only_input()?.name, "x");
    /// # request.inputs.push(Tensor::from_values("z", &[1], &[1.0f64])?);
    /// // With inputs "x" and "z":
    /// assert!(request.only_input().is_err());
    /// # Ok::<(), mlhost_guest::Error>(())
    /// ```
    pub fn only_input(&self) -> Result<&Tensor, Error> {
        match self.inputs.as_slice() {
            [input] => Ok(input),
            inputs => Err(Error::invalid_input(format!(
                "expected exactly one input, got {}",
                inputs.len()
            ))),
        }
    }

    /// The outputs to produce: the requested ones (the request's `outputs`), or `defaults` when
    /// none were requested.
    ///
    /// Every requested name must be in `available`, else [`Error::InvalidInput`].
    ///
    /// ```
    /// # use mlhost_guest::{InferenceRequest, RequestedOutput};
    /// # let mut request = InferenceRequest { id: None, inputs: vec![], outputs: vec![],
    /// #     parameters: vec![] };
    /// let available = ["predict", "predict_proba"];
    /// assert_eq!(request.output_names(&["predict"], &available)?, vec!["predict"]);
    /// # request.outputs.push(RequestedOutput { name: "predict_proba".into(),
    /// #     parameters: vec![] });
    /// // {"outputs": [{"name": "predict_proba"}], ...}
    /// assert_eq!(request.output_names(&["predict"], &available)?, vec!["predict_proba"]);
    /// # Ok::<(), mlhost_guest::Error>(())
    /// ```
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
    ///
    /// ```
    /// # use mlhost_guest::InferenceResponse;
    /// assert!(InferenceResponse::new().outputs.is_empty());
    /// ```
    pub fn new() -> Self {
        InferenceResponse {
            outputs: Vec::new(),
            parameters: Vec::new(),
        }
    }

    /// Adds an output tensor.
    ///
    /// ```
    /// # use mlhost_guest::{InferenceResponse, Tensor};
    /// let response = InferenceResponse::new().output(Tensor::from_values("y", &[1], &[1i64])?);
    /// assert_eq!(response.outputs[0].name, "y");
    /// # Ok::<(), mlhost_guest::Error>(())
    /// ```
    pub fn output(mut self, tensor: Tensor) -> Self {
        self.outputs.push(tensor);
        self
    }

    /// Adds a header to send back to the client (an HTTP header, or gRPC metadata), in place of
    /// one of the same name. The host drops headers a runtime may not set: those that describe
    /// the message itself (`content-type`, `content-length`, `transfer-encoding`, ...),
    /// `set-cookie`, `x-request-id`, `access-control-*` (CORS), `grpc-*` and binary `*-bin`
    /// metadata.
    ///
    /// ```
    /// # use mlhost_guest::{find_parameter, InferenceResponse, ParameterValue};
    /// let response = InferenceResponse::new().header("x-model-revision", "7");
    /// // The headers travel as the response parameter `headers`, a JSON object's text.
    /// assert!(matches!(find_parameter(&response.parameters, "headers"),
    ///     Some(ParameterValue::String(json)) if json == r#"{"x-model-revision":"7"}"#));
    /// ```
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
    ///
    /// ```
    /// # use mlhost_guest::ModelMetadata;
    /// let metadata = ModelMetadata::new("my-framework");
    /// assert_eq!(metadata.platform, "my-framework");
    /// ```
    pub fn new(platform: &str) -> Self {
        ModelMetadata {
            platform: platform.to_string(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            parameters: Vec::new(),
        }
    }

    /// Adds an input.
    ///
    /// ```
    /// # use mlhost_guest::{Datatype, ModelMetadata, TensorMetadata};
    /// let metadata =
    ///     ModelMetadata::new("m").input(TensorMetadata::new("x", Datatype::Fp32, &[-1, 3]));
    /// assert_eq!(metadata.inputs[0].name, "x");
    /// ```
    pub fn input(mut self, input: TensorMetadata) -> Self {
        self.inputs.push(input);
        self
    }

    /// Adds an output.
    ///
    /// ```
    /// # use mlhost_guest::{Datatype, ModelMetadata, TensorMetadata};
    /// let label = TensorMetadata::new("label", Datatype::Bytes, &[-1]);
    /// let metadata = ModelMetadata::new("m").output(label);
    /// assert_eq!(metadata.outputs[0].datatype, Datatype::Bytes);
    /// ```
    pub fn output(mut self, output: TensorMetadata) -> Self {
        self.outputs.push(output);
        self
    }
}

impl TensorMetadata {
    /// Describes a tensor; `-1` in `shape` is a variable dimension.
    ///
    /// ```
    /// # use mlhost_guest::{Datatype, TensorMetadata};
    /// let image = TensorMetadata::new("image", Datatype::Uint8, &[-1, 28, 28]);
    /// assert_eq!(image.shape, vec![-1, 28, 28]);
    /// ```
    pub fn new(name: &str, datatype: Datatype, shape: &[i64]) -> Self {
        TensorMetadata {
            name: name.to_string(),
            datatype,
            shape: shape.to_vec(),
            parameters: Vec::new(),
        }
    }

    /// Names the columns of a `[rows, features]` input, in order (the [`FEATURE_NAMES`]
    /// parameter): the host then also takes requests that give the matrix as columns (MLServer's
    /// `pd` content type, or one input per feature) and assembles them into it by name, answering
    /// 400 for a missing or unknown column. Without names, a model that takes one such input
    /// gets the columns in the order the request gives them.
    ///
    /// ```
    /// # use mlhost_guest::{Datatype, ParameterValue, TensorMetadata, FEATURE_NAMES};
    /// let input = TensorMetadata::new("input-0", Datatype::Fp32, &[-1, 2])
    ///     .with_feature_names(&["age", "height"]);
    /// let names = &input.parameters[0];
    /// assert_eq!(names.name, FEATURE_NAMES);
    /// assert!(matches!(&names.value, ParameterValue::String(v) if v == r#"["age","height"]"#));
    /// ```
    pub fn with_feature_names<S: AsRef<str>>(mut self, names: &[S]) -> Self {
        let names: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
        let text = serde_json::to_string(&names).expect("strings serialize");
        self.parameters
            .retain(|parameter| parameter.name != FEATURE_NAMES);
        self.parameters
            .push(Parameter::string(FEATURE_NAMES, &text));
        self
    }
}

/// The parameter of a metadata input that names its columns: the text of a JSON array of
/// strings (see [`TensorMetadata::with_feature_names`]).
pub const FEATURE_NAMES: &str = "feature_names";

impl Parameter {
    /// A string parameter, such as `content_type`.
    ///
    /// ```
    /// # use mlhost_guest::{Parameter, ParameterValue};
    /// let parameter = Parameter::string("content_type", "str");
    /// assert_eq!(parameter.name, "content_type");
    /// assert!(matches!(parameter.value, ParameterValue::String(v) if v == "str"));
    /// ```
    pub fn string(name: &str, value: &str) -> Self {
        Parameter {
            name: name.to_string(),
            value: ParameterValue::String(value.to_string()),
        }
    }
}

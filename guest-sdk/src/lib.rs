//! Write an mlhost model runtime in Rust.
//!
//! A runtime is a WebAssembly component that the mlhost server loads once per model instance and
//! calls for every batch of requests. This crate hides the component plumbing (the `wit-bindgen`
//! bindings of the `mlhost:runtime` WIT package) behind one trait, [`Model`], one macro,
//! [`export_model!`], and typed views of tensors.
//!
//! ```
//! use mlhost_guest::{export_model, Error, InferenceRequest, InferenceResponse, Model,
//!     ModelMetadata, ModelSettings, Tensor, TensorMetadata, Datatype};
//!
//! /// Doubles every element of its one input.
//! struct Doubler;
//!
//! impl Model for Doubler {
//!     fn load(_settings: ModelSettings) -> Result<Self, Error> {
//!         Ok(Doubler)
//!     }
//!
//!     fn metadata(&self) -> ModelMetadata {
//!         ModelMetadata::new("doubler")
//!             .input(TensorMetadata::new("x", Datatype::Fp64, &[-1]))
//!             .output(TensorMetadata::new("y", Datatype::Fp64, &[-1]))
//!     }
//!
//!     fn predict(&self, request: InferenceRequest) -> Result<InferenceResponse, Error> {
//!         let x = request.only_input()?;
//!         let doubled: Vec<f64> = x.to_f64_vec()?.iter().map(|v| v * 2.0).collect();
//!         Ok(InferenceResponse::new().output(Tensor::from_values("y", &x.shape, &doubled)?))
//!     }
//! }
//!
//! export_model!(Doubler);
//!
//! // The model is plain Rust: a native test calls it directly.
//! let x = Tensor::from_values("x", &[2], &[1.5f32, -2.0])?;
//! let request =
//!     InferenceRequest { id: None, inputs: vec![x], outputs: vec![], parameters: vec![] };
//! let response = Doubler.predict(request)?;
//! assert_eq!(response.outputs[0].values::<f64>()?, vec![3.0, -4.0]);
//! # Ok::<(), Error>(())
//! ```
//!
//! `mlhost build` builds such a crate (a `cdylib`) for `wasm32-wasip2` into `build/NAME.wasm`,
//! which model-settings.json names in `implementation`; `mlhost init NAME` writes a project to
//! start from. The guide (the crate's `README.md`) walks from nothing to a served model.
//!
//! # Tensors
//!
//! A [`Tensor`]'s `data` holds its elements in row-major order as little-endian bytes (BOOL one
//! byte, 0 or 1); a BYTES tensor holds each element as a 4-byte little-endian length followed by
//! its bytes. Read inputs with the typed views ([`Tensor::values`], [`Tensor::to_f64_vec`],
//! [`Tensor::strings`], ...), whose errors are [`Error::InvalidInput`] naming the tensor, and
//! build outputs with [`Tensor::from_values`] and [`Tensor::from_bytes_elements`].
//!
//! # Content types
//!
//! MLServer's `content_type` parameters say how to read a request. The host fills in the
//! content types in force before the runtime sees a request (the request's or input's own, else
//! model-settings.json's), decodes `base64` inputs to their bytes and checks that `str` and
//! `datetime` inputs are UTF-8; it encodes outputs labelled `base64`, and labels outputs without
//! a content type `np` (or `str` for text). What is left to a runtime: [`InferenceRequest::table`]
//! for `pd`, [`Tensor::strings`] for `str`, [`Tensor::datetimes`] for `datetime`, the typed views
//! for `np`, and [`Tensor::with_content_type`] to label an output.
//!
//! # Errors
//!
//! What the client sees of each [`Error`] (build them with [`Error::invalid_input`],
//! [`Error::invalid_model`] and [`Error::internal`]):
//!
//! | error | returned from `load` | returned from `predict` |
//! |---|---|---|
//! | [`Error::InvalidInput`] | as `InvalidModel` | HTTP 400 / gRPC INVALID_ARGUMENT |
//! | [`Error::InvalidModel`] | the model is not loaded: not ready, UNAVAILABLE in the repository index with the message as its reason, inference answered 503 / UNAVAILABLE | HTTP 500 / gRPC INTERNAL |
//! | [`Error::Internal`] | as `InvalidModel` | HTTP 500 / gRPC INTERNAL |
//!
//! The message reaches the client as it is (`{"error": "..."}` in REST, the status message in
//! gRPC). A returned error leaves the instance as it is; a panic (or any trap) also answers 500,
//! but the host then drops the instance and loads a fresh one.

/// The guide's (README.md's) Rust examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct Guide;

mod content;
mod element;
mod error;
pub mod onnx;
mod request;
mod settings;
mod stream;
mod tensor;

/// The `serde_json` crate, re-exported so that runtimes can read JSON (settings, files) without a
/// dependency of their own.
///
/// ```
/// use mlhost_guest::serde_json::{self, Value};
///
/// let config: Value = serde_json::from_str(r#"{"labels": ["cat", "dog"]}"#).unwrap();
/// assert_eq!(config["labels"][1], "dog");
/// ```
pub use serde_json;

/// The raw `wit-bindgen` bindings of the `mlhost:runtime` world.
///
/// Runtime authors rarely need them: the crate root re-exports the types.
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "mlhost:runtime/runtime@0.1.2",
        pub_export_macro: true,
        export_macro_name: "__export_runtime",
        default_bindings_module: "mlhost_guest::bindings",
    });
}

// Inlined: the types runtimes use are documented at the crate root, with the SDK's methods.
#[doc(inline)]
pub use bindings::mlhost::runtime::types::{
    Datatype, Error, InferenceRequest, ModelSettings, Parameter, ParameterValue, RequestedOutput,
    Tensor,
};
pub use content::{CONTENT_TYPE, Column, ColumnValues, DateTime, Table};
pub use element::Element;
pub use request::{FEATURE_NAMES, InferenceResponse, ModelMetadata, TensorMetadata};
pub use stream::Responses;

use bindings::exports::mlhost::runtime::model::{GuestModel, Model as ModelHandle};
use bindings::mlhost::runtime::host;
use bindings::mlhost::runtime::types::TensorRole;

/// A model runtime: created once from its settings, then asked to predict many times.
///
/// Each model instance (one per worker: model-settings.json's `parallel_workers`) is a
/// component instance of its own, which calls [`Model::load`] once, then [`Model::metadata`],
/// then [`Model::predict`] for each request or adaptive batch. The host calls a model from one
/// thread at a time, so a model that needs mutable state can keep it in a `RefCell` (no `Sync`
/// or locks needed). After a panic or trap the host drops the instance and loads a new one.
pub trait Model: 'static {
    /// Creates the model from its settings, reading its files under `settings.uri`.
    ///
    /// `settings.uri` is `parameters.uri` of model-settings.json (default: the model's folder)
    /// as the runtime sees it: under `/model`, the model's folder, which the runtime may read
    /// and nothing else. `settings.extra_settings()` and `settings.parameter(name)` read the
    /// rest of `parameters`. Load runs once per instance, with up to 5 minutes and the model's
    /// `memory_limit_mb`.
    ///
    /// Return [`Error::InvalidModel`] when the files or settings are wrong: the model is then
    /// reported not ready, with the message as its reason.
    ///
    /// ```
    /// # use mlhost_guest::{Error, ModelSettings};
    /// struct Labels(Vec<String>);
    ///
    /// fn load(settings: ModelSettings) -> Result<Labels, Error> {
    ///     let path = format!("{}/labels.txt", settings.uri); // e.g. /model/labels.txt
    ///     let text = std::fs::read_to_string(&path)
    ///         .map_err(|e| Error::invalid_model(format!("cannot read {path}: {e}")))?;
    ///     Ok(Labels(text.lines().map(str::to_string).collect()))
    /// }
    /// # let settings = ModelSettings { name: "m".into(), version: None,
    /// #     uri: "/nonexistent".into(), extra: "{}".into(), parameters: vec![] };
    /// assert!(matches!(load(settings), Err(Error::InvalidModel(_))));
    /// ```
    fn load(settings: ModelSettings) -> Result<Self, Error>
    where
        Self: Sized;

    /// Describes the model's inputs and outputs: called once, after [`Model::load`].
    ///
    /// The host serves it as the model's metadata (unless model-settings.json declares
    /// `inputs` / `outputs`, which take its place) and refuses, with a 400, requests whose input
    /// names are not among the inputs described.
    fn metadata(&self) -> ModelMetadata;

    /// Runs one request, which may hold many rows (with adaptive batching, the rows of several
    /// requests merged along dimension 0: answer one output row per input row).
    ///
    /// Return [`Error::InvalidInput`] for a request that does not fit the model (the client gets
    /// a 400) and [`Error::Internal`] for a failure of the runtime itself (a 500).
    fn predict(&self, request: InferenceRequest) -> Result<InferenceResponse, Error>;

    /// Runs one request for a streaming endpoint (REST `infer_stream` / `generate_stream`, gRPC
    /// ModelStreamInfer), sending each response as soon as it is ready with
    /// [`Responses::send`]. Streamed requests are never batched.
    ///
    /// By default, sends the one response of [`Model::predict`]. Test it natively with
    /// [`Responses::collect`].
    fn predict_stream(
        &self,
        request: InferenceRequest,
        responses: &mut Responses,
    ) -> Result<(), Error> {
        responses.send(self.predict(request)?)
    }
}

/// Adapts a [`Model`] to the generated component interface. Used by [`export_model!`].
#[doc(hidden)]
pub struct Exported<M>(M);

impl<M: Model> GuestModel for Exported<M> {
    fn load(settings: ModelSettings) -> Result<ModelHandle, Error> {
        M::load(settings).map(|model| ModelHandle::new(Exported(model)))
    }

    /// Hands the description to the host one piece at a time (see the WIT `host` interface).
    fn metadata(&self) -> Result<(), Error> {
        let metadata = self.0.metadata();
        host::describe_platform(&metadata.platform).map_err(Error::Internal)?;
        for (role, tensors) in [
            (TensorRole::Input, &metadata.inputs),
            (TensorRole::Output, &metadata.outputs),
        ] {
            for tensor in tensors {
                host::describe_tensor(role, &tensor.name, tensor.datatype, &tensor.shape)
                    .map_err(Error::Internal)?;
                for parameter in &tensor.parameters {
                    host::describe_parameter(
                        Some((&role, &tensor.name)),
                        &parameter.name,
                        &parameter.value,
                    )
                    .map_err(Error::Internal)?;
                }
            }
        }
        for parameter in &metadata.parameters {
            host::describe_parameter(None, &parameter.name, &parameter.value)
                .map_err(Error::Internal)?;
        }
        Ok(())
    }

    /// Runs the model and hands its answer to the host: one response, or as many as the model
    /// sends when the caller streams.
    fn predict(&self, request: InferenceRequest) -> Result<(), Error> {
        if host::streaming() {
            self.0.predict_stream(request, &mut Responses::to_host())
        } else {
            stream::hand_over(&self.0.predict(request)?)
        }
    }
}

/// Exports a type implementing [`Model`] as the component's runtime.
///
/// Use it once, at the root of the runtime crate: `export_model!(MyModel);`. The exports exist
/// only in wasm32 builds, so the crate still builds (and unit-tests) natively; see the crate
/// documentation for an example.
#[macro_export]
macro_rules! export_model {
    ($model:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __MlhostRuntime;
            impl $crate::bindings::exports::mlhost::runtime::model::Guest for __MlhostRuntime {
                type Model = $crate::Exported<$model>;
            }
    $crate::bindings::__export_runtime!(__MlhostRuntime with_types_in $crate::bindings);
        };
        // Natively there are no exports; keep the model's code alive for tests and lints.
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            let _ = <$model as $crate::Model>::load;
            let _ = <$model as $crate::Model>::metadata;
            let _ = <$model as $crate::Model>::predict;
            let _ = <$model as $crate::Model>::predict_stream;
        };
    };
}

/// Looks a parameter up by name, in a request's, tensor's or response's `parameters`.
///
/// ```
/// use mlhost_guest::{find_parameter, Parameter, ParameterValue};
///
/// let parameters = vec![
///     Parameter::string("content_type", "np"),
///     Parameter { name: "top_k".into(), value: ParameterValue::Int64(3) },
/// ];
/// let top_k = match find_parameter(&parameters, "top_k") {
///     Some(ParameterValue::Int64(k)) => *k,
///     _ => 1,
/// };
/// assert_eq!(top_k, 3);
/// assert!(find_parameter(&parameters, "temperature").is_none());
/// ```
pub fn find_parameter<'a>(parameters: &'a [Parameter], name: &str) -> Option<&'a ParameterValue> {
    parameters
        .iter()
        .find(|parameter| parameter.name == name)
        .map(|parameter| &parameter.value)
}

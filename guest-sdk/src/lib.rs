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
//! # // The model is plain Rust: call it directly in a test.
//! let x = Tensor::from_values("x", &[2], &[1.5f32, -2.0])?;
//! let request = InferenceRequest { id: None, inputs: vec![x], outputs: vec![], parameters: vec![] };
//! let response = Doubler.predict(request)?;
//! assert_eq!(response.outputs[0].values::<f64>()?, vec![3.0, -4.0]);
//! # Ok::<(), Error>(())
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` (a `cdylib` crate) and point a
//! `model-settings.json` at the `.wasm` file through `implementation`.

mod content;
mod element;
mod error;
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
        world: "mlhost:runtime/runtime@0.1.1",
        pub_export_macro: true,
        export_macro_name: "__export_runtime",
        default_bindings_module: "mlhost_guest::bindings",
    });
}

pub use bindings::mlhost::runtime::types::{
    Datatype, Error, InferenceRequest, ModelSettings, Parameter, ParameterValue, RequestedOutput,
    Tensor,
};
pub use content::{CONTENT_TYPE, Column, ColumnValues, DateTime, Table};
pub use element::Element;
pub use request::{InferenceResponse, ModelMetadata, TensorMetadata};
pub use stream::Responses;

use bindings::exports::mlhost::runtime::model::{GuestModel, Model as ModelHandle};
use bindings::mlhost::runtime::host;
use bindings::mlhost::runtime::types::TensorRole;

/// A model runtime: created once from its settings, then asked to predict many times.
///
/// The host calls a model from one thread at a time; a model that needs mutable state can keep it
/// in a `RefCell`.
pub trait Model: 'static {
    /// Creates the model, reading its files under `settings.uri` (inside `/model`).
    ///
    /// Return [`Error::InvalidModel`] when the files or settings are wrong.
    fn load(settings: ModelSettings) -> Result<Self, Error>
    where
        Self: Sized;

    /// Describes the model's inputs and outputs.
    fn metadata(&self) -> ModelMetadata;

    /// Runs one request, which may hold many rows.
    ///
    /// Return [`Error::InvalidInput`] for a request that does not fit the model (the client gets
    /// a 400) and [`Error::Internal`] for a failure of the runtime itself (a 500).
    fn predict(&self, request: InferenceRequest) -> Result<InferenceResponse, Error>;

    /// Runs one request for a streaming endpoint (`infer_stream`, gRPC ModelStreamInfer),
    /// sending each response as soon as it is ready with [`Responses::send`].
    ///
    /// By default, sends the one response of [`Model::predict`].
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
/// only in wasm32 builds, so the crate still builds (and unit-tests) natively.
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

/// Looks a parameter up by name.
pub fn find_parameter<'a>(parameters: &'a [Parameter], name: &str) -> Option<&'a ParameterValue> {
    parameters
        .iter()
        .find(|parameter| parameter.name == name)
        .map(|parameter| &parameter.value)
}

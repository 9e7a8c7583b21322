//! Native ONNX inference through the host: the runtime keeps its pre- and post-processing, and
//! the host runs the ONNX graph in ONNX Runtime (outside the sandbox, on the model's threads).
//!
//! A runtime opens a [`Session`] from an ONNX file of its model folder in [`Model::load`] and
//! calls [`Session::run`] in [`Model::predict`]. The model's settings choose the backend
//! (`backend` in model-settings.json: [`backend`]); the server may forbid native backends, or
//! lack ONNX Runtime ([`available`] says why). A run is stopped at the call's deadline.
//!
//! Natively (outside WebAssembly, e.g. in a runtime's unit tests) there is no host:
//! [`backend`] is `Sandboxed` and [`available`] says so.
//!
//! ```no_run
//! use mlhost_guest::onnx::{self, Session};
//! use mlhost_guest::{Error, InferenceRequest, InferenceResponse};
//!
//! fn load(uri: &str) -> Result<Session, Error> {
//!     onnx::available().map_err(Error::invalid_model)?;
//!     Session::open(&format!("{uri}/model.onnx"))
//! }
//!
//! fn predict(session: &Session, request: InferenceRequest) -> Result<InferenceResponse, Error> {
//!     // Pre-processing of the inputs would go here.
//!     let outputs = session.run(&request.inputs, &[])?;
//!     Ok(outputs.into_iter().fold(InferenceResponse::new(), |r, t| r.output(t)))
//! }
//! ```
//!
//! [`Model::load`]: crate::Model::load
//! [`Model::predict`]: crate::Model::predict

use crate::{Error, Tensor};

#[doc(inline)]
pub use crate::bindings::mlhost::runtime::onnx::{BackendChoice, Port};

#[cfg(target_arch = "wasm32")]
use crate::bindings::mlhost::runtime::onnx as host;

/// The backend the model's settings ask for (`backend` in model-settings.json).
pub fn backend() -> BackendChoice {
    #[cfg(target_arch = "wasm32")]
    return host::backend();
    #[cfg(not(target_arch = "wasm32"))]
    BackendChoice::Sandboxed
}

/// Whether the native backend can serve this model: `Ok`, or why not.
pub fn available() -> Result<(), String> {
    #[cfg(target_arch = "wasm32")]
    return host::available();
    #[cfg(not(target_arch = "wasm32"))]
    Err("the native backend exists only inside the mlhost server".to_string())
}

/// A graph loaded in the host's ONNX Runtime; dropped with the runtime's model.
#[derive(Debug)]
pub struct Session {
    #[cfg(target_arch = "wasm32")]
    inner: host::Session,
    #[cfg(not(target_arch = "wasm32"))]
    _never: std::convert::Infallible,
}

impl Session {
    /// Loads the ONNX file at `path` (under `/model`). Fails with [`Error::InvalidModel`].
    pub fn open(path: &str) -> Result<Session, Error> {
        #[cfg(target_arch = "wasm32")]
        return host::Session::open(path)
            .map(|inner| Session { inner })
            .map_err(Error::invalid_model);
        #[cfg(not(target_arch = "wasm32"))]
        Err(Error::invalid_model(format!(
            "cannot open {path}: {}",
            available().unwrap_err()
        )))
    }

    /// Loads an ONNX graph from its bytes. Fails with [`Error::InvalidModel`].
    pub fn from_bytes(graph: &[u8]) -> Result<Session, Error> {
        #[cfg(target_arch = "wasm32")]
        return host::Session::from_bytes(graph)
            .map(|inner| Session { inner })
            .map_err(Error::invalid_model);
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = graph;
            Err(Error::invalid_model(available().unwrap_err()))
        }
    }

    /// The graph's inputs, in order.
    pub fn inputs(&self) -> Vec<Port> {
        #[cfg(target_arch = "wasm32")]
        return self.inner.inputs();
        #[cfg(not(target_arch = "wasm32"))]
        match self._never {}
    }

    /// The graph's outputs, in order.
    pub fn outputs(&self) -> Vec<Port> {
        #[cfg(target_arch = "wasm32")]
        return self.inner.outputs();
        #[cfg(not(target_arch = "wasm32"))]
        match self._never {}
    }

    /// Runs the graph on `inputs` (every graph input by name, in the graph's datatype) and
    /// returns the outputs named in `outputs` (all of them, in order, when empty). Inputs that
    /// do not fit the graph fail with [`Error::InvalidInput`] (a 400 for the client), anything
    /// else with [`Error::Internal`].
    pub fn run(&self, inputs: &[Tensor], outputs: &[String]) -> Result<Vec<Tensor>, Error> {
        #[cfg(target_arch = "wasm32")]
        return self
            .inner
            .run(inputs, outputs)
            .map_err(|error| match error {
                host::RunError::InvalidInput(message) => Error::InvalidInput(message),
                host::RunError::Failed(message) => Error::Internal(message),
            });
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = (inputs, outputs);
            match self._never {}
        }
    }
}

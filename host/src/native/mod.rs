//! Native compute backends: ONNX Runtime in the host, for the runtimes that hand it an ONNX graph
//! through the WIT `onnx` interface (the built-in `onnx` runtime, and custom runtimes).
//!
//! The runtime stays a sandboxed component: it reads its model under `/model`, checks and
//! converts the request, and calls the host to run the graph; the tensor maths runs here, on the
//! CPU's full width and the model's threads. Why a host interface of our own rather than
//! `wasi:nn`: see docs/architecture.md.
//!
//! Modules: `library` (finding and loading ONNX Runtime's shared library, once per process),
//! `values` (tensors as bytes to and from ONNX Runtime's values), `watchdog` (stopping a run at
//! its deadline), `session` (a loaded graph and its runs).

mod library;
mod session;
mod values;
mod watchdog;

pub(crate) use library::{LibraryStatus, configure as configure_library, status as library_status};
// `pub`: the generated WIT bindings re-export it as the `session` resource's host type.
#[allow(unreachable_pub)]
pub use session::OnnxSession;
pub(crate) use session::{Port, RunError};
pub(crate) use values::RawTensor;

use serde::{Deserialize, Serialize};

/// Which backend a model's settings ask for (`backend` in model-settings.json).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// The native backend when it is available and allowed, else the runtime's own.
    #[default]
    Auto,
    /// The native backend only: without it the model does not load.
    Native,
    /// The runtime's own, sandboxed backend only.
    Sandboxed,
}

/// What one model's instances may use of the native backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NativeOptions {
    /// The model's choice.
    pub choice: BackendChoice,
    /// Whether the server allows native backends at all (`native_backends` in settings.json).
    pub allowed: bool,
    /// ONNX Runtime's intra-op threads for each of the model's sessions.
    pub intra_op_threads: usize,
}

impl Default for NativeOptions {
    fn default() -> Self {
        NativeOptions {
            choice: BackendChoice::Auto,
            allowed: true,
            intra_op_threads: 1,
        }
    }
}

impl NativeOptions {
    /// Whether a session may be opened for this model: `Ok`, or why not.
    pub fn available(&self) -> Result<(), String> {
        if !self.allowed {
            return Err(
                "the server does not allow native backends (`native_backends` is false \
                 in its settings)"
                    .to_string(),
            );
        }
        if self.choice == BackendChoice::Sandboxed {
            return Err("the model's settings ask for the sandboxed backend".to_string());
        }
        match library_status() {
            LibraryStatus::Loaded { .. } => Ok(()),
            LibraryStatus::Missing { reason } => Err(reason.clone()),
        }
    }
}

/// The intra-op threads a model gets when its settings name none: the machine's cores shared
/// among the model's workers (each worker runs its own session), at least one.
pub(crate) fn default_intra_op_threads(workers: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / workers.max(1)).max(1)
}

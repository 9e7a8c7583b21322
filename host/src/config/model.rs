//! `model-settings.json`: one model (version) to serve.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A model's settings, with MLServer's field names and defaults.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ModelSettings {
    /// The model's name; defaults to its folder's name.
    pub name: Option<String>,
    /// The runtime: a built-in runtime's name, or the path of a `.wasm` component relative to the
    /// model's folder.
    pub implementation: Option<String>,
    /// The platform reported in the model's metadata (the runtime's own when empty).
    pub platform: String,
    /// Versions reported in the model's metadata.
    pub versions: Vec<String>,
    /// Declared inputs: when present, requests are checked against them.
    pub inputs: Vec<TensorSettings>,
    /// Declared outputs.
    pub outputs: Vec<TensorSettings>,
    /// Worker threads for this model, overriding the server's `parallel_workers`.
    pub parallel_workers: Option<usize>,
    /// Largest adaptive batch, in rows (0 or 1: no batching).
    pub max_batch_size: usize,
    /// Longest wait for a batch to fill, in seconds (0: no batching).
    pub max_batch_time: f64,
    /// Parameters: uri, version, extra, ...
    pub parameters: ModelParameters,
    /// Linear memory per instance in MiB (at most the server's `memory_limit_mb`).
    pub memory_limit_mb: Option<u64>,
    /// The longest an inference call may run, in seconds (at most the server's).
    pub timeout_seconds: Option<f64>,
    /// The most output data one call may return, in MiB (at most the server's).
    pub max_output_mb: Option<u64>,
    /// Requests the model's queue holds before refusing new ones (the server's by default);
    /// with priority levels, each level's queue.
    pub max_queue_size: Option<usize>,
    /// Priority levels (Triton's `priority_levels`: 1 the highest; 0 or 1: none).
    pub priority_levels: usize,
    /// The level of a request that names none (Triton's `default_priority_level`; 0: the lowest).
    pub default_priority_level: usize,
    /// Each level's queue capacity, level 1 first (default: `max_queue_size` each).
    pub priority_queue_sizes: Vec<usize>,
    /// Which backend runs the model's graph where its runtime offers a choice (the `onnx`
    /// runtime: `native` ONNX Runtime, `sandboxed` tract, or `auto`).
    pub backend: crate::native::BackendChoice,
    /// ONNX Runtime's intra-op threads per worker (default: the cores shared among workers).
    pub intra_op_threads: Option<usize>,
    /// Whether the model's answers are cached, when the server's `cache_enabled` is set too
    /// (MLServer's field and default).
    pub cache_enabled: bool,
    /// Makes the model a pipeline of other models (docs/pipelines.md): no runtime of its own.
    pub pipeline: Option<super::PipelineSettings>,

    // MLServer fields accepted for compatibility; mlhost does not act on them.
    pub warm_workers: Option<Value>,

    /// What lenient parsing dropped, one line each, naming the file (not a setting).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

impl ModelSettings {
    /// The fields that are set but that mlhost does not act on (yet).
    pub(crate) fn ignored_fields(&self) -> Vec<&'static str> {
        let mut ignored = Vec::new();
        if self
            .warm_workers
            .as_ref()
            .is_some_and(|value| !value.is_null())
        {
            ignored.push("warm_workers");
        }
        ignored
    }
}

/// The `parameters` of a model's settings.
///
/// As in MLServer, entries other than the named ones are allowed; they reach the runtime.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub(crate) struct ModelParameters {
    /// Where the model's artefacts are: a file or folder, relative to the model's folder.
    pub uri: Option<String>,
    /// The SHA-256 (hex) of the object a remote `uri` names, or an object of them by path for
    /// a remote folder: checked on download, and cached content with them is used without
    /// asking the store (docs/deployment.md).
    pub uri_sha256: Option<Value>,
    /// The model's version.
    pub version: Option<String>,
    /// The artefacts' format.
    pub format: Option<String>,
    /// The default content type of the model's inputs.
    pub content_type: Option<String>,
    /// Free-form settings for the runtime.
    pub extra: Option<Map<String, Value>>,
    /// Every other entry.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A declared input or output (`inputs` / `outputs` of model-settings.json).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct TensorSettings {
    pub name: String,
    pub datatype: String,
    pub shape: Vec<i64>,
    #[serde(default)]
    pub parameters: Option<Map<String, Value>>,
}

//! Server and model configuration: `settings.json` and `model-settings.json`.
//!
//! Field names and defaults are MLServer's, so that an MLServer folder loads unchanged. Fields
//! MLServer has and mlhost does not act on (yet) are accepted and reported at start-up. As
//! MLServer's pydantic settings, a field neither knows is dropped with a warning ("did you mean
//! ...") and numbers or booleans written as strings are coerced; a value that cannot be used is
//! an error naming the file and the field. `strict_settings` makes unknown fields and strings
//! for numbers errors too.
//!
//! Precedence, highest first: command-line flags, `MLHOST_<FIELD>` environment variables,
//! `MLSERVER_<FIELD>` environment variables, the JSON file, the defaults.

mod connections;
mod env_model;
mod load;
mod model;
mod pipeline;

pub(crate) use connections::seconds;
pub(crate) use env_model::{EnvModel, env_model};
#[cfg(test)]
pub(crate) use load::read_model_settings;
pub(crate) use load::{
    ConfigError, check_model_settings, load_settings, parse_model_settings,
    read_model_settings_over, set_strict, warn_once,
};
pub(crate) use model::{ModelParameters, ModelSettings, TensorSettings};
pub(crate) use pipeline::{PipelineSettings, TensorSources};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// MLServer's `cors_settings`: which browser origins may call the REST API.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct CorsSettings {
    /// Origins allowed (`"*"` for any).
    pub allow_origins: Vec<String>,
    /// A regular expression origins may match instead.
    pub allow_origin_regex: Option<String>,
    /// Whether credentials (cookies, authorization) may be sent.
    pub allow_credentials: bool,
    /// Methods allowed (`"*"` for any).
    pub allow_methods: Vec<String>,
    /// Request headers allowed (`"*"` for any).
    pub allow_headers: Vec<String>,
    /// Response headers the browser may read.
    pub expose_headers: Vec<String>,
    /// How long a preflight answer may be cached, in seconds.
    pub max_age: u64,
}

impl Default for CorsSettings {
    /// MLServer's defaults (Starlette's): no origin, `GET` only, no headers, 600 s.
    fn default() -> Self {
        CorsSettings {
            allow_origins: Vec::new(),
            allow_origin_regex: None,
            allow_credentials: false,
            allow_methods: vec!["GET".to_string()],
            allow_headers: Vec::new(),
            expose_headers: Vec::new(),
            max_age: 600,
        }
    }
}

/// The server's settings (`settings.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Settings {
    /// Debug mode: sets the log level to `debug` unless `logging_settings` says otherwise.
    pub debug: bool,
    /// Worker threads (each with its own instance of the model) per model.
    pub parallel_workers: usize,
    /// Where models are discovered; relative paths are relative to the settings folder.
    pub model_repository_root: String,
    /// Load every discovered model when the server starts.
    pub load_models_at_startup: bool,
    /// The server's name in `GET /v2`.
    pub server_name: String,
    /// The server's version in `GET /v2`.
    pub server_version: String,
    /// The address the servers listen on.
    pub host: String,
    /// REST port.
    pub http_port: u16,
    /// gRPC port.
    pub grpc_port: u16,
    /// Prometheus metrics port.
    pub metrics_port: u16,
    /// Prefix of every REST path, as MLServer's `root_path`.
    pub root_path: String,
    /// Path of the metrics endpoint; `null` disables it.
    pub metrics_endpoint: Option<String>,
    /// JSON logs instead of human-readable ones.
    pub use_structured_logging: bool,
    /// Log level (`error`, `warn`, `info`, `debug`, `trace`) or a `tracing` filter directive.
    pub logging_settings: Option<Value>,
    /// Largest gRPC message, in bytes (gRPC's 4 MiB when unset).
    pub grpc_max_message_length: Option<u64>,
    /// CORS, as MLServer's `cors_settings` (`null`: no CORS headers).
    pub cors_settings: Option<CorsSettings>,
    /// Prefix of the REST metrics' names (`{prefix}_requests`, ...).
    pub metrics_rest_server_prefix: String,
    /// Accept gzip-compressed bodies.
    pub gzip_enabled: bool,
    /// Extensions listed in `GET /v2` besides those mlhost implements.
    pub extensions: Vec<String>,

    // Connections (docs/configuration.md, "Connections and timeouts").
    /// Open connections per port; past it a new one is refused (503 / GOAWAY) and closed.
    pub max_connections: u32,
    /// REST: the longest a request's headers may take to arrive, in seconds.
    pub header_read_timeout_seconds: f64,
    /// REST: how long an idle keep-alive connection stays open, in seconds.
    pub keep_alive_timeout_seconds: f64,
    /// REST bodies and unary gRPC requests: the longest wait for the next part, in seconds;
    /// past it, a body must also average `min_body_rate_bytes_per_second`.
    pub body_read_timeout_seconds: f64,
    /// REST bodies and unary gRPC requests: the slowest average rate, in bytes per second
    /// (0: any).
    pub min_body_rate_bytes_per_second: u64,
    /// Every port: the longest a response's write may wait for the client to take data.
    pub send_timeout_seconds: f64,
    /// gRPC: the longest a new connection may take to send HTTP/2's preface and SETTINGS.
    pub grpc_handshake_timeout_seconds: f64,
    /// gRPC: how long a connection with no call open stays open, in seconds.
    pub grpc_idle_timeout_seconds: f64,
    /// gRPC: how often the server pings a connection (HTTP/2 PING), in seconds.
    pub grpc_keepalive_interval_seconds: f64,
    /// gRPC: how long a ping may go unanswered before the connection is closed, in seconds.
    pub grpc_keepalive_timeout_seconds: f64,
    /// gRPC: the most calls (HTTP/2 streams) open at once on one connection.
    pub grpc_max_concurrent_streams: u32,
    /// gRPC: the HTTP/2 flow-control window of each stream, in bytes.
    pub grpc_stream_window_bytes: u32,
    /// gRPC: the HTTP/2 flow-control window of each connection, in bytes.
    pub grpc_connection_window_bytes: u32,
    /// gRPC: the largest header list (metadata) of a call, in bytes (HTTP/2's accounting).
    pub grpc_max_header_list_bytes: u32,
    /// How long a shutdown lets open requests finish before closing every connection, in seconds.
    pub shutdown_grace_period_seconds: f64,

    // Limits (mlhost's own settings; a model's model-settings.json may lower the first three).
    /// Linear memory each model instance may use, in MiB. Also the most a model may ask for.
    pub memory_limit_mb: u64,
    /// The longest an inference call may run, in seconds; a request's `timeout` parameter
    /// (microseconds, as Triton's) can only shorten it.
    pub timeout_seconds: f64,
    /// The most output data one call may return, in MiB.
    pub max_output_mb: u64,
    /// The largest request body, in MiB (after gzip decompression).
    pub max_request_body_mb: u64,
    /// The bytes all requests in flight may hold between them (bodies being read, requests
    /// queued or running), in MiB; past it a request is refused at once with 503 /
    /// RESOURCE_EXHAUSTED (`null`: 8 × `max_request_body_mb`, see [`Settings::buffered_bytes`]).
    pub max_buffered_mb: Option<u64>,
    /// The most elements one tensor may hold.
    pub max_tensor_elements: u64,
    /// What a model instance may write to stdout and stderr per call, in KiB; the rest is dropped.
    pub guest_log_limit_kb: u64,
    /// Requests a model's queue holds before new ones are refused with 503 / UNAVAILABLE
    /// "model overloaded" (a model-settings.json may set its own).
    pub max_queue_size: usize,
    /// Whether a model whose calls are short may run them inline, on the async thread that
    /// decoded the request (see `workers::inline`); false: every call goes to a worker thread.
    pub inline_calls: bool,
    /// The longest call, in microseconds, that counts as short for inline calls.
    pub inline_call_max_us: u64,
    /// Model instances the pooling allocator keeps slots for (0: allocate on demand instead).
    pub instance_pool_size: u32,
    /// Where compiled components are cached: `null` for the platform's cache folder, `""` for
    /// no cache.
    pub compilation_cache_dir: Option<String>,
    /// Whether models may run on native backends (ONNX Runtime in the host); `false` keeps every
    /// model's compute inside the sandbox (for operators who serve untrusted models).
    pub native_backends: bool,
    /// Where models fetched from object storage (`parameters.uri` of `s3://`, `gs://`, `az://`,
    /// `http(s)://`) are cached: `null` for the platform's cache folder (docs/deployment.md).
    pub model_cache_dir: Option<String>,
    /// The most one model may download from object storage, in MiB (all its files together).
    pub max_model_download_mb: u64,
    /// ONNX Runtime's shared library (`null`: searched; see docs/configuration.md).
    pub onnxruntime_library: Option<String>,
    /// The largest `.wasm` component a model may name as its `implementation`, in MiB.
    pub max_component_size_mb: u64,
    /// A folder of `.wasm` runtimes that any model may name as its `implementation` (besides
    /// components in its own folder); a relative path is relative to the working directory.
    pub runtimes_dir: Option<String>,

    /// An OpenTelemetry collector's OTLP/gRPC address, `host:port` as MLServer's (or a
    /// `http://` URL): requests are traced there (`null`: no tracing).
    pub tracing_server: Option<String>,
    /// The share of requests traced, 0 to 1 (Triton's `trace_rate` N is 1/N); a request with a
    /// `traceparent` follows its parent's sampled flag.
    pub tracing_sample_ratio: f64,

    // ModelMesh's model-runtime SPI (docs/deployment.md, "ModelMesh").
    /// The port of `mmesh.ModelRuntime` (`null`: not served).
    pub modelmesh_port: Option<u16>,
    /// The memory ModelMesh may fill with models, in MiB (`null`: the memory the server may use,
    /// less 128 MiB; see docs/deployment.md).
    pub modelmesh_capacity_mb: Option<u64>,
    /// The most ModelMesh loads that run at once; the others wait.
    pub modelmesh_max_loading_concurrency: u32,
    /// The load timeout ModelMesh is told to apply, in seconds.
    pub modelmesh_loading_timeout_seconds: f64,
    /// The size ModelMesh assumes for a model before it is loaded, in MiB.
    pub modelmesh_default_model_size_mb: u64,

    // The response cache (MLServer's `cache_enabled` and `cache_size`, mlhost's `max_cache_mb`).
    /// Whether answers of models whose model-settings.json sets `cache_enabled` are cached.
    pub cache_enabled: bool,
    /// The most answers the response cache holds (least recently used ones go first).
    pub cache_size: usize,
    /// The most output data the response cache holds, in MiB.
    pub max_cache_mb: u64,

    // MLServer settings accepted for compatibility; mlhost does not act on them.
    pub parallel_workers_timeout: Option<Value>,
    pub environments_dir: Option<Value>,
    pub model_repository_implementation: Option<Value>,
    pub model_repository_implementation_args: Option<Value>,
    pub metrics_dir: Option<Value>,
    pub kafka_enabled: Option<Value>,
    pub kafka_servers: Option<Value>,
    pub kafka_topic_input: Option<Value>,
    pub kafka_topic_output: Option<Value>,

    /// Unknown fields and numbers or booleans written as strings are errors, instead of
    /// warnings and coercions as in MLServer (`--strict`, `MLHOST_STRICT_SETTINGS`).
    pub strict_settings: bool,
    /// What lenient parsing dropped or could not use, one line each (not a setting).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            debug: false,
            parallel_workers: 1,
            model_repository_root: ".".to_string(),
            load_models_at_startup: true,
            server_name: "mlhost".to_string(),
            server_version: env!("CARGO_PKG_VERSION").to_string(),
            host: "0.0.0.0".to_string(),
            http_port: 8080,
            grpc_port: 8081,
            metrics_port: 8082,
            root_path: String::new(),
            metrics_endpoint: Some("/metrics".to_string()),
            use_structured_logging: false,
            logging_settings: None,
            grpc_max_message_length: None,
            cors_settings: None,
            metrics_rest_server_prefix: "rest_server".to_string(),
            gzip_enabled: true,
            extensions: Vec::new(),
            max_connections: 4096,
            header_read_timeout_seconds: 30.0,
            keep_alive_timeout_seconds: 75.0,
            body_read_timeout_seconds: 30.0,
            min_body_rate_bytes_per_second: 240,
            send_timeout_seconds: 60.0,
            grpc_handshake_timeout_seconds: 10.0,
            grpc_idle_timeout_seconds: 300.0,
            grpc_keepalive_interval_seconds: 60.0,
            grpc_keepalive_timeout_seconds: 20.0,
            grpc_max_concurrent_streams: 100,
            grpc_stream_window_bytes: 1 << 20,
            grpc_connection_window_bytes: 2 << 20,
            grpc_max_header_list_bytes: 64 << 10,
            shutdown_grace_period_seconds: 30.0,
            memory_limit_mb: 1024,
            timeout_seconds: 60.0,
            max_output_mb: 256,
            max_request_body_mb: 64,
            max_buffered_mb: None,
            max_tensor_elements: 1 << 28,
            guest_log_limit_kb: 64,
            max_queue_size: 1024,
            inline_calls: true,
            inline_call_max_us: 200,
            instance_pool_size: 256,
            compilation_cache_dir: None,
            native_backends: true,
            model_cache_dir: None,
            max_model_download_mb: 10240,
            onnxruntime_library: None,
            max_component_size_mb: 256,
            runtimes_dir: None,
            tracing_server: None,
            tracing_sample_ratio: 1.0,
            modelmesh_port: None,
            modelmesh_capacity_mb: None,
            modelmesh_max_loading_concurrency: 2,
            modelmesh_loading_timeout_seconds: 90.0,
            modelmesh_default_model_size_mb: 16,
            cache_enabled: false,
            cache_size: 100,
            max_cache_mb: 64,
            parallel_workers_timeout: None,
            environments_dir: None,
            model_repository_implementation: None,
            model_repository_implementation_args: None,
            metrics_dir: None,
            kafka_enabled: None,
            kafka_servers: None,
            kafka_topic_input: None,
            kafka_topic_output: None,
            strict_settings: false,
            warnings: Vec::new(),
        }
    }
}

impl Settings {
    /// The byte budget of requests in flight: `max_buffered_mb`, else 8 × `max_request_body_mb`.
    pub(crate) fn buffered_bytes(&self) -> u64 {
        self.max_buffered_mb
            .unwrap_or_else(|| self.max_request_body_mb.saturating_mul(8))
            .saturating_mul(1 << 20)
    }

    /// Names of the MLServer-only settings that are set: mlhost accepts and ignores them.
    pub(crate) fn ignored_fields(&self) -> Vec<&'static str> {
        let fields: [(&'static str, &Option<Value>); 9] = [
            ("parallel_workers_timeout", &self.parallel_workers_timeout),
            ("environments_dir", &self.environments_dir),
            (
                "model_repository_implementation",
                &self.model_repository_implementation,
            ),
            (
                "model_repository_implementation_args",
                &self.model_repository_implementation_args,
            ),
            ("metrics_dir", &self.metrics_dir),
            ("kafka_enabled", &self.kafka_enabled),
            ("kafka_servers", &self.kafka_servers),
            ("kafka_topic_input", &self.kafka_topic_input),
            ("kafka_topic_output", &self.kafka_topic_output),
        ];
        fields
            .into_iter()
            .filter(|(_, value)| value.as_ref().is_some_and(|value| !value.is_null()))
            .map(|(name, _)| name)
            .collect()
    }

    /// The folder of the compilation cache, or `None` when it is off.
    pub(crate) fn compilation_cache(&self) -> Option<std::path::PathBuf> {
        match self.compilation_cache_dir.as_deref() {
            None => Some(crate::wasm::CompilationCache::default_dir()),
            Some("") => None,
            Some(dir) => Some(dir.into()),
        }
    }

    /// The `tracing` filter directive the settings ask for: `logging_settings` when it is a
    /// level or a filter directive (MLServer's logging-config files and dicts are not read),
    /// else `debug` in debug mode, else `info`.
    pub(crate) fn log_filter(&self) -> String {
        match self.logging_settings.as_ref().and_then(Value::as_str) {
            Some(level) if is_filter_directive(level) => level.to_string(),
            _ if self.debug => "debug".to_string(),
            _ => "info".to_string(),
        }
    }

    /// Whether `logging_settings` was given in a form mlhost does not read (a file or a dict).
    pub(crate) fn logging_settings_ignored(&self) -> bool {
        match &self.logging_settings {
            None | Some(Value::Null) => false,
            Some(Value::String(text)) => !is_filter_directive(text),
            Some(_) => true,
        }
    }

    /// Checks values whose type is right but whose value is not usable; names the field.
    pub(crate) fn validate(&self) -> Result<(), (&'static str, String)> {
        connections::check(self)?;
        const YEAR: f64 = 365.0 * 24.0 * 3600.0;
        if !(self.timeout_seconds > 0.0 && self.timeout_seconds <= YEAR) {
            return Err((
                "timeout_seconds",
                format!("{} is not between 0 and a year", self.timeout_seconds),
            ));
        }
        if self.memory_limit_mb == 0 || self.memory_limit_mb > 1 << 22 {
            return Err((
                "memory_limit_mb",
                format!("{} is not between 1 and 4194304", self.memory_limit_mb),
            ));
        }
        if self.max_request_body_mb == 0 || self.max_request_body_mb > 1 << 20 {
            return Err((
                "max_request_body_mb",
                format!("{} is not between 1 and 1048576", self.max_request_body_mb),
            ));
        }
        if let Some(pattern) = self
            .cors_settings
            .as_ref()
            .and_then(|cors| cors.allow_origin_regex.as_ref())
            && let Err(error) = regex::Regex::new(pattern)
        {
            return Err((
                "cors_settings",
                format!("allow_origin_regex '{pattern}' is not a regular expression: {error}"),
            ));
        }
        let root = self.root_path.trim_end_matches('/');
        if !root.is_empty() && (!root.starts_with('/') || root == "/v2" || root.starts_with("/v2/"))
        {
            return Err((
                "root_path",
                format!(
                    "'{}' must start with '/' and not with '/v2'",
                    self.root_path
                ),
            ));
        }
        Ok(())
    }
}

/// Whether `text` is a log level or a `tracing` filter directive (not a file name).
fn is_filter_directive(text: &str) -> bool {
    !text.is_empty()
        && !text.contains(['/', '\\'])
        && ![".json", ".yaml", ".yml", ".ini", ".conf"]
            .iter()
            .any(|suffix| text.ends_with(suffix))
        && tracing_subscriber::EnvFilter::try_new(text).is_ok()
}

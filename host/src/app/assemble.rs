//! The server's parts built from its settings: the WebAssembly engine and the metrics registry.

use crate::config::Settings;
use crate::metrics::Metrics;
use crate::protocol::grpc;
use crate::protocol::rest;
use crate::wasm::{EngineOptions, WasmEngine};
use std::sync::Arc;

/// The WebAssembly engine: its instance pool, memory limit and compilation cache.
pub(super) fn engine(settings: &Settings) -> anyhow::Result<WasmEngine> {
    WasmEngine::new(&EngineOptions {
        instance_pool_size: settings.instance_pool_size,
        max_memory_bytes: settings.memory_limit_mb.saturating_mul(1024 * 1024),
        cache_dir: settings.compilation_cache(),
    })
    .map_err(|error| anyhow::anyhow!("cannot create the WebAssembly engine: {error:#}"))
}

/// Says where ONNX Runtime's library is searched from for the native backends (loaded when a
/// model first needs it, which logs what models with `backend: auto` run on), or that the
/// settings forbid them.
pub(super) fn native_backends(settings: &Settings) {
    let configured = settings
        .onnxruntime_library
        .as_deref()
        .map(std::path::Path::new);
    crate::native::configure_library(configured, settings.native_backends);
    if !settings.native_backends {
        tracing::info!(
            "native backends are off (`native_backends` is false): ONNX models run sandboxed"
        );
    }
}

/// The metrics registry, with the series of every REST route and gRPC method resolved now:
/// requests then bump plain handles.
pub(super) fn metrics(settings: &Settings) -> Arc<Metrics> {
    let mut metrics = Metrics::new(&settings.metrics_rest_server_prefix);
    let served = rest::served_paths(&settings.root_path);
    metrics.resolve_rest_routes(
        served
            .iter()
            .map(|(method, path)| (*method, path.as_str()))
            .chain([("GET", "unmatched"), ("POST", "unmatched")]),
    );
    metrics.resolve_grpc_methods(
        grpc::observe::SERVICE,
        grpc::observe::METHODS.iter().copied(),
    );
    Arc::new(metrics)
}

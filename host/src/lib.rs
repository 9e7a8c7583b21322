//! mlhost: a model inference server for the Open Inference Protocol whose model runtimes are
//! WebAssembly components.
//!
//! The data path is one line: a front end ([`protocol`]) looks the model up through the
//! inference core ([`core`], over the [`repository`]) and decodes a request into [`codec`] types
//! and a request context; the core checks it and queues it on the model's [`batching`] or
//! [`workers`], a worker thread calls the runtime component through [`wasm`], and the front end
//! encodes the answer. [`app`] wires the parts; [`config`] reads the settings. The module map is
//! in `docs/architecture.md`.
//!
//! The modules are private to the crate, so that the compiler finds what nothing uses. The public
//! API is what the binary, the end-to-end tests and the benches need: [`run_cli`] (the whole
//! command line), the generated gRPC messages ([`pb`]), and the codec types and the wasm
//! executor the benches drive directly.

// An item inside is `pub(crate)` unless the public API below re-exports it.
#![warn(unreachable_pub)]

pub(crate) mod app;
pub(crate) mod author;
pub(crate) mod batching;
pub(crate) mod cli;
pub(crate) mod client;
pub(crate) mod codec;
pub(crate) mod config;
pub(crate) mod core;
#[cfg(test)]
mod fuzz;
pub(crate) mod metrics;
pub(crate) mod modelmesh;
pub(crate) mod native;
pub(crate) mod pipeline;
pub(crate) mod protocol;
pub(crate) mod repository;
pub(crate) mod shutdown;
pub(crate) mod stats;
pub(crate) mod storage;
pub(crate) mod telemetry;
pub(crate) mod wasm;
pub(crate) mod workers;

// For the binary.
pub use cli::run_cli;
// For the end-to-end tests (gRPC messages and client).
pub use codec::grpc::pb;
// For the benches: requests, and the executor driven without a server.
pub use codec::{DataType, InferenceRequest, Tensor};
// For the benches.
pub use native::{BackendChoice, NativeOptions};
pub use wasm::{
    BUILT_IN_RUNTIMES, CallMode, ComponentSource, EngineOptions, GuestSettings, InstanceLimits,
    ModelContext, ModelInstance, StreamSink, WasmEngine,
};

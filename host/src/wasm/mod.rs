//! The WebAssembly executor: compiles runtime components and runs model instances.
//!
//! One [`WasmEngine`] (one wasmtime `Engine`) serves the whole process. Each runtime component
//! is compiled once and kept as an `InstancePre`; every model instance gets its own `Store`,
//! created and used on one worker thread only (see [`crate::workers`]).

mod answer;
mod bindings;
mod builtin;
mod cache;
mod clocks;
mod convert;
mod engine;
mod guest_log;
mod instance;
pub mod world;

pub use answer::{PartialResponse, StreamSink};
pub use builtin::BUILT_IN_RUNTIMES;
pub use cache::CompilationCache;
pub use convert::GuestSettings;
pub use engine::{ComponentSource, EPOCH_TICK, EngineOptions, RuntimeComponent, WasmEngine};
pub use instance::{
    CallError, CallOutput, GUEST_MODEL_DIR, InstanceError, InstanceLimits, ModelContext,
    ModelInstance,
};

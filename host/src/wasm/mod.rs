//! The WebAssembly executor: compiles runtime components and runs model instances.
//!
//! One [`WasmEngine`] (one wasmtime `Engine`) serves the whole process. Each runtime component
//! is compiled once and kept as an `InstancePre`; every model instance gets its own `Store`,
//! created and used on one worker thread only (see [`crate::workers`]).
//!
//! Modules, each depending only on those listed before it: `bindings` (the generated WIT
//! bindings), `epoch` (the deadline clock), `guest_log`, `convert`, `stream` (streamed
//! responses), `answer` (a call's answer as it is collected), `state` (a Store's state), the
//! host interfaces on that state (`host`, `clocks`, `onnx`), `residency` (only the compiled code
//! that runs kept resident), `cache`, `compile_queue` and `world`
//! (the component checks before compiling), `engine`, and `instance`.

mod answer;
mod bindings;
mod builtin;
mod cache;
mod clocks;
mod compile_queue;
mod convert;
mod engine;
mod epoch;
mod guest_log;
mod host;
mod instance;
mod onnx;
mod residency;
mod state;
mod stream;
pub(crate) mod world;

pub use builtin::BUILT_IN_RUNTIMES;
pub(crate) use cache::{
    CompilationCache, create_private_dir, hex, platform_cache_dir, unsafe_permissions,
};
pub use convert::GuestSettings;
pub(crate) use engine::{CompileError, RuntimeComponent};
pub use engine::{ComponentSource, EngineOptions, WasmEngine};
pub(crate) use instance::INLINE_BUDGET;
pub(crate) use instance::{CallError, CallOutput, GUEST_MODEL_DIR, InstanceError, Panic};
pub use instance::{CallMode, InstanceLimits, ModelContext, ModelInstance};
pub use stream::StreamSink;
pub(crate) use stream::{PartialResponse, STREAM_CAPACITY, StreamTicket, stream_channel};

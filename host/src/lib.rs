//! mlhost: a model inference server for the Open Inference Protocol whose model runtimes are
//! WebAssembly components.
//!
//! The data path is one line: a front end ([`protocol`]) decodes a request into [`codec`]
//! types, the inference core finds the model in the [`repository`] and queues the request on
//! the model's [`workers`], a worker thread calls the runtime component through [`wasm`], and
//! the front end encodes the answer. [`app`] wires the parts; [`config`] reads the settings.

pub mod app;
pub mod author;
pub mod batching;
pub mod cli;
pub mod client;
pub mod codec;
pub mod config;
pub mod core;
pub mod metrics;
pub mod protocol;
pub mod repository;
pub mod shutdown;
pub mod stats;
pub mod wasm;
pub mod workers;

//! End-to-end tests: each starts the real `mlhost` binary on a free port and talks to it over
//! real sockets, as clients do.

mod authoring;
mod bad_input;
mod batching;
mod budget;
mod cancel;
mod cache;
mod client;
mod compat;
mod compression;
mod connections;
mod endpoints;
mod extensions;
mod fuzz;
mod grpc;
mod grpc_health;
mod inference;
mod inline;
mod isolation;
mod limits;
mod modelmesh;
mod models;
mod native;
mod observability;
mod onnx;
mod repository;
mod repository_load;
mod server;
mod settings_compat;
mod soak;
mod streams;
mod support;
mod traces;
mod trees;
mod triton_compat;
mod warmup;

//! The protocol front ends and the one inference core they share.
//!
//! A front end decodes its wire format into [`crate::codec`] types, calls [`InferenceService`],
//! and encodes the answer; errors map to status codes in one place ([`error`]).

pub mod binary;
pub mod cors;
pub mod error;
pub mod grpc;
pub mod headers;
pub mod model_config;
pub mod openapi;
pub mod request_id;
pub mod rest;
pub mod routes;
mod service;

pub use error::ServiceError;

/// The protocol extensions mlhost implements, as `GET /v2` lists them.
pub const EXTENSIONS: &[&str] = &[
    "model_repository",
    "binary_tensor_data",
    "statistics",
    "model_configuration",
];
pub use service::{InferenceService, ResponseStream, ServerInfo};

//! The protocol front ends and the one inference core they share.
//!
//! A front end decodes its wire format into [`crate::codec`] types, calls [`InferenceService`],
//! and encodes the answer; errors map to status codes in one place ([`error`]).

pub mod error;
pub mod grpc;
pub mod rest;
mod service;

pub use error::ServiceError;
pub use service::{InferenceService, ServerInfo};

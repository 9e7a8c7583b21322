//! The inference core's errors, and their HTTP status codes (the gRPC mapping belongs here too).

use crate::repository::{LookupError, RepositoryError};
use crate::wasm::CallError;
use crate::workers::PoolError;
use axum::http::StatusCode;

/// Why a request failed, as a client should learn it.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request is malformed or does not fit the model.
    #[error("{0}")]
    BadRequest(String),
    /// No such model, or no such version of it.
    #[error("{0}")]
    NotFound(String),
    /// The model exists but cannot serve now (failed to load, overloaded, stopped).
    #[error("{0}")]
    Unavailable(String),
    /// The request ran past its deadline.
    #[error("{0}")]
    DeadlineExceeded(String),
    /// The request's body is over the size limit.
    #[error("{0}")]
    TooLarge(String),
    /// The runtime failed.
    #[error("{0}")]
    Internal(String),
}

impl ServiceError {
    /// The HTTP status of the error.
    pub fn http_status(&self) -> StatusCode {
        match self {
            ServiceError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ServiceError::DeadlineExceeded(_) => StatusCode::GATEWAY_TIMEOUT,
            ServiceError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ServiceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<ServiceError> for tonic::Status {
    fn from(error: ServiceError) -> Self {
        let message = error.to_string();
        match error {
            ServiceError::BadRequest(_) => tonic::Status::invalid_argument(message),
            ServiceError::NotFound(_) => tonic::Status::not_found(message),
            ServiceError::Unavailable(_) => tonic::Status::unavailable(message),
            ServiceError::DeadlineExceeded(_) => tonic::Status::deadline_exceeded(message),
            ServiceError::TooLarge(_) => tonic::Status::resource_exhausted(message),
            ServiceError::Internal(_) => tonic::Status::internal(message),
        }
    }
}

impl From<LookupError> for ServiceError {
    fn from(error: LookupError) -> Self {
        match error {
            LookupError::Unavailable { .. } => ServiceError::Unavailable(error.to_string()),
            _ => ServiceError::NotFound(error.to_string()),
        }
    }
}

impl From<RepositoryError> for ServiceError {
    fn from(error: RepositoryError) -> Self {
        match error {
            RepositoryError::NotFound(_) => ServiceError::NotFound(error.to_string()),
            RepositoryError::LoadFailed { .. } => ServiceError::BadRequest(error.to_string()),
            RepositoryError::Io(_) => ServiceError::Internal(error.to_string()),
        }
    }
}

impl From<PoolError> for ServiceError {
    fn from(error: PoolError) -> Self {
        match error {
            PoolError::Call(CallError::InvalidInput(message)) => ServiceError::BadRequest(message),
            PoolError::Call(
                error @ (CallError::DeadlineExceeded(_) | CallError::ExpiredInQueue(_)),
            ) => ServiceError::DeadlineExceeded(error.to_string()),
            PoolError::Call(error) => ServiceError::Internal(error.to_string()),
            PoolError::Overloaded | PoolError::Stopped => {
                ServiceError::Unavailable(error.to_string())
            }
        }
    }
}

//! The one mapping of the core's errors to HTTP statuses and gRPC codes, and the one place a
//! failure on the server's side (a 5xx) is logged, with its cause chain, in the request's span
//! (which names the request id).

use crate::core::{ErrorKind, ServiceError};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// The HTTP status of an error kind.
pub(crate) fn http_status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The gRPC code of an error kind.
pub(crate) fn grpc_code(kind: ErrorKind) -> tonic::Code {
    match kind {
        ErrorKind::BadRequest => tonic::Code::InvalidArgument,
        ErrorKind::NotFound => tonic::Code::NotFound,
        ErrorKind::Unavailable => tonic::Code::Unavailable,
        ErrorKind::DeadlineExceeded => tonic::Code::DeadlineExceeded,
        ErrorKind::TooLarge => tonic::Code::ResourceExhausted,
        ErrorKind::Internal => tonic::Code::Internal,
    }
}

/// Logs an error that is the server's side of a failure (a 5xx: the runtime failed, the model
/// is unavailable or overloaded, the deadline passed) with its causes; a client's mistake is
/// the client's to read, not the log's.
pub(crate) fn log_server_error(error: &ServiceError) {
    crate::telemetry::request_log::in_span(|| match error.kind() {
        ErrorKind::Internal => tracing::error!(error = %error.chain(), "request failed"),
        ErrorKind::Unavailable | ErrorKind::DeadlineExceeded => {
            tracing::warn!(error = %error.chain(), "request failed")
        }
        ErrorKind::BadRequest | ErrorKind::NotFound | ErrorKind::TooLarge => {}
    })
}

/// An error answer: the status and `{"error": "..."}`.
pub(crate) fn error_response(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(serde_json::json!({ "error": message.into() })),
    )
        .into_response()
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        log_server_error(&self);
        error_response(http_status(self.kind()), self.to_string())
    }
}

impl From<ServiceError> for tonic::Status {
    fn from(error: ServiceError) -> Self {
        log_server_error(&error);
        tonic::Status::new(grpc_code(error.kind()), error.to_string())
    }
}

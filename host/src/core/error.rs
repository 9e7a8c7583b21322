//! The inference core's errors: why a request failed, with its cause kept, and the kind of
//! failure the front ends map to an HTTP status or a gRPC code (in `protocol::error`, once).
//!
//! What a client reads is at most [`MESSAGE_LIMIT`] bytes (cut and marked): messages repeat
//! client text, and gRPC clients refuse long status messages.

use crate::codec::{MESSAGE_LIMIT, capped};
use crate::repository::{LookupError, RepositoryError};
use crate::workers::{CallError, PoolError};

/// Any error a cause can be boxed as.
pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What kind of failure an error is, as a client should learn it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed or does not fit the model.
    BadRequest,
    /// No such model, or no such version of it.
    NotFound,
    /// The model exists but cannot serve now (failed to load, overloaded, stopped).
    Unavailable,
    /// The request ran past its deadline.
    DeadlineExceeded,
    /// The request is over a size limit.
    TooLarge,
    /// The server or the runtime failed.
    Internal,
}

/// Why a request failed. The message is what the client reads; the source chain is logged.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request fails a check of the core's own.
    #[error("{}", capped(.0, MESSAGE_LIMIT))]
    BadRequest(String),
    /// The request could not be decoded.
    #[error("{}", capped(message, MESSAGE_LIMIT))]
    Malformed {
        message: String,
        #[source]
        source: BoxError,
    },
    /// The request is over a size limit.
    #[error("{}", capped(.0, MESSAGE_LIMIT))]
    TooLarge(String),
    /// The model (version) could not be looked up.
    #[error("{}", capped(&.0.to_string(), MESSAGE_LIMIT))]
    Lookup(#[from] LookupError),
    /// A repository operation (index, load, unload) failed.
    #[error("{}", capped(&.0.to_string(), MESSAGE_LIMIT))]
    Repository(#[from] RepositoryError),
    /// The model's workers gave no answer, or the runtime failed.
    #[error("{}", capped(&.0.to_string(), MESSAGE_LIMIT))]
    Pool(#[from] PoolError),
    /// The server's byte budget of requests in flight has no room for this one (503).
    #[error(transparent)]
    Busy(#[from] super::budget::OverBudget),
    /// A step of a pipeline failed: its error is the cause, and decides the kind of failure.
    #[error("{}", capped(&format!("pipeline step '{step}' (model '{model}'): {source}"), MESSAGE_LIMIT))]
    Step {
        step: String,
        model: String,
        #[source]
        source: Box<ServiceError>,
    },
    /// The server failed on its own side.
    #[error("{}", capped(message, MESSAGE_LIMIT))]
    Internal {
        message: String,
        #[source]
        source: Option<BoxError>,
    },
}

impl ServiceError {
    /// A request that could not be decoded, keeping the decoder's error as the cause.
    pub fn malformed(source: impl Into<BoxError>) -> Self {
        let source = source.into();
        ServiceError::Malformed {
            message: source.to_string(),
            source,
        }
    }

    /// A failure of the server's own, with the cause when there is one.
    pub fn internal(message: impl Into<String>, source: Option<BoxError>) -> Self {
        ServiceError::Internal {
            message: message.into(),
            source,
        }
    }

    /// The kind of failure, which decides the HTTP status and the gRPC code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ServiceError::BadRequest(_) | ServiceError::Malformed { .. } => ErrorKind::BadRequest,
            ServiceError::TooLarge(_) => ErrorKind::TooLarge,
            ServiceError::Lookup(LookupError::Unavailable { .. }) => ErrorKind::Unavailable,
            ServiceError::Lookup(_) => ErrorKind::NotFound,
            ServiceError::Repository(RepositoryError::NotFound(_)) => ErrorKind::NotFound,
            ServiceError::Repository(RepositoryError::LoadFailed { .. }) => ErrorKind::BadRequest,
            ServiceError::Repository(_) => ErrorKind::Internal,
            ServiceError::Pool(pool) => match pool.cause() {
                PoolError::Overloaded | PoolError::Stopped => ErrorKind::Unavailable,
                PoolError::Call(CallError::InvalidInput(_)) => ErrorKind::BadRequest,
                PoolError::Call(
                    CallError::DeadlineExceeded(_)
                    | CallError::NativeDeadline(_)
                    | CallError::ExpiredInQueue(_)
                    | CallError::StreamStalled(_),
                ) => ErrorKind::DeadlineExceeded,
                PoolError::Call(_) | PoolError::Batch(_) => ErrorKind::Internal,
            },
            ServiceError::Busy(_) => ErrorKind::Unavailable,
            ServiceError::Internal { .. } => ErrorKind::Internal,
            // A step's model missing is the pipeline's trouble, not the client's request.
            ServiceError::Step { source, .. } => match source.kind() {
                ErrorKind::NotFound => ErrorKind::Unavailable,
                kind => kind,
            },
        }
    }

    /// The message and every cause below it, for the log: `message: cause: cause`.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            let cause_text = cause.to_string();
            // `transparent` variants and wrappers that repeat their cause add nothing.
            if !text.ends_with(&cause_text) {
                text.push_str(": ");
                text.push_str(&cause_text);
            }
            source = cause.source();
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_cause_and_the_chain_keeps_it() {
        let lookup = ServiceError::from(LookupError::ModelNotFound("m".into()));
        assert_eq!(lookup.kind(), ErrorKind::NotFound);
        let overloaded = ServiceError::from(PoolError::Overloaded);
        assert_eq!(overloaded.kind(), ErrorKind::Unavailable);
        let invalid = ServiceError::from(PoolError::Call(CallError::InvalidInput("no".into())));
        assert_eq!(
            (invalid.kind(), invalid.to_string()),
            (ErrorKind::BadRequest, "no".into())
        );

        let io = std::io::Error::other("disk on fire");
        let internal = ServiceError::internal("decoding failed", Some(Box::new(io)));
        assert_eq!(internal.kind(), ErrorKind::Internal);
        assert_eq!(internal.to_string(), "decoding failed");
        assert_eq!(internal.chain(), "decoding failed: disk on fire");
    }
}

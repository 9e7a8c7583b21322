//! Constructors for the runtime's error type.
//!
//! What the client sees of each error: the crate documentation's "Errors".

use crate::Error;
use std::fmt;

impl Error {
    /// The request does not fit the model: the client gets HTTP 400 / gRPC INVALID_ARGUMENT,
    /// with `message`.
    ///
    /// ```
    /// # use mlhost_guest::Error;
    /// let (expected, got) = (3, 5);
    /// let error = Error::invalid_input(format_args!("expected {expected} features, got {got}"));
    /// assert!(matches!(error, Error::InvalidInput(m) if m == "expected 3 features, got 5"));
    /// ```
    pub fn invalid_input(message: impl fmt::Display) -> Self {
        Error::InvalidInput(message.to_string())
    }

    /// The model's files or settings are wrong. Returned from [`Model::load`](crate::Model::load),
    /// the model fails to load: it is reported not ready (UNAVAILABLE in the repository index,
    /// with `message` as the reason), its inference requests are answered 503 / UNAVAILABLE,
    /// and every other model serves. (Returned from `predict`, it is answered as
    /// [`Error::internal`].)
    ///
    /// ```
    /// # use mlhost_guest::Error;
    /// let error = Error::invalid_model("weights.bin: expected 4096 bytes, found 12");
    /// assert!(matches!(error, Error::InvalidModel(_)));
    /// ```
    pub fn invalid_model(message: impl fmt::Display) -> Self {
        Error::InvalidModel(message.to_string())
    }

    /// The runtime failed (a bug, or a state it cannot handle): the client gets HTTP 500 / gRPC
    /// INTERNAL, with `message`.
    ///
    /// ```
    /// # use mlhost_guest::Error;
    /// let error = Error::internal("the tokenizer lost its vocabulary");
    /// assert!(matches!(error, Error::Internal(_)));
    /// ```
    pub fn internal(message: impl fmt::Display) -> Self {
        Error::Internal(message.to_string())
    }
}

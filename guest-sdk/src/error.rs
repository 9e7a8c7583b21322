//! Constructors for the runtime's error type.

use crate::Error;
use std::fmt;

impl Error {
    /// The request does not fit the model: the client gets a 400 / INVALID_ARGUMENT.
    pub fn invalid_input(message: impl fmt::Display) -> Self {
        Error::InvalidInput(message.to_string())
    }

    /// The model's files or settings are wrong: the model does not load.
    pub fn invalid_model(message: impl fmt::Display) -> Self {
        Error::InvalidModel(message.to_string())
    }

    /// The runtime failed: the client gets a 500 / INTERNAL.
    pub fn internal(message: impl fmt::Display) -> Self {
        Error::Internal(message.to_string())
    }
}

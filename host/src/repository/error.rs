//! Why repository operations fail: lookups of a model, loads of one version, and the
//! repository's own operations (load, unload, index).

use crate::codec::{TensorError, quoted};
use crate::config::ConfigError;
use crate::wasm::{CompileError, InstanceError};
use crate::workers::panic_message;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// Why a model lookup failed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LookupError {
    /// No model of that name is known.
    #[error("model '{}' not found", quoted(.0))]
    ModelNotFound(String),
    /// The model is known, but not at that version.
    #[error("model '{}' has no version '{}'", quoted(name), quoted(version))]
    VersionNotFound { name: String, version: String },
    /// The model was unloaded on request.
    #[error("model '{}' has been unloaded", quoted(.0))]
    Unloaded(String),
    /// The model is loading, or could not be loaded.
    #[error("model '{}' is not ready: {reason}", quoted(name))]
    Unavailable { name: String, reason: String },
}

/// Why a repository operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// No model of that name is on disk (or loaded, for an unload).
    #[error("model '{}' not found in the model repository", quoted(.0))]
    NotFound(String),
    /// Some versions of the model failed to load.
    #[error("model '{name}' failed to load: {failures}")]
    LoadFailed {
        name: String,
        #[source]
        failures: LoadFailures,
    },
    /// The repository's folder cannot be read.
    #[error("cannot read the model repository: {0}")]
    Io(#[from] std::io::Error),
}

/// One version of a model that failed to load, and why.
#[derive(Debug)]
pub struct VersionFailure {
    /// The version (`None` for an unversioned model).
    pub version: Option<String>,
    pub error: LoadError,
}

impl fmt::Display for VersionFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(version) => write!(f, "version {version}: {}", self.error),
            None => write!(f, "{}", self.error),
        }
    }
}

/// The versions of a model that failed to load (at least one), in the order found on disk. Its
/// source is the first failure's cause.
#[derive(Debug)]
pub struct LoadFailures(pub Vec<VersionFailure>);

impl fmt::Display for LoadFailures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, failure) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{failure}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadFailures {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .first()
            .map(|failure| &failure.error as &(dyn std::error::Error + 'static))
    }
}

/// Why a model version could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The model's place in the repository forbids loading it (a clash with another model).
    #[error("{0}")]
    Placement(String),
    /// model-settings.json cannot be read or is invalid.
    #[error("{0}")]
    Settings(#[source] ConfigError),
    /// A limit in model-settings.json is above the server's.
    #[error("model-settings.json: field `{field}`: {value} is over the server's limit of {limit}")]
    OverServerLimit {
        field: &'static str,
        value: String,
        limit: String,
    },
    /// A value in model-settings.json is outside what mlhost accepts.
    #[error("model-settings.json: field `{field}`: {value} is not {expected}")]
    OutOfRange {
        field: &'static str,
        value: String,
        expected: &'static str,
    },
    /// The instance pool has no room for the model's workers beside the other models'.
    #[error(transparent)]
    Slots(#[from] super::slots::SlotsExhausted),
    /// `implementation` names no runtime mlhost can serve.
    #[error("{0}")]
    Implementation(String),
    /// A pipeline's declaration or its steps do not make a pipeline that can run.
    #[error("pipeline: {0}")]
    Pipeline(String),
    /// An MLflow model folder cannot be served.
    #[error(transparent)]
    Mlflow(#[from] super::mlflow::MlflowError),
    /// A warm-up request (`warmup.json`) failed, or the file cannot be used.
    #[error(transparent)]
    WarmUp(#[from] super::warmup::WarmUpError),
    /// The model's folder or its `parameters.uri` cannot be resolved.
    #[error("invalid uri: {}: {source}", path.display())]
    Uri {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A remote `parameters.uri` could not be fetched (see [`crate::storage`]).
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// `parameters.uri` points outside the model's folder.
    #[error(
        "invalid uri: {} is outside the model's folder {}: a runtime can only read its own folder",
        target.display(),
        folder.display()
    )]
    UriOutsideFolder { target: PathBuf, folder: PathBuf },
    /// A tensor declared in model-settings.json has an unknown datatype.
    #[error("model-settings.json: field `{field}[{index}].datatype`: {source}")]
    Datatype {
        /// `inputs` or `outputs`.
        field: &'static str,
        index: usize,
        #[source]
        source: TensorError,
    },
    /// A tensor declared in model-settings.json has a dimension below -1.
    #[error(
        "model-settings.json: field `{field}[{index}].shape`: {shape:?} is not a shape: each \
         dimension is a size (0 or more) or -1 for any"
    )]
    Shape {
        /// `inputs` or `outputs`.
        field: &'static str,
        index: usize,
        shape: Vec<i64>,
    },
    /// The runtime component cannot be compiled (the engine shares its compile errors).
    #[error("{0}")]
    Compile(#[source] Arc<CompileError>),
    /// The runtime's instances cannot be created, or refused the model.
    #[error(transparent)]
    Instance(#[from] InstanceError),
    /// The load panicked, with the panic's message.
    #[error("the load panicked: {0}")]
    Panicked(String),
    /// The load's task was cancelled (the runtime is shutting down).
    #[error("the load was cancelled")]
    Cancelled,
}

impl LoadError {
    /// The error of a load task that did not finish: its panic, with the panic's message.
    pub(super) fn from_join(error: tokio::task::JoinError) -> Self {
        match error.try_into_panic() {
            Ok(payload) => LoadError::Panicked(panic_message(payload.as_ref()).to_string()),
            Err(_) => LoadError::Cancelled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn load_failures_read_as_before_and_keep_the_first_cause() {
        let failures = LoadFailures(vec![
            VersionFailure {
                version: Some("1".into()),
                error: LoadError::Implementation("no runtime".into()),
            },
            VersionFailure {
                version: None,
                error: LoadError::Panicked("boom".into()),
            },
        ]);
        let error = RepositoryError::LoadFailed {
            name: "m".into(),
            failures,
        };
        assert_eq!(
            error.to_string(),
            "model 'm' failed to load: version 1: no runtime; the load panicked: boom"
        );
        let cause = error.source().unwrap().source().unwrap();
        assert!(matches!(
            cause.downcast_ref::<LoadError>(),
            Some(LoadError::Implementation(_))
        ));
    }

    #[test]
    fn panic_payloads_are_read_as_text() {
        assert_eq!(panic_message(&"static"), "static");
        assert_eq!(panic_message(&String::from("owned")), "owned");
        assert_eq!(panic_message(&42), "unknown panic");
    }
}

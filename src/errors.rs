//! Every error the binding reports, with its stable `code`, built in one place.

use hannoy_engine::Error as EngineError;
use napi::bindgen_prelude::*;

pub const INVALID_ARGUMENT: &str = "ERR_HANNOY_INVALID_ARGUMENT";
pub const DIMENSION_MISMATCH: &str = "ERR_HANNOY_DIMENSION_MISMATCH";
pub const METRIC_MISMATCH: &str = "ERR_HANNOY_METRIC_MISMATCH";
pub const INDEX_NOT_FOUND: &str = "ERR_HANNOY_INDEX_NOT_FOUND";
pub const NEEDS_BUILD: &str = "ERR_HANNOY_NEEDS_BUILD";
pub const READ_ONLY: &str = "ERR_HANNOY_READ_ONLY";
pub const CLOSED: &str = "ERR_HANNOY_CLOSED";
pub const VERSION: &str = "ERR_HANNOY_VERSION";
pub const CORRUPT: &str = "ERR_HANNOY_CORRUPT";
pub const IO: &str = "ERR_HANNOY_IO";
/// A bug: a read that panicked (the process goes on).
pub const INTERNAL: &str = "ERR_HANNOY_INTERNAL";
/// Node's own code for an `AbortError`.
pub const ABORT: &str = "ABORT_ERR";

/// An error on its way to JavaScript. It is `Send`, so it can be made on any thread and turned
/// into a JS `Error` on the main thread.
#[derive(Debug, Clone)]
pub struct Failure {
    pub code: &'static str,
    pub message: String,
}

impl Failure {
    pub fn new(code: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Failure {
        Failure::new(INVALID_ARGUMENT, message)
    }

    pub fn closed() -> Failure {
        Failure::new(CLOSED, "the database is closed")
    }

    pub fn internal(message: impl Into<String>) -> Failure {
        Failure::new(INTERNAL, message)
    }

    pub fn aborted() -> Failure {
        Failure::new(ABORT, "The operation was aborted")
    }

    /// The JS `Error` object: `message`, `code`, and `name` 'AbortError' for aborts.
    pub fn to_js(&self, env: &Env) -> Error {
        let make = || -> Result<Error> {
            let mut object =
                env.create_error(Error::new(Status::GenericFailure, self.message.clone()))?;
            object.set_named_property("code", self.code)?;
            if self.code == ABORT {
                object.set_named_property("name", "AbortError")?;
            }
            Ok(Error::from(object.to_unknown()))
        };
        make().unwrap_or_else(|e| e)
    }
}

impl From<EngineError> for Failure {
    fn from(error: EngineError) -> Failure {
        let code = match &error {
            EngineError::InvalidArgument(_) => INVALID_ARGUMENT,
            EngineError::DimensionMismatch { .. } => DIMENSION_MISMATCH,
            EngineError::MetricMismatch { .. } | EngineError::QuantizationMismatch { .. } => {
                METRIC_MISMATCH
            }
            EngineError::IndexNotFound(_) => INDEX_NOT_FOUND,
            EngineError::NeedsBuild(_) => NEEDS_BUILD,
            EngineError::ReadOnly => READ_ONLY,
            EngineError::Version { .. } => VERSION,
            EngineError::Corrupt(_) => CORRUPT,
            EngineError::Cancelled => return Failure::aborted(),
            EngineError::Io(_) | EngineError::MapFull | EngineError::MapResized => IO,
        };
        Failure::new(code, error.to_string())
    }
}

pub type Outcome<T> = std::result::Result<T, Failure>;

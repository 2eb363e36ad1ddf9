//! The engine's one error type. The binding maps each variant to a stable JS error code.

use std::fmt;

/// Everything that can go wrong in the engine.
#[derive(Debug)]
pub enum Error {
    /// A caller passed a value the engine cannot accept (bad id, NaN, k = 0, bad M, ...).
    InvalidArgument(String),
    /// A vector's length differs from the index's dimensions, or a writer asks for other
    /// dimensions than the stored index has.
    DimensionMismatch { expected: usize, received: usize },
    /// A writer asks for another metric than the stored index has.
    MetricMismatch {
        stored: &'static str,
        requested: &'static str,
    },
    /// A writer asks for another quantization than the stored index has.
    QuantizationMismatch {
        stored: &'static str,
        requested: &'static str,
    },
    /// The index holds no items.
    IndexNotFound(u16),
    /// The index has items but was never built.
    NeedsBuild(u16),
    /// A write on an environment opened read-only.
    ReadOnly,
    /// The files were written in a format version this code does not read.
    Version { found: u16, supported: u16 },
    /// A record that does not decode.
    Corrupt(String),
    /// A long operation was cancelled; nothing was changed.
    Cancelled,
    /// The operating system or LMDB refused.
    Io(String),
    /// The memory map is full; the store grows it and retries, so callers rarely see this.
    MapFull,
    /// Another process grew the memory map; the store adopts the new size and retries.
    MapResized,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument(msg) => f.write_str(msg),
            Error::DimensionMismatch { expected, received } => write!(
                f,
                "expected a vector of {expected} dimensions, received {received}"
            ),
            Error::MetricMismatch { stored, requested } => write!(
                f,
                "the index was created with metric '{stored}', the writer asks for '{requested}'"
            ),
            Error::QuantizationMismatch { stored, requested } => write!(
                f,
                "the index was created with quantization '{stored}', the writer asks for '{requested}'"
            ),
            Error::IndexNotFound(index) => write!(f, "index {index} holds no items"),
            Error::NeedsBuild(index) => write!(
                f,
                "index {index} has items but was never built: call writer.build() first"
            ),
            Error::ReadOnly => f.write_str("the database was opened read-only"),
            Error::Version { found, supported } if found > supported => write!(
                f,
                "the index was written by format version {found}, this version of hannoy reads up to {supported}: upgrade hannoy"
            ),
            Error::Version { found, supported } => write!(
                f,
                "the index was written by format version {found}, which this version of hannoy (format {supported}) no longer reads: rebuild it (add the items to a new directory and build)"
            ),
            Error::Corrupt(msg) => write!(f, "corrupt record: {msg}"),
            Error::Cancelled => f.write_str("the operation was aborted"),
            Error::Io(msg) => f.write_str(msg),
            Error::MapFull => f.write_str("the memory map is full and could not grow"),
            Error::MapResized => f.write_str("another process grew the memory map"),
        }
    }
}

impl std::error::Error for Error {}

// LMDB's errors convert in `store` (`From<heed::Error>`), beside the environment.

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Self {
        Error::Io(error.to_string())
    }
}

//! The one error type of the core. Each variant maps to one Python exception class (see `python.rs`).

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The bytes claim a supported format but cannot be decoded (truncated, corrupt, inconsistent).
    #[error("{0}")]
    Decode(String),
    /// A format (or a variant of one) that the core does not read, recognised from the bytes.
    #[error("{0}")]
    Unsupported(String),
    /// The input is larger than a configured limit (bytes, pixels); nothing big was allocated.
    #[error("{0}")]
    Limit(String),
    /// Encoding the output failed; not the caller's fault.
    #[error("{0}")]
    Encode(String),
    /// An option is out of range: the caller's bug, not the image's.
    #[error("{0}")]
    InvalidArgument(String),
    /// A bug in the core (a caught panic); reported rather than crashing the host process.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// The message of a caught panic (`panic!("…")` payloads are a `&str` or a `String`), for the error it becomes.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with no message".to_owned())
}

//! The error every stage returns, split into retryable and permanent classes.

use std::time::Duration;

/// `Result` with slotel's stage [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a stage refused a batch.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The stage is full; the sender should retry after `retry_after`.
    #[error("{what} is full, retry after {}s", retry_after.as_secs())]
    Full {
        /// What is full (e.g. "the ingest queue").
        what: &'static str,
        /// How long the sender should wait before retrying.
        retry_after: Duration,
    },
    /// The stage is not running (starting up or shutting down); retry later.
    #[error("{0} is unavailable")]
    Unavailable(&'static str),
    /// The input is invalid and retrying it cannot help.
    #[error("invalid input: {0}")]
    Invalid(String),
}

impl Error {
    /// Whether the sender may send the same batch again.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Error::Invalid(_))
    }

    /// How long the sender should wait before retrying, when the stage knows.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Full { retry_after, .. } => Some(*retry_after),
            Error::Unavailable(_) => Some(Duration::from_secs(1)),
            Error::Invalid(_) => None,
        }
    }
}

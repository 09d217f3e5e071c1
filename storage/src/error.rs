//! The errors of the query crate.

/// What can go wrong storing or querying SLO data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object store refused a read or write (transient: retried).
    #[error("storage: {0}")]
    Storage(String),
    /// A file listed a moment ago is gone (a concurrent compaction deleted it).
    #[error("storage: {0} vanished")]
    Vanished(String),
    /// A file's content is not what slotel writes.
    #[error("corrupt file: {0}")]
    Corrupt(String),
    /// Arrow refused the data.
    #[error("arrow: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    /// Parquet refused the data.
    #[error("parquet: {0}")]
    Parquet(#[from] datafusion::parquet::errors::ParquetError),
}

impl Error {
    /// Whether the error proves the file itself is damaged (and belongs in quarantine),
    /// rather than the store failing to hand it over.
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            Error::Corrupt(_) | Error::Arrow(_) | Error::Parquet(_)
        )
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

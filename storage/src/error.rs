//! The errors of the query crate.

/// What can go wrong storing or querying SLO data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object store refused a read or write.
    #[error("storage: {0}")]
    Storage(String),
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

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

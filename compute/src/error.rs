//! Errors of the compute crate.

/// `Result` with the compute crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of the compute crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No SLO with that name exists for the tenant.
    #[error("no SLO named {name:?} for tenant {tenant:?}")]
    UnknownSlo {
        /// The tenant asked for.
        tenant: String,
        /// The SLO name asked for.
        name: String,
    },
}

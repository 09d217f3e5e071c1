//! Errors of SLO files; each problem carries the file, line and column it refers to.

use std::fmt;
use std::path::PathBuf;

/// `Result` with the spec crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One problem in an SLO file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line, 0 when unknown.
    pub line: u64,
    /// 1-based column, 0 when unknown.
    pub column: u64,
    /// What is wrong, as a sentence.
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

/// Why SLO files could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// One or more SLO files are invalid; every problem found is listed.
    #[error("{}", display_all(.0))]
    Spec(Vec<SpecError>),
    /// An SLO file or folder could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn display_all(errors: &[SpecError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

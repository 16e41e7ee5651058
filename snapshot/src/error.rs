//! Typed errors of archive and snapshot operations.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// A parameter the user gave is not what was expected.
    #[error("{0}")]
    Usage(String),
    /// An archive, snapshot or pack file that is not what it should be.
    #[error("{path}: {detail}")]
    Invalid { path: PathBuf, detail: String },
    #[error(transparent)]
    Analyze(#[from] trawl_analyze::Error),
    #[error("writing {path}: {detail}")]
    Output { path: PathBuf, detail: String },
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io { path: path.to_path_buf(), source }
    }

    pub(crate) fn invalid(path: &Path, detail: impl Into<String>) -> Error {
        Error::Invalid { path: path.to_path_buf(), detail: detail.into() }
    }

    /// True when the error is about the user's input (exit code 2).
    pub fn is_user_error(&self) -> bool {
        match self {
            Error::Usage(_) | Error::Invalid { .. } => true,
            Error::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            Error::Analyze(e) => e.is_bad_input(),
            Error::Output { .. } => false,
        }
    }
}

//! The analyzer's typed errors: failures of the environment or of the
//! input container. Problems inside the traffic are data (parse issues).

use std::path::{Path, PathBuf};

/// An error that stops an analysis.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a capture file: {detail}")]
    NotACapture { path: PathBuf, detail: String },
    #[error("{path}: no capture files found (expected *.pcap, *.pcapng, *.cap or their .gz)")]
    NoInputs { path: PathBuf },
    #[error("writing {path}: {detail}")]
    Output { path: PathBuf, detail: String },
    #[error("{0}")]
    Config(String),
    #[error("internal error (a bug in trawl, please report it): {0}")]
    Internal(String),
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io { path: path.to_path_buf(), source }
    }

    /// True when the error is about the user's input (exit code 2).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Error::NotACapture { .. } | Error::NoInputs { .. } | Error::Config(_))
            || matches!(self, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

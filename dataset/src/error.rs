use thiserror::Error;

/// What can go wrong with a dataset. Problems of the traffic are rows,
/// never errors; these are about the dataset, its storage and its inputs.
#[derive(Debug, Error)]
pub enum Error {
    /// The dataset location cannot be used (a bad URL, a missing bucket
    /// setting, a path that is not a dataset).
    #[error("dataset {location}: {detail}")]
    Location { location: String, detail: String },
    /// Reading or writing the storage failed.
    #[error("dataset {location}: {detail}")]
    Storage { location: String, detail: String },
    /// The analysis of a capture file failed (not the traffic: the file).
    #[error(transparent)]
    Analyze(#[from] trawl_analyze::Error),
    #[error("{0}")]
    Config(String),
}

impl Error {
    pub(crate) fn storage(location: &impl std::fmt::Display, detail: impl std::fmt::Display) -> Error {
        Error::Storage { location: location.to_string(), detail: detail.to_string() }
    }

    /// True when the error is about the user's input (exit code 2).
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Location { .. } | Error::Config(_) => true,
            Error::Analyze(e) => e.is_bad_input(),
            Error::Storage { .. } => false,
        }
    }
}

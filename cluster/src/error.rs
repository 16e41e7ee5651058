//! The cluster's errors.

/// What can go wrong starting a cluster process or reaching one.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("--cluster {url}: {detail}")]
    Url { url: String, detail: String },
    #[error("--cluster {url}: cannot reach the scheduler ({detail}); is `trawl cluster scheduler` running there?")]
    Unreachable { url: String, detail: String },
    #[error("--cluster {url}: the cluster cannot run trawl's queries: {detail}")]
    NotReady { url: String, detail: String },
    #[error("{0}")]
    Ballista(String),
}

impl ClusterError {
    /// True when the user's input (the URL) is at fault.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, ClusterError::Url { .. })
    }

    pub(crate) fn ballista(e: ballista_core::error::BallistaError) -> ClusterError {
        ClusterError::Ballista(e.to_string())
    }
}

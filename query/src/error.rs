use std::path::PathBuf;

use datafusion::error::DataFusionError;

use crate::kfl::KflError;

/// Why a query could not run.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The path is not a snapshot (or folder of snapshots) this trawl reads.
    #[error("{}: {message}", path.display())]
    Snapshot { path: PathBuf, message: String },
    #[error(transparent)]
    Kfl(#[from] KflError),
    /// A statement that would write; snapshots are read-only.
    #[error("trawl sql is read-only: {0}")]
    ReadOnly(String),
    /// A bad parameter (column list, table name...).
    #[error("{0}")]
    Invalid(String),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}", clean(.0))]
    DataFusion(DataFusionError),
}

// Not `#[from]`: that would also make DataFusion's error the `source`, and
// error reports would print its message twice.
impl From<DataFusionError> for QueryError {
    fn from(e: DataFusionError) -> QueryError {
        QueryError::DataFusion(e)
    }
}

impl QueryError {
    pub fn snapshot(path: impl Into<PathBuf>, message: impl Into<String>) -> QueryError {
        QueryError::Snapshot { path: path.into(), message: message.into() }
    }

    /// True when the user's input (not the data or the machine) is at fault.
    pub fn is_user_error(&self) -> bool {
        match self {
            QueryError::Kfl(_) | QueryError::ReadOnly(_) | QueryError::Invalid(_) | QueryError::Snapshot { .. } => true,
            QueryError::DataFusion(e) => matches!(
                e.find_root(),
                DataFusionError::SQL(..) | DataFusionError::Plan(_) | DataFusionError::SchemaError(..)
            ),
            QueryError::Io { .. } => false,
        }
    }
}

/// Ballista's message when an executor cannot decode a task's plan; the
/// reason is only in that executor's log.
const REJECTED_BY_EXECUTOR: &str = "rejected by executor";

/// DataFusion's message without its nesting prefixes and backtraces.
fn clean(e: &DataFusionError) -> String {
    let root = e.find_root();
    let s = root.to_string();
    let s = s.lines().next().unwrap_or("").to_string();
    if s.contains(REJECTED_BY_EXECUTOR) {
        return format!(
            "{s}: an executor could not read the query's plan, which happens when it lacks one of trawl's functions or \
             tables (a stock Ballista executor, or another trawl version); its log names what is missing"
        );
    }
    for prefix in ["Error during planning: ", "SQL error: ", "Schema error: ", "Execution error: ", "Arrow error: "] {
        if let Some(rest) = s.strip_prefix(prefix) {
            return rest.to_string();
        }
    }
    s
}

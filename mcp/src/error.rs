//! Tool failures an agent can act on.
//!
//! Every failure of a tool call comes back as a result with `isError:
//! true` and one JSON object: `{"error": "...", ...hints}`. Hints carry
//! what the agent needs to retry: the known snapshot names, the fields a
//! parameter accepts, the KFL caret message.

use serde_json::{Map, Value, json};

/// Why a tool call failed.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolError {
    pub message: String,
    /// Extra fields of the error object (`known_snapshots`, `hint`...).
    pub hints: Map<String, Value>,
}

impl ToolError {
    pub fn new(message: impl Into<String>) -> ToolError {
        ToolError { message: message.into(), hints: Map::new() }
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> ToolError {
        self.hints.insert(key.to_string(), value.into());
        self
    }

    /// The error object sent to the client.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("error".into(), json!(self.message));
        m.extend(self.hints.clone());
        Value::Object(m)
    }
}

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<trawl_query::QueryError> for ToolError {
    fn from(e: trawl_query::QueryError) -> ToolError {
        match &e {
            // The caret message spans lines: keep it whole.
            trawl_query::QueryError::Kfl(k) => ToolError::new(k.to_string()).with(
                "kfl_error",
                json!({"message": k.message, "start": k.span.start, "end": k.span.end, "hint": k.hint, "reference": "resource trawl://kfl"}),
            ),
            _ => ToolError::new(e.to_string()),
        }
    }
}

/// The investigations' errors in the same shape as the query tools': a
/// bad KFL filter comes back with its caret and `kfl_error`.
impl From<trawl_investigate::Error> for ToolError {
    fn from(e: trawl_investigate::Error) -> ToolError {
        match e {
            trawl_investigate::Error::Query(q) => ToolError::from(q),
            trawl_investigate::Error::DataFusion(d) => ToolError::from(d),
            other => ToolError::new(other.to_string()),
        }
    }
}

impl From<trawl_snapshot::Error> for ToolError {
    fn from(e: trawl_snapshot::Error) -> ToolError {
        ToolError::new(e.to_string())
    }
}

impl From<trawl_query::datafusion::error::DataFusionError> for ToolError {
    fn from(e: trawl_query::datafusion::error::DataFusionError) -> ToolError {
        ToolError::from(trawl_query::QueryError::from(e))
    }
}

pub type ToolResult<T = Value> = Result<T, ToolError>;

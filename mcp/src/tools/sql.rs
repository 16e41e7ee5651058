//! Read-only SQL with row and time limits.

use std::sync::Arc;
use std::time::Duration;

use rmcp::schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use trawl_query::datafusion::arrow::array::RecordBatch;

use super::{bounded, indexed};
use crate::error::{ToolError, ToolResult};
use crate::rows;
use crate::server::Inner;

/// run_sql's parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct RunSql {
    /// One read-only statement (SELECT, WITH, EXPLAIN, SHOW, DESCRIBE). Columns: resource trawl://schema.
    pub sql: String,
    /// Snapshot (default: every dissected snapshot; the `snapshot` column tells them apart).
    #[serde(alias = "snapshot", alias = "db")]
    pub snapshot_id: Option<String>,
    /// Most rows to return, 1-1000 (default 100).
    pub limit: Option<usize>,
    /// Give up after this many milliseconds, 1-60000 (default 10000).
    pub timeout_ms: Option<usize>,
}

/// Longest body text in a SQL result cell.
const CELL_BYTES: usize = 1024;

pub async fn run_sql(inner: &Arc<Inner>, p: RunSql) -> ToolResult {
    let limit = bounded("limit", p.limit, 100, 1000)?;
    let timeout = bounded("timeout_ms", p.timeout_ms, 10_000, 60_000)?;
    let snaps = indexed(inner, p.snapshot_id.as_deref())?;
    let cat = inner.catalog(&snaps).await?;
    let sql = p.sql.clone();
    // The query runs as a task of its own, so the deadline is kept even
    // while the query's work keeps its thread busy; at the deadline the
    // task is aborted, which drops the plan and cancels its partitions.
    let task = tokio::spawn(async move {
        let df = cat.sql_frame(&sql).await?;
        let schema = df.schema().clone();
        // One row more than asked tells whether there were more.
        let batches: Vec<RecordBatch> = df.limit(0, Some(limit + 1))?.collect().await?;
        Ok::<_, ToolError>((schema, batches))
    });
    let abort = task.abort_handle();
    let (schema, batches) = match tokio::time::timeout(Duration::from_millis(timeout as u64), task).await {
        Ok(done) => done??,
        Err(_) => {
            abort.abort();
            return Err(ToolError::new(format!(
                "the query ran longer than timeout_ms ({timeout} ms) and was cancelled: add filters or a LIMIT, or raise timeout_ms (at most 60000)"
            )));
        }
    };
    let mut rows = rows::rows(&batches, CELL_BYTES);
    let truncated = rows.len() > limit;
    rows.truncate(limit);
    let columns: Vec<Value> = schema.fields().iter().map(|f| json!({"name": f.name(), "type": f.data_type().to_string()})).collect();
    Ok(json!({"columns": columns, "rows": rows, "returned": rows.len(), "truncated": truncated}))
}

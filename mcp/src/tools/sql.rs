//! Read-only SQL with row and time limits.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use rmcp::schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use trawl_query::datafusion::arrow::array::RecordBatch;
use trawl_query::datafusion::common::tree_node::TreeNodeRecursion;
use trawl_query::datafusion::error::{DataFusionError, Result as DfResult};
use trawl_query::datafusion::execution::TaskContext;
use trawl_query::datafusion::physical_expr::PhysicalExpr;
use trawl_query::datafusion::physical_plan::{
    self, DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, RecordBatchStream, SendableRecordBatchStream,
    coop::make_cooperative,
};

use super::{bounded, indexed};
use crate::error::{ToolError, ToolResult};
use crate::rows;
use crate::state::Inner;

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

/// Every operator of a plan made stoppable: each batch it asks of its
/// input first looks at `stop`, and once that is set gets an error
/// instead, so a cancelled query ends within one batch's work. Each
/// also yields to its runtime when its task has worked a while (tokio's
/// budget), not only the scans: an operator that makes rows of its own
/// (a cross join) otherwise runs without a pause.
fn stoppable(plan: Arc<dyn ExecutionPlan>, stop: &Arc<AtomicBool>) -> Result<Arc<dyn ExecutionPlan>, ToolError> {
    use trawl_query::datafusion::common::tree_node::{Transformed, TreeNode};
    let wrap = |p: Arc<dyn ExecutionPlan>| -> Arc<dyn ExecutionPlan> { Arc::new(StoppableExec::new(p, stop.clone())) };
    Ok(plan.transform_up(|p| Ok(Transformed::yes(wrap(p))))?.data)
}

/// Longest body text in a SQL result cell.
const CELL_BYTES: usize = 1024;

pub async fn run_sql(inner: &Arc<Inner>, p: RunSql) -> ToolResult {
    let limit = bounded("limit", p.limit, 100, 1000)?;
    let timeout = bounded("timeout_ms", p.timeout_ms, 10_000, 60_000)?;
    let snaps = indexed(inner, p.snapshot_id.as_deref())?;
    let cat = inner.catalog(&snaps).await?;
    let sql = p.sql.clone();
    // The query runs on a runtime of its own, so its work cannot hold up
    // the server's (and with it the deadline); at the deadline it is
    // dropped, which cancels its partitions, and its runtime shut down.
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let (cancel_tx, cancel_rx) = tokio::sync::oneshot::channel::<()>();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    // Dropped when the call is (the server's per-call limit, a client that
    // went away): the plan's operators stop at their next batch.
    let _stop_on_drop = StopOnDrop(stop.clone());
    let workers = if inner.config.threads > 0 {
        inner.config.threads
    } else {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    };
    std::thread::Builder::new()
        .name("trawl-sql".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = done_tx.send(Err(ToolError::new(format!("internal error: no runtime for the query: {e}"))));
                    return;
                }
            };
            rt.block_on(async move {
                let query = async {
                    let df = cat.sql_frame(&sql).await?;
                    let schema = df.schema().clone();
                    // One row more than asked tells whether there were more.
                    let df = df.limit(0, Some(limit + 1))?;
                    let ctx = df.task_ctx();
                    let plan = stoppable(df.create_physical_plan().await?, &stopped)?;
                    let batches: Vec<RecordBatch> = physical_plan::collect(plan, Arc::new(ctx)).await?;
                    Ok::<_, ToolError>((schema, batches))
                };
                tokio::select! {
                    r = query => { let _ = done_tx.send(r); }
                    _ = cancel_rx => {}
                }
            });
            rt.shutdown_background();
        })
        .map_err(|e| ToolError::new(format!("internal error: no thread for the query: {e}")))?;
    let (schema, batches) = match tokio::time::timeout(Duration::from_millis(timeout as u64), done_rx).await {
        Ok(Ok(r)) => r?,
        Ok(Err(_)) => return Err(ToolError::new("internal error: the query's thread stopped")),
        Err(_) => {
            stop.store(true, Ordering::Relaxed);
            let _ = cancel_tx.send(());
            return Err(ToolError::new(format!(
                "the query ran longer than timeout_ms ({timeout} ms) and was cancelled: add filters or a LIMIT, or raise timeout_ms (at most 60000)"
            )));
        }
    };
    let mut rows = rows::rows(&batches, CELL_BYTES);
    let truncated = rows.len() > limit;
    rows.truncate(limit);
    let columns: Vec<Value> =
        schema.fields().iter().map(|f| json!({"name": f.name(), "type": f.data_type().to_string()})).collect();
    Ok(json!({"columns": columns, "rows": rows, "returned": rows.len(), "truncated": truncated}))
}

/// Sets its flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A plan node that passes its input's batches through until `stop` is
/// set, and an error after (see [`stoppable`]).
#[derive(Debug)]
struct StoppableExec {
    input: Arc<dyn ExecutionPlan>,
    stop: Arc<AtomicBool>,
}

impl StoppableExec {
    fn new(input: Arc<dyn ExecutionPlan>, stop: Arc<AtomicBool>) -> Self {
        StoppableExec { input, stop }
    }
}

impl DisplayAs for StoppableExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoppableExec")
    }
}

impl ExecutionPlan for StoppableExec {
    fn name(&self) -> &str {
        "StoppableExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        match (children.pop(), children.is_empty()) {
            (Some(input), true) => Ok(Arc::new(StoppableExec::new(input, self.stop.clone()))),
            _ => Err(DataFusionError::Internal("StoppableExec has one input".into())),
        }
    }

    fn execute(&self, partition: usize, ctx: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        let stream = StoppableStream { input: self.input.execute(partition, ctx)?, stop: self.stop.clone() };
        Ok(make_cooperative(Box::pin(stream)))
    }
}

struct StoppableStream {
    input: SendableRecordBatchStream,
    stop: Arc<AtomicBool>,
}

impl futures::Stream for StoppableStream {
    type Item = DfResult<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.stop.load(Ordering::Relaxed) {
            return Poll::Ready(Some(Err(DataFusionError::Execution("the query was cancelled".into()))));
        }
        self.input.as_mut().poll_next(cx)
    }
}

impl RecordBatchStream for StoppableStream {
    fn schema(&self) -> trawl_query::datafusion::arrow::datatypes::SchemaRef {
        self.input.schema()
    }
}

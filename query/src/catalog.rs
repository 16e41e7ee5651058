//! A snapshot, or a folder of snapshots, as one DataFusion catalog.
//!
//! Tables (every one starts with a `snapshot` column, the snapshot's
//! directory name, so that a folder of snapshots reads as one):
//!
//! | name | kind | rows |
//! |---|---|---|
//! | `api_calls`, `flows`, `parse_issues`, `packets` | table | the Parquet files, as in docs/schema.md |
//! | `calls` | view | `api_calls` plus `route` (templated path), `endpoint` (method and route), `latency_ms`, `src_name`/`dst_name` (pod, else service, node, DNS name, else the address) |
//! | `http` | view | the HTTP rows of `calls` |
//! | `tcp`, `udp`, `icmp` | view | the flows of that transport |

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::DFSchema;
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{Expr, SortExpr, cast, col, lit};
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::Statement;

use crate::error::QueryError;
use crate::kfl::{self, Compiled, Table};
use crate::udf;

/// One snapshot directory.
#[derive(Debug, Clone)]
pub struct SnapshotInfo {
    pub name: String,
    pub path: PathBuf,
    /// Capture time of the first and last packet, ns since the epoch.
    pub first_ns: Option<i64>,
    pub last_ns: Option<i64>,
    /// Rows per table, from the manifest.
    pub rows: BTreeMap<String, u64>,
}

/// Rows per batch in query execution.
pub const BATCH_ROWS: usize = 65_536;

/// The tables and views of an opened catalog.
pub const TABLES: &[(&str, &str)] = &[
    ("api_calls", "table"),
    ("flows", "table"),
    ("parse_issues", "table"),
    ("packets", "table"),
    ("calls", "view"),
    ("http", "view"),
    ("tcp", "view"),
    ("udp", "view"),
    ("icmp", "view"),
    ("l4_flows", "view"),
];

/// An opened snapshot (or folder of snapshots), ready for SQL and KFL.
pub struct Catalog {
    ctx: SessionContext,
    pub snapshots: Vec<SnapshotInfo>,
    /// `now()` for KFL: the last packet of all snapshots.
    pub now_ns: Option<i64>,
    /// The dataset read, when the catalog is one (each of its nodes is a
    /// "snapshot": the `snapshot` column holds the node's name).
    pub dataset: Option<trawl_dataset::read::View>,
}

/// The order of a KFL query's rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    /// By id: the order the analysis wrote them in (calls: when each
    /// exchange completed; flows: when each connection was first seen).
    /// The cheapest order, since the files are written in it.
    #[default]
    Id,
    /// By `timestamp` (a call's request, a flow's first packet), then id:
    /// what "the first N" means to a person.
    Time,
}

/// A KFL query: which table, which filter, which page of rows.
#[derive(Debug, Clone, Default)]
pub struct KflQuery {
    pub table: Table,
    pub filter: String,
    /// Further KFL filters, each compiled on its own and joined to
    /// `filter` with AND as expressions (never as text: a filter cannot
    /// escape another's parentheses, and an error quotes only its own).
    pub also: Vec<String>,
    pub order: Order,
    pub limit: Option<usize>,
    /// Rows to skip before the first one returned.
    pub offset: usize,
    /// Columns to return; `None` for all.
    pub columns: Option<Vec<String>>,
    /// Only rows whose `timestamp` is at or after this (ns since the epoch).
    pub start_ns: Option<i64>,
    /// Only rows whose `timestamp` is before this.
    pub end_ns: Option<i64>,
}

/// A filter that keeps exactly the rows of some `(snapshot, id)` keys:
/// per snapshot, the id range (for row-group pruning) and the ids.
fn page_keys(keys: &[RecordBatch], id: &str) -> Result<Expr, QueryError> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::UInt64Type;
    let mut per: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for b in keys {
        let snap = datafusion::arrow::compute::cast(b.column(0), &DataType::Utf8)?;
        let snap = snap.as_string::<i32>();
        // Ids are UInt64 as trawl writes them; a table made by other means
        // may hold them as another integer type.
        let ids = datafusion::arrow::compute::cast(b.column(1), &DataType::UInt64)?;
        let ids = ids
            .as_primitive_opt::<UInt64Type>()
            .ok_or_else(|| QueryError::Invalid(format!("{id}: expected an integer id column")))?;
        for r in 0..b.num_rows() {
            if ids.is_valid(r) {
                per.entry(snap.value(r).to_string()).or_default().push(ids.value(r));
            }
        }
    }
    let mut any: Option<Expr> = None;
    for (snap, ids) in per {
        let (lo, hi) = (ids.iter().min().copied().unwrap_or(0), ids.iter().max().copied().unwrap_or(0));
        let e = col("snapshot")
            .eq(lit(snap))
            .and(col(id).between(lit(lo), lit(hi)))
            .and(col(id).in_list(ids.into_iter().map(lit).collect(), false));
        any = Some(match any {
            None => e,
            Some(a) => a.or(e),
        });
    }
    Ok(any.unwrap_or(lit(false)))
}

/// Rows of a KFL query and the notes its compilation produced.
#[derive(Debug)]
pub struct KflRows {
    pub batches: Vec<RecordBatch>,
    pub notes: Vec<String>,
}

impl Catalog {
    /// Opens `path`: a snapshot directory (it holds `manifest.json`) or a
    /// directory of snapshot directories. `threads` bounds DataFusion's
    /// partitions (0: one per core).
    pub async fn open(path: &Path, threads: usize) -> Result<Catalog, QueryError> {
        Catalog::open_on(path, threads, &Engine::Local).await
    }

    /// [`Catalog::open`], with queries run by `engine`.
    pub async fn open_on(path: &Path, threads: usize, engine: &Engine) -> Result<Catalog, QueryError> {
        if trawl_dataset::read::is_dataset(path) {
            return Catalog::open_dataset(&path.to_string_lossy(), threads, engine).await;
        }
        let dirs = snapshot_dirs(path)?;
        Catalog::open_many(&dirs, threads, engine).await
    }

    /// Opens several snapshot directories (each holds `manifest.json`) as
    /// one catalog.
    pub async fn open_many(dirs: &[PathBuf], threads: usize, engine: &Engine) -> Result<Catalog, QueryError> {
        let path = dirs.first().map(PathBuf::as_path).unwrap_or(Path::new("."));
        let mut snapshots = Vec::new();
        for d in dirs {
            snapshots.push(read_manifest(d)?);
        }
        let mut names: Vec<&str> = snapshots.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        if names.len() != snapshots.len() {
            return Err(QueryError::snapshot(path, "two snapshots have the same directory name"));
        }
        let ctx = engine.session(threads)?;
        for (def, order) in [
            (trawl_schemas::API_CALLS, Some("id")),
            (trawl_schemas::FLOWS, None),
            (trawl_schemas::PARSE_ISSUES, None),
            (trawl_schemas::PACKETS, Some("ordinal")),
        ] {
            let table = def.name;
            let mut union: Option<DataFrame> = None;
            for s in &snapshots {
                let file = s.path.join(format!("{table}.parquet"));
                if !file.is_file() {
                    return Err(QueryError::snapshot(
                        &s.path,
                        format!("{table}.parquet is missing: not a complete trawl snapshot"),
                    ));
                }
                let mut opts = ParquetReadOptions::default();
                if let Some(c) = order {
                    // Rows are written in id order; saying so lets a LIMIT stop early.
                    opts = opts.file_sort_order(vec![vec![SortExpr::new(col(c), true, false)]]);
                }
                let file_str = file.to_str().ok_or_else(|| QueryError::snapshot(&file, "path is not UTF-8"))?;
                let df = ctx
                    .read_parquet(file_str, opts)
                    .await
                    .map_err(|e| QueryError::snapshot(&file, format!("cannot read: {e}")))?;
                let mut cols: Vec<Expr> = vec![lit(s.name.clone()).alias("snapshot")];
                if snapshots.len() == 1 {
                    cols.extend(df.schema().fields().iter().map(|f| col(format!("\"{}\"", f.name()))));
                } else {
                    // A folder may mix snapshots of several trawl versions:
                    // each is laid out as this version's table, with the
                    // columns an older one lacks as nulls.
                    for c in def.columns {
                        cols.push(if df.schema().has_column_with_unqualified_name(c.name) {
                            col(format!("\"{}\"", c.name))
                        } else {
                            let ty = c.ty.arrow_type();
                            let null = datafusion::scalar::ScalarValue::try_from(&ty)
                                .map_err(|e| QueryError::snapshot(&file, format!("column {}: {e}", c.name)))?;
                            lit(null).alias(c.name)
                        });
                    }
                }
                let df = df.select(cols)?;
                union = Some(match union {
                    None => df,
                    Some(u) => u.union(df)?,
                });
            }
            let df = union.ok_or_else(|| QueryError::snapshot(path, "no snapshot found"))?;
            ctx.register_table(table, df.into_view())?;
        }
        register_views(&ctx).await?;
        let now_ns = snapshots.iter().filter_map(|s| s.last_ns).max();
        Ok(Catalog { ctx, snapshots, now_ns, dataset: None })
    }

    /// Opens a dataset written by `trawl index` (a local directory or an
    /// `s3://` URL) as of now: what every node has committed whole.
    pub async fn open_dataset(location: &str, threads: usize, engine: &Engine) -> Result<Catalog, QueryError> {
        use datafusion::common::Column;
        let loc = trawl_dataset::Location::parse(location, false)
            .map_err(|e| QueryError::snapshot(Path::new(location), e.to_string()))?;
        let view = trawl_dataset::read::load(&loc)
            .await
            .map_err(|e| QueryError::snapshot(Path::new(location), e.to_string()))?;
        let ctx = engine.session(threads)?;
        let location = loc.to_string();
        let url =
            url::Url::parse(&crate::dataset::store_url(&location)).map_err(|e| QueryError::Invalid(e.to_string()))?;
        ctx.register_object_store(&url, loc.store.clone());
        for def in
            [&trawl_schemas::API_CALLS, &trawl_schemas::FLOWS, &trawl_schemas::PARSE_ISSUES, &trawl_schemas::PACKETS]
        {
            let files: Vec<_> = view.table_files(def.name).cloned().collect();
            let table = crate::dataset::DatasetTable::new(def, &location, files);
            let df = ctx.read_table(std::sync::Arc::new(table))?;
            let mut cols: Vec<Expr> = vec![col(trawl_dataset::layout::NODE).alias("snapshot")];
            for c in def.columns {
                let column = Expr::Column(Column::from_name(c.name));
                cols.push(cast(column, c.ty.arrow_type()).alias(c.name));
            }
            ctx.register_table(def.name, df.select(cols)?.into_view())?;
        }
        register_views(&ctx).await?;
        let snapshots = view
            .nodes
            .iter()
            .map(|n| {
                let files = || view.files.iter().filter(|f| f.node == n.name && f.table == trawl_schemas::PACKETS.name);
                let mut rows = BTreeMap::new();
                for f in view.files.iter().filter(|f| f.node == n.name) {
                    *rows.entry(f.table.to_string()).or_insert(0) += f.rows.unwrap_or(0);
                }
                SnapshotInfo {
                    name: n.name.clone(),
                    path: PathBuf::from(loc.to_string()),
                    first_ns: files().filter_map(|f| f.min_ns).min(),
                    last_ns: files().filter_map(|f| f.max_ns).max(),
                    rows,
                }
            })
            .collect();
        Ok(Catalog { ctx, snapshots, now_ns: view.last_ns, dataset: Some(view) })
    }

    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// The table a KFL filter runs on.
    pub fn kfl_table(table: Table) -> &'static str {
        match table {
            Table::Calls => "calls",
            Table::Flows => "flows",
        }
    }

    /// Compiles a KFL filter against a table of this catalog.
    pub async fn compile_kfl(&self, table: Table, filter: &str) -> Result<Compiled, QueryError> {
        let df = self.ctx.table(Catalog::kfl_table(table)).await?;
        let schema: &DFSchema = df.schema();
        let env = kfl::Env { table, schema, now_ns: self.now_ns };
        Ok(kfl::compile(filter, &env)?)
    }

    /// The rows a KFL query's filter and time window keep (unordered, all
    /// columns), with the compiler's notes.
    pub async fn kfl_filtered(&self, q: &KflQuery) -> Result<(DataFrame, Vec<String>), QueryError> {
        let mut compiled = self.compile_kfl(q.table, &q.filter).await?;
        let mut df = self.ctx.table(Catalog::kfl_table(q.table)).await?;
        if let Some(e) = compiled.expr {
            df = df.filter(e)?;
        }
        for f in &q.also {
            let c = self.compile_kfl(q.table, f).await?;
            if let Some(e) = c.expr {
                df = df.filter(e)?;
            }
            compiled.notes.extend(c.notes);
        }
        let ts = |ns: i64| lit(datafusion::scalar::ScalarValue::TimestampNanosecond(Some(ns), Some("UTC".into())));
        if let Some(s) = q.start_ns {
            df = df.filter(col("timestamp").gt_eq(ts(s)))?;
        }
        if let Some(e) = q.end_ns {
            df = df.filter(col("timestamp").lt(ts(e)))?;
        }
        Ok((df, compiled.notes))
    }

    /// The flows a KFL query keeps, folded per peer pair
    /// ([`crate::peers`]) and paged; the query's columns are ignored.
    pub async fn peer_frame(&self, q: &KflQuery) -> Result<(DataFrame, Vec<String>), QueryError> {
        let (df, notes) = self.kfl_filtered(&KflQuery { table: Table::Flows, ..q.clone() }).await?;
        let df = crate::peers::peer_flows(df)?.limit(q.offset, q.limit)?;
        Ok((df, notes))
    }

    /// The DataFrame of a KFL query (filtered, ordered by id or time, paged).
    pub async fn kfl_frame(&self, q: &KflQuery) -> Result<(DataFrame, Vec<String>), QueryError> {
        let (mut df, notes) = self.kfl_filtered(q).await?;
        let id = match q.table {
            Table::Calls => "id",
            Table::Flows => "flow_id",
        };
        let mut order = Vec::new();
        // By time, snapshots interleave; by id, each is read in turn. A
        // sort with a LIMIT keeps only the top rows (a heap, not a full sort).
        if q.order == Order::Time {
            order.push(SortExpr::new(col("timestamp"), true, false));
        }
        if self.snapshots.len() > 1 {
            order.push(SortExpr::new(col("snapshot"), true, false));
        }
        order.push(SortExpr::new(col(id), true, false));
        let mut offset = q.offset;
        if q.order == Order::Time
            && let Some(limit) = q.limit
        {
            // Two steps: the page's keys from the narrow columns (a top-k
            // over timestamp and id, not every column of every row), then
            // those rows whole, found by id (row groups pruned by the id
            // statistics: early calls have early ids).
            let keys = df
                .clone()
                .select(vec![col("snapshot"), col(id), col("timestamp")])?
                .sort(order.clone())?
                .limit(q.offset, Some(limit))?
                .collect()
                .await?;
            df = df.filter(page_keys(&keys, id)?)?;
            offset = 0;
        }
        df = df.sort(order)?;
        if let Some(cols) = &q.columns {
            let have: Vec<String> = df.schema().fields().iter().map(|f| f.name().clone()).collect();
            for c in cols {
                if !have.contains(c) {
                    return Err(QueryError::Invalid(format!(
                        "--columns: `{c}` is not a column of {}; its columns are {}",
                        Catalog::kfl_table(q.table),
                        have.join(", ")
                    )));
                }
            }
            df = df.select(cols.iter().map(|c| col(format!("\"{c}\""))).collect::<Vec<_>>())?;
        }
        if q.limit.is_some() || offset > 0 {
            df = df.limit(offset, q.limit)?;
        }
        Ok((df, notes))
    }

    /// One page of a KFL query and the number of rows it matches in all,
    /// computed side by side.
    pub async fn kfl_page(&self, q: &KflQuery) -> Result<(usize, KflRows), QueryError> {
        let (all, _) = self.kfl_filtered(q).await?;
        let (page, notes) = self.kfl_frame(q).await?;
        let (total, batches) = tokio::try_join!(all.count(), page.collect())?;
        Ok((total, KflRows { batches, notes }))
    }

    /// Runs a KFL query.
    pub async fn kfl(&self, q: &KflQuery) -> Result<KflRows, QueryError> {
        let (df, notes) = self.kfl_frame(q).await?;
        Ok(KflRows { batches: df.collect().await?, notes })
    }

    /// Counts the rows a KFL filter matches.
    pub async fn kfl_count(&self, table: Table, filter: &str) -> Result<usize, QueryError> {
        Ok(self.kfl_count_with_notes(table, filter).await?.0)
    }

    /// Counts the rows a KFL filter matches, with the compiler's notes.
    pub async fn kfl_count_with_notes(&self, table: Table, filter: &str) -> Result<(usize, Vec<String>), QueryError> {
        let (df, notes) =
            self.kfl_filtered(&KflQuery { table, filter: filter.to_string(), ..Default::default() }).await?;
        Ok((df.count().await?, notes))
    }

    /// The flow ids of the rows a KFL filter matches (the connections a
    /// PCAP export of those calls or flows holds), with the compiler's notes.
    pub async fn kfl_flow_ids(
        &self,
        table: Table,
        filter: &str,
    ) -> Result<(std::collections::HashSet<u64>, Vec<String>), QueryError> {
        use datafusion::arrow::array::{Array, AsArray};
        use datafusion::arrow::datatypes::UInt64Type;
        let q =
            KflQuery { table, filter: filter.to_string(), columns: Some(vec!["flow_id".into()]), ..Default::default() };
        let (df, notes) = self.kfl_frame(&q).await?;
        let mut set = std::collections::HashSet::new();
        for b in df.collect().await? {
            if let Some(a) = b.column(0).as_primitive_opt::<UInt64Type>() {
                set.extend((0..a.len()).filter(|&i| a.is_valid(i)).map(|i| a.value(i)));
            }
        }
        Ok((set, notes))
    }

    /// Plans a read-only SQL statement. Anything that would write or change
    /// the session (DDL, DML, COPY, SET) is refused.
    pub async fn sql_frame(&self, sql: &str) -> Result<DataFrame, QueryError> {
        check_read_only(sql)?;
        let opts = datafusion::execution::context::SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        Ok(self.ctx.sql_with_options(sql, opts).await?)
    }

    /// Runs a read-only SQL statement.
    pub async fn sql(&self, sql: &str) -> Result<Vec<RecordBatch>, QueryError> {
        Ok(self.sql_frame(sql).await?.collect().await?)
    }

    /// Tables and views with their columns and types, for `\d`.
    pub async fn describe(&self) -> Result<Vec<TableDesc>, QueryError> {
        let mut out = Vec::new();
        for (name, kind) in TABLES {
            let df = self.ctx.table(*name).await?;
            let columns = df
                .schema()
                .fields()
                .iter()
                .map(|f| (f.name().clone(), f.data_type().to_string(), f.is_nullable()))
                .collect();
            out.push(TableDesc { name: name.to_string(), kind, columns });
        }
        Ok(out)
    }
}

/// A table or view and its columns (name, type, nullable).
#[derive(Debug, Clone)]
pub struct TableDesc {
    pub name: String,
    pub kind: &'static str,
    pub columns: Vec<(String, String, bool)>,
}

/// Refuses statements that would write, naming what was refused.
fn check_read_only(sql: &str) -> Result<(), QueryError> {
    let stmts = DFParser::parse_sql(sql).map_err(QueryError::DataFusion)?;
    for s in &stmts {
        let what = match s {
            DfStatement::Statement(inner) => match inner.as_ref() {
                Statement::Query(_)
                | Statement::Explain { .. }
                | Statement::ShowTables { .. }
                | Statement::ShowColumns { .. } => None,
                Statement::ShowVariable { .. } | Statement::ShowFunctions { .. } | Statement::ExplainTable { .. } => {
                    None
                }
                other => Some(first_words(&other.to_string())),
            },
            DfStatement::Explain(_) => None,
            DfStatement::CreateExternalTable(_) => Some("CREATE EXTERNAL TABLE".to_string()),
            DfStatement::CopyTo(_) => Some("COPY".to_string()),
            other => Some(first_words(&other.to_string())),
        };
        if let Some(w) = what {
            return Err(QueryError::ReadOnly(format!(
                "`{w}` would change the snapshot or the session; only queries (SELECT, WITH, EXPLAIN, SHOW, DESCRIBE) run"
            )));
        }
    }
    Ok(())
}

fn first_words(s: &str) -> String {
    s.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

/// Makes the session of a cluster's client from trawl's settings.
pub type RemoteSession = dyn Fn(SessionConfig) -> Result<SessionContext, QueryError> + Send + Sync;

/// Where a catalog's queries run.
#[derive(Clone, Default)]
pub enum Engine {
    /// In this process, on its threads.
    #[default]
    Local,
    /// On a cluster (`trawl-cluster`): the catalog plans each query here
    /// and the session sends the plan to the cluster's scheduler.
    Cluster {
        /// The scheduler's URL, for messages (`df://host:port`).
        url: String,
        session: std::sync::Arc<RemoteSession>,
    },
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Engine::Local => write!(f, "local"),
            Engine::Cluster { url, .. } => write!(f, "cluster at {url}"),
        }
    }
}

/// trawl's session settings: `threads` bounds the partitions a query is
/// split into (0: one per core; on a cluster, the tasks of a stage).
pub fn session_config(threads: usize) -> SessionConfig {
    // Larger batches than DataFusion's 8192 rows: per-group aggregate
    // state (t-digest percentiles) is merged once per batch, and that
    // merge dominated p50/p99-by-endpoint queries (docs/performance.md).
    let mut config = SessionConfig::new().with_information_schema(true).with_batch_size(BATCH_ROWS);
    if threads > 0 {
        config = config.with_target_partitions(threads);
    }
    config
}

impl Engine {
    /// A session with trawl's settings and functions.
    fn session(&self, threads: usize) -> Result<SessionContext, QueryError> {
        let config = session_config(threads);
        let ctx = match self {
            Engine::Local => SessionContext::new_with_config(config),
            Engine::Cluster { session, .. } => session(config)?,
        };
        udf::register(&ctx);
        Ok(ctx)
    }
}

/// The views over the four tables (`calls`, `http`, `tcp`, ...).
async fn register_views(ctx: &SessionContext) -> Result<(), QueryError> {
    let calls = ctx.table("api_calls").await?;
    let route = udf::path_template().call(vec![col("path")]);
    let mut cols: Vec<Expr> = calls.schema().fields().iter().map(|f| col(format!("\"{}\"", f.name()))).collect();
    cols.push(route.alias("route"));
    cols.push(udf::endpoint().call(vec![col("method"), col("path")]).alias("endpoint"));
    cols.push((cast(col("elapsed_time_us"), DataType::Float64) / lit(1000.0)).alias("latency_ms"));
    // Snapshots from before the Kubernetes columns have no names to show.
    if calls.schema().has_column_with_unqualified_name("src_pod_name") {
        for side in ["src", "dst"] {
            let name = |c: &str| datafusion::functions::core::expr_fn::nullif(col(format!("{side}_{c}")), lit(""));
            let best = datafusion::functions::core::expr_fn::coalesce(vec![
                name("pod_name"),
                name("service_name"),
                name("node_name"),
                name("dns"),
                col(format!("{side}_ip")),
            ]);
            cols.push(best.alias(format!("{side}_name")));
        }
    }
    let calls = calls.select(cols)?;
    ctx.register_table("calls", calls.clone().into_view())?;
    ctx.register_table("http", calls.filter(col("protocol").eq(lit("http")))?.into_view())?;
    let flows = ctx.table("flows").await?;
    ctx.register_table("tcp", flows.clone().filter(col("protocol").eq(lit("tcp")))?.into_view())?;
    ctx.register_table("udp", flows.clone().filter(col("protocol").eq(lit("udp")))?.into_view())?;
    ctx.register_table(
        "icmp",
        flows.clone().filter(col("protocol").in_list(vec![lit("icmp"), lit("icmpv6")], false))?.into_view(),
    )?;
    ctx.register_table("l4_flows", crate::peers::peer_flows(flows)?.into_view())?;
    Ok(())
}

/// The snapshot directories under `path`.
fn snapshot_dirs(path: &Path) -> Result<Vec<PathBuf>, QueryError> {
    if !path.exists() {
        return Err(QueryError::snapshot(path, "no such file or directory"));
    }
    if !path.is_dir() {
        return Err(QueryError::snapshot(
            path,
            "expected a snapshot directory (made by `trawl analyze -o DIR`), found a file",
        ));
    }
    if path.join("manifest.json").is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if path.join("snapshot.json").is_file() {
        return Err(QueryError::snapshot(
            path,
            "the snapshot holds raw packets but is not indexed yet: run `trawl snapshot index` on it first",
        ));
    }
    let rd = std::fs::read_dir(path).map_err(|e| QueryError::Io { path: path.to_path_buf(), source: e })?;
    let mut dirs: Vec<PathBuf> =
        rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.join("manifest.json").is_file()).collect();
    dirs.sort();
    if dirs.is_empty() {
        return Err(QueryError::snapshot(
            path,
            "not a trawl snapshot (no manifest.json), and no snapshot directories inside",
        ));
    }
    Ok(dirs)
}

fn read_manifest(dir: &Path) -> Result<SnapshotInfo, QueryError> {
    let mpath = dir.join("manifest.json");
    let text = std::fs::read_to_string(&mpath).map_err(|e| QueryError::Io { path: mpath.clone(), source: e })?;
    let m: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| QueryError::snapshot(&mpath, format!("not valid JSON: {e}")))?;
    let version = m.get("schema_version").and_then(|v| v.as_u64());
    if version != Some(u64::from(trawl_schemas::SCHEMA_VERSION)) {
        let found = version.map_or("none".to_string(), |v| v.to_string());
        return Err(QueryError::snapshot(
            &mpath,
            format!(
                "schema version {found}, but this trawl reads version {}: analyse the capture again",
                trawl_schemas::SCHEMA_VERSION
            ),
        ));
    }
    let ts = |k: &str| m.get(k).and_then(|v| v.as_str()).and_then(trawl_schemas::time::parse_rfc3339);
    let rows = m
        .get("tables")
        .and_then(|t| t.as_object())
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.get("rows").and_then(|r| r.as_u64()).unwrap_or(0))).collect())
        .unwrap_or_default();
    let name = dir
        .canonicalize()
        .ok()
        .as_deref()
        .and_then(Path::file_name)
        .or_else(|| dir.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "snapshot".into());
    Ok(SnapshotInfo {
        name,
        path: dir.to_path_buf(),
        first_ns: ts("first_timestamp"),
        last_ns: ts("last_timestamp"),
        rows,
    })
}

/// Runs a future to completion on a runtime of its own (the CLI's entry
/// into the async API).
pub fn block_on<F: std::future::Future>(threads: usize, fut: F) -> Result<F::Output, QueryError> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if threads > 0 {
        b.worker_threads(threads);
    }
    let rt = b.enable_all().build().map_err(|e| QueryError::Io { path: PathBuf::from("tokio runtime"), source: e })?;
    Ok(rt.block_on(fut))
}

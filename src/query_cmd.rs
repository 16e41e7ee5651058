//! `trawl query SNAPSHOT --kfl EXPR`: KFL filters from the command line.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::{Args, ValueEnum};
use trawl_query::{Catalog, Format, KflQuery, Table};

#[derive(Args)]
pub struct QueryArgs {
    /// A snapshot directory, or a directory of snapshots read as one.
    pub snapshot: PathBuf,
    /// KFL2 filter, e.g. 'http && status_code >= 500' (empty: every row).
    #[arg(long, default_value = "")]
    pub kfl: String,
    /// Table to filter.
    #[arg(long, value_enum, default_value_t = TableArg::Calls)]
    pub table: TableArg,
    /// Rows to print at most (0: all).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Output format.
    #[arg(long, default_value = "table", value_parser = parse_format)]
    pub format: Format,
    /// Comma-separated columns, or `all` [default: a summary for the table
    /// format; every column except bodies for the others].
    #[arg(long)]
    pub columns: Option<String>,
    /// Print only the number of matching rows.
    #[arg(long)]
    pub count: bool,
    /// Fold the matching flows per peer pair (Kubeshark's L4 flows):
    /// connections, states, handshake p50/p90/p99, summed TCP counters.
    #[arg(long)]
    pub peers: bool,
    /// Threads for the query engine [default: number of CPUs].
    #[arg(short = 'j', long, default_value_t = 0)]
    pub threads: usize,
    #[command(flatten)]
    pub cluster: crate::cluster_cmd::ClusterTarget,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum TableArg {
    Calls,
    Flows,
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
}

const CALL_SUMMARY: &[&str] = &[
    "id",
    "timestamp",
    "src_name",
    "dst_name",
    "dst_port",
    "protocol",
    "method",
    "url",
    "status_code",
    "grpc_status",
    "latency_ms",
    "error",
];
const FLOW_SUMMARY: &[&str] = &[
    "flow_id",
    "timestamp",
    "protocol",
    "src_ip",
    "src_port",
    "dst_ip",
    "dst_port",
    "duration_us",
    "zeek_state",
    "history",
    "handshake_rtt_us",
    "retransmissions",
    "client_bytes",
    "server_bytes",
    "l7_protocols",
];
const PEER_SUMMARY: &[&str] = &[
    "timestamp",
    "protocol",
    "src_ip",
    "dst_ip",
    "dst_port",
    "connections",
    "flow_state",
    "handshake_p50_us",
    "handshake_p90_us",
    "handshake_p99_us",
    "retransmissions",
    "client_bytes",
    "server_bytes",
];
const BODIES: &[&str] = &["request_body", "response_body"];

impl From<TableArg> for Table {
    fn from(t: TableArg) -> Table {
        match t {
            TableArg::Calls => Table::Calls,
            TableArg::Flows => Table::Flows,
        }
    }
}

pub fn run(a: QueryArgs) -> Result<()> {
    let table = Table::from(a.table);
    trawl_query::block_on(a.threads, async {
        let snap = trawl_snapshot::workspace::resolve(&a.snapshot, &trawl_snapshot::workspace::workspace_dir(None));
        let engine = a.cluster.engine().await?;
        let cat = Catalog::open_on(&snap, a.threads, &engine).await?;
        if a.count {
            let (n, notes) = cat.kfl_count_with_notes(table, &a.kfl).await?;
            print_notes(&notes);
            println!("{n}");
            return Ok(());
        }
        if a.peers && table != Table::Flows {
            return Err(
                trawl_query::QueryError::Invalid("--peers folds flows: use it with --table flows".into()).into()
            );
        }
        let columns = if a.peers { None } else { pick_columns(&cat, table, a.columns.as_deref(), a.format).await? };
        let q = KflQuery {
            table,
            filter: a.kfl.clone(),
            limit: (a.limit > 0).then_some(a.limit),
            columns,
            ..Default::default()
        };
        let start = Instant::now();
        let (df, notes) = if a.peers {
            let (df, notes) = cat.peer_frame(&q).await?;
            let all: Vec<String> = df.schema().fields().iter().map(|f| f.name().clone()).collect();
            match choose_columns(&all, a.columns.as_deref(), a.format, PEER_SUMMARY, cat.snapshots.len() > 1) {
                Some(keep) => (df.select_columns(&keep.iter().map(String::as_str).collect::<Vec<_>>())?, notes),
                None => (df, notes),
            }
        } else {
            cat.kfl_frame(&q).await?
        };
        print_notes(&notes);
        let schema = df.schema().as_arrow().clone();
        let batches = df.collect().await?;
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        let mut out = std::io::stdout().lock();
        trawl_query::format::write(&batches, &schema, a.format, &mut out)?;
        out.flush().map_err(|e| trawl_query::QueryError::Io { path: "stdout".into(), source: e })?;
        if a.format == Format::Table {
            let more = if a.limit > 0 && rows == a.limit {
                format!(" (--limit {}; --limit 0 for all)", a.limit)
            } else {
                String::new()
            };
            eprintln!(
                "{rows} row{}{more} in {:.1} ms",
                if rows == 1 { "" } else { "s" },
                start.elapsed().as_secs_f64() * 1000.0
            );
        }
        Ok::<(), anyhow::Error>(())
    })??;
    Ok(())
}

fn print_notes(notes: &[String]) {
    for n in notes {
        eprintln!("note: {n}");
    }
}

async fn pick_columns(
    cat: &Catalog,
    table: Table,
    spec: Option<&str>,
    format: Format,
) -> Result<Option<Vec<String>>, trawl_query::QueryError> {
    let all: Vec<String> = cat
        .context()
        .table(Catalog::kfl_table(table))
        .await?
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let summary = if table == Table::Calls { CALL_SUMMARY } else { FLOW_SUMMARY };
    Ok(choose_columns(&all, spec, format, summary, cat.snapshots.len() > 1))
}

/// The columns to print, out of `all` (None: every one): the `--columns`
/// list, or the summary for the table format (led by `snapshot` when a
/// folder of snapshots is open), or every column but the bodies.
fn choose_columns(
    all: &[String],
    spec: Option<&str>,
    format: Format,
    summary: &[&str],
    several: bool,
) -> Option<Vec<String>> {
    match spec {
        Some("all") => None,
        Some(list) => Some(list.split(',').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect()),
        None if format == Format::Table => {
            let lead = several.then(|| "snapshot".to_string());
            // Older snapshots lack some summary columns (TCP metrics).
            Some(lead.into_iter().chain(summary.iter().map(|s| s.to_string()).filter(|c| all.contains(c))).collect())
        }
        None => Some(all.iter().filter(|c| !BODIES.contains(&c.as_str())).cloned().collect()),
    }
}

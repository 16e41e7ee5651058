//! `trawl retries`, `trawl redundant`, `trawl timeline` and `trawl diff`:
//! the investigations of trawl-investigate from the command line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, anyhow};
use clap::{Args, ValueEnum};
use serde_json::Value;
use trawl_investigate::calls::{self, Call, rfc3339};
use trawl_investigate::{audit, diff, map, redundant, retries, timeline, trace};
use trawl_query::Catalog;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutFormat {
    Table,
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MapFormat {
    Table,
    Json,
    Dot,
    Mermaid,
    Svg,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    Table,
    Json,
    Junit,
}

/// What every investigation takes.
#[derive(Args)]
pub struct Common {
    /// KFL2 filter on the calls looked at (empty: every call).
    #[arg(long, default_value = "")]
    pub kfl: String,
    /// Threads for the query engine [default: number of CPUs].
    #[arg(short = 'j', long, default_value_t = 0)]
    pub threads: usize,
}

#[derive(Args)]
pub struct RetriesArgs {
    /// A snapshot directory (or a directory of snapshots read as one).
    pub snapshot: PathBuf,
    /// Longest wait between two attempts of one chain, in seconds.
    #[arg(long, default_value_t = 60.0)]
    pub max_gap: f64,
    #[arg(long, value_enum, default_value_t = OutFormat::Table)]
    pub format: OutFormat,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args)]
pub struct RedundantArgs {
    pub snapshot: PathBuf,
    /// Identical downstream calls to report (inside one inbound call, or
    /// across inbound calls).
    #[arg(long, default_value_t = 2)]
    pub min_repeats: usize,
    /// Across inbound calls, repeats count together while they start
    /// within this many seconds of the first (a cache's lifetime).
    #[arg(long, default_value_t = 60.0)]
    pub window: f64,
    #[arg(long, value_enum, default_value_t = OutFormat::Table)]
    pub format: OutFormat,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args)]
pub struct TimelineArgs {
    pub snapshot: PathBuf,
    /// Bucket size in seconds [default: about 60 buckets over the snapshot, at least 1 s].
    #[arg(long)]
    pub bucket: Option<f64>,
    #[arg(long, value_enum, default_value_t = OutFormat::Table)]
    pub format: OutFormat,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args)]
pub struct MapArgs {
    pub snapshot: PathBuf,
    /// Show who calls this service, whom it calls, and the blast radius
    /// if it goes down (a node name as the map shows it).
    #[arg(long)]
    pub focus: Option<String>,
    #[arg(long, value_enum, default_value_t = MapFormat::Table)]
    pub format: MapFormat,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args)]
pub struct AuditArgs {
    pub snapshot: PathBuf,
    /// Print secrets (tokens, card numbers, keys) as they are; by default
    /// only their first and last 4 characters show.
    #[arg(long)]
    pub show_secrets: bool,
    #[arg(long, value_enum, default_value_t = OutFormat::Table)]
    pub format: OutFormat,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args)]
pub struct TraceArgs {
    pub snapshot: PathBuf,
    /// The inbound call: its id (`42`) or `snapshot/id`, as `trawl query` and MCP show it.
    pub call_id: String,
    #[arg(long, value_enum, default_value_t = OutFormat::Table)]
    pub format: OutFormat,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args)]
pub struct DiffArgs {
    /// The snapshot that behaved as expected.
    pub baseline: PathBuf,
    /// The snapshot to verify.
    pub new: PathBuf,
    /// Latency growth (p50 or p99) that is a regression, in percent...
    #[arg(long, default_value_t = 50.0)]
    pub latency_pct: f64,
    /// ...when it is also more than this many milliseconds.
    #[arg(long, default_value_t = 20.0)]
    pub latency_min_ms: f64,
    #[arg(long, value_enum, default_value_t = DiffFormat::Table)]
    pub format: DiffFormat,
    #[command(flatten)]
    pub common: Common,
}

fn load(snapshot: &Path, c: &Common) -> Result<Vec<Call>> {
    load_with(snapshot, c, calls::Bodies::None)
}

/// [`load`], with response schemas (for `trawl diff`).
fn load_schemas(snapshot: &Path, c: &Common) -> Result<Vec<Call>> {
    load_with(snapshot, c, calls::Bodies::Schemas)
}

fn load_with(snapshot: &Path, c: &Common, bodies: calls::Bodies) -> Result<Vec<Call>> {
    let snap = trawl_snapshot::workspace::resolve(snapshot, &trawl_snapshot::workspace::workspace_dir(None));
    let r = trawl_query::block_on(c.threads, async {
        let cat = Catalog::open(&snap, c.threads).await?;
        calls::load_with(&cat, &c.kfl, bodies).await.map_err(query_error)
    })??;
    Ok(r)
}

/// The query engine's error (whose bad-input kinds exit 2).
fn query_error(e: trawl_investigate::Error) -> trawl_query::QueryError {
    match e {
        trawl_investigate::Error::Query(q) => q,
        other => trawl_query::QueryError::Invalid(other.to_string()),
    }
}

fn print_json(v: &Value) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

/// Prints rows as aligned columns under a header.
fn print_table(header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let mut out = std::io::stdout().lock();
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = width[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    writeln!(out, "{}", line(header.iter().map(|h| h.to_string()).collect()))?;
    writeln!(out, "{}", line(width.iter().map(|w| "-".repeat(*w)).collect()))?;
    for r in rows {
        writeln!(out, "{}", line(r.clone()))?;
    }
    Ok(())
}

fn secs(s: f64, name: &str) -> Result<f64> {
    if s.is_finite() && s > 0.0 {
        Ok(s)
    } else {
        Err(anyhow!(trawl_query::QueryError::Invalid(format!(
            "--{name}: expected a positive number of seconds, got {s}"
        ))))
    }
}

/// Prints findings as JSON, or as a table with a count on stderr.
fn report<T>(
    found: &[T],
    format: OutFormat,
    to_json: fn(&T) -> Value,
    header: &[&str],
    row: impl Fn(&T) -> Vec<String>,
    what: &str,
) -> Result<()> {
    match format {
        OutFormat::Json => print_json(&Value::Array(found.iter().map(to_json).collect())),
        OutFormat::Table => {
            print_table(header, &found.iter().map(row).collect::<Vec<_>>())?;
            eprintln!("{} {what}", found.len());
            Ok(())
        }
    }
}

pub fn retries(a: RetriesArgs) -> Result<ExitCode> {
    let max_gap_ms = secs(a.max_gap, "max-gap")? * 1000.0;
    let calls = load(&a.snapshot, &a.common)?;
    let found = retries::find(&calls, retries::Settings { max_gap_ms });
    let header = ["first_at", "client", "endpoint", "attempts", "waits", "backoff", "outcomes", "result"];
    report(
        &found,
        a.format,
        retries::Retry::to_json,
        &header,
        |r| {
            vec![
                rfc3339(r.first_ns),
                r.client.clone(),
                format!("{} {}", r.server, r.endpoint),
                r.calls.len().to_string(),
                r.waits_ms.iter().map(|w| format!("{:.2}s", w / 1000.0)).collect::<Vec<_>>().join(", "),
                r.backoff.name().to_string(),
                r.outcomes.join(","),
                if r.succeeded { "succeeded" } else { "gave up" }.to_string(),
            ]
        },
        "retry chain(s)",
    )?;
    Ok(ExitCode::SUCCESS)
}

pub fn redundant(a: RedundantArgs) -> Result<ExitCode> {
    let window_ms = secs(a.window, "window")? * 1000.0;
    let calls = load_with(&a.snapshot, &a.common, calls::Bodies::Keys)?;
    let parents = trawl_investigate::parents::Parents::new(&calls);
    let found = redundant::find(&calls, &parents, redundant::Settings { min_repeats: a.min_repeats, window_ms });
    let header = ["first_at", "scope", "inbound", "downstream", "repeated_request", "count", "saving"];
    report(
        &found,
        a.format,
        redundant::Redundant::to_json,
        &header,
        |r| {
            let inbound = match r.scope {
                redundant::Scope::WithinRequest => {
                    format!("{} {} ({})", r.service, r.inbound_endpoint, r.inbound.first().map_or("", String::as_str))
                }
                redundant::Scope::AcrossRequests => {
                    format!("{} {} ({} requests)", r.service, r.inbound_endpoint, r.inbound.len())
                }
            };
            vec![
                rfc3339(r.first_ns),
                r.scope.name().to_string(),
                inbound,
                r.downstream.clone(),
                r.request.clone(),
                format!("{}x", r.count),
                format!("{} calls, {:.1} ms", r.saving_calls, r.saving_ms),
            ]
        },
        "repeated downstream request(s)",
    )?;
    Ok(ExitCode::SUCCESS)
}

pub fn timeline(a: TimelineArgs) -> Result<ExitCode> {
    let bucket_ns = a.bucket.map(|b| secs(b, "bucket").map(|s| (s * 1e9) as i64)).transpose()?;
    let calls = load(&a.snapshot, &a.common)?;
    let bucket_ns = timeline::check_bucket(&calls, bucket_ns)
        .map_err(|e| anyhow!(trawl_query::QueryError::Invalid(format!("--bucket: {e}"))))?;
    let parents = trawl_investigate::parents::Parents::new(&calls);
    let t = timeline::build(&calls, &parents, bucket_ns);
    match a.format {
        OutFormat::Json => print_json(&t.to_json())?,
        OutFormat::Table => {
            println!("failures, in the order they came back");
            let rows: Vec<Vec<String>> = t
                .first_failures
                .iter()
                .map(|f| {
                    let (lo, hi) = f.latency_range_ms;
                    let note = match (&f.caused_by, f.looks_like_timeout()) {
                        (_, true) => format!("its caller gave up after {lo:.1} ms every time: the caller's timeout"),
                        (Some(c), false) => format!("caused by {} ({})", c.callee, c.kind),
                        (None, false) => String::new(),
                    };
                    vec![
                        rfc3339(f.first_failed_ns),
                        rfc3339(f.first_request_ns),
                        format!("{} {}", f.server, f.endpoint),
                        f.kind.clone(),
                        f.count.to_string(),
                        f.first_call.clone(),
                        format!("{lo:.1}..{hi:.1}"),
                        note,
                    ]
                })
                .collect();
            print_table(
                &["failed_at", "request_at", "endpoint", "kind", "count", "first_call", "latency_ms", "note"],
                &rows,
            )?;
            if !t.origins.is_empty() {
                println!("\norigins");
                let rows: Vec<Vec<String>> = t
                    .origins
                    .iter()
                    .map(|o| vec![o.failure.clone(), o.origin.clone(), o.chain.join(" <- "), o.evidence.clone()])
                    .collect();
                print_table(&["failure", "origin", "chain", "evidence"], &rows)?;
            }
            println!(
                "\nanomalous buckets ({} s each: failures above the endpoint's rate, or p50 over 3x its usual)",
                t.bucket_ns as f64 / 1e9
            );
            let rows: Vec<Vec<String>> = t
                .buckets
                .iter()
                .filter(|b| b.anomalous)
                .map(|b| {
                    vec![
                        rfc3339(b.start_ns),
                        format!("{} {}", b.server, b.endpoint),
                        b.calls.to_string(),
                        b.failures.to_string(),
                        format!("{:.1}", b.p50_ms),
                        format!("{:.1}", b.p99_ms),
                    ]
                })
                .collect();
            print_table(&["bucket", "endpoint", "calls", "failures", "p50_ms", "p99_ms"], &rows)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn service_map(a: MapArgs) -> Result<ExitCode> {
    let calls = load(&a.snapshot, &a.common)?;
    let (m, focus) = match &a.focus {
        None => (map::build(&calls), None),
        Some(f) => {
            let (m, focus) = map::focused(map::build(&calls), f).map_err(|nodes| {
                anyhow!(trawl_query::QueryError::Invalid(format!(
                    "--focus: `{f}` is not a node of the map; its nodes are {}",
                    nodes.join(", ")
                )))
            })?;
            (m, Some(focus))
        }
    };
    match a.format {
        MapFormat::Json => print_json(&m.to_json(focus.as_ref()))?,
        MapFormat::Dot => print!("{}", m.to_dot()),
        MapFormat::Mermaid => print!("{}", m.to_mermaid()),
        MapFormat::Svg => print!("{}", m.to_svg()),
        MapFormat::Table => {
            let rows: Vec<Vec<String>> = m
                .edges
                .iter()
                .map(|e| {
                    vec![
                        e.from.clone(),
                        e.to.clone(),
                        e.protocols.join(","),
                        e.calls.to_string(),
                        format!("{:.1}%", e.error_rate() * 100.0),
                        format!("{:.1}", e.p50_ms),
                        format!("{:.1}", e.p99_ms),
                    ]
                })
                .collect();
            print_table(&["from", "to", "protocols", "calls", "errors", "p50_ms", "p99_ms"], &rows)?;
            if let Some(f) = &focus {
                println!("\ncallers of {}: {}", f.node, f.callers.join(", "));
                println!("callees: {}", f.callees.join(", "));
                println!("blast radius (whose calls reach it): {}", f.blast_radius.join(", "));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn audit(a: AuditArgs) -> Result<ExitCode> {
    let snap = trawl_snapshot::workspace::resolve(&a.snapshot, &trawl_snapshot::workspace::workspace_dir(None));
    let found = trawl_query::block_on(a.common.threads, async {
        let cat = Catalog::open(&snap, a.common.threads).await?;
        audit::run(&cat, &a.common.kfl, a.show_secrets).await.map_err(query_error)
    })??;
    let header = ["kind", "first_at", "subject", "count", "detail"];
    report(
        &found,
        a.format,
        audit::Finding::to_json,
        &header,
        |f| vec![f.kind.to_string(), rfc3339(f.first_ns), f.subject.clone(), f.count.to_string(), f.detail.clone()],
        "finding(s)",
    )?;
    Ok(ExitCode::SUCCESS)
}

pub fn trace(a: TraceArgs) -> Result<ExitCode> {
    let calls = load(&a.snapshot, &a.common)?;
    let want = a.call_id.trim();
    let Some(root) = calls.iter().position(|c| c.id == want || c.id.rsplit('/').next() == Some(want)) else {
        return Err(anyhow!(trawl_query::QueryError::Invalid(format!(
            "call id `{want}`: no such call in {} (ids come from trawl query)",
            a.snapshot.display()
        ))));
    };
    let parents = trawl_investigate::parents::Parents::new(&calls);
    let chain = trace::chain(&calls, &parents, root);
    if chain.truncated {
        eprintln!("note: the chain is cut at {} calls", chain.steps.len());
    }
    match a.format {
        OutFormat::Json => print_json(&trace::to_json(&calls, &chain))?,
        OutFormat::Table => {
            let start = calls[root].start_ns;
            let rows: Vec<Vec<String>> = chain
                .steps
                .iter()
                .map(|s| {
                    let c = &calls[s.call];
                    let status = if c.status != 0 { c.status.to_string() } else { c.error.clone().unwrap_or_default() };
                    vec![
                        format!("{}{}", "  ".repeat(s.depth), c.endpoint),
                        c.server.clone(),
                        format!("+{:.1}", calls::ms(start, c.start_ns)),
                        format!("{:.1}", c.latency_ms),
                        status,
                        s.link.map_or("root", |l| l.name()).to_string(),
                        c.id.clone(),
                    ]
                })
                .collect();
            print_table(&["call", "server", "offset_ms", "duration_ms", "status", "linked_by", "id"], &rows)?;
            if !chain.ambiguous.is_empty() {
                println!(
                    "\nambiguous: made while several requests were in flight at the server, with no id to tell which (not followed)"
                );
                let rows: Vec<Vec<String>> = chain
                    .ambiguous
                    .iter()
                    .map(|m| {
                        let c = &calls[m.call];
                        vec![
                            c.endpoint.clone(),
                            c.server.clone(),
                            format!("+{:.1}", calls::ms(start, c.start_ns)),
                            m.candidates.to_string(),
                            c.id.clone(),
                        ]
                    })
                    .collect();
                print_table(&["call", "server", "offset_ms", "candidate_parents", "id"], &rows)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn diff(a: DiffArgs) -> Result<ExitCode> {
    let base = load_schemas(&a.baseline, &a.common)?;
    let new = load_schemas(&a.new, &a.common)?;
    let report =
        diff::compare(&base, &new, diff::Settings { latency_pct: a.latency_pct, latency_min_ms: a.latency_min_ms });
    match a.format {
        DiffFormat::Json => print_json(&report.to_json())?,
        DiffFormat::Junit => print!("{}", report.to_junit(&diff::endpoints(&base, &new))),
        DiffFormat::Table => {
            let rows: Vec<Vec<String>> = report
                .findings
                .iter()
                .map(|f| {
                    let verdict = match f.direction {
                        diff::Direction::Worse => "REGRESSION",
                        diff::Direction::Better => "better",
                        diff::Direction::Neutral => "note",
                    };
                    vec![verdict.to_string(), f.endpoint.clone(), f.kind.to_string(), f.detail.clone()]
                })
                .collect();
            print_table(&["verdict", "endpoint", "finding", "detail"], &rows)?;
            let regressions = report.findings.iter().filter(|f| f.regression).count();
            eprintln!(
                "{}: {regressions} regression{} over {} endpoints",
                if report.passed() { "pass" } else { "FAIL" },
                if regressions == 1 { "" } else { "s" },
                report.endpoints
            );
        }
    }
    Ok(if report.passed() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

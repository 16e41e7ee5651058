//! The `trawl` command: thin glue over the trawl libraries.
//!
//! One file for the command line's definitions (clap derives) and their
//! dispatch; each family of commands with more to it has its own module
//! (`sql_shell.rs`, `query_cmd.rs`, `snapshot_cmd.rs`, `kube_cmd.rs`,
//! `mcp_cmd.rs`).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use trawl_analyze::records::Record;
use trawl_analyze::{Error, Options, Progress};

mod allocator;
mod analysis_args;
mod cluster_cmd;
mod index_cmd;
mod investigate_cmd;
mod kube_cmd;
mod mcp_cmd;
mod query_cmd;
mod snapshot_cmd;
mod sql_shell;

/// Exit code when an input was damaged: analysed up to the damage.
pub(crate) const EXIT_DAMAGED: u8 = 3;
/// Exit code for bad input or usage.
const EXIT_BAD_INPUT: u8 = 2;

#[derive(Parser)]
#[command(
    name = "trawl",
    version,
    about = "Offline network forensics: PCAP archives in, Parquet snapshots of flows and API calls out",
    long_about = "trawl turns packet captures into a snapshot of Parquet tables: one row per connection (flows), one per \
request/response exchange (api_calls), one per problem found in the traffic (parse_issues). Read the snapshot with \
any Parquet tool (DuckDB, pandas, DataFusion), with KFL (`query`) or SQL (`sql`). Capture archives (a folder of rotated captures per node) are cut into snapshots by time window (`snapshot`), and packets go back out as pcapng for Wireshark through the packet index (`export-pcap`).\n\nExamples:\n  trawl analyze incident.pcap                 # writes ./incident.snap\n  trawl analyze rotated/ -o incident.snap     # every capture in a folder, merged by time\n  trawl query incident.snap --kfl 'http && status_code >= 500'\n  trawl archive boundaries /var/lib/trawl/archive\n  trawl snapshot create /var/lib/trawl/archive --last 15m --name incident-1 --index\n  trawl export-pcap incident-1 --kfl 'http && status_code >= 400' -o errors.pcapng\n  trawl debug streams incident.pcap           # reassembled bytes and sha256 per TCP direction"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct CaptureArgs {
    /// An interface to capture on (repeat for several).
    #[arg(long = "iface", required = true)]
    interfaces: Vec<String>,
    /// The archive folder (files go to OUT/NODE/).
    #[arg(long)]
    out: PathBuf,
    /// The node name [default: the host name].
    #[arg(long)]
    node: Option<String>,
    /// Bytes kept per packet (at most 65535).
    #[arg(long, default_value_t = 65535)]
    snaplen: u32,
    /// Stop after this many seconds [default: until Ctrl-C or SIGTERM].
    #[arg(long)]
    duration: Option<f64>,
    /// Start a new file at this size (256MB, 1GiB, bytes).
    #[arg(long, value_parser = parse_size)]
    rotate_size: Option<u64>,
    /// Start a new file after this long (60s, 5m, 1h, seconds).
    #[arg(long, value_parser = parse_span)]
    rotate_time: Option<std::time::Duration>,
    /// Keep at most this many bytes of files (Kubernetes sidecars included), deleting the oldest (10GB).
    #[arg(long, value_parser = parse_size)]
    keep: Option<u64>,
    /// Capture only packets matching this filter (tcpdump syntax, compiled by libpcap).
    #[arg(long = "bpf", value_name = "FILTER")]
    filter: Option<String>,
    /// Capture backend: auto (eBPF, falling back to AF_PACKET where eBPF is not allowed), ebpf, af-packet.
    #[arg(long, value_enum, default_value = "auto")]
    backend: CaptureBackend,
    /// Watch this cluster (its current context) and write the timeline sidecar next to the captures [default: the service account, when running in a pod].
    #[arg(long, value_name = "FILE", conflicts_with = "k8s_from")]
    kubeconfig: Option<PathBuf>,
    /// Record this kubectl List (`kubectl get pods,services,endpointslices,nodes -A -o json`) as the sidecar, again whenever the file changes.
    #[arg(long = "k8s-from", value_name = "FILE")]
    k8s_from: Option<PathBuf>,
    /// Record no Kubernetes metadata, even in a pod with a service account.
    #[arg(long, conflicts_with_all = ["kubeconfig", "k8s_from"])]
    no_kubernetes: bool,
    /// Also index each rotated file into this dataset (a folder or
    /// s3://bucket/prefix) as `trawl index --follow` does, in this
    /// process; when the capture ends, the last files are indexed and
    /// the open connections closed (docs/dataset.md).
    #[arg(long, value_name = "DATASET")]
    index_to: Option<String>,
    /// With --index-to: copy each capture into the dataset too.
    #[arg(long, requires = "index_to")]
    upload_captures: bool,
    /// With --index-to: drop the node's hours older than this (e.g. 7d).
    #[arg(long, value_name = "DURATION", requires = "index_to")]
    retain: Option<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum CaptureBackend {
    Auto,
    Ebpf,
    AfPacket,
}

/// `256MB`, `64KiB`, `1GB`, `1000` (bytes).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(format!("expected a size such as 256MB or 1GiB, got `{s}`")),
    };
    match num.parse::<f64>() {
        Ok(n) if n > 0.0 && n.is_finite() => Ok((n * mult) as u64),
        _ => Err(format!("expected a size such as 256MB or 1GiB, got `{s}`")),
    }
}

/// `60s`, `5m`, `1h`, `30` (seconds).
fn parse_span(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 's')) => (&t[..i], 1.0),
        Some((i, 'm')) => (&t[..i], 60.0),
        Some((i, 'h')) => (&t[..i], 3600.0),
        _ => (t, 1.0),
    };
    match num.parse::<f64>() {
        Ok(n) if n > 0.0 && n.is_finite() => Ok(std::time::Duration::from_secs_f64(n * mult)),
        _ => Err(format!("expected a time such as 60s, 5m or 1h, got `{s}`")),
    }
}

#[derive(Subcommand)]
enum Command {
    /// Analyse captures into a snapshot directory.
    Analyze(AnalyzeArgs),
    /// Filter a snapshot's calls or flows with KFL (Kubeshark's filter language).
    #[command(
        after_help = "Examples:\n  trawl query incident.snap --kfl 'http && status_code >= 500'\n  trawl query incident.snap --kfl 'timestamp > now() - duration(\"5m\")' --format ndjson\n  trawl query incident.snap --table flows --kfl 'tcp && zeek_state == \"REJ\"'\n  trawl query incident.snap --table flows --kfl 'retransmission_rate > 0.05'\n  trawl query incident.snap --table flows --peers --kfl 'tcp'\n\nVariables: docs/kfl.md"
    )]
    Query(query_cmd::QueryArgs),
    /// SQL over a snapshot (DataFusion), read-only: an interactive shell, or -c / -f scripts.
    #[command(
        after_help = "Examples:\n  trawl sql incident.snap\n  trawl sql incident.snap -c 'SELECT endpoint, count(*) FROM calls GROUP BY 1 ORDER BY 2 DESC'"
    )]
    Sql(sql_shell::SqlArgs),
    /// Capture archives: time boundaries per node.
    #[command(subcommand)]
    Archive(snapshot_cmd::ArchiveCommand),
    /// Snapshots: cut a window of an archive, index it, pack it, list and delete.
    Snapshot {
        #[command(subcommand)]
        command: snapshot_cmd::SnapshotCommand,
        #[command(flatten)]
        workspace: snapshot_cmd::WorkspaceArg,
    },
    /// Index a node's capture archive into a dataset (local or s3://), file by file, exactly once; --follow keeps going as files rotate.
    #[command(after_help = "Examples:
  trawl index /var/lib/trawl/archive/node-a --to /var/lib/trawl/dataset
  trawl index /var/lib/trawl/archive/node-a --to s3://traffic/cluster-1 --follow --upload-captures
  trawl query /var/lib/trawl/dataset --kfl 'http && status_code >= 500 && timestamp > now() - duration(\"5m\")'

Docs: docs/dataset.md")]
    Index(index_cmd::IndexArgs),
    /// Export the packets of matching calls' or flows' connections as pcapng, through the packet index.
    #[command(after_help = "Examples:
  trawl export-pcap incident.snap --kfl 'http && status_code >= 400' -o errors.pcapng
  trawl export-pcap incident.snap --bpf 'tcp port 5432' --start 2026-11-22T14:02:00Z --end 2026-11-22T14:03:00Z -o db.pcapng
  trawl export-pcap incident-1 --node node-a --table flows --kfl 'tcp && dst.port == 5432' --annotate -o db.pcapng")]
    ExportPcap(snapshot_cmd::ExportArgs),
    /// Serve the MCP tools to AI agents (stdio, or streamable HTTP with --listen).
    #[command(after_help = "Examples:
  claude mcp add trawl -- trawl mcp --data /var/lib/trawl
  trawl mcp --data /var/lib/trawl --listen 127.0.0.1:8765      # prints a generated bearer token
  trawl mcp --data /var/lib/trawl --mcp-config                  # Claude Desktop / Cursor entry

DIR holds archive/ (captures, one folder per node), snapshots/ and exports/. Logs go to stderr.")]
    Mcp(mcp_cmd::McpArgs),
    /// Run trawl's queries on several machines: a DataFusion Ballista scheduler and executors.
    #[command(
        subcommand,
        after_help = "Examples:
  trawl cluster scheduler --bind 0.0.0.0:50050
  trawl cluster executor --scheduler df://sched:50050 --bind 0.0.0.0:50051 --slots 8
  trawl sql s3://traffic/cluster-1 --cluster df://sched:50050 -c 'SELECT count(*) FROM calls'

Needs a trawl built with --features cluster. Docs: docs/scale.md"
    )]
    Cluster(cluster_cmd::ClusterCommand),
    /// Pods, services and nodes the Kubernetes sidecars of a snapshot or archive name, and when.
    #[command(
        after_help = "Examples:\n  trawl workloads incident.snap\n  trawl workloads incident.snap --at 2026-11-22T14:02:00Z -n payments --kind pod\n  trawl workloads /var/lib/trawl/archive -l app=checkout --json\n\nSidecar formats: docs/kubernetes.md"
    )]
    Workloads(kube_cmd::WorkloadsArgs),
    /// Addresses the Kubernetes sidecars name, and what held each one when.
    #[command(
        after_help = "Examples:\n  trawl ips incident.snap\n  trawl ips incident.snap --ip 10.244.3.30\n  trawl ips incident.snap --at 2026-11-22T14:02:00Z -n shop"
    )]
    Ips(kube_cmd::IpsArgs),
    /// Service map: who calls whom, with calls, errors, latency and protocols per edge.
    #[command(
        after_help = "Examples:\n  trawl map incident.snap\n  trawl map incident.snap --focus shop/payment\n  trawl map incident.snap --format svg > map.svg\n  trawl map incident.snap --format dot | dot -Tpng > map.png\n  trawl map incident.snap --format mermaid\n\nDocs: docs/investigations.md"
    )]
    Map(investigate_cmd::MapArgs),
    /// Retries: identical requests sent again after failures, their waits and backoff.
    #[command(
        after_help = "Examples:\n  trawl retries incident.snap\n  trawl retries incident.snap --kfl 'http && dst.port == 8082' --format json\n\nDocs: docs/investigations.md"
    )]
    Retries(investigate_cmd::RetriesArgs),
    /// Redundant calls: the same downstream request repeated inside one inbound request (N+1, cache misses).
    #[command(
        after_help = "Examples:\n  trawl redundant incident.snap\n  trawl redundant incident.snap --min-repeats 5 --format json\n\nDocs: docs/investigations.md"
    )]
    Redundant(investigate_cmd::RedundantArgs),
    /// Incident timeline: first failure of each kind, and the buckets where an endpoint misbehaved.
    #[command(
        after_help = "Examples:\n  trawl timeline incident.snap\n  trawl timeline incident.snap --bucket 10 --format json\n\nDocs: docs/investigations.md"
    )]
    Timeline(investigate_cmd::TimelineArgs),
    /// Security audit: missing or forwarded credentials, secrets in bodies, cross-namespace plaintext, egress, weak TLS.
    #[command(
        after_help = "Examples:\n  trawl audit incident.snap\n  trawl audit incident.snap --format json --show-secrets\n\nSecrets are redacted unless --show-secrets. Docs: docs/investigations.md"
    )]
    Audit(investigate_cmd::AuditArgs),
    /// Request chain: the calls one inbound call set off downstream, by trace headers or timing.
    #[command(
        after_help = "Examples:\n  trawl trace incident.snap 42\n  trawl trace incident.snap incident/42 --format json\n\nDocs: docs/investigations.md"
    )]
    Trace(investigate_cmd::TraceArgs),
    /// Regression verification: compare a new snapshot with a baseline, per endpoint; exit 1 on a regression.
    #[command(
        after_help = "Examples:\n  trawl diff baseline.snap candidate.snap\n  trawl diff baseline.snap candidate.snap --format junit > trawl-diff.xml\n\nExit status: 0 pass, 1 regression, 2 bad input. Docs: docs/investigations.md"
    )]
    Diff(investigate_cmd::DiffArgs),
    /// Capture packets (eBPF TC classifier) from interfaces into an archive folder as pcapng.
    #[command(
        after_help = "Examples:\n  trawl capture --iface eth0 --out /var/lib/trawl/archive --node node-1 --rotate-size 256MB --rotate-time 60s --keep 10GB\n  trawl capture --iface veth0 --iface veth1 --out archive --duration 30\n\n  trawl capture --iface eth0 --out archive --bpf 'tcp port 80 or port 53'\n\nNeeds root (CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON; AF_PACKET needs CAP_NET_RAW). Where eBPF cannot be loaded, AF_PACKET (TPACKET_V3) is used and the console says why. Ctrl-C or SIGTERM closes the file cleanly."
    )]
    Capture(CaptureArgs),
    /// Print the KFL reference (the source of docs/kfl.md).
    KflDoc,
    /// Tools for checking trawl's internals against other tools.
    #[command(subcommand)]
    Debug(DebugCommand),
    /// Print the snapshot schema (the source of docs/schema.md), or with
    /// --kubernetes the JSON Schema of the sidecars (docs/kubernetes.schema.json).
    Schema {
        /// Print the tables' Markdown (the default).
        #[arg(long, default_value_t = true)]
        markdown: bool,
        /// Print the JSON Schema of the Kubernetes sidecar formats.
        #[arg(long)]
        kubernetes: bool,
    },
}

#[derive(Subcommand)]
enum DebugCommand {
    /// For each TCP stream direction, print the reassembled byte count and
    /// sha256, to compare with `tshark -z follow,tcp,raw,N`.
    Streams {
        /// Capture files or directories.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct AnalyzeArgs {
    /// Capture files (pcap, pcapng, optionally .gz) or directories of them.
    /// Several inputs are merged in timestamp order, like mergecap.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Snapshot directory to write [default: ./<first input name>.snap]
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Replace the output directory if it exists.
    #[arg(long)]
    force: bool,
    /// No progress bar and no summary.
    #[arg(short, long)]
    quiet: bool,
    /// Print the summary as JSON (the snapshot's manifest plus timing).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    analysis: analysis_args::AnalysisArgs,
    /// The node the captures were taken on (the `node_name` column).
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
}

fn main() -> ExitCode {
    allocator::tune();
    // Two of trawl's TLS clients bring rustls with different crypto
    // backends (kube's with ring, object storage's with aws-lc-rs), and
    // rustls then refuses to pick one itself: the process chooses ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            let bad_input = err.chain().any(|c| {
                c.downcast_ref::<Error>().is_some_and(Error::is_bad_input)
                    || c.downcast_ref::<trawl_query::QueryError>().is_some_and(trawl_query::QueryError::is_user_error)
                    || c.downcast_ref::<trawl_snapshot::Error>().is_some_and(trawl_snapshot::Error::is_user_error)
                    || c.downcast_ref::<trawl_capture::Error>().is_some_and(trawl_capture::Error::is_user_error)
                    || c.downcast_ref::<trawl_dataset::Error>().is_some_and(trawl_dataset::Error::is_bad_input)
            });
            if err
                .chain()
                .any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe))
            {
                return ExitCode::SUCCESS;
            }
            eprintln!("trawl: {err:#}");
            ExitCode::from(if bad_input { EXIT_BAD_INPUT } else { 1 })
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Analyze(a) => analyze(a),
        Command::Debug(DebugCommand::Streams { inputs, json }) => debug_streams(&inputs, json),
        Command::Query(a) => query_cmd::run(a).map(|_| ExitCode::SUCCESS),
        Command::Sql(a) => sql_shell::run(a).map(|_| ExitCode::SUCCESS),
        Command::Archive(c) => snapshot_cmd::archive(c),
        Command::Snapshot { command, workspace } => snapshot_cmd::snapshot(command, workspace.workspace.as_deref()),
        Command::ExportPcap(a) => snapshot_cmd::export(a),
        Command::Index(a) => index_cmd::run(a),
        Command::Mcp(a) => mcp_cmd::run(a),
        Command::Cluster(c) => cluster_cmd::run(c),
        Command::KflDoc => {
            print!("{}", trawl_query::kfl::markdown());
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema { kubernetes: true, .. } => {
            println!("{}", serde_json::to_string_pretty(&trawl_schemas::k8s::json_schema())?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema { .. } => {
            print!("{}", trawl_schemas::markdown());
            Ok(ExitCode::SUCCESS)
        }
        Command::Workloads(a) => kube_cmd::workloads(a).map(|_| ExitCode::SUCCESS),
        Command::Ips(a) => kube_cmd::ips(a).map(|_| ExitCode::SUCCESS),
        Command::Capture(a) => capture(a),
        Command::Map(a) => investigate_cmd::service_map(a),
        Command::Retries(a) => investigate_cmd::retries(a),
        Command::Redundant(a) => investigate_cmd::redundant(a),
        Command::Timeline(a) => investigate_cmd::timeline(a),
        Command::Audit(a) => investigate_cmd::audit(a),
        Command::Trace(a) => investigate_cmd::trace(a),
        Command::Diff(a) => investigate_cmd::diff(a),
    }
}

fn capture(a: CaptureArgs) -> Result<ExitCode> {
    let duration = a
        .duration
        .map(|d| analysis_args::secs_to_ns("duration", d).map(|ns| std::time::Duration::from_nanos(ns as u64)))
        .transpose()?;
    let node = a.node.unwrap_or_else(|| {
        std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "node".into())
    });
    let cfg = trawl_capture::Config {
        interfaces: a.interfaces,
        archive: a.out,
        node,
        snaplen: a.snaplen,
        duration,
        rotate_size: a.rotate_size,
        rotate_time: a.rotate_time,
        keep: a.keep,
        backend: match a.backend {
            CaptureBackend::Auto => trawl_capture::Backend::Auto,
            CaptureBackend::Ebpf => trawl_capture::Backend::Ebpf,
            CaptureBackend::AfPacket => trawl_capture::Backend::AfPacket,
        },
        filter: a.filter,
        kubernetes: if a.no_kubernetes {
            trawl_capture::Kubernetes::None
        } else if let Some(k) = a.kubeconfig {
            trawl_capture::Kubernetes::Watch(trawl_capture::kube_watch::KubeSource::Kubeconfig(k))
        } else if let Some(f) = a.k8s_from {
            trawl_capture::Kubernetes::FromFile(f)
        } else if trawl_capture::kube_watch::in_cluster() {
            trawl_capture::Kubernetes::Watch(trawl_capture::kube_watch::KubeSource::InCluster)
        } else {
            trawl_capture::Kubernetes::None
        },
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    ctrlc::set_handler(move || s.store(true, std::sync::atomic::Ordering::Relaxed))
        .map_err(|e| anyhow::anyhow!("installing the signal handler: {e}"))?;
    let index_to = a
        .index_to
        .as_deref()
        .map(|d| {
            index_cmd::Indexing::new(d, &cfg.archive.join(&cfg.node), &cfg.node, a.upload_captures, a.retain.as_deref())
        })
        .transpose()?;
    let c = trawl_capture::start(&cfg)?;
    let indexer = index_to.map(index_cmd::Indexing::spawn);
    if let Some(why) = c.fallback() {
        eprintln!("trawl: eBPF capture is not available here ({why}); using AF_PACKET");
    }
    match &cfg.kubernetes {
        trawl_capture::Kubernetes::Watch(s) => eprintln!(
            "kubernetes: watching {}",
            match s {
                trawl_capture::kube_watch::KubeSource::InCluster => "this cluster (service account)".to_string(),
                trawl_capture::kube_watch::KubeSource::Kubeconfig(p) => format!("the cluster of {}", p.display()),
            }
        ),
        trawl_capture::Kubernetes::FromFile(f) => {
            eprintln!("kubernetes: recording {} (again when it changes)", f.display())
        }
        trawl_capture::Kubernetes::None => {}
    }
    eprintln!("capturing on {} (backend: {})", cfg.interfaces.join(", "), c.backend());
    let r = c.run(stop)?;
    if let Some(ix) = indexer {
        // The last files the capture renamed, then every connection closed.
        let report = ix.finish()?;
        eprintln!(
            "indexed {} files into {} ({} calls)",
            report.files.iter().filter(|f| !f.closing).count(),
            a.index_to.as_deref().unwrap_or_default(),
            report.files.iter().filter_map(|f| f.rows.get("api_calls")).sum::<u64>()
        );
    }
    let filtered = if r.filtered > 0 { format!(", {} filtered out", r.filtered) } else { String::new() };
    eprintln!(
        "captured {} packets, {} bytes (kernel saw {}, dropped {}{filtered}) into {}",
        r.packets,
        r.bytes,
        r.seen,
        r.dropped,
        r.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
    );
    if let Some(k) = &r.kubernetes {
        eprintln!(
            "kubernetes: {} objects, {} changes recorded into {}",
            k.objects,
            k.changes,
            k.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
        );
        if let Some(e) = &k.last_error {
            eprintln!(
                "trawl: note: the Kubernetes watch was interrupted {} times, each time resumed (a 410 Gone is routine); the last: {e}",
                k.errors
            );
        }
    }
    if r.deleted != (0, 0) {
        eprintln!(
            "retention (--keep): deleted the {} oldest capture files and {} Kubernetes sidecars no kept file needs",
            r.deleted.0, r.deleted.1
        );
    }
    if r.dropped > 0 {
        eprintln!(
            "trawl: warning: {} packets were dropped (the capture buffer was full); each file's statistics block counts them",
            r.dropped
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn default_output(input: &Path) -> PathBuf {
    let name = input.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "capture".into());
    let stem = [".pcapng.gz", ".pcap.gz", ".cap.gz", ".pcapng", ".pcap", ".cap", ".gz"]
        .iter()
        .find_map(|e| name.strip_suffix(e))
        .unwrap_or(&name)
        .to_string();
    PathBuf::from(format!("{stem}.snap"))
}

fn analyze(a: AnalyzeArgs) -> Result<ExitCode> {
    let inputs = trawl_analyze::expand_inputs(&a.inputs)?;
    let opts = a.analysis.options(inputs)?;
    let mut opts = opts;
    if let Some(n) = &a.node {
        opts.input_nodes = vec![n.clone(); opts.inputs.len()];
    }
    let out = a.output.clone().unwrap_or_else(|| default_output(&a.inputs[0]));
    // Interrupted: remove the half-written snapshot, leave nothing behind.
    let tmp = trawl_analyze::output::Snapshot::tmp_path(&out);
    let _ = ctrlc::set_handler(move || {
        let _ = std::fs::remove_dir_all(&tmp);
        eprintln!("trawl: interrupted; nothing was written");
        std::process::exit(130);
    });
    let progress = Arc::new(Progress::default());
    let show_bar = !a.quiet && !a.json && std::io::stderr().is_terminal();
    let bar = show_bar.then(|| spawn_progress(progress.clone()));
    let started = Instant::now();
    let result = trawl_analyze::analyze_to_snapshot(&opts, &out, a.force, &progress);
    progress.done.store(true, Ordering::Relaxed);
    if let Some(h) = bar {
        let _ = h.join();
    }
    let res = result.with_context(|| format!("analysing into {}", out.display()))?;
    let elapsed = started.elapsed().as_secs_f64();
    let m = &res.manifest;
    let bytes: u64 = m.inputs.iter().map(|i| i.size).sum();
    if a.json {
        let v = serde_json::json!({ "snapshot": res.path, "elapsed_s": elapsed, "manifest": m });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else if !a.quiet {
        let c = &m.counters;
        let mut o = std::io::stdout().lock();
        writeln!(
            o,
            "analysed {} file{} ({:.1} MB, {} frames) in {:.2} s ({:.0} MB/s)",
            m.inputs.len(),
            plural(m.inputs.len()),
            bytes as f64 / 1e6,
            c.frames,
            elapsed,
            bytes as f64 / 1e6 / elapsed.max(1e-9)
        )?;
        writeln!(
            o,
            "  flows         {:>10}  (tcp {}, udp {}, other {})",
            c.flows, c.tcp_flows, c.udp_flows, c.other_flows
        )?;
        writeln!(
            o,
            "  api_calls     {:>10}  (http requests {}, responses {})",
            c.api_calls, c.http_requests, c.http_responses
        )?;
        writeln!(o, "  parse_issues  {:>10}", c.parse_issues)?;
        if c.capture_dropped > 0 {
            writeln!(
                o,
                "  capture loss  {:>10}  packets the capturing tool dropped (pcapng statistics): not in the files",
                c.capture_dropped
            )?;
        }
        if c.http2_frames > 0 {
            writeln!(
                o,
                "  http/2        frames {} (HEADERS {}, DATA {}), streams {} (requests {}, responses {}), gRPC calls {} ({} messages){}",
                c.http2_frames,
                c.http2_headers_frames,
                c.http2_data_frames,
                c.http2_streams,
                c.http2_requests,
                c.http2_responses,
                c.grpc_calls,
                c.grpc_messages,
                if c.hpack_unknown_fields > 0 {
                    format!(", {} header fields lost to unseen HPACK state", c.hpack_unknown_fields)
                } else {
                    String::new()
                }
            )?;
        }
        if c.dns_queries + c.dns_responses > 0 {
            writeln!(
                o,
                "  dns           queries {}, responses {} (over TCP {}, {})",
                c.dns_queries, c.dns_responses, c.dns_tcp_queries, c.dns_tcp_responses
            )?;
        }
        if c.tls_client_hellos + c.tls_server_hellos > 0 {
            writeln!(
                o,
                "  tls           client hellos {}, server hellos {}",
                c.tls_client_hellos, c.tls_server_hellos
            )?;
        }
        if c.redis_commands + c.redis_replies > 0 {
            writeln!(o, "  redis         commands {}, replies {}", c.redis_commands, c.redis_replies)?;
        }
        if c.db_requests > 0 {
            writeln!(
                o,
                "  databases     requests {}, errors {} (PostgreSQL, MySQL, MongoDB)",
                c.db_requests, c.db_errors
            )?;
        }
        if c.kafka_requests + c.kafka_responses + c.amqp_methods > 0 {
            writeln!(
                o,
                "  messaging     kafka requests {}, responses {}; amqp methods {}",
                c.kafka_requests, c.kafka_responses, c.amqp_methods
            )?;
        }
        if c.graphql_operations + c.websocket_messages > 0 {
            writeln!(
                o,
                "  graphql       {} operations; websocket {} messages",
                c.graphql_operations, c.websocket_messages
            )?;
        }
        if c.tcp_flows > 0 {
            writeln!(
                o,
                "  tcp health    retransmissions {}, out-of-order {}, dup ACKs {}, zero windows {}, RSTs {}, refused {}",
                c.tcp_retransmissions,
                c.tcp_out_of_order,
                c.tcp_dup_acks,
                c.tcp_zero_windows,
                c.tcp_rst_packets,
                c.tcp_refused
            )?;
        }
        let k = &m.kubernetes;
        if !k.sidecars.is_empty() {
            let named: u64 = k.sidecars.iter().map(|r| r.matched).sum();
            let n = |count: u64, what: &str| format!("{count} {what}{}", plural(count as usize));
            writeln!(
                o,
                "  kubernetes    {}: {}, {}, {} over time; {named} flow/call sides named",
                n(k.sidecars.len() as u64, "sidecar"),
                n(k.pods, "pod"),
                n(k.services, "service"),
                n(k.nodes, "node")
            )?;
        }
        if c.dns_answers > 0 {
            writeln!(o, "  dns names     {:>10}  (addresses named by DNS answers in the capture)", c.dns_answers)?;
        }
        if let (Some(f), Some(l)) = (&m.first_timestamp, &m.last_timestamp) {
            writeln!(o, "  time range    {f} .. {l}")?;
        }
        writeln!(o, "  snapshot      {}", res.path.display())?;
    }
    report_sidecars_problems(&m.kubernetes.sidecars);
    report_unmatched(&m.kubernetes.sidecars);
    for i in &m.inputs {
        if let Some(d) = &i.damage {
            eprintln!(
                "trawl: {}: damaged at byte {} after {} frames: {} (analysed up to the damage)",
                i.path, d.offset, d.frames_before, d.detail
            );
        }
        if let Some(n) = i.capture_dropped.filter(|n| *n > 0) {
            eprintln!(
                "trawl: warning: {}: the capturing tool dropped {n} packets (its interface statistics say): they are not in the file, and TCP gaps near them may be capture loss, not network loss",
                i.path
            );
        }
    }
    Ok(if res.damaged() { ExitCode::from(EXIT_DAMAGED) } else { ExitCode::SUCCESS })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Sidecar problems, one line each, on stderr: the analysis went on
/// without what they would have named.
pub(crate) fn report_sidecars_problems(reports: &[trawl_analyze::kube::FileReport]) {
    for r in reports {
        for p in &r.problems {
            eprintln!("trawl: warning: {}: {p} (skipped)", r.path);
        }
        if r.more_problems > 0 {
            eprintln!(
                "trawl: warning: {}: {} more problems (see the manifest's kubernetes.sidecars)",
                r.path, r.more_problems
            );
        }
    }
}

/// Sidecars that named no address of the capture.
fn report_unmatched(reports: &[trawl_analyze::kube::FileReport]) {
    for r in reports.iter().filter(|r| r.matched == 0 && r.format != "unreadable") {
        eprintln!(
            "trawl: warning: {}: names no address of this capture at its time (another cluster or another time?)",
            r.path
        );
    }
}

pub(crate) fn spawn_progress(p: Arc<Progress>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let bar = indicatif::ProgressBar::new(p.total_bytes.load(Ordering::Relaxed).max(1));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {decimal_bytes}/{decimal_total_bytes} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let start = Instant::now();
        while !p.done.load(Ordering::Relaxed) {
            let total = p.total_bytes.load(Ordering::Relaxed);
            if total > 0 {
                bar.set_length(total);
            }
            let read = p.read.bytes.load(Ordering::Relaxed);
            bar.set_position(read);
            let mbps = read as f64 / 1e6 / start.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!("{} packets, {mbps:.0} MB/s", p.frames.load(Ordering::Relaxed)));
            std::thread::sleep(Duration::from_millis(100));
        }
        bar.finish_and_clear();
    })
}

fn debug_streams(inputs: &[PathBuf], json: bool) -> Result<ExitCode> {
    let mut opts = Options { inputs: trawl_analyze::expand_inputs(inputs)?, ..Options::default() };
    opts.flow.hash_streams = true;
    let (outcome, rows) = trawl_analyze::analyze_to_memory(&opts)?;
    let mut flows: Vec<_> = rows
        .iter()
        .filter_map(|r| match &r.record {
            Record::Flow(f) if f.protocol == "tcp" => Some(f),
            _ => None,
        })
        .collect();
    flows.sort_by_key(|f| f.flow_id);
    let mut o = std::io::stdout().lock();
    if !json {
        writeln!(
            o,
            "{:>6} {:>10} {:<45} {:>12} {:<64} {:<45} {:>12} {:<64}",
            "stream", "flow_id", "node0", "node0_bytes", "node0_sha256", "node1", "node1_bytes", "node1_sha256"
        )?;
    }
    for (n, f) in flows.iter().enumerate() {
        let Some(d) = &f.digest else { continue };
        let client = endpoint(&f.src_ip, f.src_port);
        let server = endpoint(&f.dst_ip, f.dst_port);
        // node0 is the endpoint that sent the first packet, as in tshark.
        let (n0, n1, d0, d1) = if d.first_from_client {
            (client, server, &d.dirs[0], &d.dirs[1])
        } else {
            (server, client, &d.dirs[1], &d.dirs[0])
        };
        if json {
            let v = serde_json::json!({"stream": n, "flow_id": f.flow_id, "node0": n0, "node1": n1, "node0_bytes": d0.0, "node0_sha256": d0.1, "node1_bytes": d1.0, "node1_sha256": d1.1, "gap_bytes": f.dirs[0].gap_bytes + f.dirs[1].gap_bytes});
            writeln!(o, "{v}")?;
        } else {
            writeln!(
                o,
                "{n:>6} {:>10} {n0:<45} {:>12} {:<64} {n1:<45} {:>12} {:<64}",
                f.flow_id, d0.0, d0.1, d1.0, d1.1
            )?;
        }
    }
    Ok(if outcome.damaged() { ExitCode::from(EXIT_DAMAGED) } else { ExitCode::SUCCESS })
}

fn endpoint(ip: &std::net::IpAddr, port: u16) -> String {
    match ip {
        std::net::IpAddr::V4(v) => format!("{v}:{port}"),
        std::net::IpAddr::V6(v) => format!("[{v}]:{port}"),
    }
}

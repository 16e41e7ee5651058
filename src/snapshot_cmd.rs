//! `trawl archive`, `trawl snapshot` and `trawl export-pcap`.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use trawl_query::{Catalog, Table};
use trawl_snapshot::archive::Archive;
use trawl_snapshot::create::CutSpec;
use trawl_snapshot::export::ExportSpec;
use trawl_snapshot::window::{Window, show};
use trawl_snapshot::{Error, workspace};

use crate::query_cmd::TableArg;

#[derive(Subcommand)]
pub enum ArchiveCommand {
    /// Time range of the raw capture per node and overall (first and last
    /// packet of each file, cached in DIR/.trawl-index.json).
    Boundaries {
        /// Archive folder: one sub-folder per node, or a folder of rotated captures.
        dir: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub struct WorkspaceArg {
    /// Folder of named snapshots [default: $TRAWL_WORKSPACE, else ~/.local/share/trawl/snapshots].
    #[arg(long, global = true, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum SnapshotCommand {
    /// Cut a time window (and some nodes or workloads) out of an archive.
    #[command(
        after_help = "Examples:\n  trawl snapshot create /var/lib/trawl/archive --last 15m --name incident-1 --index\n  trawl snapshot create archive/ --start 2026-11-22T14:00:00Z --end 2026-11-22T14:05:00Z --node node-a -o cut.snap\n  trawl snapshot create archive/ --start 1763820000000 --end 1763820300000 --namespace shop --pod-regex '^checkout-' -o shop.snap\n\nTimes: RFC 3339 or Unix milliseconds; the window is [start, end). --last counts back from the archive's newest packet."
    )]
    Create(CreateArgs),
    /// Analyse a snapshot's raw packets into its tables (delayed indexing).
    Index {
        /// Snapshot folder or name.
        snapshot: PathBuf,
        /// Index again if already indexed.
        #[arg(long)]
        force: bool,
        /// Worker threads [default: number of CPUs].
        #[arg(short = 'j', long)]
        threads: Option<usize>,
        /// No progress bar.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Pack a snapshot into one checksummed .tar.zst file (a CI artifact).
    Pack {
        /// Snapshot folder or name.
        snapshot: PathBuf,
        /// The file to write, e.g. snap.tar.zst.
        #[arg(short, long)]
        output: PathBuf,
        /// zstd level (1-19).
        #[arg(long, default_value_t = 3)]
        level: i32,
    },
    /// Unpack a .tar.zst made by `pack`, verifying every file's sha256.
    Unpack {
        /// The packed snapshot.
        file: PathBuf,
        /// Folder to create.
        #[arg(short, long, conflicts_with = "name", required_unless_present = "name")]
        output: Option<PathBuf>,
        /// Name in the workspace.
        #[arg(long)]
        name: Option<String>,
    },
    /// Show a snapshot: state, window, nodes, tables (JSON).
    Show {
        /// Snapshot folder or name.
        snapshot: PathBuf,
    },
    /// List the workspace's snapshots.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a snapshot of the workspace.
    Delete {
        /// Snapshot name.
        name: String,
    },
}

#[derive(Args)]
pub struct CreateArgs {
    /// Archive folder.
    pub archive: PathBuf,
    /// Window start: RFC 3339 or Unix ms [default: the first packet].
    #[arg(long, allow_hyphen_values = true)]
    pub start: Option<String>,
    /// Window end (exclusive): RFC 3339 or Unix ms [default: after the last packet].
    #[arg(long, allow_hyphen_values = true)]
    pub end: Option<String>,
    /// The last DURATION of the archive (15m, 1h, 90s), counted back from its newest packet.
    #[arg(long, value_name = "DURATION")]
    pub last: Option<String>,
    /// Only these nodes (repeatable) [default: all].
    #[arg(long = "node", value_name = "NODE")]
    pub nodes: Vec<String>,
    /// Only packets with a peer in this namespace (repeatable; needs sidecars).
    #[arg(long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,
    /// Only packets with a peer whose pod name matches (needs sidecars).
    #[arg(long, value_name = "RE")]
    pub pod_regex: Option<String>,
    /// Snapshot folder to create.
    #[arg(short, long, conflicts_with = "name", required_unless_present = "name")]
    pub output: Option<PathBuf>,
    /// Name in the workspace.
    #[arg(long)]
    pub name: Option<String>,
    /// Index it at once.
    #[arg(long)]
    pub index: bool,
    /// Worker threads for --index.
    #[arg(short = 'j', long)]
    pub threads: Option<usize>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ExportArgs {
    /// Snapshot folder or workspace name (indexed; a cut not indexed yet exports by window, node and BPF).
    pub snapshot: PathBuf,
    /// KFL2 filter: export the connections of the matching calls (or flows with --table flows).
    #[arg(long)]
    pub kfl: Option<String>,
    /// Table the KFL filter runs on.
    #[arg(long, value_enum, default_value_t = TableArg::Calls)]
    pub table: TableArg,
    /// tcpdump filter applied to the packets (libpcap syntax).
    #[arg(long)]
    pub bpf: Option<String>,
    /// Only packets at or after this time (RFC 3339 or Unix ms).
    #[arg(long, allow_hyphen_values = true)]
    pub start: Option<String>,
    /// Only packets before this time.
    #[arg(long, allow_hyphen_values = true)]
    pub end: Option<String>,
    /// Only packets captured on these nodes (repeatable).
    #[arg(long = "node", value_name = "NODE")]
    pub nodes: Vec<String>,
    /// Comment every packet with its flow and its peers' pod or service names.
    #[arg(long)]
    pub annotate: bool,
    /// The pcapng file to write.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Threads for the KFL query.
    #[arg(short = 'j', long, default_value_t = 0)]
    pub threads: usize,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// For a dataset: the archive folder (one folder per node) holding the
    /// captures that were not uploaded with `trawl index --upload-captures`.
    #[arg(long, value_name = "DIR")]
    pub archive: Option<PathBuf>,
}

pub fn archive(cmd: ArchiveCommand) -> Result<ExitCode> {
    match cmd {
        ArchiveCommand::Boundaries { dir, json } => {
            let a = Archive::open(&dir)?;
            let b = a.boundaries();
            let mut o = std::io::stdout().lock();
            if json {
                writeln!(o, "{}", serde_json::to_string_pretty(&b)?)?;
            } else {
                writeln!(
                    o,
                    "{:<20} {:<31} {:<31} {:>6} {:>12} {:>9} {:>9}",
                    "node", "oldest", "newest", "files", "bytes", "sidecars", "dropped"
                )?;
                for n in &b.nodes {
                    let dash = || "-".to_string();
                    writeln!(
                        o,
                        "{:<20} {:<31} {:<31} {:>6} {:>12} {:>9} {:>9}",
                        n.name,
                        n.oldest.clone().unwrap_or_else(dash),
                        n.newest.clone().unwrap_or_else(dash),
                        n.files,
                        n.bytes,
                        n.sidecars,
                        n.dropped.map_or_else(dash, |d| d.to_string())
                    )?;
                }
                writeln!(
                    o,
                    "{:<20} {:<31} {:<31}",
                    "(all)",
                    b.oldest.clone().unwrap_or_default(),
                    b.newest.clone().unwrap_or_default()
                )?;
            }
            for n in &b.nodes {
                for f in &n.damaged_files {
                    eprintln!(
                        "trawl: {}: {f} is damaged or still being written; its boundaries are up to the damage",
                        n.name
                    );
                }
                for why in &n.unreadable_files {
                    eprintln!("trawl: {}: skipped: {why}", n.name);
                }
                if let Some(d) = n.dropped.filter(|&d| d > 0) {
                    eprintln!(
                        "trawl: {}: the capture dropped {d} packets, in {}",
                        n.name,
                        n.files_with_drops.join(", ")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn snapshot(cmd: SnapshotCommand, ws: Option<&Path>) -> Result<ExitCode> {
    let ws = workspace::workspace_dir(ws);
    match cmd {
        SnapshotCommand::Create(a) => create(a, &ws),
        SnapshotCommand::Index { snapshot, force, threads, quiet } => {
            let snap = workspace::resolve(&snapshot, &ws);
            check_threads(threads)?;
            let tmp = trawl_snapshot::create::index_tmp_path(&snap);
            let _ = ctrlc::set_handler(move || {
                let _ = std::fs::remove_dir_all(&tmp);
                eprintln!("trawl: interrupted; the snapshot is left as it was (not indexed)");
                std::process::exit(130);
            });
            let m = index(&snap, threads, force, quiet)?;
            if !quiet {
                println!(
                    "indexed {}: {} flows, {} api_calls, {} packets",
                    snap.display(),
                    m.counters.flows,
                    m.counters.api_calls,
                    m.counters.frames
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        SnapshotCommand::Pack { snapshot, output, level } => {
            let snap = workspace::resolve(&snapshot, &ws);
            if !(1..=19).contains(&level) {
                return Err(Error::Usage(format!("--level: expected 1 to 19, got {level}")).into());
            }
            let n = trawl_snapshot::pack::pack(&snap, &output, level)?;
            let size = std::fs::metadata(&output).map(|m| m.len()).unwrap_or(0);
            println!(
                "packed {} files of {} into {} ({:.1} MB)",
                n,
                snap.display(),
                output.display(),
                size as f64 / 1e6
            );
            Ok(ExitCode::SUCCESS)
        }
        SnapshotCommand::Unpack { file, output, name } => {
            let out = match (output, name) {
                (Some(o), _) => o,
                (None, Some(n)) => {
                    std::fs::create_dir_all(&ws).with_context(|| format!("creating the workspace {}", ws.display()))?;
                    workspace::path_of(&ws, &n)?
                }
                (None, None) => return Err(Error::Usage("give -o DIR or --name NAME".into()).into()),
            };
            let n = trawl_snapshot::pack::unpack(&file, &out)?;
            println!("unpacked {n} files into {} (checksums verified)", out.display());
            Ok(ExitCode::SUCCESS)
        }
        SnapshotCommand::Show { snapshot } => {
            let snap = workspace::resolve(&snapshot, &ws);
            println!("{}", serde_json::to_string_pretty(&workspace::show(&snap)?)?);
            Ok(ExitCode::SUCCESS)
        }
        SnapshotCommand::List { json } => {
            let list = workspace::list(&ws)?;
            let mut o = std::io::stdout().lock();
            if json {
                writeln!(o, "{}", serde_json::to_string_pretty(&list)?)?;
            } else {
                writeln!(o, "{:<24} {:<9} {:<31} {:<31} {:>10}  nodes", "name", "state", "start", "end", "MB")?;
                for e in &list {
                    writeln!(
                        o,
                        "{:<24} {:<9} {:<31} {:<31} {:>10.1}  {}",
                        e.name,
                        e.state,
                        e.start.clone().unwrap_or_default(),
                        e.end.clone().unwrap_or_default(),
                        e.bytes as f64 / 1e6,
                        e.nodes.join(",")
                    )?;
                }
                if list.is_empty() {
                    eprintln!("no snapshots in {}", ws.display());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        SnapshotCommand::Delete { name } => {
            let p = workspace::delete(&ws, &name)?;
            println!("deleted {}", p.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn check_threads(t: Option<usize>) -> Result<()> {
    if t == Some(0) {
        return Err(Error::Usage("--threads: expected at least 1".into()).into());
    }
    Ok(())
}

fn create(a: CreateArgs, ws: &Path) -> Result<ExitCode> {
    check_threads(a.threads)?;
    let out = match (&a.output, &a.name) {
        (Some(o), _) => o.clone(),
        (None, Some(n)) => {
            let p = workspace::path_of(ws, n)?;
            std::fs::create_dir_all(ws).with_context(|| format!("creating the workspace {}", ws.display()))?;
            p
        }
        (None, None) => return Err(Error::Usage("give -o DIR or --name NAME".into()).into()),
    };
    let archive = Archive::open(&a.archive)?;
    let bounds = archive.first_ns().zip(archive.last_ns());
    let window = Window::from_args(a.start.as_deref(), a.end.as_deref(), a.last.as_deref(), bounds)?;
    let spec =
        CutSpec { window, nodes: a.nodes.clone(), namespaces: a.namespaces.clone(), pod_regex: a.pod_regex.clone() };
    // One Ctrl-C handler per process: it removes the cut being written and,
    // with --index, the index being written (the cut then stays, not indexed).
    let tmp = trawl_analyze::output::Snapshot::tmp_path(&out);
    let index_tmp = trawl_snapshot::create::index_tmp_path(&out);
    let _ = ctrlc::set_handler(move || {
        let created = !tmp.exists();
        let _ = std::fs::remove_dir_all(&tmp);
        let _ = std::fs::remove_dir_all(&index_tmp);
        eprintln!(
            "trawl: interrupted; {}",
            if created { "the snapshot was created but not indexed" } else { "no snapshot was created" }
        );
        std::process::exit(130);
    });
    let started = Instant::now();
    let progress = Arc::new(trawl_analyze::Progress::default());
    let bar = (!a.json && std::io::stderr().is_terminal()).then(|| crate::spawn_progress(progress.clone()));
    let made = trawl_snapshot::create::create(&archive, &spec, &out, &progress);
    progress.done.store(true, Ordering::Relaxed);
    if let Some(h) = bar {
        let _ = h.join();
    }
    let meta = made?;
    let elapsed = started.elapsed().as_secs_f64();
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"snapshot": out, "elapsed_s": elapsed, "meta": meta}))?
        );
    } else {
        println!("snapshot {} of {} .. {} in {:.2} s", out.display(), meta.window.start, meta.window.end, elapsed);
        for n in &meta.nodes {
            println!(
                "  {:<20} {:>10} packets {:>12} bytes  from {} file(s), {} sidecar(s)",
                n.name,
                n.packets,
                n.bytes,
                n.source_files.len(),
                n.sidecars.len()
            );
        }
    }
    for n in &meta.nodes {
        for f in &n.damaged_files {
            eprintln!("trawl: {}: {f} is damaged; cut up to the damage", n.name);
        }
        if let Some(d) = n.capture_dropped.filter(|d| *d > 0) {
            eprintln!(
                "trawl: warning: {}: the capture dropped {d} packets in the files this cut read (their statistics say); the snapshot's analysis reports them",
                n.name
            );
        }
    }
    if meta.nodes.iter().all(|n| n.packets == 0) {
        let b = archive.boundaries();
        eprintln!(
            "trawl: warning: the window holds no packets; the archive spans {} .. {} (see `trawl archive boundaries`)",
            b.oldest.unwrap_or_default(),
            b.newest.unwrap_or_default()
        );
    }
    if a.index {
        let m = index(&out, a.threads, false, a.json)?;
        if !a.json {
            println!("indexed: {} flows, {} api_calls", m.counters.flows, m.counters.api_calls);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Indexes with a progress bar (the caller has set the Ctrl-C handler).
fn index(snap: &Path, threads: Option<usize>, force: bool, quiet: bool) -> Result<trawl_analyze::Manifest> {
    let progress = Arc::new(trawl_analyze::Progress::default());
    let bar = (!quiet && std::io::stderr().is_terminal()).then(|| crate::spawn_progress(progress.clone()));
    let r = trawl_snapshot::create::index(snap, threads, force, &progress);
    progress.done.store(true, Ordering::Relaxed);
    if let Some(h) = bar {
        let _ = h.join();
    }
    r.with_context(|| format!("indexing {}", snap.display()))
}

/// The flow ids of the rows a KFL filter matches.
/// Export from a dataset: the packet index is queried (files pruned by
/// the chosen flows' time range), the packets read from the captures.
fn export_dataset(a: &ExportArgs, window: Option<Window>) -> Result<trawl_snapshot::export::ExportSummary> {
    if a.annotate {
        return Err(Error::Usage("--annotate: not available for a dataset yet (export from a snapshot)".into()).into());
    }
    let location = a.snapshot.to_string_lossy().to_string();
    let table = Table::from(a.table);
    let (packets, notes) = trawl_query::block_on(a.threads, async {
        let cat = Catalog::open_dataset(&location, a.threads, &trawl_query::Engine::Local).await?;
        let (ids, notes) = match &a.kfl {
            Some(k) => {
                let (ids, notes) = cat.kfl_flow_ids(table, k).await?;
                (Some(ids), notes)
            }
            None => (None, Vec::new()),
        };
        let rows = cat.packet_rows(ids.as_ref(), window.map(|w| (w.start_ns, w.end_ns)), &a.nodes).await?;
        Ok::<_, trawl_query::QueryError>((rows, notes))
    })??;
    for n in notes {
        eprintln!("note: {n}");
    }
    let loc = trawl_dataset::Location::parse(&location, false)?;
    Ok(trawl_dataset::export::export(&loc, a.archive.as_deref(), &packets, a.bpf.as_deref(), &a.output)?)
}

fn kfl_flow_ids(snap: &Path, table: Table, filter: &str, threads: usize) -> Result<HashSet<u64>> {
    let (ids, notes) = trawl_query::block_on(threads, async {
        Catalog::open(snap, threads).await?.kfl_flow_ids(table, filter).await
    })??;
    for n in notes {
        eprintln!("note: {n}");
    }
    Ok(ids)
}

pub fn export(a: ExportArgs) -> Result<ExitCode> {
    let ws = workspace::workspace_dir(None);
    let snap = workspace::resolve(&a.snapshot, &ws);
    let started = Instant::now();
    let window = if a.start.is_some() || a.end.is_some() {
        Some(Window::from_args(a.start.as_deref(), a.end.as_deref(), None, None)?)
    } else {
        None
    };
    let sum = if trawl_dataset::read::is_dataset(&a.snapshot) {
        export_dataset(&a, window)?
    } else {
        let flow_ids = match &a.kfl {
            Some(k) => Some(kfl_flow_ids(&snap, Table::from(a.table), k, a.threads)?),
            None => None,
        };
        let spec = ExportSpec { flow_ids, window, nodes: a.nodes.clone(), bpf: a.bpf.clone(), annotate: a.annotate };
        trawl_snapshot::export::export(&snap, &spec, &a.output)?
    };
    let elapsed = started.elapsed().as_secs_f64();
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"output": a.output, "elapsed_s": elapsed, "summary": sum})
            )?
        );
    } else {
        let w = window.map(|w| format!(" in {} .. {}", show(w.start_ns), show(w.end_ns))).unwrap_or_default();
        println!(
            "exported {} packets ({} bytes, {} flows{w}) to {} in {:.3} s",
            sum.packets,
            sum.bytes,
            sum.flows,
            a.output.display(),
            elapsed
        );
        if sum.bpf_dropped > 0 {
            println!("  --bpf dropped {} of the {} packets selected", sum.bpf_dropped, sum.bpf_dropped + sum.packets);
        }
    }
    Ok(ExitCode::SUCCESS)
}

//! `trawl index`: a node's archive into a dataset (docs/dataset.md).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use trawl_analyze::Progress;
use trawl_dataset::{IndexOptions, Location};

use crate::analysis_args::AnalysisArgs;

#[derive(Args, Debug)]
pub struct IndexArgs {
    /// A node's archive folder: its complete capture files (files under
    /// a temporary dot-name are skipped until renamed).
    archive: PathBuf,
    /// The dataset: a local directory or s3://bucket/prefix (credentials
    /// and endpoint from the AWS_* environment).
    #[arg(long, value_name = "DATASET")]
    to: String,
    /// Keep watching the archive, indexing each file once it is complete,
    /// until SIGINT/SIGTERM. Connections still open stay open for the
    /// next run; without --follow the last file closes them all.
    #[arg(long)]
    follow: bool,
    /// The node's name [default: the archive folder's name].
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
    /// Seconds between looks at the archive for new files (--follow).
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    poll: f64,
    /// Copy each indexed capture into the dataset (captures/node=NODE/),
    /// so that PCAP export works from the dataset alone.
    #[arg(long)]
    upload_captures: bool,
    /// After a restart, read back at most this much capture time to
    /// rebuild the connections that were open (e.g. 30m, 1h).
    #[arg(long, default_value = "1h", value_name = "DURATION")]
    replay_window: String,
    /// Drop the node's hours older than this (counted back from its newest
    /// packet: capture time), with their uploaded captures, and vacuum
    /// (e.g. 7d, 24h). Checked once per hour of capture.
    #[arg(long, value_name = "DURATION")]
    retain: Option<String>,
    /// No per-file lines, only the summary.
    #[arg(short, long)]
    quiet: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    analysis: AnalysisArgs,
}

/// `--retain`: days (`7d`) or a duration (`36h`, `90m`), at least an hour.
fn retain_ns(arg: Option<&str>) -> Result<Option<i64>> {
    const HOUR_NS: i64 = 3_600_000_000_000;
    let Some(r) = arg else { return Ok(None) };
    let ns = match r.strip_suffix('d').and_then(|d| d.parse::<i64>().ok()) {
        Some(days) => days.checked_mul(24 * HOUR_NS),
        None => trawl_schemas::time::parse_duration(r),
    };
    Ok(Some(ns.filter(|n| *n >= HOUR_NS).ok_or_else(|| {
        trawl_analyze::Error::Config(format!("--retain {r}: expected at least an hour, such as 7d, 36h or 90m"))
    })?))
}

pub fn run(a: IndexArgs) -> Result<ExitCode> {
    let mut analysis = a.analysis.options(Vec::new())?;
    if !a.analysis.no_k8s_discovery {
        for f in trawl_analyze::kube::sidecars_near(&[a.archive.join("capture.pcap")]) {
            if !analysis.k8s.contains(&f) {
                analysis.k8s.push(f);
            }
        }
    }
    let replay_window_ns =
        trawl_schemas::time::parse_duration(&a.replay_window).filter(|n| *n > 0).ok_or_else(|| {
            trawl_analyze::Error::Config(format!(
                "--replay-window {}: expected a duration such as 30m or 1h",
                a.replay_window
            ))
        })?;
    let poll = crate::analysis_args::secs_to_ns("poll", a.poll)?;
    let retain_ns = retain_ns(a.retain.as_deref())?;
    let loc = Location::parse(&a.to, true)?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let _ = ctrlc::set_handler(move || {
        // The file being read is finished and committed; then the run ends.
        flag.store(true, Ordering::Relaxed);
    });
    let opts = IndexOptions {
        archive: a.archive.clone(),
        node: a.node.clone(),
        follow: a.follow,
        poll: Duration::from_nanos(poll as u64),
        stop,
        upload_captures: a.upload_captures,
        replay_window_ns,
        retain_ns,
        analysis,
    };
    let started = Instant::now();
    let progress = Progress::default();
    let report = trawl_dataset::index(&loc, &opts, &progress)
        .with_context(|| format!("indexing {} into {}", a.archive.display(), loc))?;
    let elapsed = started.elapsed().as_secs_f64();
    let calls: u64 = report.files.iter().filter_map(|f| f.rows.get("api_calls")).sum();
    let flows: u64 = report.files.iter().filter_map(|f| f.rows.get("flows")).sum();
    let bytes: u64 = report.files.iter().map(|f| f.size).sum();
    if a.json {
        let files: Vec<_> = report.files.iter().map(|f| serde_json::to_value(f).unwrap_or_default()).collect();
        let v = serde_json::json!({
            "dataset": loc.to_string(),
            "node": report.node,
            "node_number": report.node_number,
            "files": files,
            "replayed": report.replayed,
            "dropped": report.dropped,
            "compacted": report.compacted,
            "api_calls": calls,
            "flows": flows,
            "elapsed_s": elapsed,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else if !a.quiet {
        let mut o = std::io::stdout().lock();
        for f in &report.files {
            if f.closing {
                writeln!(
                    o,
                    "  (the archive's end: {} calls and {} flows of connections still open, closed)",
                    f.rows.get("api_calls").copied().unwrap_or(0),
                    f.rows.get("flows").copied().unwrap_or(0)
                )?;
                continue;
            }
            let damage = f.damage.as_deref().map(|d| format!(" (damaged: {d})")).unwrap_or_default();
            writeln!(
                o,
                "  {}  seq {}  {} frames  {} calls  {} flows{damage}",
                f.name,
                f.seq,
                f.frames,
                f.rows.get("api_calls").copied().unwrap_or(0),
                f.rows.get("flows").copied().unwrap_or(0)
            )?;
        }
        writeln!(
            o,
            "indexed {} file{} of node {} ({:.1} MB; {} calls, {} flows) into {} in {:.2} s{}",
            report.files.len(),
            if report.files.len() == 1 { "" } else { "s" },
            report.node,
            bytes as f64 / 1e6,
            calls,
            flows,
            loc,
            elapsed,
            if report.replayed > 0 {
                format!(" (read {} file(s) again to rebuild open connections)", report.replayed)
            } else {
                String::new()
            }
        )?;
    }
    let d = &report.dropped;
    if !a.json && !a.quiet && d.files + d.captures > 0 {
        println!(
            "retention (--retain): dropped {} rows in {} files, {} uploaded captures and {} records; vacuumed {} files",
            d.rows, d.files, d.captures, d.records, d.vacuumed
        );
    }
    let damaged = report.files.iter().any(|f| f.damage.is_some());
    Ok(if damaged { ExitCode::from(crate::EXIT_DAMAGED) } else { ExitCode::SUCCESS })
}

/// `trawl capture --index-to`: an indexer following the capture's own
/// node folder in a thread of the capture process.
pub struct Indexing {
    loc: Location,
    opts: IndexOptions,
}

pub struct Running {
    ix: Indexing,
    handle: std::thread::JoinHandle<Result<trawl_dataset::IndexReport, trawl_dataset::Error>>,
}

impl Indexing {
    pub fn new(
        dataset: &str,
        node_dir: &std::path::Path,
        node: &str,
        upload_captures: bool,
        retain: Option<&str>,
    ) -> Result<Indexing> {
        let loc = Location::parse(dataset, true)?;
        std::fs::create_dir_all(node_dir).with_context(|| format!("creating {}", node_dir.display()))?;
        let retain_ns = retain_ns(retain)?;
        let analysis = trawl_analyze::Options {
            k8s: trawl_analyze::kube::sidecars_near(&[node_dir.join("capture.pcap")]),
            ..Default::default()
        };
        let opts = IndexOptions {
            archive: node_dir.to_path_buf(),
            node: Some(node.to_string()),
            follow: true,
            poll: Duration::from_millis(500),
            stop: Arc::new(AtomicBool::new(false)),
            upload_captures,
            replay_window_ns: 3_600_000_000_000,
            retain_ns,
            analysis,
        };
        Ok(Indexing { loc, opts })
    }

    pub fn spawn(self) -> Running {
        let (loc, opts) = (self.loc.clone(), self.opts.clone());
        let handle = std::thread::spawn(move || trawl_dataset::index(&loc, &opts, &Progress::default()));
        Running { ix: self, handle }
    }
}

impl Running {
    /// Stops following, then indexes what the capture left and closes the
    /// connections still open.
    pub fn finish(self) -> Result<trawl_dataset::IndexReport> {
        self.ix.opts.stop.store(true, Ordering::Relaxed);
        let first = self.handle.join().map_err(|_| anyhow::anyhow!("the indexer thread panicked"))??;
        let mut last = self.ix.opts.clone();
        last.follow = false;
        last.stop = Arc::new(AtomicBool::new(false));
        last.analysis.k8s = trawl_analyze::kube::sidecars_near(&[last.archive.join("capture.pcap")]);
        let mut report = trawl_dataset::index(&self.ix.loc, &last, &Progress::default())?;
        let mut files = first.files;
        files.append(&mut report.files);
        report.files = files;
        Ok(report)
    }
}

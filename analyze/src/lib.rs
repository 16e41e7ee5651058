//! trawl's analyzer: capture files in, a snapshot of Parquet tables out.
//!
//! The road a packet takes:
//! 1. [`input`] reads pcap/pcapng (optionally gzip) in chunks and frames
//!    records without copying them; several files merge in time order.
//! 2. [`decode`] slices link, IP and transport headers (etherparse) and
//!    rebuilds fragmented datagrams.
//! 3. [`pipeline`] shards packets by a symmetric flow hash over rayon
//!    workers; each owns a [`flow::FlowTable`].
//! 4. [`flow`] tracks connections, reassembles TCP ([`reassembly`]) and
//!    feeds the L7 parsers of `trawl-proto`.
//! 5. [`output`] writes rows through Arrow builders laid out by
//!    `trawl-schemas` into Parquet, inside a snapshot directory that is
//!    renamed into place when complete ([`analyze_to_snapshot`]).
//!
//! Time always comes from the capture. Output is identical at any
//! thread count. Malformed traffic becomes `parse_issues` rows; only
//! environment failures and inputs that are not captures are [`Error`]s.

pub mod community_id;
pub mod decode;
mod error;
pub mod flow;
pub mod input;
pub mod kube;
mod l7;
pub mod output;
pub mod packets;
pub mod pipeline;
pub mod reassembly;
pub mod records;
pub mod stats;
pub mod tcp_analysis;
pub mod time;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use error::Error;
pub use pipeline::{Feed, FileEnd, Options, Outcome, Progress, Resume, expand_inputs, is_capture_name};

/// The `manifest.json` of a snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub schema_version: u32,
    pub trawl_version: &'static str,
    pub inputs: Vec<input::InputInfo>,
    pub first_timestamp: Option<String>,
    pub last_timestamp: Option<String>,
    /// Table name to its file and row count.
    pub tables: BTreeMap<&'static str, TableInfo>,
    pub counters: stats::Stats,
    pub settings: Settings,
    /// The Kubernetes sidecars read and the DNS answers seen.
    pub kubernetes: kube::Summary,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableInfo {
    pub file: String,
    pub rows: u64,
}

/// The settings that shape the output (thread count is not one of them).
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub tcp_timeout_s: f64,
    pub udp_timeout_s: f64,
    pub max_body_bytes: usize,
    pub max_ooo_bytes: usize,
    pub max_flow_bytes: usize,
}

/// Result of [`analyze_to_snapshot`].
#[derive(Debug, Clone)]
pub struct SnapshotResult {
    pub path: PathBuf,
    pub manifest: Manifest,
}

impl SnapshotResult {
    pub fn damaged(&self) -> bool {
        self.manifest.inputs.iter().any(|i| i.damage.is_some())
    }
}

/// Analyses the inputs of `opts` into a snapshot directory at `out`.
pub fn analyze_to_snapshot(
    opts: &Options,
    out: &Path,
    force: bool,
    progress: &Progress,
) -> Result<SnapshotResult, Error> {
    let snap = output::Snapshot::begin(out, force)?;
    let result = analyze_into(opts, &snap.tmp, out, progress).and_then(|m| {
        copy_sidecars(&opts.k8s, &snap.tmp)?;
        Ok(m)
    });
    match result {
        Ok(manifest) => {
            let path = snap.commit()?;
            Ok(SnapshotResult { path, manifest })
        }
        Err(e) => {
            snap.abort();
            Err(e)
        }
    }
}

/// Copies the sidecars into the snapshot (`k8s/<folder>/`), so that it
/// carries its own Kubernetes metadata (`trawl workloads`, MCP).
fn copy_sidecars(files: &[PathBuf], dir: &Path) -> Result<(), Error> {
    let mut folders: Vec<(PathBuf, String)> = Vec::new();
    for f in files {
        let parent = f.parent().map(Path::to_path_buf).unwrap_or_default();
        let label = match folders.iter().find(|(p, _)| *p == parent) {
            Some((_, l)) => l.clone(),
            None => {
                let abs = std::path::absolute(&parent).unwrap_or(parent.clone());
                let base = abs
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| "sidecars".into());
                let mut label = base.clone();
                let mut n = 1;
                while folders.iter().any(|(_, l)| *l == label) {
                    n += 1;
                    label = format!("{base}-{n}");
                }
                folders.push((parent, label.clone()));
                label
            }
        };
        let to_dir = dir.join("k8s").join(&label);
        std::fs::create_dir_all(&to_dir).map_err(|e| Error::Output { path: to_dir.clone(), detail: e.to_string() })?;
        // Unreadable sidecars were reported (manifest, stderr): nothing to copy.
        if let Some(name) = f.file_name()
            && f.is_file()
        {
            let to = to_dir.join(name);
            std::fs::copy(f, &to).map_err(|e| Error::Output { path: to, detail: e.to_string() })?;
        }
    }
    Ok(())
}

/// Analyses the inputs of `opts` into the tables and `manifest.json` of
/// an existing folder `dir`. Input paths in the manifest are written
/// relative to `home` (where the snapshot will live) when inside it.
pub fn analyze_into(opts: &Options, dir: &Path, home: &Path, progress: &Progress) -> Result<Manifest, Error> {
    let mut sink = output::ParquetSink::create(dir)?;
    let outcome = pipeline::run(opts, &mut sink, progress)?;
    let tables = sink.finish()?;
    let manifest = manifest(opts, outcome, tables, home);
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Internal(e.to_string()))?;
    let p = dir.join(MANIFEST);
    std::fs::write(&p, json).map_err(|e| Error::Output { path: p.clone(), detail: e.to_string() })?;
    Ok(manifest)
}

/// The file that marks a complete, indexed snapshot.
pub const MANIFEST: &str = "manifest.json";

fn manifest(opts: &Options, mut outcome: Outcome, tables: Vec<(&'static str, u64)>, out: &Path) -> Manifest {
    // Paths that stay valid wherever the snapshot is used from: relative
    // to the snapshot for files inside it, absolute for the others.
    let base = std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf());
    for (i, info) in outcome.inputs.iter_mut().enumerate() {
        if let Some(p) = opts.inputs.get(i) {
            let abs = std::path::absolute(p).unwrap_or_else(|_| p.clone());
            info.path = abs.strip_prefix(&base).unwrap_or(&abs).display().to_string();
        }
        info.node = opts.input_nodes.get(i).cloned();
    }
    let first = outcome.inputs.iter().filter_map(|i| i.first_ts_ns).min();
    let last = outcome.inputs.iter().filter_map(|i| i.last_ts_ns).max();
    Manifest {
        schema_version: trawl_schemas::SCHEMA_VERSION,
        trawl_version: env!("CARGO_PKG_VERSION"),
        inputs: outcome.inputs,
        first_timestamp: first.map(time::rfc3339),
        last_timestamp: last.map(time::rfc3339),
        tables: tables
            .into_iter()
            .map(|(name, rows)| (name, TableInfo { file: format!("{name}.parquet"), rows }))
            .collect(),
        counters: outcome.stats,
        kubernetes: outcome.kube,
        settings: Settings {
            tcp_timeout_s: opts.flow.tcp_timeout_ns as f64 / 1e9,
            udp_timeout_s: opts.flow.udp_timeout_ns as f64 / 1e9,
            max_body_bytes: opts.flow.limits.max_body_bytes,
            max_ooo_bytes: opts.flow.max_ooo_bytes,
            max_flow_bytes: opts.flow.max_flow_bytes,
        },
    }
}

/// Analyses into memory: every row, in output order (for tests and
/// `trawl debug streams`).
pub fn analyze_to_memory(opts: &Options) -> Result<(Outcome, Vec<records::Keyed>), Error> {
    let mut sink = output::MemorySink::default();
    let outcome = pipeline::run(opts, &mut sink, &Progress::default())?;
    Ok((outcome, sink.rows))
}

//! `trawl index`: a node's archive into the dataset, file by file, going
//! on from where the last run of the node's indexer committed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use trawl_analyze::{Progress, Resume};

use crate::Error;
use crate::feed::ArchiveFeed;
use crate::layout::NODE_SHIFT;
use crate::location::Location;
use crate::records::{FileRecord, get_records, node_number};
use crate::sink::{DatasetSink, SinkSetup};
use crate::tables;

/// How to index.
#[derive(Debug, Clone)]
pub struct IndexOptions {
    /// The node's archive folder (its complete capture files).
    pub archive: PathBuf,
    /// The node's name; by default the folder's name.
    pub node: Option<String>,
    /// Keep watching the folder for new files until `stop` is set.
    pub follow: bool,
    pub poll: Duration,
    pub stop: Arc<AtomicBool>,
    /// Copy each capture into the dataset (`captures/node=NODE/`).
    pub upload_captures: bool,
    /// A restart reads back at most this much capture time to rebuild the
    /// connections that were open; older ones are seen mid-stream.
    pub replay_window_ns: i64,
    /// Drop the node's hours (and uploaded captures) older than this,
    /// counted back from its newest packet (`--retain`).
    pub retain_ns: Option<i64>,
    /// The analysis settings (inputs are ignored: the archive gives them).
    pub analysis: trawl_analyze::Options,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct IndexReport {
    pub node: String,
    pub node_number: u32,
    /// Files committed by this run.
    pub files: Vec<FileRecord>,
    /// Files read again to rebuild the connections open at the last
    /// commit of an earlier run.
    pub replayed: usize,
    pub stats: trawl_analyze::stats::Stats,
    /// What `--retain` dropped.
    pub dropped: crate::retention::Dropped,
    /// The node's finished hours rewritten as one file each.
    pub compacted: crate::compaction::Compacted,
}

/// The node name of an archive folder: its own name.
pub fn node_of(archive: &Path) -> Result<String, Error> {
    let abs = std::path::absolute(archive).unwrap_or_else(|_| archive.to_path_buf());
    abs.file_name().map(|n| n.to_string_lossy().to_string()).filter(|n| !n.is_empty()).ok_or_else(|| {
        Error::Config(format!("{}: cannot tell the node from the folder name; give --node", archive.display()))
    })
}

fn check_node(node: &str) -> Result<(), Error> {
    let ok = !node.is_empty()
        && node.len() <= 253
        && node.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !node.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "--node {node:?}: expected a node name (letters, digits, '-', '_', '.'; as Kubernetes names nodes)"
        )))
    }
}

/// Where a run starts that reads nothing again: after `rec`'s file.
fn resume_after(rec: &FileRecord) -> Resume {
    Resume {
        ordinal_base: rec.next_ordinal - 1,
        file_index: rec.seq + 1,
        last_sweep: rec.sweep_after,
        replay_through: None,
    }
}

/// Indexes `opts.archive` into the dataset at `loc`.
pub fn index(loc: &Location, opts: &IndexOptions, progress: &Progress) -> Result<IndexReport, Error> {
    if !opts.archive.is_dir() {
        return Err(Error::Config(format!(
            "{}: expected a node's archive folder of capture files",
            opts.archive.display()
        )));
    }
    let node = match &opts.node {
        Some(n) => n.clone(),
        None => node_of(&opts.archive)?,
    };
    check_node(&node)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("trawl-dataset-io")
        .enable_all()
        .build()
        .map_err(|e| Error::storage(loc, format!("starting the I/O runtime: {e}")))?;
    let (delta, number, last) = rt.block_on(async {
        let delta = tables::open(loc, true).await?;
        let number = node_number(loc, &node).await?;
        let mut committed = Vec::new();
        for (t, d) in &delta {
            committed.push(tables::committed_seq(loc, t, d, &node).await?);
        }
        let last = match tables::whole_through(loc, &delta, &committed, &node).await? {
            Some(rec) => {
                let k = rec.seq;
                let replay =
                    if rec.resume_seq <= k { get_records(loc, &node, rec.resume_seq..=k).await? } else { Vec::new() };
                Some((rec, replay))
            }
            None => None,
        };
        let delta: Vec<_> = delta.into_iter().zip(committed).map(|((t, d), c)| (t, d, c)).collect();
        Ok::<_, Error>((delta, number, last))
    })?;
    let base = u64::from(number) << NODE_SHIFT;
    let (resume, next_call_id, replay, last_name) = match &last {
        None => (Resume { ordinal_base: base, ..Resume::default() }, base + 1, Vec::new(), None),
        Some((rec, replay)) => {
            let resume = match replay.first() {
                Some(first) => Resume {
                    ordinal_base: first.first_ordinal - 1,
                    file_index: first.seq,
                    last_sweep: first.sweep_before,
                    replay_through: Some(rec.seq),
                },
                None => resume_after(rec),
            };
            (resume, rec.next_call_id, replay.clone(), Some(rec.name.clone()))
        }
    };
    // Files to read again must still be in the archive; without them the
    // connections they started are seen mid-stream.
    let mut replay_paths = Vec::new();
    let mut resume = resume;
    let mut window = std::collections::VecDeque::new();
    for r in &replay {
        let p = opts.archive.join(&r.name);
        if p.is_file() {
            replay_paths.push(p);
            window.push_back((r.seq, r.name.clone(), r.first_ordinal, r.last_ns));
        } else {
            replay_paths.clear();
            window.clear();
            if let Some(last) = replay.last() {
                resume = resume_after(last);
            }
            break;
        }
    }
    let replayed = replay_paths.len();
    let mut feed = ArchiveFeed::new(&opts.archive, replay_paths, last_name, opts.follow, opts.poll, opts.stop.clone())?
        .with_extra_sidecars(opts.analysis.k8s.clone());
    let mut analysis = opts.analysis.clone();
    analysis.inputs.clear();
    analysis.input_nodes.clear();
    analysis.node = Some(node.clone());
    let mut sink = DatasetSink::new(SinkSetup {
        loc: loc.clone(),
        node: node.clone(),
        rt: rt.handle().clone(),
        tables: delta,
        next_call_id,
        window,
        replay_window_ns: opts.replay_window_ns,
        upload_captures: opts.upload_captures,
        retain_ns: opts.retain_ns,
    })?;
    let outcome = trawl_analyze::pipeline::run_feed(&analysis, &mut feed, &resume, &mut sink, progress)?;
    Ok(IndexReport {
        node,
        node_number: number,
        files: sink.done,
        replayed,
        stats: outcome.stats,
        dropped: sink.dropped,
        compacted: sink.compacted,
    })
}

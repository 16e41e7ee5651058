//! `trawl snapshot create` and `trawl snapshot index`.
//!
//! Create cuts the packets of a time window (and of the selected nodes
//! and workloads) out of an archive into `raw/<node>.pcapng`, with the
//! Kubernetes sidecars valid in the window under `k8s/<node>/`, and
//! describes the cut in `snapshot.json`. Everything is written into a
//! temporary sibling folder renamed into place at the end.
//!
//! Index analyses `raw/` into the snapshot's tables ("delayed indexing");
//! `manifest.json` is moved in last, so an interrupted index leaves a
//! snapshot that reads as not indexed, never as complete.

use std::fs::File;
use std::io::BufWriter;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use regex::Regex;
use serde::{Deserialize, Serialize};
use trawl_analyze::decode::{Decoded, decode};
use trawl_analyze::{Options, Progress};

use crate::archive::{Archive, Node};
use crate::merge::Merge;
use crate::pcapng::PcapngOut;
use crate::window::{Window, show};
use crate::{Error, SNAPSHOT_FILE};
use trawl_analyze::kube::{Cluster, Entity};

/// Which packets of an archive a snapshot keeps.
#[derive(Debug, Clone)]
pub struct CutSpec {
    pub window: Window,
    /// Node names (all when empty).
    pub nodes: Vec<String>,
    /// Keep packets with at least one peer in one of these namespaces (none: any).
    pub namespaces: Vec<String>,
    /// Keep packets with at least one peer whose pod name matches.
    pub pod_regex: Option<String>,
}

/// `snapshot.json`: what a snapshot was cut from and what it holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub format: String,
    pub version: u32,
    /// The archive it was cut from.
    pub source: String,
    pub window: WindowText,
    pub filter: FilterText,
    pub nodes: Vec<NodeCut>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WindowText {
    pub start: String,
    pub end: String,
    pub start_ns: i64,
    pub end_ns: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FilterText {
    pub nodes: Vec<String>,
    #[serde(default)]
    pub namespaces: Vec<String>,
    pub pod_regex: Option<String>,
}

/// One node's part of a snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeCut {
    pub name: String,
    /// Its packets, relative to the snapshot.
    pub file: String,
    pub packets: u64,
    pub bytes: u64,
    pub first: Option<String>,
    pub last: Option<String>,
    /// Archive files read (relative to the archive).
    pub source_files: Vec<String>,
    /// Archive files that ended in damage (read up to it).
    pub damaged_files: Vec<String>,
    /// Archive files of the node that are not readable captures, each
    /// with why (`file: reason`); none of their packets are in the cut.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable_files: Vec<String>,
    /// Sidecars copied, relative to the snapshot.
    pub sidecars: Vec<String>,
    /// Packets the capture dropped, by the source files' statistics
    /// blocks (all of a file's drops when the window takes part of it);
    /// absent when no source file says (pcap, tcpdump).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_dropped: Option<u64>,
}

pub const FORMAT: &str = "trawl-snapshot";
pub const VERSION: u32 = 1;

/// Reads `snapshot.json` of a snapshot folder.
pub fn read_meta(snap: &Path) -> Result<SnapshotMeta, Error> {
    let p = snap.join(SNAPSHOT_FILE);
    let bytes = std::fs::read(&p).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::invalid(snap, "not a snapshot cut from an archive (no snapshot.json)")
        } else {
            Error::io(&p, e)
        }
    })?;
    let m: SnapshotMeta = serde_json::from_slice(&bytes).map_err(|e| Error::invalid(&p, format!("not valid: {e}")))?;
    if m.format != FORMAT || m.version != VERSION {
        return Err(Error::invalid(
            &p,
            format!("format {} version {}, but this trawl reads {FORMAT} version {VERSION}", m.format, m.version),
        ));
    }
    Ok(m)
}

/// Which addresses belong to the workloads of `--namespace` and
/// `--pod-regex` at a time, from every node's sidecars (a peer may run on
/// any node).
struct Workloads {
    cluster: Cluster,
    namespaces: Vec<String>,
    pod_regex: Option<Regex>,
}

impl Workloads {
    fn build(archive: &Archive, namespaces: &[String], pod_regex: Option<&Regex>) -> Result<Workloads, Error> {
        let files: Vec<PathBuf> =
            archive.nodes.iter().flat_map(|n| n.sidecars.iter().map(|s| s.path.clone())).collect();
        let cluster = Cluster::load(&files);
        if cluster.is_empty() {
            let why = cluster
                .reports()
                .iter()
                .flat_map(|r| r.problems.iter().map(move |p| format!("{}: {p}", r.path)))
                .next();
            return Err(Error::Usage(match why {
                Some(w) => format!(
                    "--namespace/--pod-regex need Kubernetes sidecars, and those of {} name nothing: {w}",
                    archive.root.display()
                ),
                None => format!(
                    "--namespace/--pod-regex need Kubernetes sidecars (k8s-*.json) in the archive's node folders, and {} has none",
                    archive.root.display()
                ),
            }));
        }
        Ok(Workloads { cluster, namespaces: namespaces.to_vec(), pod_regex: pod_regex.cloned() })
    }

    /// Held at `ts` by a pod in the namespaces, named to match; with a
    /// namespace alone, by a service of it too (traffic captured before
    /// kube-proxy's rewrite is addressed to the service).
    fn matches_ip(&self, ts: i64, ip: IpAddr) -> bool {
        let ns_ok = |ns: &str| self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == ns);
        self.cluster.holders(ip, ts).any(|e| match e {
            Entity::Pod(p) => ns_ok(&p.namespace) && self.pod_regex.as_ref().is_none_or(|r| r.is_match(&p.name)),
            Entity::Service(s) => !self.namespaces.is_empty() && self.pod_regex.is_none() && ns_ok(&s.namespace),
            _ => false,
        })
    }

    fn matches(&self, ts: i64, a: IpAddr, b: IpAddr) -> bool {
        self.matches_ip(ts, a) || self.matches_ip(ts, b)
    }
}

/// Sidecars of a node valid somewhere in the window: the last one at or
/// before its start, and every one inside it.
fn sidecars_in_window(node: &Node, w: &Window) -> Vec<PathBuf> {
    let before = node.sidecars.iter().rposition(|s| s.time_ns <= w.start_ns);
    node.sidecars
        .iter()
        .enumerate()
        .filter(|(i, s)| Some(*i) == before || w.contains(s.time_ns))
        .map(|(_, s)| s.path.clone())
        .collect()
}

/// Cuts a snapshot out of an archive into `out` (which must not exist).
/// `progress` counts the archive bytes read against the bytes of the
/// files the window meets, and the packets kept.
pub fn create(archive: &Archive, spec: &CutSpec, out: &Path, progress: &Progress) -> Result<SnapshotMeta, Error> {
    if out.exists() {
        return Err(Error::Usage(format!(
            "{}: already exists; a snapshot is immutable once made (delete it first, or choose another name)",
            out.display()
        )));
    }
    let nodes = archive.select_nodes(&spec.nodes)?;
    // A cut of nothing but unreadable files would "succeed" with no
    // packets and blame the window: say which files and why instead.
    let files: Vec<&crate::archive::CaptureFile> = nodes.iter().flat_map(|n| n.files.iter()).collect();
    if !files.is_empty() && files.iter().all(|f| f.unreadable.is_some()) {
        let why: Vec<String> =
            files.iter().map(|f| format!("{}: {}", f.rel, f.unreadable.as_deref().unwrap_or_default())).collect();
        return Err(Error::invalid(
            &archive.root,
            format!("no readable capture in the nodes selected; {}", why.join("; ")),
        ));
    }
    let pod_regex = spec
        .pod_regex
        .as_deref()
        .map(|r| Regex::new(r).map_err(|e| Error::Usage(format!("--pod-regex: not a valid regular expression: {e}"))))
        .transpose()?;
    let workloads = if !spec.namespaces.is_empty() || pod_regex.is_some() {
        Some(Workloads::build(archive, &spec.namespaces, pod_regex.as_ref())?)
    } else {
        None
    };
    let total: u64 = nodes.iter().flat_map(|n| n.files.iter()).filter(|f| meets(f, &spec.window)).map(|f| f.size).sum();
    progress.total_bytes.store(total, Ordering::Relaxed);
    let snap = trawl_analyze::output::Snapshot::begin(out, false)?;
    let result = (|| {
        let mut cuts = Vec::new();
        std::fs::create_dir_all(snap.tmp.join("raw")).map_err(|e| Error::io(&snap.tmp, e))?;
        for node in nodes {
            cuts.push(cut_node(archive, node, spec, workloads.as_ref(), &snap.tmp, progress)?);
        }
        let meta = SnapshotMeta {
            format: FORMAT.into(),
            version: VERSION,
            source: std::path::absolute(&archive.root).unwrap_or_else(|_| archive.root.clone()).display().to_string(),
            window: WindowText {
                start: show(spec.window.start_ns),
                end: show(spec.window.end_ns),
                start_ns: spec.window.start_ns,
                end_ns: spec.window.end_ns,
            },
            filter: FilterText {
                nodes: spec.nodes.clone(),
                namespaces: spec.namespaces.clone(),
                pod_regex: spec.pod_regex.clone(),
            },
            nodes: cuts,
        };
        let json = serde_json::to_vec_pretty(&meta)
            .map_err(|e| Error::Output { path: snap.tmp.clone(), detail: e.to_string() })?;
        snap.write_file(SNAPSHOT_FILE, &json)?;
        crate::seal(&snap.tmp)?;
        Ok(meta)
    })();
    match result {
        Ok(meta) => {
            snap.commit()?;
            Ok(meta)
        }
        Err(e) => {
            snap.abort();
            Err(e)
        }
    }
}

/// Whether a capture file has packets in the window.
fn meets(f: &crate::archive::CaptureFile, w: &Window) -> bool {
    f.first_ns.zip(f.last_ns).is_some_and(|(a, b)| w.overlaps(a, b))
}

fn cut_node(
    archive: &Archive,
    node: &Node,
    spec: &CutSpec,
    workloads: Option<&Workloads>,
    dir: &Path,
    progress: &Progress,
) -> Result<NodeCut, Error> {
    let w = &spec.window;
    let rel = format!("raw/{}.pcapng", node.name);
    let path = dir.join(&rel);
    let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
    let mut out = PcapngOut::new(BufWriter::with_capacity(1 << 20, file), &path)?;
    let mut paths = Vec::new();
    let mut source_files = Vec::new();
    for f in node.files.iter().filter(|f| meets(f, w)) {
        paths.push(archive.root.join(&f.rel));
        source_files.push(f.rel.clone());
    }
    let mut merge = Merge::open(&paths, progress.read.clone())?;
    let (mut packets, mut bytes, mut first, mut last) = (0u64, 0u64, None, None);
    merge.for_each(|_, f, data| {
        let ts = f.ts_ns;
        if !w.contains(ts) {
            return Ok(());
        }
        if let Some(wl) = workloads {
            let keep = match decode(f.link, data) {
                Decoded::Ip(p) => wl.matches(ts, p.src, p.dst),
                Decoded::Fragment(p) => {
                    let (a, b) = p.addrs();
                    wl.matches(ts, a, b)
                }
                _ => false,
            };
            if !keep {
                return Ok(());
            }
        }
        out.packet(&node.name, f.link, ts, f.orig_len, data, None)?;
        progress.frames.fetch_add(1, Ordering::Relaxed);
        packets += 1;
        bytes += f.len as u64;
        first.get_or_insert(ts);
        last = Some(ts);
        Ok(())
    })?;
    // The source files' drops (a file's count covers all of it, so a
    // window over part of a file carries all of its drops): the cut says
    // so in its own statistics block, for the analysis to report.
    let dropped = node
        .files
        .iter()
        .filter(|f| meets(f, w))
        .filter_map(|f| f.dropped)
        .fold(None, |a: Option<u64>, d| Some(a.unwrap_or(0) + d));
    if let (Some(d), Some(ts)) = (dropped.filter(|d| *d > 0), last) {
        out.dropped(&node.name, ts, d)?;
    }
    out.finish()?;
    let damaged_files =
        merge.finish().into_iter().zip(&source_files).filter(|(d, _)| *d).map(|(_, rel)| rel.clone()).collect();
    let mut sidecars = Vec::new();
    let cars = sidecars_in_window(node, w);
    if !cars.is_empty() {
        let kdir = dir.join("k8s").join(&node.name);
        std::fs::create_dir_all(&kdir).map_err(|e| Error::io(&kdir, e))?;
        for c in cars {
            let name = c.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            let to = kdir.join(&name);
            std::fs::copy(&c, &to).map_err(|e| Error::io(&c, e))?;
            sidecars.push(format!("k8s/{}/{name}", node.name));
        }
    }
    Ok(NodeCut {
        name: node.name.clone(),
        file: rel,
        packets,
        bytes,
        first: first.map(show),
        last: last.map(show),
        source_files,
        damaged_files,
        unreadable_files: node
            .files
            .iter()
            .filter_map(|f| f.unreadable.as_ref().map(|why| format!("{}: {why}", f.rel)))
            .collect(),
        sidecars,
        capture_dropped: dropped,
    })
}

/// Analyses a snapshot's raw packets into its tables.
pub fn index(
    snap: &Path,
    threads: Option<usize>,
    force: bool,
    progress: &Progress,
) -> Result<trawl_analyze::Manifest, Error> {
    let meta = read_meta(snap)?;
    let manifest_path = snap.join(trawl_analyze::MANIFEST);
    if manifest_path.exists() && !force {
        return Err(Error::Usage(format!("{}: already indexed (use --force to index it again)", snap.display())));
    }
    let mut opts = Options::default();
    if let Some(t) = threads {
        opts.threads = t;
    }
    for n in &meta.nodes {
        opts.inputs.push(snap.join(&n.file));
        opts.input_nodes.push(n.name.clone());
    }
    if opts.inputs.is_empty() {
        return Err(Error::invalid(snap, "the snapshot holds no node captures"));
    }
    opts.k8s = crate::resolve::snapshot_sidecars(snap)?.1.into_iter().map(|(_, f)| f.path).collect();
    // What an index killed before it finished left goes first.
    let tmp = trawl_analyze::output::Snapshot::claim_tmp_path(&snap.join(INDEX_TMP_NAME));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let result = trawl_analyze::analyze_into(&opts, &tmp, snap, progress).map_err(Error::from).and_then(|m| {
        // The old manifest goes first and the new one comes last: in
        // between the snapshot reads as not indexed.
        if manifest_path.exists() {
            std::fs::remove_file(&manifest_path).map_err(|e| Error::io(&manifest_path, e))?;
        }
        for t in trawl_schemas::TABLES {
            let from = tmp.join(t.file_name());
            let to = snap.join(t.file_name());
            std::fs::rename(&from, &to).map_err(|e| Error::io(&to, e))?;
        }
        std::fs::rename(tmp.join(trawl_analyze::MANIFEST), &manifest_path).map_err(|e| Error::io(&manifest_path, e))?;
        Ok(m)
    });
    let _ = std::fs::remove_dir_all(&tmp);
    crate::seal(snap)?;
    result
}

/// The temporary folder an index of `snap` by this process writes in.
pub fn index_tmp_path(snap: &Path) -> PathBuf {
    trawl_analyze::output::Snapshot::tmp_path(&snap.join(INDEX_TMP_NAME))
}

/// The name an index's temporary folder is derived from (`.index.tmp-PID`).
const INDEX_TMP_NAME: &str = "index";

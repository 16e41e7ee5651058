//! Capture archives on disk and their time boundaries.
//!
//! An archive is a folder with one sub-folder per node, each holding
//! time-rotated captures and Kubernetes sidecars (docs/archive.md). A
//! plain folder of captures (tcpdump `-G` or `-C`) is a one-node archive
//! named after the folder.
//!
//! Boundaries need each file's first and last timestamp. The first is in
//! the first record; the last is found from the end of the file (pcapng:
//! walking back over trailing block lengths; pcap: the record chain that
//! ends exactly at the end of the file), so a 1 GB file costs two small
//! reads. Gzip files and files whose end does not parse are scanned. The
//! results are kept in `.trawl-index.json`, keyed by size and mtime.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pcap_file::pcapng::PcapNgParser;
use pcap_file::pcapng::blocks::Block;
use serde::{Deserialize, Serialize};
use trawl_analyze::input::{CaptureReader, ReadProgress, pcap_magic, pcap_record};

use crate::Error;
use crate::window::show;

/// Name of the boundaries cache inside an archive folder.
pub const INDEX_FILE: &str = ".trawl-index.json";
/// 2: files carry the drop counts of their statistics blocks.
const INDEX_VERSION: u32 = 2;

/// One capture file of a node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CaptureFile {
    /// Path relative to the archive root.
    pub rel: String,
    pub size: u64,
    pub mtime_ns: i64,
    pub first_ns: Option<i64>,
    pub last_ns: Option<i64>,
    /// The file ends in damage (or is still being written).
    pub damaged: bool,
    /// Why the file could not be read as a capture at all, if so.
    #[serde(default)]
    pub unreadable: Option<String>,
    /// Packets the capturing side dropped while writing this file, from
    /// its pcapng interface statistics blocks (`isb_ifdrop`, summed over
    /// interfaces); None when the file has none (pcap, tcpdump).
    #[serde(default)]
    pub dropped: Option<u64>,
}

/// One Kubernetes sidecar of a node.
#[derive(Debug, Clone)]
pub struct SidecarFile {
    pub path: PathBuf,
    pub time_ns: i64,
}

/// A node's folder.
#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub dir: PathBuf,
    /// Sorted by first timestamp.
    pub files: Vec<CaptureFile>,
    /// Sorted by time.
    pub sidecars: Vec<SidecarFile>,
}

impl Node {
    pub fn first_ns(&self) -> Option<i64> {
        self.files.iter().filter_map(|f| f.first_ns).min()
    }
    pub fn last_ns(&self) -> Option<i64> {
        self.files.iter().filter_map(|f| f.last_ns).max()
    }
}

/// An opened archive.
#[derive(Debug, Clone)]
pub struct Archive {
    pub root: PathBuf,
    pub nodes: Vec<Node>,
    /// Files whose boundaries came from the cache.
    pub cached_files: usize,
}

#[derive(Serialize, Deserialize, Default)]
struct IndexFile {
    version: u32,
    files: BTreeMap<String, CaptureFile>,
}

fn is_hidden_or_partial(name: &str) -> bool {
    name.starts_with('.') || name.ends_with(".tmp") || name.ends_with(".part")
}

fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos() as i64)
}

/// What a folder holds: capture file names, sidecar names, sub-folders.
type Listing = (Vec<String>, Vec<String>, Vec<PathBuf>);

/// Lists a folder: capture files and sidecars (names), sub-folders.
fn list(dir: &Path) -> Result<Listing, Error> {
    let mut caps = Vec::new();
    let mut cars = Vec::new();
    let mut dirs = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let e = e.map_err(|e| Error::io(dir, e))?;
        let name = e.file_name().to_string_lossy().to_string();
        if is_hidden_or_partial(&name) {
            continue;
        }
        // Symbolic links are followed: an archive may link in captures.
        let Ok(meta) = std::fs::metadata(e.path()) else { continue };
        if meta.is_dir() {
            dirs.push(e.path());
        } else if !meta.is_file() {
            continue;
        } else if trawl_schemas::k8s::is_sidecar_name(&name) {
            cars.push(name);
        } else if trawl_analyze::is_capture_name(Path::new(&name)) {
            caps.push(name);
        }
    }
    caps.sort();
    cars.sort();
    dirs.sort();
    Ok((caps, cars, dirs))
}

impl Archive {
    /// Opens an archive folder, reading boundaries from the cache where
    /// the files have not changed, and updating the cache (best effort:
    /// a read-only archive is read without one).
    pub fn open(root: &Path) -> Result<Archive, Error> {
        let meta = std::fs::metadata(root).map_err(|e| Error::io(root, e))?;
        if !meta.is_dir() {
            return Err(Error::invalid(
                root,
                "expected an archive folder (one sub-folder of captures per node, or a folder of rotated captures)",
            ));
        }
        let (top_caps, top_cars, dirs) = list(root)?;
        let mut layout: Vec<(String, PathBuf, Vec<String>, Vec<String>)> = Vec::new();
        if !top_caps.is_empty() {
            let name = root
                .canonicalize()
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
                .unwrap_or_else(|| "node".into());
            layout.push((name, root.to_path_buf(), top_caps, top_cars));
        }
        for d in dirs {
            let (caps, cars, _) = list(&d)?;
            if caps.is_empty() {
                continue;
            }
            let name = d.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            if layout.iter().any(|(n, ..)| *n == name) {
                return Err(Error::invalid(&d, format!("two nodes are named `{name}`")));
            }
            layout.push((name, d, caps, cars));
        }
        if layout.is_empty() {
            return Err(Error::invalid(
                root,
                "no capture files found, neither in the folder nor in node sub-folders (expected *.pcap, *.pcapng or their .gz)",
            ));
        }
        let index_path = root.join(INDEX_FILE);
        let old: IndexFile = std::fs::read(&index_path)
            .ok()
            .and_then(|b| serde_json::from_slice::<IndexFile>(&b).ok())
            .filter(|i| i.version == INDEX_VERSION)
            .unwrap_or_default();
        let mut new = IndexFile { version: INDEX_VERSION, files: BTreeMap::new() };
        let mut cached = 0;
        let mut nodes = Vec::new();
        for (name, dir, caps, cars) in layout {
            let mut files = Vec::new();
            for c in caps {
                let path = dir.join(&c);
                let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().to_string();
                let meta = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?;
                let (size, mtime) = (meta.len(), mtime_ns(&meta));
                let f = match old.files.get(&rel) {
                    Some(f) if f.size == size && f.mtime_ns == mtime => {
                        cached += 1;
                        f.clone()
                    }
                    _ => {
                        // A file that is not a capture (or not yet one: an
                        // empty file just opened by a writer) is listed
                        // without a time range rather than failing the archive.
                        let (first_ns, last_ns, damaged, dropped, unreadable) = match file_bounds(&path) {
                            Ok(b) => (b.first_ns, b.last_ns, b.damaged, b.dropped, None),
                            Err(Error::Analyze(e)) if e.is_bad_input() => (None, None, true, None, Some(e.to_string())),
                            Err(e) => return Err(e),
                        };
                        CaptureFile {
                            rel: rel.clone(),
                            size,
                            mtime_ns: mtime,
                            first_ns,
                            last_ns,
                            damaged,
                            unreadable,
                            dropped,
                        }
                    }
                };
                new.files.insert(rel, f.clone());
                files.push(f);
            }
            files.sort_by(|a, b| (a.first_ns, &a.rel).cmp(&(b.first_ns, &b.rel)));
            let mut sidecars = Vec::new();
            for c in cars {
                let path = dir.join(&c);
                sidecars.push(SidecarFile { time_ns: sidecar_time(&path)?, path });
            }
            sidecars.sort_by_key(|s| s.time_ns);
            nodes.push(Node { name, dir, files, sidecars });
        }
        if new.files != old.files
            && let Ok(bytes) = serde_json::to_vec_pretty(&new)
        {
            let tmp = root.join(format!("{INDEX_FILE}.tmp-{}", std::process::id()));
            if std::fs::write(&tmp, bytes).is_ok() && std::fs::rename(&tmp, &index_path).is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
        }
        Ok(Archive { root: root.to_path_buf(), nodes, cached_files: cached })
    }

    pub fn first_ns(&self) -> Option<i64> {
        self.nodes.iter().filter_map(Node::first_ns).min()
    }

    pub fn last_ns(&self) -> Option<i64> {
        self.nodes.iter().filter_map(Node::last_ns).max()
    }

    /// The nodes named in `names` (all when empty); an unknown name is an error.
    pub fn select_nodes(&self, names: &[String]) -> Result<Vec<&Node>, Error> {
        if names.is_empty() {
            return Ok(self.nodes.iter().collect());
        }
        let mut out = Vec::new();
        for n in names {
            match self.nodes.iter().find(|x| x.name == *n) {
                Some(x) => out.push(x),
                None => {
                    let known: Vec<&str> = self.nodes.iter().map(|x| x.name.as_str()).collect();
                    return Err(Error::Usage(format!(
                        "--node: no node `{n}` in {}; its nodes are {}",
                        self.root.display(),
                        known.join(", ")
                    )));
                }
            }
        }
        Ok(out)
    }

    /// The boundaries report (`trawl archive boundaries`, MCP
    /// `get_data_boundaries`).
    pub fn boundaries(&self) -> Boundaries {
        let nodes = self
            .nodes
            .iter()
            .map(|n| NodeBounds {
                name: n.name.clone(),
                oldest: n.first_ns().map(show),
                newest: n.last_ns().map(show),
                oldest_ns: n.first_ns(),
                newest_ns: n.last_ns(),
                files: n.files.len(),
                bytes: n.files.iter().map(|f| f.size).sum(),
                damaged_files: n
                    .files
                    .iter()
                    .filter(|f| f.damaged && f.unreadable.is_none())
                    .map(|f| f.rel.clone())
                    .collect(),
                unreadable_files: n.files.iter().filter_map(|f| f.unreadable.clone()).collect(),
                sidecars: n.sidecars.len(),
                dropped: n.files.iter().filter_map(|f| f.dropped).reduce(|a, b| a + b),
                files_with_drops: n
                    .files
                    .iter()
                    .filter(|f| f.dropped.is_some_and(|d| d > 0))
                    .map(|f| f.rel.clone())
                    .collect(),
            })
            .collect();
        Boundaries {
            archive: self.root.display().to_string(),
            oldest: self.first_ns().map(show),
            newest: self.last_ns().map(show),
            oldest_ns: self.first_ns(),
            newest_ns: self.last_ns(),
            nodes,
        }
    }
}

/// Time range per node and overall.
#[derive(Debug, Clone, Serialize)]
pub struct Boundaries {
    pub archive: String,
    pub oldest: Option<String>,
    pub newest: Option<String>,
    pub oldest_ns: Option<i64>,
    pub newest_ns: Option<i64>,
    pub nodes: Vec<NodeBounds>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeBounds {
    pub name: String,
    pub oldest: Option<String>,
    pub newest: Option<String>,
    pub oldest_ns: Option<i64>,
    pub newest_ns: Option<i64>,
    pub files: usize,
    pub bytes: u64,
    pub damaged_files: Vec<String>,
    /// Files that are not captures: why, one line each.
    pub unreadable_files: Vec<String>,
    pub sidecars: usize,
    /// Packets the capture agent dropped, summed over the files that
    /// carry statistics (None: no file does).
    pub dropped: Option<u64>,
    /// The files whose statistics count drops.
    pub files_with_drops: Vec<String>,
}

/// The time of a sidecar: from its name (`k8s-<unix ms>.json[l]`), else
/// its first observation's (a compact sidecar's `time`, a timeline's
/// first record); a kubectl List without a time in its name holds at
/// every time (`i64::MIN`).
pub fn sidecar_time(path: &Path) -> Result<i64, Error> {
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    if let Some(t) = trawl_schemas::k8s::time_from_name(&name) {
        return Ok(t);
    }
    let loaded = trawl_analyze::kube::load::load(&[path.to_path_buf()]);
    match loaded.observations.iter().map(|o| o.time).min() {
        Some(t) => Ok(t),
        None => {
            let why =
                loaded.reports.first().and_then(|r| r.problems.first().cloned()).unwrap_or_else(|| "no objects".into());
            Err(Error::invalid(path, format!("not a Kubernetes sidecar (docs/kubernetes.md): {why}")))
        }
    }
}

/// What `file_bounds` finds in a capture.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileBounds {
    pub first_ns: Option<i64>,
    pub last_ns: Option<i64>,
    /// The file ends in damage (or is still being written).
    pub damaged: bool,
    /// Drops counted by the file's trailing statistics blocks.
    pub dropped: Option<u64>,
}

/// First and last timestamp of a capture, whether it is damaged, and the
/// drops its pcapng statistics blocks count.
pub fn file_bounds(path: &Path) -> Result<FileBounds, Error> {
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let size = f.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut head = vec![0u8; (size.min(1 << 20)) as usize];
    f.read_exact(&mut head).map_err(|e| Error::io(path, e))?;
    let quick = match head.get(0..4) {
        Some([0x0a, 0x0d, 0x0d, 0x0a]) => pcapng_bounds(&mut f, size, &head),
        Some(m) if pcap_magic(m).is_some() => pcap_bounds(&mut f, size, &head).map(|(a, b)| (a, b, None)),
        _ => None,
    };
    if let Some((first, last, dropped)) = quick {
        return Ok(FileBounds { first_ns: Some(first), last_ns: Some(last), damaged: false, dropped });
    }
    scan_bounds(path)
}

/// Reads the whole file (gzip, damaged or odd files).
fn scan_bounds(path: &Path) -> Result<FileBounds, Error> {
    let mut r = CaptureReader::open(path, Arc::new(ReadProgress::default()), 4 << 20)?;
    while r.next_chunk().is_some() {}
    let info = r.finish();
    Ok(FileBounds {
        first_ns: info.first_ts_ns,
        last_ns: info.last_ts_ns,
        damaged: info.damage.is_some(),
        dropped: None,
    })
}

const TAIL: u64 = 1 << 20;

fn pcap_bounds(f: &mut File, size: u64, head: &[u8]) -> Option<(i64, i64)> {
    let (be, ns) = pcap_magic(head.get(0..4)?)?;
    if head.len() < 40 {
        return None;
    }
    let (first, incl, _) = pcap_record(<&[u8; 16]>::try_from(&head[24..40]).ok()?, be, ns);
    let max_len = trawl_analyze::input::MAX_PACKET.max(incl);
    // The tail: the last TAIL bytes (or everything after the header).
    let start = size.saturating_sub(TAIL).max(24);
    let mut tail = vec![0u8; (size - start) as usize];
    f.seek(SeekFrom::Start(start)).ok()?;
    f.read_exact(&mut tail).ok()?;
    let plausible = |ts: i64| ts >= first - 86_400_000_000_000 * 366 && ts <= first + 86_400_000_000_000 * 3660;
    // The first offset whose chain of plausible records ends exactly at
    // the end of the file; at least three records unless the tail is the
    // whole file.
    for i in 0..tail.len() {
        let mut j = i;
        let mut n = 0;
        let mut last = None;
        while j + 16 <= tail.len() {
            let Some(h) = tail.get(j..j + 16).and_then(|h| <&[u8; 16]>::try_from(h).ok()) else { break };
            let (ts, incl, orig) = pcap_record(h, be, ns);
            if incl > max_len || (orig as usize) < incl || !plausible(ts) {
                break;
            }
            j += 16 + incl;
            n += 1;
            last = Some(ts);
        }
        if j == tail.len() && n > 0 && (n >= 3 || (i == 0 && start == 24)) {
            return last.map(|l| (first, l));
        }
    }
    None
}

fn pcapng_bounds(f: &mut File, size: u64, head: &[u8]) -> Option<(i64, i64, Option<u64>)> {
    // Interfaces and the first packet from the head.
    let (mut rest, mut parser) = PcapNgParser::new(head).ok()?;
    let first = loop {
        let (after, block) = parser.next_block(rest).ok()?;
        rest = after;
        match block {
            Block::EnhancedPacket(epb) => {
                let idb = parser.interfaces().get(epb.interface_id as usize)?;
                // pcap-file reads the raw value as if it were ns.
                break trawl_analyze::input::pcapng_ts_ns(epb.timestamp.as_nanos() as u64, idb);
            }
            Block::SectionHeader(_) => return None,
            _ => {}
        }
    };
    let big = parser.section().endianness == pcap_file::Endianness::Big;
    let rd = |b: &[u8]| {
        let a = [b[0], b[1], b[2], b[3]];
        if big { u32::from_be_bytes(a) } else { u32::from_le_bytes(a) }
    };
    // Walk back over blocks by their trailing length, summing the drops
    // of the statistics blocks a writer leaves at the end.
    let mut end = size;
    let mut dropped: Option<u64> = None;
    let mut counted: Vec<u32> = Vec::new();
    for _ in 0..4096 {
        if end < 12 {
            return None;
        }
        let mut len4 = [0u8; 4];
        f.seek(SeekFrom::Start(end - 4)).ok()?;
        f.read_exact(&mut len4).ok()?;
        let len = rd(&len4) as u64;
        if len < 12 || len > end || !len.is_multiple_of(4) || len > (64 << 20) {
            return None;
        }
        let start = end - len;
        let mut hdr = [0u8; 28];
        let want = (len as usize).min(28);
        f.seek(SeekFrom::Start(start)).ok()?;
        f.read_exact(&mut hdr[..want]).ok()?;
        if rd(&hdr[4..8]) as u64 != len {
            return None;
        }
        match rd(&hdr[0..4]) {
            6 if len >= 28 => {
                let idb = parser.interfaces().get(rd(&hdr[8..12]) as usize)?;
                let raw = ((rd(&hdr[12..16]) as u64) << 32) | rd(&hdr[16..20]) as u64;
                return Some((first, trawl_analyze::input::pcapng_ts_ns(raw, idb), dropped));
            }
            5 if len >= 24 => {
                let mut body = vec![0u8; len as usize - 12];
                f.seek(SeekFrom::Start(start + 8)).ok()?;
                f.read_exact(&mut body).ok()?;
                // Walking back, an interface's first block is its latest,
                // and isb_ifdrop counts from the start of the capture.
                let ifid = rd(&body[0..4]);
                if let Some(d) = trawl_analyze::input::isb_ifdrop(&body[12..], big)
                    && !counted.contains(&ifid)
                {
                    counted.push(ifid);
                    dropped = Some(dropped.unwrap_or(0) + d);
                }
                end = start;
            }
            // A section header or an interface we may not know: scan.
            0x0A0D0D0A | 1 | 3 => return None,
            _ => end = start,
        }
    }
    None
}

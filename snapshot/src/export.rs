//! `trawl export-pcap`: the packets of chosen flows, time windows and
//! nodes, read through the snapshot's packet index (`packets.parquet`:
//! file and byte offset of every frame) rather than by rescanning the
//! captures, and merged across nodes in capture order into one pcapng.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Read};
use std::net::IpAddr;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{TimestampNanosecondType, UInt32Type, UInt64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Deserialize;
use trawl_analyze::decode::{Decoded, decode};

use crate::Error;
use crate::pcapng::PcapngOut;
use crate::window::Window;
use trawl_capture::bpf_filter::BpfFilter;

/// What to export.
#[derive(Debug, Clone, Default)]
pub struct ExportSpec {
    /// Only packets of these flows (from a KFL filter); `None`: any.
    pub flow_ids: Option<HashSet<u64>>,
    pub window: Option<Window>,
    /// Only packets captured on these nodes (all when empty).
    pub nodes: Vec<String>,
    /// A tcpdump filter, applied in-process.
    pub bpf: Option<String>,
    /// Write a comment on every packet: its flow and the pod and service
    /// names of its peers.
    pub annotate: bool,
}

/// What an export wrote.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ExportSummary {
    pub packets: u64,
    pub bytes: u64,
    pub flows: u64,
    /// Packets the index selected that the BPF filter dropped.
    pub bpf_dropped: u64,
    /// Packet-index rows read.
    pub indexed_packets: u64,
}

#[derive(Deserialize)]
struct ManifestInputs {
    inputs: Vec<InputEntry>,
    #[serde(default)]
    counters: Counters,
}

#[derive(Deserialize, Default)]
struct Counters {
    #[serde(default)]
    ip_fragments: u64,
}

#[derive(Deserialize)]
struct InputEntry {
    path: String,
    size: u64,
    #[serde(default)]
    node: Option<String>,
    #[serde(default)]
    gzip: bool,
}

/// One selected packet: where it lies (input `file`, byte `offset`) and
/// what the pcapng record says of it.
#[derive(Debug, Clone, Copy)]
pub struct Sel {
    pub ts: i64,
    pub file: u32,
    pub offset: u64,
    pub caplen: u32,
    pub wire_len: u32,
    pub link: u32,
    pub flow_id: Option<u64>,
    pub datagram: Option<u64>,
}

fn read_manifest(snap: &Path) -> Result<ManifestInputs, Error> {
    let p = snap.join(trawl_analyze::MANIFEST);
    let bytes = std::fs::read(&p).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::invalid(
                snap,
                "not an indexed snapshot (no manifest.json): run `trawl snapshot index` or `trawl analyze` first",
            )
        } else {
            Error::io(&p, e)
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|e| Error::invalid(&p, format!("not a trawl manifest: {e}")))
}

/// Calls `each` for the packet index rows of the chosen nodes and window,
/// in capture order, one batch in memory at a time; returns the rows read.
fn scan_index(
    snap: &Path,
    spec: &ExportSpec,
    files: &[bool],
    mut each: impl FnMut(Sel) -> Result<(), Error>,
) -> Result<u64, Error> {
    let p = snap.join(trawl_schemas::PACKETS.file_name());
    let file = File::open(&p).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::invalid(
                snap,
                "has no packet index (packets.parquet): it was made by an older trawl; analyse the capture again",
            )
        } else {
            Error::io(&p, e)
        }
    })?;
    let bad = |e: String| Error::invalid(&p, format!("unreadable packet index: {e}"));
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| bad(e.to_string()))?;
    // Only the columns an export reads (not `ordinal`, `frame_number`).
    let wanted = ["timestamp", "file_index", "offset", "caplen", "wire_len", "link_type", "flow_id", "datagram"];
    let leaves: Vec<usize> = builder
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| wanted.contains(&f.name().as_str()))
        .map(|(i, _)| i)
        .collect();
    let mask = parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), leaves);
    let reader = builder.with_projection(mask).with_batch_size(65_536).build().map_err(|e| bad(e.to_string()))?;
    let mut rows = 0u64;
    for batch in reader {
        let b = batch.map_err(|e| bad(e.to_string()))?;
        rows += b.num_rows() as u64;
        let col = |name: &str| b.column_by_name(name).ok_or_else(|| bad(format!("no column `{name}`")));
        let ts = col("timestamp")?
            .as_primitive_opt::<TimestampNanosecondType>()
            .ok_or_else(|| bad("timestamp type".into()))?;
        let fi = col("file_index")?.as_primitive_opt::<UInt32Type>().ok_or_else(|| bad("file_index type".into()))?;
        let off = col("offset")?.as_primitive_opt::<UInt64Type>().ok_or_else(|| bad("offset type".into()))?;
        let cap = col("caplen")?.as_primitive_opt::<UInt32Type>().ok_or_else(|| bad("caplen type".into()))?;
        let wire = col("wire_len")?.as_primitive_opt::<UInt32Type>().ok_or_else(|| bad("wire_len type".into()))?;
        let link = col("link_type")?.as_primitive_opt::<UInt32Type>().ok_or_else(|| bad("link_type type".into()))?;
        let flow = col("flow_id")?.as_primitive_opt::<UInt64Type>().ok_or_else(|| bad("flow_id type".into()))?;
        let dgram = col("datagram")?.as_primitive_opt::<UInt64Type>().ok_or_else(|| bad("datagram type".into()))?;
        for i in 0..b.num_rows() {
            let flow_id = flow.is_valid(i).then(|| flow.value(i));
            let datagram = dgram.is_valid(i).then(|| dgram.value(i));
            let t = ts.value(i);
            if spec.window.is_some_and(|w| !w.contains(t)) {
                continue;
            }
            let f = fi.value(i);
            if !files.get(f as usize).copied().unwrap_or(false) {
                continue;
            }
            each(Sel {
                ts: t,
                file: f,
                offset: off.value(i),
                caplen: cap.value(i),
                wire_len: wire.value(i),
                link: link.value(i),
                flow_id,
                datagram,
            })?;
        }
    }
    Ok(rows)
}

/// Reads packets of one capture at indexed offsets. Within a file the
/// index's capture order is the file's order, so offsets only grow: plain
/// files are read through a window that slides forward (large sequential
/// reads, bounded memory), gzip files are decompressed once, front to back.
struct PacketReader {
    path: PathBuf,
    src: Src,
    /// Plain: bytes of the file from `start`. Gzip: the last packet.
    buf: Vec<u8>,
    start: u64,
}

enum Src {
    Plain(File),
    Gzip { r: Box<flate2::read::MultiGzDecoder<std::io::BufReader<File>>>, pos: u64 },
}

/// A capture that no longer matches its packet index.
fn changed(path: &Path) -> Error {
    Error::invalid(path, "the capture changed since it was analysed: analyse it again")
}

/// Bytes a plain-file window reads at once.
const WINDOW: usize = 256 << 10;

impl PacketReader {
    fn open(path: &Path, gzip: bool) -> Result<PacketReader, Error> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let src = if gzip {
            Src::Gzip {
                r: Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(1 << 20, file))),
                pos: 0,
            }
        } else {
            Src::Plain(file)
        };
        Ok(PacketReader { path: path.to_path_buf(), src, buf: Vec::new(), start: 0 })
    }

    fn read(&mut self, offset: u64, len: u32) -> Result<&[u8], Error> {
        let len = len as usize;
        match &mut self.src {
            Src::Plain(f) => {
                let end = self.start + self.buf.len() as u64;
                if offset < self.start || offset + len as u64 > end {
                    self.buf.resize(WINDOW.max(len), 0);
                    let mut got = 0;
                    while got < self.buf.len() {
                        match f.read_at(&mut self.buf[got..], offset + got as u64) {
                            Ok(0) => break,
                            Ok(n) => got += n,
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            Err(e) => return Err(Error::io(&self.path, e)),
                        }
                    }
                    self.buf.truncate(got);
                    self.start = offset;
                    if got < len {
                        return Err(changed(&self.path));
                    }
                }
                let at = (offset - self.start) as usize;
                Ok(&self.buf[at..at + len])
            }
            Src::Gzip { r, pos } => {
                if offset < *pos {
                    return Err(changed(&self.path));
                }
                std::io::copy(&mut (&mut **r).take(offset - *pos), &mut std::io::sink())
                    .map_err(|e| Error::io(&self.path, e))?;
                self.buf.resize(len, 0);
                if r.read_exact(&mut self.buf).is_err() {
                    return Err(changed(&self.path));
                }
                *pos = offset + len as u64;
                Ok(&self.buf)
            }
        }
    }
}

/// The output side of an export: BPF, annotations, counters, the file.
pub struct Sink {
    w: PcapngOut<BufWriter<File>>,
    bpf: Option<BpfFilter>,
    names: Option<crate::resolve::Names>,
    sum: ExportSummary,
    flows: HashSet<u64>,
}

impl Sink {
    /// Writes one packet captured on `node` (unless the BPF filter drops it).
    pub fn put(&mut self, node: &str, s: &Sel, data: &[u8]) -> Result<(), Error> {
        if let Some(b) = self.bpf.as_mut()
            && !b.matches(s.link, s.ts, s.wire_len, data).map_err(|e| Error::Usage(e.0))?
        {
            self.sum.bpf_dropped += 1;
            return Ok(());
        }
        let comment = self.names.as_ref().map(|n| annotation(n, s, data));
        self.w.packet(node, s.link, s.ts, s.wire_len, data, comment)?;
        self.sum.packets += 1;
        self.sum.bytes += data.len() as u64;
        if let Some(f) = s.flow_id {
            self.flows.insert(f);
        }
        Ok(())
    }
}

/// Checks `--node` names against the snapshot's.
fn node_mask(snap: &Path, known: &[String], wanted: &[String]) -> Result<Vec<bool>, Error> {
    for n in wanted {
        if !known.contains(n) {
            return Err(Error::Usage(format!(
                "--node: no node `{n}` in {}; its nodes are {}",
                snap.display(),
                known.join(", ")
            )));
        }
    }
    Ok(known.iter().map(|n| wanted.is_empty() || wanted.contains(n)).collect())
}

/// Exports packets of a snapshot into a pcapng file at `out`, written to
/// a temporary name and renamed when complete.
///
/// An indexed snapshot is read through its packet index. A snapshot cut
/// from an archive and not indexed yet can still be exported by window,
/// node and BPF (as Kubeshark exports raw capture): its `raw/` files are
/// merged by time; choosing flows (`flow_ids`) needs the index.
pub fn export(snap: &Path, spec: &ExportSpec, out: &Path) -> Result<ExportSummary, Error> {
    let indexed = snap.join(trawl_analyze::MANIFEST).is_file();
    if !indexed && snap.join(crate::SNAPSHOT_FILE).is_file() {
        if spec.flow_ids.is_some() {
            return Err(Error::invalid(
                snap,
                "is not indexed yet, and --kfl needs its tables: run `trawl snapshot index` first",
            ));
        }
        return export_raw(snap, spec, out);
    }
    let manifest = read_manifest(snap)?;
    let inputs = manifest.inputs;
    let node_of = |i: &InputEntry| {
        i.node.clone().unwrap_or_else(|| {
            Path::new(&i.path).file_name().map_or_else(|| i.path.clone(), |n| n.to_string_lossy().to_string())
        })
    };
    let known: Vec<String> = inputs.iter().map(node_of).collect();
    let files = node_mask(snap, &known, &spec.nodes)?;
    let bpf = bpf_filter(spec.bpf.as_deref())?;
    // Each capture once, checked against the size it had when analysed.
    let mut readers: Vec<Option<PacketReader>> = Vec::new();
    for (input, wanted) in inputs.iter().zip(&files) {
        readers.push(if *wanted {
            let path = resolve_input(snap, &input.path);
            let size = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?.len();
            if size != input.size {
                return Err(Error::invalid(
                    &path,
                    format!("is {size} bytes, but {} when it was analysed: analyse it again", input.size),
                ));
            }
            Some(PacketReader::open(&path, input.gzip)?)
        } else {
            None
        });
    }
    let names = if spec.annotate { Some(crate::resolve::Names::load(snap)?) } else { None };
    // A flow's packets, and every fragment of the IP datagrams it was given
    // (only the fragment completing a datagram carries the flow id): a
    // first pass over the index finds those datagrams.
    let in_flows = |s: &Sel| spec.flow_ids.as_ref().is_none_or(|ids| s.flow_id.is_some_and(|f| ids.contains(&f)));
    let mut datagrams: HashMap<u64, Option<u64>> = HashMap::new();
    if spec.flow_ids.is_some() && manifest.counters.ip_fragments > 0 {
        scan_index(snap, spec, &files, |s| {
            if let Some(d) = s.datagram.filter(|_| in_flows(&s)) {
                datagrams.insert(d, s.flow_id);
            }
            Ok(())
        })?;
    }
    write_atomically(out, bpf, names, |sink| {
        scan_index(snap, spec, &files, |mut s| {
            if !in_flows(&s) {
                match s.datagram.and_then(|d| datagrams.get(&d)) {
                    // A fragment of a chosen flow's datagram: the flow's.
                    Some(flow) => s.flow_id = *flow,
                    None => return Ok(()),
                }
            }
            let r = readers.get_mut(s.file as usize).and_then(Option::as_mut).ok_or_else(|| {
                Error::invalid(snap, format!("the packet index names input {}, which the manifest lacks", s.file))
            })?;
            let data = r.read(s.offset, s.caplen)?;
            sink.put(&known[s.file as usize], &s, data)
        })
    })
}

/// Compiles a `--bpf` filter.
pub fn bpf_filter(expr: Option<&str>) -> Result<Option<BpfFilter>, Error> {
    expr.map(BpfFilter::new).transpose().map_err(|e| Error::Usage(e.0))
}

/// Export from the raw captures of a snapshot that is not indexed.
fn export_raw(snap: &Path, spec: &ExportSpec, out: &Path) -> Result<ExportSummary, Error> {
    let meta = crate::create::read_meta(snap)?;
    let known: Vec<String> = meta.nodes.iter().map(|n| n.name.clone()).collect();
    let mask = node_mask(snap, &known, &spec.nodes)?;
    let (names_of, paths): (Vec<String>, Vec<PathBuf>) =
        meta.nodes.iter().zip(&mask).filter(|(_, m)| **m).map(|(n, _)| (n.name.clone(), snap.join(&n.file))).unzip();
    let bpf = bpf_filter(spec.bpf.as_deref())?;
    let names = if spec.annotate { Some(crate::resolve::Names::load(snap)?) } else { None };
    let mut merge = crate::merge::Merge::open(&paths, Default::default())?;
    write_atomically(out, bpf, names, |sink| {
        merge.for_each(|i, f, data| {
            if spec.window.is_some_and(|w| !w.contains(f.ts_ns)) {
                return Ok(());
            }
            let s = Sel {
                ts: f.ts_ns,
                file: i as u32,
                offset: f.offset,
                caplen: f.len,
                wire_len: f.orig_len,
                link: f.link,
                flow_id: None,
                datagram: None,
            };
            sink.put(&names_of[i], &s, data)
        })?;
        Ok(0)
    })
}

/// Writes an export to `out` through a temporary name: `fill` puts the
/// packets and returns the packet-index rows it read.
pub fn write_atomically(
    out: &Path,
    bpf: Option<BpfFilter>,
    names: Option<crate::resolve::Names>,
    fill: impl FnOnce(&mut Sink) -> Result<u64, Error>,
) -> Result<ExportSummary, Error> {
    let tmp = trawl_analyze::output::Snapshot::claim_tmp_path(out);
    let result = (|| {
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let w = PcapngOut::new(BufWriter::with_capacity(1 << 20, file), out)?;
        let mut sink = Sink { w, bpf, names, sum: ExportSummary::default(), flows: HashSet::new() };
        let indexed = fill(&mut sink)?;
        let mut sum = sink.sum;
        sum.indexed_packets = indexed;
        sum.flows = sink.flows.len() as u64;
        sink.w.finish()?;
        std::fs::rename(&tmp, out).map_err(|e| Error::io(out, e))?;
        Ok(sum)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn annotation(names: &crate::resolve::Names, s: &Sel, data: &[u8]) -> String {
    let mut c = match s.flow_id {
        Some(f) => format!("trawl flow {f}"),
        None => "trawl: outside any flow".to_string(),
    };
    let addrs: Option<(IpAddr, IpAddr)> = match decode(s.link, data) {
        Decoded::Ip(p) => Some((p.src, p.dst)),
        Decoded::Fragment(p) => Some(p.addrs()),
        _ => None,
    };
    if let Some((a, b)) = addrs {
        for (side, ip) in [("src", a), ("dst", b)] {
            if let Some(n) = names.name(s.ts, ip) {
                c.push_str(&format!("; {side} {n}"));
            }
        }
    }
    c
}

/// A manifest input path: relative ones lie inside the snapshot.
pub fn resolve_input(snap: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() { p.to_path_buf() } else { snap.join(p) }
}

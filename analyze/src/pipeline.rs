//! The analysis pipeline.
//!
//! ```text
//! reader thread ──Tick──▶ N shard workers (rayon pool) ──rows──▶ writer thread
//!  (files merged in         (each keeps the flows whose          (sorts each tick's
//!   time order, decode,      symmetric hash is its own)           rows by SortKey,
//!   defrag, shard hash)                                           Parquet)
//! ```
//!
//! The reader cuts the packet sequence into ticks of [`TICK_FRAMES`]
//! frames. Every worker receives every tick (an `Arc`, no copy) and
//! processes only its own packets; at a tick's end it runs the timeout
//! sweep if the reader asked for one. The writer takes one result per
//! worker per tick, in tick order, and sorts them by key. Tick boundaries,
//! sweeps and keys depend only on the capture, so the output is identical
//! at any thread count.
//!
//! One file: the reader, the workers and the writer hand each other ticks
//! through channels whose sizes and ordering rules only make sense side by
//! side.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use crate::Error;
use crate::decode::{Decoded, Defrag, Packet, decode};
use crate::flow::{FlowConfig, FlowKey, FlowTable, Pkt};
use crate::input::{CaptureReader, Chunk, InputInfo, ReadProgress};
use crate::kube::peers::PeerNames;
use crate::kube::{Cluster, Context};
use crate::output::{Builders, Sink, TickBatches};
use crate::packets::{FrameRef, PacketIndex};
use crate::records::{IssueRow, Keyed, PHASE_READER, Record, VSHARDS, worker_of};
use crate::stats::Stats;
use trawl_proto::dns_answers::Answer;

/// Frames per tick.
pub const TICK_FRAMES: usize = 8192;
/// The parts the closing of every flow at the end of an input is cut
/// into (each a run of virtual shards).
const FINISH_PARTS: usize = 8;
/// Capture time between timeout sweeps.
const SWEEP_EVERY_NS: i64 = 1_000_000_000;

/// Options of one analysis.
#[derive(Debug, Clone)]
pub struct Options {
    pub inputs: Vec<PathBuf>,
    /// The node each input was captured on (same order as `inputs`;
    /// empty when unknown).
    pub input_nodes: Vec<String>,
    /// The node of inputs without an entry in `input_nodes` (a fed run).
    pub node: Option<String>,
    /// Kubernetes sidecar files (docs/kubernetes.md).
    pub k8s: Vec<PathBuf>,
    /// Shard workers.
    pub threads: usize,
    pub flow: FlowConfig,
    /// Bytes read from a file at a time.
    pub chunk_size: usize,
    /// IP datagrams being reassembled at once, at most.
    pub max_frag_datagrams: usize,
    /// Protobuf schemas for gRPC payloads (`--proto-descriptors`).
    pub schemas: Option<Arc<trawl_proto::grpc::Schemas>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            inputs: Vec::new(),
            input_nodes: Vec::new(),
            node: None,
            k8s: Vec::new(),
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            flow: FlowConfig::default(),
            chunk_size: 2 << 20,
            max_frag_datagrams: 4096,
            schemas: None,
        }
    }
}

/// Live counters for a progress display.
#[derive(Debug, Default)]
pub struct Progress {
    pub read: Arc<ReadProgress>,
    pub frames: AtomicU64,
    /// Total bytes of all inputs on disk.
    pub total_bytes: AtomicU64,
    pub done: AtomicBool,
}

/// What an analysis found.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub inputs: Vec<InputInfo>,
    pub stats: Stats,
    pub kube: crate::kube::Summary,
}

impl Outcome {
    /// True when some input was damaged (analysed up to the damage).
    pub fn damaged(&self) -> bool {
        self.inputs.iter().any(|i| i.damage.is_some())
    }
}

/// Expands the user's paths: files are taken as they are, directories
/// contribute their capture files (sorted by name).
pub fn expand_inputs(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| Error::io(p, e))?;
        if meta.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| Error::io(p, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file() && is_capture_name(f))
                .collect();
            if found.is_empty() {
                return Err(Error::NoInputs { path: p.clone() });
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    if out.is_empty() {
        return Err(Error::Config("no input files given".into()));
    }
    Ok(out)
}

/// Whether a file name looks like a capture (`.pcap`, `.pcapng`, `.cap`,
/// `.dmp`, tcpdump's `-C` numbering `.pcap3`, and `.gz` of these).
pub fn is_capture_name(p: &Path) -> bool {
    let name = p.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    [".pcap", ".pcapng", ".cap", ".dmp"].iter().any(|e| name.ends_with(e)) || name.contains(".pcap")
}

/// One packet of a tick.
struct TickPkt {
    ordinal: u64,
    ts: i64,
    file_index: u32,
    frame_number: u64,
    wire_len: u32,
    /// Index into `Tick::chunks` and offset of the frame (or datagram).
    chunk: u32,
    base: u32,
    ip: Packet,
    vshard: u8,
}

/// A slice of the packet sequence, shared by every worker.
struct Tick {
    chunks: Vec<Arc<Vec<u8>>>,
    pkts: Vec<TickPkt>,
    /// Every frame of the tick (IP or not), in ordinal order.
    frames: Arc<Vec<FrameRef>>,
    first_ordinal: u64,
    /// Capture time of the last frame so far, and ordinal of the last frame.
    now: i64,
    last_ordinal: u64,
    sweep: bool,
    eof: bool,
    /// With `eof`: every flow closes (the input is complete), rather than
    /// the run merely stopping (a feed that will go on in a later run).
    finish: bool,
    /// The tick ends a file of a feed.
    file_end: Option<Box<FileEnd>>,
    /// Rows after this tick's are named from this context (a feed's
    /// sidecars changed).
    context: Option<Arc<Context>>,
    /// Rows found by the reader (decode problems), forwarded by worker 0.
    reader_rows: Vec<Keyed>,
    /// The answers of the tick's DNS responses, by packet ordinal: every
    /// worker applies them to its own [`PeerNames`].
    dns: Vec<(u64, Vec<Answer>)>,
}

impl Tick {
    /// A tick that starts after frame `last_ordinal`, at capture time `now`.
    fn empty(last_ordinal: u64, now: i64) -> Tick {
        Tick {
            chunks: Vec::new(),
            pkts: Vec::with_capacity(TICK_FRAMES),
            frames: Arc::new(Vec::with_capacity(TICK_FRAMES)),
            first_ordinal: last_ordinal + 1,
            now,
            last_ordinal,
            sweep: false,
            eof: false,
            finish: false,
            file_end: None,
            context: None,
            reader_rows: Vec::new(),
            dns: Vec::new(),
        }
    }
}

enum WorkerRows {
    Rows(Vec<Keyed>),
    Batches(TickBatches),
    Failed(Error),
}

/// What a worker hands the writer for one tick.
struct WorkerOut {
    rows: WorkerRows,
    /// (ordinal, flow id, TCP expert flags) of the worker's packets.
    flow_ids: Vec<(u64, u64, u16)>,
    /// The tick's frames (worker 0 only).
    frames: Option<(u64, Arc<Vec<FrameRef>>)>,
    /// At a file's end: the worker's oldest open flow, and (worker 0) the
    /// file's end.
    oldest_open: Option<u64>,
    file_end: Option<Box<FileEnd>>,
}

/// Where the files of a fed run come from: a node's rotated captures,
/// read one after another (not merged), each file's rows handed to the
/// sink with a [`FileEnd`] once the file is read.
pub trait Feed: Send {
    /// The next file, waiting for it if need be; `None` ends the run
    /// (without closing the connections still open: a later run goes on
    /// with them).
    fn next_file(&mut self) -> Option<PathBuf>;
    /// True when the file being read is the last one and the input is
    /// complete: every connection closes with it (capture end), and its
    /// rows go with its [`FileEnd`].
    fn closes_after_current(&self) -> bool;
    /// True when the input is complete at the end of the run even though
    /// its last file was only read again (see [`FileEnd::info`]).
    fn closes_at_end(&self) -> bool;
    /// The Kubernetes sidecar files to name rows from after the file just
    /// read, when they changed since the run started or last said (the
    /// capture agent's timeline grows as pods come and go).
    fn sidecars(&mut self) -> Option<Vec<PathBuf>> {
        None
    }
}

/// Where a fed run starts: the numbering goes on from an earlier run.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    /// Ordinal of the frame before the first one read.
    pub ordinal_base: u64,
    /// Index of the first file read.
    pub file_index: u32,
    /// Capture time of the last timeout sweep before the first file.
    pub last_sweep: Option<i64>,
    /// Files up to this index were written by an earlier run: they are
    /// read again only to rebuild the connections still open at their
    /// end, and none of their rows reach the sink.
    pub replay_through: Option<u32>,
}

/// A file of a feed has been read, and every row it completed handed to
/// the sink ([`Sink::file_end`]).
#[derive(Debug, Clone)]
pub struct FileEnd {
    pub file_index: u32,
    pub path: PathBuf,
    /// The file read; `None` for the end of a feed whose files were all
    /// read before (a replay): nothing new was read, but the connections
    /// still open close, and their rows go with this end (`file_index`
    /// is then the next number, `path` the last file's).
    pub info: Option<InputInfo>,
    /// Ordinal of the file's first frame, and of the frame after its last.
    pub first_ordinal: u64,
    pub next_ordinal: u64,
    /// The timeout sweep state before the file, and after it.
    pub sweep_before: Option<i64>,
    pub sweep_after: Option<i64>,
    /// The smallest flow id (ordinal of its first packet) of the
    /// connections still open after the file: a later run that starts
    /// from the file holding that ordinal rebuilds them all.
    pub oldest_open: Option<u64>,
    /// Every connection was closed with this file (the feed's input is
    /// complete).
    pub closes: bool,
}

/// Runs an analysis, writing rows to `sink` in their final order.
pub fn run(opts: &Options, sink: &mut dyn Sink, progress: &Progress) -> Result<Outcome, Error> {
    let mut readers = Vec::new();
    let mut total = 0;
    for p in &opts.inputs {
        let chunk = if opts.inputs.len() > 1 { (opts.chunk_size / 4).max(1 << 16) } else { opts.chunk_size };
        let r = CaptureReader::open(p, progress.read.clone(), chunk)?;
        total += std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        readers.push(r);
    }
    progress.total_bytes.store(total, Ordering::Relaxed);
    let max_frag = opts.max_frag_datagrams;
    run_with(opts, sink, progress, None, move |txs| read_all(readers, txs, max_frag, progress))
}

/// Runs an analysis of the files `feed` gives, in turn, from `resume`;
/// `opts.inputs` is not read. The sink hears of each file's end.
pub fn run_feed(
    opts: &Options,
    feed: &mut dyn Feed,
    resume: &Resume,
    sink: &mut dyn Sink,
    progress: &Progress,
) -> Result<Outcome, Error> {
    run_with(opts, sink, progress, resume.replay_through, move |txs| read_feed(feed, resume, txs, opts, progress))
}

type ReadResult = Result<(Vec<InputInfo>, Stats), Error>;

fn run_with(
    opts: &Options,
    sink: &mut dyn Sink,
    progress: &Progress,
    replay_through: Option<u32>,
    read: impl FnOnce(Vec<SyncSender<Arc<Tick>>>) -> ReadResult + Send,
) -> Result<Outcome, Error> {
    // More workers than virtual shards would sit idle.
    let threads = opts.threads.clamp(1, VSHARDS as usize);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("trawl-shard-{i}"))
        .build()
        .map_err(|e| Error::Internal(format!("thread pool: {e}")))?;

    let mut tick_txs: Vec<SyncSender<Arc<Tick>>> = Vec::new();
    let mut tick_rxs: Vec<Receiver<Arc<Tick>>> = Vec::new();
    let mut out_txs: Vec<SyncSender<WorkerOut>> = Vec::new();
    let mut out_rxs: Vec<Receiver<WorkerOut>> = Vec::new();
    for _ in 0..threads {
        // Two ticks queued per worker keep it busy while the reader cuts
        // the next; each queued tick pins its chunks (up to 12 MB of
        // frames on bulk traffic), so no more.
        let (t, r) = sync_channel(2);
        tick_txs.push(t);
        tick_rxs.push(r);
        let (t, r) = sync_channel(1);
        out_txs.push(t);
        out_rxs.push(r);
    }
    let flow_cfg = opts.flow;
    let schemas = &opts.schemas;
    let batches = sink.wants_batches();
    let ctx = Arc::new(Context {
        cluster: Cluster::load(&opts.k8s),
        input_nodes: opts.input_nodes.clone(),
        node: opts.node.clone(),
    });

    let (reader_res, shard_stats, write_res) = std::thread::scope(|s| {
        let reader = std::thread::Builder::new()
            .name("trawl-reader".into())
            .spawn_scoped(s, move || read(tick_txs))
            .map_err(|e| Error::Internal(format!("starting the reader: {e}")));
        let worker_ctx = ctx.clone();
        let workers = s.spawn(move || {
            let ctx = worker_ctx;
            let mut stats = vec![Stats::default(); threads];
            pool.scope(|ps| {
                for ((i, rx), (tx, st)) in
                    tick_rxs.into_iter().enumerate().zip(out_txs.into_iter().zip(stats.iter_mut()))
                {
                    let ctx = ctx.clone();
                    let schemas = schemas.clone();
                    ps.spawn(move |_| {
                        *st = work(i as u32, threads as u32, rx, tx, flow_cfg, schemas, batches.then_some(ctx))
                    });
                }
            });
            stats
        });
        let write_res = write_all(out_rxs, sink, replay_through);
        let reader_res = match reader {
            Ok(h) => h.join(),
            Err(e) => Ok(Err(e)),
        };
        let shard_stats = workers.join();
        (reader_res, shard_stats, write_res)
    });
    progress.done.store(true, Ordering::Relaxed);
    let (inputs, mut stats) = reader_res.map_err(|_| Error::Internal("reader thread panicked".into()))??;
    write_res?;
    for s in shard_stats.map_err(|_| Error::Internal("worker thread panicked".into()))? {
        stats.add(&s);
    }
    Ok(Outcome { inputs, stats, kube: ctx.summary() })
}

/// A file being merged: its reader and the current chunk.
struct Cursor {
    reader: CaptureReader,
    chunk: Option<Arc<Vec<u8>>>,
    frames: Vec<crate::input::Frame>,
    pos: usize,
    file_index: u32,
}

impl Cursor {
    fn refill(&mut self) -> bool {
        while self.pos >= self.frames.len() {
            match self.reader.next_chunk() {
                Some(Chunk { data, frames }) => {
                    self.chunk = Some(data);
                    self.frames = frames;
                    self.pos = 0;
                }
                None => {
                    self.chunk = None;
                    return false;
                }
            }
        }
        true
    }

    fn peek_ts(&self) -> i64 {
        self.frames.get(self.pos).map_or(i64::MAX, |f| f.ts_ns)
    }
}

struct TickBuilder {
    tick: Tick,
    last_sweep: Option<i64>,
}

impl TickBuilder {
    fn chunk_index(&mut self, c: &Arc<Vec<u8>>) -> u32 {
        if let Some(i) = self.tick.chunks.iter().rposition(|x| Arc::ptr_eq(x, c)) {
            return i as u32;
        }
        self.tick.chunks.push(c.clone());
        (self.tick.chunks.len() - 1) as u32
    }

    fn reader_issue(&mut self, ordinal: u64, row: IssueRow, stats: &mut Stats, cap: u64) {
        if stats.parse_issues >= cap {
            stats.parse_issues_dropped += 1;
            return;
        }
        stats.parse_issues += 1;
        let seq = self.tick.reader_rows.len() as u32;
        self.tick
            .reader_rows
            .push(Keyed { key: (0, ordinal, PHASE_READER, 0, seq), record: Record::Issue(Box::new(row)) });
    }

    fn take(&mut self, eof: bool) -> Tick {
        let now = self.tick.now;
        let sweep = eof || self.last_sweep.is_none_or(|l| now - l >= SWEEP_EVERY_NS);
        if sweep {
            self.last_sweep = Some(now);
        }
        let next = Tick::empty(self.tick.last_ordinal, now);
        let mut t = std::mem::replace(&mut self.tick, next);
        t.sweep = sweep;
        t.eof = eof;
        t
    }
}

fn send_tick(txs: &[SyncSender<Arc<Tick>>], tick: Tick) -> bool {
    let t = Arc::new(tick);
    txs.iter().all(|tx| tx.send(t.clone()).is_ok())
}

/// The reader's state: the tick being cut, IP reassembly, the frame
/// count and the counters. Both ways of reading files use it: merged in
/// time order ([`read_all`]) or one after another as a feed gives them
/// ([`read_feed`]).
struct Reader<'a> {
    tb: TickBuilder,
    txs: Vec<SyncSender<Arc<Tick>>>,
    progress: &'a Progress,
    defrag: Defrag,
    ordinal: u64,
    unknown_links: Vec<u32>,
    issue_cap: u64,
    stats: Stats,
}

impl<'a> Reader<'a> {
    fn new(txs: Vec<SyncSender<Arc<Tick>>>, max_frag: usize, progress: &'a Progress, resume: &Resume) -> Reader<'a> {
        Reader {
            tb: TickBuilder { tick: Tick::empty(resume.ordinal_base, i64::MIN), last_sweep: resume.last_sweep },
            txs,
            progress,
            defrag: Defrag::new(max_frag, 30 * 1_000_000_000),
            ordinal: resume.ordinal_base,
            unknown_links: Vec::new(),
            issue_cap: 1_000_000,
            stats: Stats::default(),
        }
    }

    /// One frame of file `file_index`, lying in `chunk`.
    fn frame(&mut self, chunk: &Arc<Vec<u8>>, f: crate::input::Frame, file_index: u32) -> Result<(), Error> {
        self.ordinal += 1;
        self.stats.frames += 1;
        self.stats.captured_bytes += f.len as u64;
        if f.orig_len > f.len {
            self.stats.snaplen_truncated_frames += 1;
        }
        let frame = &chunk[f.start as usize..(f.start + f.len) as usize];
        self.tb.tick.now = self.tb.tick.now.max(f.ts_ns);
        self.tb.tick.last_ordinal = self.ordinal;
        // The tick is not shared until it is sent: no copy is made here.
        Arc::make_mut(&mut self.tb.tick.frames).push(FrameRef {
            ts: f.ts_ns,
            file_index,
            frame_number: f.number,
            offset: f.offset,
            caplen: f.len,
            wire_len: f.orig_len,
            link: f.link,
            datagram: None,
        });
        let issue = |kind: &'static str, layer: &'static str, detail: String| IssueRow {
            flow_id: None,
            file_index,
            frame_number: Some(f.number),
            ts: Some(f.ts_ns),
            layer,
            kind,
            detail,
        };
        let decoded = decode(f.link, frame);
        let (packet, data_chunk, base) = match decoded {
            Decoded::Ip(p) => {
                let ci = self.tb.chunk_index(chunk);
                (p, ci, f.start)
            }
            Decoded::Fragment(piece) => {
                self.stats.ip_fragments += 1;
                let added = self.defrag.add(&piece, frame, f.ts_ns, self.ordinal);
                if let (Ok((datagram, _)), Some(last)) = (&added, Arc::make_mut(&mut self.tb.tick.frames).last_mut()) {
                    last.datagram = Some(*datagram);
                }
                match added {
                    Ok((_, Some(re))) => {
                        self.stats.ip_reassembled += 1;
                        self.tb.tick.chunks.push(Arc::new(re.data));
                        (re.packet, (self.tb.tick.chunks.len() - 1) as u32, 0)
                    }
                    Ok((_, None)) => {
                        return self.flush();
                    }
                    Err(e) => {
                        self.tb.reader_issue(
                            self.ordinal,
                            issue("bad_fragment", "ip", e),
                            &mut self.stats,
                            self.issue_cap,
                        );
                        return self.flush();
                    }
                }
            }
            Decoded::NotIp => {
                self.stats.non_ip_frames += 1;
                return self.flush();
            }
            Decoded::UnknownLink(l) => {
                self.stats.unknown_link_frames += 1;
                if !self.unknown_links.contains(&l) {
                    self.unknown_links.push(l);
                    self.tb.reader_issue(
                        self.ordinal,
                        issue(
                            "unknown_link_type",
                            "link",
                            format!(
                                "link type {} is not decoded; its frames are counted and skipped",
                                crate::input::link_name(l)
                            ),
                        ),
                        &mut self.stats,
                        self.issue_cap,
                    );
                }
                return self.flush();
            }
            Decoded::Malformed { layer, kind, detail } => {
                self.stats.malformed_frames += 1;
                self.tb.reader_issue(self.ordinal, issue(kind, layer, detail), &mut self.stats, self.issue_cap);
                return self.flush();
            }
        };
        self.stats.ip_packets += 1;
        if packet.ip_version == 4 {
            self.stats.ipv4_packets += 1;
        } else {
            self.stats.ipv6_packets += 1;
        }
        match packet.proto {
            6 => self.stats.tcp_packets += 1,
            17 => self.stats.udp_packets += 1,
            1 | 58 => self.stats.icmp_packets += 1,
            _ => self.stats.other_ip_packets += 1,
        }
        if let Some(kind) = packet.l4_error {
            // Without ports the packet cannot be given to its flow.
            let layer = if packet.proto == 17 {
                "udp"
            } else if packet.proto == 6 {
                "tcp"
            } else {
                "ip"
            };
            self.tb.reader_issue(
                self.ordinal,
                issue(
                    kind,
                    layer,
                    "transport header cut short or malformed; the packet is counted but not assigned to a flow".into(),
                ),
                &mut self.stats,
                self.issue_cap,
            );
            return self.flush();
        }
        if packet.proto == 17 && packet.sport == 53 {
            // DNS answers name the addresses of later flows (kube::peers).
            let data = self.tb.tick.chunks.get(data_chunk as usize).map_or(&[][..], |c| c.as_slice());
            let start = base as usize + packet.payload_off;
            if let Some(answers) =
                data.get(start..start + packet.payload_len).and_then(trawl_proto::dns_answers::answers)
                && !answers.is_empty()
            {
                self.stats.dns_answers += answers.len() as u64;
                self.tb.tick.dns.push((self.ordinal, answers));
            }
        }
        let vshard = (FlowKey::of(&packet).shard_hash() % VSHARDS as u64) as u8;
        self.tb.tick.pkts.push(TickPkt {
            ordinal: self.ordinal,
            ts: f.ts_ns,
            file_index,
            frame_number: f.number,
            wire_len: f.orig_len,
            chunk: data_chunk,
            base,
            ip: packet,
            vshard,
        });
        self.flush()
    }

    fn flush(&mut self) -> Result<(), Error> {
        maybe_flush(&mut self.tb, &self.txs, self.progress, self.ordinal)
    }

    /// Sends the last tick: `finish` closes every flow with it.
    fn end(mut self, finish: bool, file_end: Option<FileEnd>) -> Stats {
        self.defrag.expire(i64::MAX);
        self.stats.ip_frag_overflows = self.defrag.overflows;
        self.stats.ip_frag_timeouts = self.defrag.timeouts;
        self.stats.ip_frag_errors = self.defrag.errors;
        let mut last = self.tb.take(true);
        last.finish = finish;
        last.file_end = file_end.map(Box::new);
        send_tick(&self.txs, last);
        self.progress.frames.store(self.ordinal, Ordering::Relaxed);
        self.stats
    }
}

/// The reader thread: merges the files in time order, decodes, and cuts
/// ticks.
fn read_all(
    readers: Vec<CaptureReader>,
    txs: Vec<SyncSender<Arc<Tick>>>,
    max_frag: usize,
    progress: &Progress,
) -> Result<(Vec<InputInfo>, Stats), Error> {
    let mut cursors: Vec<Cursor> = readers
        .into_iter()
        .enumerate()
        .map(|(i, reader)| Cursor { reader, chunk: None, frames: Vec::new(), pos: 0, file_index: i as u32 })
        .collect();
    let mut heap = BinaryHeap::new();
    for (i, c) in cursors.iter_mut().enumerate() {
        if c.refill() {
            heap.push(Reverse((c.peek_ts(), i)));
        }
    }
    let mut r = Reader::new(txs, max_frag, progress, &Resume::default());
    let single = cursors.len() == 1;
    loop {
        let idx = if single {
            if cursors[0].pos < cursors[0].frames.len() || cursors[0].refill() {
                0
            } else {
                break;
            }
        } else {
            match heap.pop() {
                Some(Reverse((_, i))) => i,
                None => break,
            }
        };
        let c = &mut cursors[idx];
        let Some(chunk) = c.chunk.clone() else { break };
        let f = c.frames[c.pos];
        c.pos += 1;
        let file_index = c.file_index;
        if !single && c.refill() {
            heap.push(Reverse((c.peek_ts(), idx)));
        }
        r.frame(&chunk, f, file_index)?;
    }
    let mut stats = r.end(true, None);
    let infos: Vec<InputInfo> = cursors.into_iter().map(|c| c.reader.finish()).collect();
    stats.capture_dropped = infos.iter().filter_map(|i| i.capture_dropped).sum();
    Ok((infos, stats))
}

/// The reader thread of a feed: each file read whole, in turn, and a
/// tick cut at its end that carries the [`FileEnd`].
fn read_feed(
    feed: &mut dyn Feed,
    resume: &Resume,
    txs: Vec<SyncSender<Arc<Tick>>>,
    opts: &Options,
    progress: &Progress,
) -> Result<(Vec<InputInfo>, Stats), Error> {
    let mut r = Reader::new(txs, opts.max_frag_datagrams, progress, resume);
    let mut infos = Vec::new();
    let mut file_index = resume.file_index;
    let mut next = feed.next_file();
    let mut last_path = None;
    while let Some(path) = next {
        let first_ordinal = r.ordinal + 1;
        let sweep_before = r.tb.last_sweep;
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        progress.total_bytes.fetch_add(size, Ordering::Relaxed);
        let mut c = Cursor {
            reader: CaptureReader::open(&path, progress.read.clone(), opts.chunk_size)?,
            chunk: None,
            frames: Vec::new(),
            pos: 0,
            file_index,
        };
        while c.pos < c.frames.len() || c.refill() {
            let Some(chunk) = c.chunk.clone() else { break };
            let f = c.frames[c.pos];
            c.pos += 1;
            r.frame(&chunk, f, file_index)?;
        }
        let info = c.reader.finish();
        r.stats.capture_dropped += info.capture_dropped.unwrap_or(0);
        let end = FileEnd {
            file_index,
            path,
            info: Some(info.clone()),
            first_ordinal,
            next_ordinal: r.ordinal + 1,
            sweep_before,
            sweep_after: None,
            oldest_open: None,
            closes: false,
        };
        infos.push(info);
        file_index += 1;
        if feed.closes_after_current() {
            let stats = r.end(true, Some(FileEnd { closes: true, ..end }));
            return Ok((infos, stats));
        }
        // The file's rows go out now: the next file may be minutes away.
        let mut t = r.tb.take(false);
        let mut end = end;
        end.sweep_after = r.tb.last_sweep;
        last_path = Some(end.path.clone());
        t.file_end = Some(Box::new(end));
        if let Some(paths) = feed.sidecars() {
            t.context = Some(Arc::new(Context {
                cluster: Cluster::load(&paths),
                input_nodes: opts.input_nodes.clone(),
                node: opts.node.clone(),
            }));
        }
        if !send_tick(&r.txs, t) {
            return Err(Error::Internal("a worker stopped early".into()));
        }
        next = feed.next_file();
    }
    // Every file was read before: close what is open now, as the end of
    // the input, in a commit of its own.
    let close = feed.closes_at_end().then_some(last_path).flatten().map(|path| FileEnd {
        file_index,
        path,
        info: None,
        first_ordinal: r.ordinal + 1,
        next_ordinal: r.ordinal + 1,
        sweep_before: r.tb.last_sweep,
        sweep_after: None,
        oldest_open: None,
        closes: true,
    });
    let stats = r.end(close.is_some(), close);
    Ok((infos, stats))
}

fn maybe_flush(
    tb: &mut TickBuilder,
    txs: &[SyncSender<Arc<Tick>>],
    progress: &Progress,
    ordinal: u64,
) -> Result<(), Error> {
    if ordinal.is_multiple_of(TICK_FRAMES as u64) {
        progress.frames.store(ordinal, Ordering::Relaxed);
        let t = tb.take(false);
        if !send_tick(txs, t) {
            return Err(Error::Internal("a worker stopped early".into()));
        }
    }
    Ok(())
}

/// A shard worker; with `batches`, it builds Arrow batches itself, naming
/// the sides of rows from that context.
#[allow(clippy::too_many_arguments)]
fn work(
    me: u32,
    threads: u32,
    rx: Receiver<Arc<Tick>>,
    tx: SyncSender<WorkerOut>,
    cfg: FlowConfig,
    schemas: Option<Arc<trawl_proto::grpc::Schemas>>,
    batches: Option<Arc<Context>>,
) -> Stats {
    let mut table = FlowTable::new(cfg);
    table.schemas = schemas;
    let mut builders = batches.map(Builders::new);
    let mut peers = PeerNames::default();
    while let Ok(tick) = rx.recv() {
        for (ordinal, answers) in &tick.dns {
            peers.record(*ordinal, answers);
        }
        let mut flow_ids = Vec::new();
        for p in tick.pkts.iter().filter(|p| worker_of(p.vshard, threads) == me) {
            let data = tick.chunks.get(p.chunk as usize).map_or(&[][..], |c| c.as_slice());
            let start = p.base as usize + p.ip.payload_off;
            let payload = data.get(start..start + p.ip.payload_len).unwrap_or(&[]);
            let id = table.packet(&Pkt {
                ordinal: p.ordinal,
                ts: p.ts,
                file_index: p.file_index,
                frame_number: p.frame_number,
                wire_len: p.wire_len,
                vshard: p.vshard,
                ip: &p.ip,
                payload,
            });
            flow_ids.push((p.ordinal, id, table.last_expert));
        }
        if !tick.eof && tick.sweep {
            table.sweep(tick.now, tick.last_ordinal);
        }
        // The end of a complete input closes every open flow: in parts,
        // by virtual shard, so that a capture that ends with a million
        // flows open (a flood) does not turn them all into rows at once.
        // Rows are ordered by virtual shard first, so the parts, written
        // one after another, are in the order one part would have been.
        let finishing = tick.eof && tick.finish;
        let parts = if finishing { FINISH_PARTS } else { 1 };
        let mut sent = true;
        let step = VSHARDS / FINISH_PARTS as u8;
        for part in 0..parts {
            let mut rows = if finishing {
                let start = part as u8 * step;
                table.finish_vshards(start..start + step);
                table.take_output_below(start + step)
            } else {
                table.take_output()
            };
            let first = part == 0;
            let last = part + 1 == parts;
            if me == 0 && first {
                rows.extend(tick.reader_rows.iter().cloned());
            }
            rows.sort_unstable_by_key(|k| k.key);
            let rows = match &mut builders {
                Some(b) => match b.append(&rows, &peers).and_then(|_| b.finish()) {
                    Ok(b) => WorkerRows::Batches(b),
                    Err(e) => WorkerRows::Failed(e),
                },
                None => WorkerRows::Rows(rows),
            };
            let frames = (me == 0 && first).then(|| (tick.first_ordinal, tick.frames.clone()));
            let oldest_open = tick.file_end.as_ref().filter(|_| last).and_then(|_| table.oldest_open());
            let file_end = tick.file_end.clone().filter(|_| me == 0 && last);
            let flow_ids = std::mem::take(&mut flow_ids);
            if tx.send(WorkerOut { rows, flow_ids, frames, oldest_open, file_end }).is_err() {
                sent = false;
                break;
            }
        }
        if let (Some(c), Some(b)) = (&tick.context, builders.as_mut()) {
            b.set_context(c.clone());
        }
        if !sent || tick.eof {
            break;
        }
    }
    if let Some(b) = &builders {
        b.flush_matches();
    }
    let mut stats = table.stats.clone();
    // Every worker holds the same answers: one of them counts the dropped.
    if me == 0 {
        stats.dns_answers_dropped = peers.dropped;
    }
    stats
}

/// The writer: one result per worker per tick, merged by key. Rows of
/// files up to `replay_through` are dropped (an earlier run wrote them).
fn write_all(rxs: Vec<Receiver<WorkerOut>>, sink: &mut dyn Sink, mut replay_through: Option<u32>) -> Result<(), Error> {
    let mut rows: Vec<Keyed> = Vec::new();
    let mut failed: Option<Error> = None;
    'ticks: loop {
        rows.clear();
        let mut batches = Vec::with_capacity(rxs.len());
        let mut index = PacketIndex::default();
        let mut flow_ids = Vec::new();
        let mut file_end: Option<Box<FileEnd>> = None;
        let mut oldest_open: Option<u64> = None;
        for rx in &rxs {
            let Ok(out) = rx.recv() else { break 'ticks };
            if out.file_end.is_some() {
                file_end = out.file_end;
            }
            oldest_open = match (oldest_open, out.oldest_open) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            match out.rows {
                WorkerRows::Rows(r) => rows.extend(r),
                WorkerRows::Batches(b) => batches.push(b),
                WorkerRows::Failed(e) => {
                    failed.get_or_insert(e);
                }
            }
            if let Some((first, frames)) = out.frames {
                index.first_ordinal = first;
                index.frames = frames;
            }
            flow_ids.push(out.flow_ids);
        }
        if failed.is_some() {
            continue;
        }
        if let Some(through) = replay_through {
            if file_end.as_ref().is_some_and(|e| e.file_index >= through) {
                replay_through = None;
            }
            continue;
        }
        index.flow_ids = vec![None; index.frames.len()];
        index.tcp_expert = vec![0; index.frames.len()];
        for (ordinal, id, expert) in flow_ids.into_iter().flatten() {
            if let Some(i) =
                ordinal.checked_sub(index.first_ordinal).map(|i| i as usize).filter(|i| *i < index.frames.len())
            {
                index.flow_ids[i] = Some(id);
                index.tcp_expert[i] = expert;
            }
        }
        if let Err(e) = sink.write_packets(&index) {
            failed = Some(e);
            continue;
        }
        let res = if sink.wants_batches() {
            sink.write_batches(batches)
        } else {
            rows.sort_unstable_by_key(|k| k.key);
            sink.write_rows(&rows)
        };
        if let Err(e) = res {
            failed = Some(e);
            continue;
        }
        if let Some(mut end) = file_end {
            end.oldest_open = oldest_open;
            if let Err(e) = sink.file_end(&end) {
                failed = Some(e);
            }
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

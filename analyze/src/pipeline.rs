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
use crate::records::{IssueRow, Keyed, PHASE_READER, Record, VSHARDS};
use crate::stats::Stats;
use trawl_proto::dns_answers::Answer;

/// Frames per tick.
pub const TICK_FRAMES: usize = 8192;
/// Capture time between timeout sweeps.
const SWEEP_EVERY_NS: i64 = 1_000_000_000;

/// Options of one analysis.
#[derive(Debug, Clone)]
pub struct Options {
    pub inputs: Vec<PathBuf>,
    /// The node each input was captured on (same order as `inputs`;
    /// empty when unknown).
    pub input_nodes: Vec<String>,
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
            k8s: Vec::new(),
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            flow: FlowConfig::default(),
            chunk_size: 4 << 20,
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
    /// Rows found by the reader (decode problems), forwarded by worker 0.
    reader_rows: Vec<Keyed>,
    /// The answers of the tick's DNS responses, by packet ordinal: every
    /// worker applies them to its own [`PeerNames`].
    dns: Vec<(u64, Vec<Answer>)>,
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
}

/// Runs an analysis, writing rows to `sink` in their final order.
pub fn run(opts: &Options, sink: &mut dyn Sink, progress: &Progress) -> Result<Outcome, Error> {
    // More workers than virtual shards would sit idle.
    let threads = opts.threads.clamp(1, VSHARDS as usize);
    let mut readers = Vec::new();
    let mut total = 0;
    for p in &opts.inputs {
        let chunk = if opts.inputs.len() > 1 { (opts.chunk_size / 4).max(1 << 16) } else { opts.chunk_size };
        let r = CaptureReader::open(p, progress.read.clone(), chunk)?;
        total += std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        readers.push(r);
    }
    progress.total_bytes.store(total, Ordering::Relaxed);
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
        let (t, r) = sync_channel(4);
        tick_txs.push(t);
        tick_rxs.push(r);
        let (t, r) = sync_channel(1);
        out_txs.push(t);
        out_rxs.push(r);
    }
    let flow_cfg = opts.flow;
    let schemas = &opts.schemas;
    let batches = sink.wants_batches();
    let ctx = Arc::new(Context { cluster: Cluster::load(&opts.k8s), input_nodes: opts.input_nodes.clone() });

    let (reader_res, shard_stats, write_res) = std::thread::scope(|s| {
        let reader = std::thread::Builder::new()
            .name("trawl-reader".into())
            .spawn_scoped(s, move || read_all(readers, tick_txs, opts.max_frag_datagrams, progress))
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
        let write_res = write_all(out_rxs, sink);
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
        let next = Tick {
            chunks: Vec::new(),
            pkts: Vec::with_capacity(TICK_FRAMES),
            frames: Arc::new(Vec::with_capacity(TICK_FRAMES)),
            first_ordinal: self.tick.last_ordinal + 1,
            now,
            last_ordinal: self.tick.last_ordinal,
            sweep: false,
            eof: false,
            reader_rows: Vec::new(),
            dns: Vec::new(),
        };
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

/// The reader thread: merges the files in time order, decodes, and cuts
/// ticks.
fn read_all(
    readers: Vec<CaptureReader>,
    txs: Vec<SyncSender<Arc<Tick>>>,
    max_frag: usize,
    progress: &Progress,
) -> Result<(Vec<InputInfo>, Stats), Error> {
    let mut stats = Stats::default();
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
    let mut tb = TickBuilder {
        tick: Tick {
            chunks: Vec::new(),
            pkts: Vec::with_capacity(TICK_FRAMES),
            frames: Arc::new(Vec::with_capacity(TICK_FRAMES)),
            first_ordinal: 1,
            now: i64::MIN,
            last_ordinal: 0,
            sweep: false,
            eof: false,
            reader_rows: Vec::new(),
            dns: Vec::new(),
        },
        last_sweep: None,
    };
    let mut defrag = Defrag::new(max_frag, 30 * 1_000_000_000);
    let mut ordinal = 0u64;
    let mut unknown_links: Vec<u32> = Vec::new();
    let issue_cap = 1_000_000;
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
        ordinal += 1;
        stats.frames += 1;
        stats.captured_bytes += f.len as u64;
        if f.orig_len > f.len {
            stats.snaplen_truncated_frames += 1;
        }
        let frame = &chunk[f.start as usize..(f.start + f.len) as usize];
        tb.tick.now = tb.tick.now.max(f.ts_ns);
        tb.tick.last_ordinal = ordinal;
        // The tick is not shared until it is sent: no copy is made here.
        Arc::make_mut(&mut tb.tick.frames).push(FrameRef {
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
                let ci = tb.chunk_index(&chunk);
                (p, ci, f.start)
            }
            Decoded::Fragment(piece) => {
                stats.ip_fragments += 1;
                let added = defrag.add(&piece, frame, f.ts_ns, ordinal);
                if let (Ok((datagram, _)), Some(last)) = (&added, Arc::make_mut(&mut tb.tick.frames).last_mut()) {
                    last.datagram = Some(*datagram);
                }
                match added {
                    Ok((_, Some(re))) => {
                        stats.ip_reassembled += 1;
                        tb.tick.chunks.push(Arc::new(re.data));
                        (re.packet, (tb.tick.chunks.len() - 1) as u32, 0)
                    }
                    Ok((_, None)) => {
                        maybe_flush(&mut tb, &txs, progress, ordinal)?;
                        continue;
                    }
                    Err(e) => {
                        tb.reader_issue(ordinal, issue("bad_fragment", "ip", e), &mut stats, issue_cap);
                        maybe_flush(&mut tb, &txs, progress, ordinal)?;
                        continue;
                    }
                }
            }
            Decoded::NotIp => {
                stats.non_ip_frames += 1;
                maybe_flush(&mut tb, &txs, progress, ordinal)?;
                continue;
            }
            Decoded::UnknownLink(l) => {
                stats.unknown_link_frames += 1;
                if !unknown_links.contains(&l) {
                    unknown_links.push(l);
                    tb.reader_issue(
                        ordinal,
                        issue(
                            "unknown_link_type",
                            "link",
                            format!(
                                "link type {} is not decoded; its frames are counted and skipped",
                                crate::input::link_name(l)
                            ),
                        ),
                        &mut stats,
                        issue_cap,
                    );
                }
                maybe_flush(&mut tb, &txs, progress, ordinal)?;
                continue;
            }
            Decoded::Malformed { layer, kind, detail } => {
                stats.malformed_frames += 1;
                tb.reader_issue(ordinal, issue(kind, layer, detail), &mut stats, issue_cap);
                maybe_flush(&mut tb, &txs, progress, ordinal)?;
                continue;
            }
        };
        stats.ip_packets += 1;
        if packet.ip_version == 4 {
            stats.ipv4_packets += 1;
        } else {
            stats.ipv6_packets += 1;
        }
        match packet.proto {
            6 => stats.tcp_packets += 1,
            17 => stats.udp_packets += 1,
            1 | 58 => stats.icmp_packets += 1,
            _ => stats.other_ip_packets += 1,
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
            tb.reader_issue(
                ordinal,
                issue(
                    kind,
                    layer,
                    "transport header cut short or malformed; the packet is counted but not assigned to a flow".into(),
                ),
                &mut stats,
                issue_cap,
            );
            maybe_flush(&mut tb, &txs, progress, ordinal)?;
            continue;
        }
        if packet.proto == 17 && packet.sport == 53 {
            // DNS answers name the addresses of later flows (kube::peers).
            let data = tb.tick.chunks.get(data_chunk as usize).map_or(&[][..], |c| c.as_slice());
            let start = base as usize + packet.payload_off;
            if let Some(answers) =
                data.get(start..start + packet.payload_len).and_then(trawl_proto::dns_answers::answers)
                && !answers.is_empty()
            {
                stats.dns_answers += answers.len() as u64;
                tb.tick.dns.push((ordinal, answers));
            }
        }
        let vshard = (FlowKey::of(&packet).shard_hash() % VSHARDS as u64) as u8;
        tb.tick.pkts.push(TickPkt {
            ordinal,
            ts: f.ts_ns,
            file_index,
            frame_number: f.number,
            wire_len: f.orig_len,
            chunk: data_chunk,
            base,
            ip: packet,
            vshard,
        });
        maybe_flush(&mut tb, &txs, progress, ordinal)?;
    }
    defrag.expire(i64::MAX);
    stats.ip_frag_overflows = defrag.overflows;
    stats.ip_frag_timeouts = defrag.timeouts;
    stats.ip_frag_errors = defrag.errors;
    let last = tb.take(true);
    send_tick(&txs, last);
    progress.frames.store(ordinal, Ordering::Relaxed);
    let infos: Vec<InputInfo> = cursors.into_iter().map(|c| c.reader.finish()).collect();
    stats.capture_dropped = infos.iter().filter_map(|i| i.capture_dropped).sum();
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
        for p in tick.pkts.iter().filter(|p| p.vshard as u32 % threads == me) {
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
        if tick.eof {
            table.finish();
        } else if tick.sweep {
            table.sweep(tick.now, tick.last_ordinal);
        }
        let mut rows = table.take_output();
        if me == 0 {
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
        let frames = (me == 0).then(|| (tick.first_ordinal, tick.frames.clone()));
        let out = WorkerOut { rows, flow_ids, frames };
        if tx.send(out).is_err() {
            break;
        }
        if tick.eof {
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

/// The writer: one result per worker per tick, merged by key.
fn write_all(rxs: Vec<Receiver<WorkerOut>>, sink: &mut dyn Sink) -> Result<(), Error> {
    let mut rows: Vec<Keyed> = Vec::new();
    let mut failed: Option<Error> = None;
    'ticks: loop {
        rows.clear();
        let mut batches = Vec::with_capacity(rxs.len());
        let mut index = PacketIndex::default();
        let mut flow_ids = Vec::new();
        for rx in &rxs {
            let Ok(out) = rx.recv() else { break 'ticks };
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
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

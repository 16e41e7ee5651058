//! Flow tracking for one shard: connection boundaries, orientation,
//! per-direction counters, Zeek-style state and history, TCP reassembly
//! and the hand-off of reassembled bytes to the L7 parsers.
//!
//! A shard sees every packet of its flows, in capture order (packets are
//! sharded by a symmetric hash of the 5-tuple). Time is the capture's:
//! idle timeouts and the linger of closed connections are measured
//! between packet timestamps, and swept at tick boundaries that are the
//! same for every shard.
//!
//! One file: a connection's life (orientation, counters, Zeek state and
//! history, reassembly hand-off, closing) is one state machine over one
//! `Flow`; the L7 layer lives in `l7.rs`. Tests are the last hundred lines.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use rustc_hash::FxBuildHasher;
use sha2::{Digest, Sha256};
use trawl_proto::detail::Detail;
use trawl_proto::dns::DnsConn;
use trawl_proto::exchange::{CloseReason, Exchange, Output};
use trawl_proto::grpc::Schemas;
use trawl_proto::parser::Parser;
use trawl_proto::registry::{self, Protocol};
use trawl_proto::{At, Limits};

use crate::community_id::community_id;
use crate::decode::{ACK, FIN, Packet, RST, SYN};
use crate::l7::{L7, L7Ctx};
use crate::reassembly::{Reassembler, StreamEvent};
use crate::records::{
    CallRow, DirRow, FlowRow, IssueRow, Keyed, PHASE_PACKET, PHASE_SWEEP, Record, StreamDigest, VSHARDS, tag, untag,
};
use crate::stats::Stats;
use crate::tcp_analysis::{Segment, TcpAnalysis};

/// Flow tracking settings.
#[derive(Debug, Clone, Copy)]
pub struct FlowConfig {
    /// A TCP connection idle this long (capture time) is closed.
    pub tcp_timeout_ns: i64,
    /// A UDP or ICMP flow idle this long is closed.
    pub udp_timeout_ns: i64,
    /// A closed TCP connection keeps absorbing late packets this long.
    pub close_linger_ns: i64,
    /// Bytes of flow state (the flows' own structures: addresses,
    /// counters, TCP state, reassembly and parser handles) held in all;
    /// each virtual shard gets its share, and past it the least recently
    /// active flows, those never answered first, are closed (`evicted`).
    pub max_flow_bytes: usize,
    /// Out-of-order bytes buffered per TCP direction.
    pub max_ooo_bytes: usize,
    /// Out-of-order bytes buffered by all flows in all (each virtual shard
    /// gets its share); past it, the direction that brought its shard over
    /// gives up its holes.
    pub max_total_ooo_bytes: usize,
    /// L7 caps.
    pub limits: Limits,
    /// Keep a sha256 of each reassembled direction (`trawl debug streams`).
    pub hash_streams: bool,
    /// Parse-issue rows kept in all (each virtual shard its share); the
    /// rest are counted.
    pub max_issues: u64,
    /// Unacknowledged segments the TCP analysis remembers in all (each
    /// virtual shard its share; each direction also stops at
    /// [`crate::tcp_analysis::MAX_UNACKED`]).
    pub max_total_unacked: usize,
}

/// The default flow-state budget ([`FlowConfig::max_flow_bytes`]): what
/// keeps a flood of ten million flows under 256 MB of peak memory
/// (docs/security.md), while no capture of the corpus or the benchmarks
/// evicts a flow (at half of it, the benchmark captures do).
pub const DEFAULT_MAX_FLOW_BYTES: usize = 32 << 20;

impl FlowConfig {
    /// One virtual shard's share of a budget of `total`: budgets are
    /// kept per virtual shard, so that which flows are evicted does not
    /// depend on how many workers share the shards.
    fn share(total: usize) -> usize {
        total.div_ceil(VSHARDS as usize).max(1)
    }
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            tcp_timeout_ns: 600 * 1_000_000_000,
            udp_timeout_ns: 120 * 1_000_000_000,
            close_linger_ns: 60 * 1_000_000_000,
            max_flow_bytes: DEFAULT_MAX_FLOW_BYTES,
            max_ooo_bytes: 1 << 20,
            max_total_ooo_bytes: 256 << 20,
            limits: Limits::default(),
            hash_streams: false,
            max_issues: 1 << 20,
            max_total_unacked: 1 << 21,
        }
    }
}

/// One packet as a shard sees it.
#[derive(Debug, Clone, Copy)]
pub struct Pkt<'a> {
    /// 1-based number of the packet across all inputs in merged order.
    pub ordinal: u64,
    pub ts: i64,
    pub file_index: u32,
    pub frame_number: u64,
    pub wire_len: u32,
    /// The flow's virtual shard (see [`crate::records::VSHARDS`]).
    pub vshard: u8,
    pub ip: &'a Packet,
    /// Transport payload as captured.
    pub payload: &'a [u8],
}

/// Direction-free identity of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    a: (IpAddr, u16),
    b: (IpAddr, u16),
    proto: u8,
}

/// The ports a packet is keyed by: for ICMP, the type and either its
/// counterpart type (echo request/reply and the like share a flow) or the
/// code, as Community ID pairs them.
fn key_ports(p: &Packet) -> (u16, u16) {
    match crate::community_id::icmp_ports(p.proto, p.sport, p.dport) {
        Some((a, b, _)) => (a, b),
        None => (p.sport, p.dport),
    }
}

impl FlowKey {
    pub fn of(p: &Packet) -> FlowKey {
        let (sp, dp) = key_ports(p);
        let s = (p.src, sp);
        let d = (p.dst, dp);
        if s <= d { FlowKey { a: s, b: d, proto: p.proto } } else { FlowKey { a: d, b: s, proto: p.proto } }
    }

    /// A hash that is the same for both directions and for every run.
    pub fn shard_hash(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = rustc_hash::FxHasher::default();
        self.hash(&mut h);
        let x = h.finish();
        // Mix the high bits down: Fx leaves the low bits weak.
        (x ^ (x >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ (x >> 32)
    }
}

// History letters, in Zeek's alphabet.
const H_SYN: u16 = 1;
const H_SYNACK: u16 = 2;
const H_ACK: u16 = 4;
const H_DATA: u16 = 8;
const H_FIN: u16 = 16;
const H_RST: u16 = 32;
const H_RETRANS: u16 = 64;
const H_ZWIN: u16 = 128;
const H_GAP: u16 = 256;

fn history_letter(bit: u16) -> char {
    match bit {
        H_SYN => 'S',
        H_SYNACK => 'H',
        H_ACK => 'A',
        H_DATA => 'D',
        H_FIN => 'F',
        H_RST => 'R',
        H_RETRANS => 'T',
        H_ZWIN => 'W',
        _ => 'G',
    }
}

struct Tcp {
    /// Sequence number of each side's first SYN.
    isn: [Option<u32>; 2],
    /// Reassembly and L7 state: allocated when the connection first
    /// carries a byte (or a FIN, or an acknowledgement of bytes), so that
    /// a SYN that is never answered costs only the structures here.
    streams: Option<Box<Streams>>,
    syn: bool,
    synack: bool,
    syn_ts: Option<i64>,
    client_isn: Option<u32>,
    rtt: Option<i64>,
    fin: [bool; 2],
    rst: [bool; 2],
    closed: bool,
    /// Application protocols seen in the connection's exchanges ([`APP_GRPC`], [`APP_GRAPHQL`]).
    apps: u8,
    analysis: TcpAnalysis,
}

/// What a TCP connection holds once bytes flow.
struct Streams {
    reasm: [Reassembler; 2],
    l7: L7,
    digest: Option<Box<Digest2>>,
}

impl Streams {
    fn ooo_bytes(&self) -> usize {
        self.reasm[0].ooo_bytes() + self.reasm[1].ooo_bytes()
    }

    fn gap_bytes(&self) -> u64 {
        self.reasm[0].gap_bytes + self.reasm[1].gap_bytes
    }
}

/// The flow-state bytes counted against [`FlowConfig::max_flow_bytes`]:
/// a flow's own structures and its entry in the table. (Out-of-order
/// bytes, remembered segments, L7 messages and bodies have caps of
/// their own.)
const FLOW_COST: usize =
    std::mem::size_of::<Flow>() + std::mem::size_of::<FlowKey>() + std::mem::size_of::<Slot>() + 8 + HISTORY_COST;
const TCP_COST: usize = std::mem::size_of::<Tcp>();
const STREAMS_COST: usize = std::mem::size_of::<Streams>();
const DNS_COST: usize = std::mem::size_of::<DnsConn>();
/// Below this, a parser's state is measured at every packet ([`FlowTable::parser_due`]).
const PARSER_MEASURED_ALWAYS: u32 = 64 << 10;
/// The history string's allocation (it holds a few letters).
const HISTORY_COST: usize = 16;
// What docs/architecture.md says an unanswered SYN costs.
const _: () = assert!(FLOW_COST + TCP_COST <= 900);

const APP_GRPC: u8 = 1;
const APP_GRAPHQL: u8 = 2;

struct Flow {
    id: u64,
    vshard: u8,
    client: (IpAddr, u16),
    server: (IpAddr, u16),
    proto: u8,
    ip_version: u8,
    orientation: &'static str,
    first_ts: i64,
    last_ts: i64,
    dirs: [DirRow; 2],
    history: String,
    hist_bits: [u16; 2],
    vlan: Option<u16>,
    file_index: u32,
    frame_number: u64,
    first_from_client: bool,
    tcp: Option<Box<Tcp>>,
    /// DNS over UDP, once a payload of the flow was a DNS message.
    dns: Option<Box<DnsConn>>,
    /// Flow-state bytes this flow counts against its shard's budget.
    cost: u32,
    /// Of `cost`, the bytes its L7 parser held when last measured.
    parser_bytes: u32,
    /// Payload bytes given to the parser since then.
    fed: u32,
}

impl Flow {
    /// Never answered: the flow's responder sent nothing (an unanswered
    /// SYN, a scan probe, a one-way UDP stream). Such flows go first
    /// when the budget is short.
    fn unanswered(&self) -> bool {
        self.dirs[1].packets == 0
    }
}

/// Where a flow stands in the eviction order, smallest first: answered
/// (never-answered flows go first), last activity, id.
type Rank = (bool, i64, u64);

/// A flow in the table, with what eviction orders it by kept beside the
/// pointer: choosing whom to evict reads every flow of a shard, and
/// reading that through each flow's box was a cache miss a flow (a
/// tenth of a SYN flood's time).
struct Slot {
    rank: Rank,
    cost: u32,
    flow: Box<Flow>,
}

impl Slot {
    fn new(flow: Box<Flow>) -> Slot {
        Slot { rank: (!flow.unanswered(), flow.last_ts, flow.id), cost: flow.cost, flow }
    }
}

type FlowMap = HashMap<FlowKey, Slot, FxBuildHasher>;

/// What one virtual shard holds and may hold.
#[derive(Default)]
struct Budget {
    flow_bytes: usize,
    ooo_bytes: usize,
    unacked: usize,
    issues: u64,
}

/// The flows of one shard.
pub struct FlowTable {
    cfg: FlowConfig,
    /// Protobuf schemas for gRPC payloads (`--proto-descriptors`).
    pub schemas: Option<Arc<Schemas>>,
    /// The flows of each virtual shard. Boxed: a packet takes its flow out
    /// of the map and puts it back, which should move a pointer, not the
    /// whole state.
    flows: Vec<FlowMap>,
    /// What each virtual shard holds against its share of the budgets.
    held: Vec<Budget>,
    out: Vec<Keyed>,
    key_ctx: (u8, u64, u8, u64),
    seq: u32,
    /// TCP expert flags of the last packet ([`crate::tcp_analysis::flag`]).
    pub last_expert: u16,
    pub stats: Stats,
}

fn well_known_server(a: u16, b: u16) -> Option<bool> {
    // Some(true) when `a` is the server port.
    if a == b {
        return None;
    }
    Some(a < b)
}

impl FlowTable {
    pub fn new(cfg: FlowConfig) -> FlowTable {
        FlowTable {
            cfg,
            schemas: None,
            flows: (0..VSHARDS).map(|_| FlowMap::default()).collect(),
            held: (0..VSHARDS).map(|_| Budget::default()).collect(),
            out: Vec::new(),
            key_ctx: (0, 0, PHASE_PACKET, 0),
            seq: 0,
            last_expert: 0,
            stats: Stats::default(),
        }
    }

    /// Rows produced since the last call.
    pub fn take_output(&mut self) -> Vec<Keyed> {
        std::mem::take(&mut self.out)
    }

    /// The rows produced so far of the virtual shards below `end`; the
    /// others stay for a later call.
    pub fn take_output_below(&mut self, end: u8) -> Vec<Keyed> {
        let (taken, kept) = std::mem::take(&mut self.out).into_iter().partition(|k| k.key.0 < end);
        self.out = kept;
        taken
    }

    pub fn len(&self) -> usize {
        self.flows.iter().map(|m| m.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.iter().all(|m| m.is_empty())
    }

    /// Flow-state bytes held by all flows (see [`FlowConfig::max_flow_bytes`]).
    pub fn flow_bytes(&self) -> usize {
        self.held.iter().map(|h| h.flow_bytes).sum()
    }

    /// The id of the oldest flow still open (the ordinal of its first
    /// packet).
    pub fn oldest_open(&self) -> Option<u64> {
        self.flows.iter().flat_map(|m| m.values()).map(|s| s.rank.2).min()
    }

    /// Every open flow of the virtual shards `shards` that `keep`
    /// accepts: its key and id, in id order.
    fn open_flows(&self, shards: std::ops::Range<u8>, keep: impl Fn(&Flow) -> bool) -> Vec<(u64, u8, FlowKey)> {
        let mut all: Vec<(u64, u8, FlowKey)> = self.flows[shards.start as usize..shards.end as usize]
            .iter()
            .flat_map(|m| m.iter())
            .filter(|(_, s)| keep(&s.flow))
            .map(|(k, s)| (s.flow.id, s.flow.vshard, *k))
            .collect();
        all.sort_unstable_by_key(|(id, _, _)| *id);
        all
    }

    /// Takes flow `k` of virtual shard `v` out of the table, its state
    /// no longer counted.
    fn remove(&mut self, v: u8, k: &FlowKey) -> Option<Box<Flow>> {
        let f = self.flows[v as usize].remove(k)?.flow;
        self.held[v as usize].flow_bytes -= f.cost as usize;
        Some(f)
    }

    /// Counts `bytes` more flow state for `f`.
    fn grow(&mut self, f: &mut Flow, bytes: usize) {
        f.cost += bytes as u32;
        self.held[f.vshard as usize].flow_bytes += bytes;
    }

    /// Counts what `f`'s parser holds now (`held`, from
    /// [`L7::held_bytes`] or the DNS state's) instead of what it held
    /// when last measured.
    fn recount_parser(&mut self, f: &mut Flow, held: usize) {
        let held = held.min(u32::MAX as usize / 2) as u32;
        let budget = &mut self.held[f.vshard as usize].flow_bytes;
        *budget = *budget - f.parser_bytes as usize + held as usize;
        f.cost = f.cost - f.parser_bytes + held;
        f.parser_bytes = held;
        f.fed = 0;
    }

    /// Whether `f`'s parser is due to be measured after `len` more
    /// payload bytes: at every packet while it holds little (measuring a
    /// small state costs tens of nanoseconds), then once the bytes fed
    /// since the last measure reach a sixteenth of what it held, so that
    /// measuring a large state (an HTTP/2 connection with hundreds of
    /// streams) is paid for by the bytes that could have grown it.
    fn parser_due(f: &mut Flow, len: u64) -> bool {
        f.fed = f.fed.saturating_add(len.min(u32::MAX as u64) as u32);
        f.parser_bytes < PARSER_MEASURED_ALWAYS || f.fed >= f.parser_bytes / 16
    }

    fn emit(&mut self, record: Record) {
        let (v, o, ph, f) = self.key_ctx;
        self.out.push(Keyed { key: (v, o, ph, f, self.seq), record });
        self.seq += 1;
    }

    /// Processes one packet; returns the id of the flow it was given to.
    pub fn packet(&mut self, p: &Pkt) -> u64 {
        self.key_ctx = (p.vshard, p.ordinal, PHASE_PACKET, 0);
        self.seq = 0;
        self.last_expert = 0;
        let key = FlowKey::of(p.ip);
        let cfg = self.cfg;
        // Taken out while the packet is applied, still counted as held.
        let mut flow = match self.flows[p.vshard as usize].remove(&key).map(|s| s.flow) {
            Some(f) => match self.ends_before(&f, p) {
                Some(reason) => {
                    self.held[p.vshard as usize].flow_bytes -= f.cost as usize;
                    let at = At { tag: tag(f.file_index, f.frame_number), ts_ns: f.last_ts };
                    self.finalize(f, reason, at);
                    None
                }
                None => Some(f),
            },
            None => None,
        }
        .unwrap_or_else(|| {
            let flow = self.new_flow(p);
            let v = p.vshard as usize;
            if self.held[v].flow_bytes + flow.cost as usize > FlowConfig::share(cfg.max_flow_bytes) {
                self.evict(p.vshard, flow.cost as usize);
            }
            self.held[v].flow_bytes += flow.cost as usize;
            flow
        });
        self.update(&mut flow, p, &cfg);
        let id = flow.id;
        let share = FlowConfig::share(cfg.max_flow_bytes);
        if flow.cost as usize > share {
            // One connection alone holds more than its shard may (a
            // parser made to hold thousands of pending requests with
            // huge headers): it is cut short itself. Later packets of
            // the connection start a new flow, read from the middle.
            self.held[p.vshard as usize].flow_bytes -= flow.cost as usize;
            self.finalize_evicted(flow);
            return id;
        }
        // What the packet made the flow's parser hold may have taken the
        // shard past its budget: other flows make room (this one is out
        // of the table, as the most recently active it would go last).
        if self.held[p.vshard as usize].flow_bytes > share {
            self.evict(p.vshard, 0);
        }
        self.flows[p.vshard as usize].insert(key, Slot::new(flow));
        id
    }

    /// Whether packet `p` starts a new connection (or flow) on the 5-tuple
    /// of `f`, and why `f` ends: a SYN on a closed connection or with
    /// another ISN, the linger after close, or an idle timeout.
    fn ends_before(&self, f: &Flow, p: &Pkt) -> Option<&'static str> {
        let idle = p.ts - f.last_ts;
        let is_syn = p.ip.proto == 6 && p.ip.tcp.flags & (SYN | ACK) == SYN;
        match &f.tcp {
            Some(t) if is_syn && (t.closed || t.client_isn.is_some_and(|isn| isn != p.ip.tcp.seq)) => {
                Some(if t.closed { closed_reason(t) } else { "port_reuse" })
            }
            Some(t) if t.closed && idle > self.cfg.close_linger_ns => Some(closed_reason(t)),
            Some(_) if idle > self.cfg.tcp_timeout_ns => Some("idle_timeout"),
            None if idle > self.cfg.udp_timeout_ns => Some("idle_timeout"),
            _ => None,
        }
    }

    /// Virtual shard `v` cannot hold `room` more bytes of flow state:
    /// its least recently active flows are closed, those never answered
    /// before any other, an eighth of the shard's flows at a time (at
    /// least enough to make room), so that a flood of new flows costs one
    /// scan per hundreds of flows, not one per flow. Their rows are written as
    /// usual, with end reason `evicted` (or how they had already ended).
    fn evict(&mut self, v: u8, room: usize) {
        let budget = FlowConfig::share(self.cfg.max_flow_bytes);
        let map = &self.flows[v as usize];
        let mut all: Vec<(Rank, u32)> = map.values().map(|s| (s.rank, s.cost)).collect();
        let held = self.held[v as usize].flow_bytes;
        // An eighth of the shard at a time: finding them costs a visit to
        // every flow of the shard, shared by many.
        let mut n = (all.len() / 8).max(1).min(all.len());
        if n < all.len() {
            all.select_nth_unstable_by_key(n, |e| e.0);
        }
        let mut freed: usize = all[..n].iter().map(|e| e.1 as usize).sum();
        let mut last = all[..n].iter().map(|e| e.0).max();
        if held - freed + room > budget {
            // Not room enough yet (flows of unequal cost): in order, as
            // many more as it takes.
            all[n..].sort_unstable_by_key(|e| e.0);
            while n < all.len() && held - freed + room > budget {
                freed += all[n].1 as usize;
                last = Some(all[n].0);
                n += 1;
            }
        }
        // Ranks are unique (they end with the flow id): the flows chosen
        // are those ranked up to the last one chosen.
        let Some(last) = last else { return };
        let mut chosen: Vec<(u64, FlowKey)> =
            map.iter().filter(|(_, s)| s.rank <= last).map(|(k, s)| (s.rank.2, *k)).collect();
        chosen.sort_unstable_by_key(|(id, _)| *id);
        for (_, k) in chosen {
            if let Some(f) = self.remove(v, &k) {
                self.finalize_evicted(f);
            }
        }
    }

    /// Writes the row of a flow closed to stay within the budget (no
    /// longer counted), with end reason `evicted` unless it had ended.
    fn finalize_evicted(&mut self, f: Box<Flow>) {
        self.stats.flow_table_evictions += 1;
        self.stats.flow_table_evictions_answered += !f.unanswered() as u64;
        let at = At { tag: tag(f.file_index, f.frame_number), ts_ns: f.last_ts };
        let reason = f.tcp.as_ref().filter(|t| t.closed).map_or("evicted", |t| closed_reason(t));
        self.finalize(f, reason, at);
    }

    fn new_flow(&mut self, p: &Pkt) -> Box<Flow> {
        let ip = p.ip;
        let (sp, dp) = key_ports(ip);
        let s = (ip.src, sp);
        let d = (ip.dst, dp);
        let flags = ip.tcp.flags;
        let (client_is_src, orientation) = if ip.proto == 6 && flags & (SYN | ACK) == SYN {
            (true, "syn")
        } else if ip.proto == 6 && flags & (SYN | ACK) == SYN | ACK {
            (false, "synack")
        } else if matches!(ip.proto, 1 | 58) {
            (true, "first_packet")
        } else {
            match well_known_server(sp, dp) {
                Some(src_is_server) => (!src_is_server, "port"),
                None => (true, "first_packet"),
            }
        };
        let (client, server) = if client_is_src { (s, d) } else { (d, s) };
        let tcp = (ip.proto == 6).then(|| {
            Box::new(Tcp {
                isn: [None; 2],
                streams: None,
                syn: false,
                synack: false,
                syn_ts: None,
                client_isn: None,
                rtt: None,
                fin: [false; 2],
                rst: [false; 2],
                closed: false,
                apps: 0,
                analysis: TcpAnalysis::default(),
            })
        });
        let cost = FLOW_COST + if tcp.is_some() { TCP_COST } else { 0 };
        Box::new(Flow {
            id: p.ordinal,
            vshard: p.vshard,
            client,
            server,
            proto: ip.proto,
            ip_version: ip.ip_version,
            orientation,
            first_ts: p.ts,
            last_ts: p.ts,
            dirs: [DirRow::default(), DirRow::default()],
            history: String::new(),
            hist_bits: [0; 2],
            vlan: ip.vlan,
            file_index: p.file_index,
            frame_number: p.frame_number,
            first_from_client: client_is_src,
            tcp,
            dns: None,
            cost: cost as u32,
            parser_bytes: 0,
            fed: 0,
        })
    }

    /// The reassembly and L7 state of a connection that starts carrying
    /// bytes, as it would have been had it been there from the first
    /// packet.
    fn streams_for(&mut self, f: &mut Flow, t: &Tcp) -> Box<Streams> {
        let mut reasm =
            [Reassembler::with_limit(self.cfg.max_ooo_bytes), Reassembler::with_limit(self.cfg.max_ooo_bytes)];
        for (r, isn) in reasm.iter_mut().zip(t.isn) {
            if let Some(isn) = isn {
                r.on_syn(isn);
            }
        }
        // The L7 layer is told the ports of the flow's first packet.
        let ports = if f.first_from_client { (f.client.1, f.server.1) } else { (f.server.1, f.client.1) };
        self.grow(f, STREAMS_COST);
        Box::new(Streams { reasm, l7: L7::new(ports), digest: self.cfg.hash_streams.then(Digest2::new) })
    }

    /// Applies a packet to its flow.
    fn update(&mut self, f: &mut Flow, p: &Pkt, cfg: &FlowConfig) {
        let ip = p.ip;
        let (sp, _) = key_ports(ip);
        let dir = if (ip.src, sp) == f.client && !(f.client == f.server && f.dirs[0].packets > f.dirs[1].packets) {
            0
        } else {
            1
        };
        f.last_ts = f.last_ts.max(p.ts);
        let payload_len = (p.payload.len() + ip.missing) as u64;
        {
            let d = &mut f.dirs[dir];
            d.packets += 1;
            d.bytes += p.wire_len as u64;
            d.payload_bytes += if ip.proto == 6 || ip.proto == 17 { payload_len } else { 0 };
            d.first_ts.get_or_insert(p.ts);
            d.last_ts = Some(p.ts);
        }
        let at = At { tag: tag(p.file_index, p.frame_number), ts_ns: p.ts };
        let Some(mut t) = f.tcp.take() else {
            if payload_len > 0 {
                note_history(f, dir, H_DATA);
            }
            // A flow found to be DNS parses every later message; the
            // first is parsed once, to find it and to read it.
            let header = if ip.proto != 17 || p.payload.is_empty() {
                None
            } else if f.dns.is_some() {
                Some(trawl_proto::dns::header(p.payload))
            } else {
                registry::dns_header(p.payload, f.client.1, f.server.1).map(Some)
            };
            if let Some(header) = header {
                if f.dns.is_none() {
                    self.grow(f, DNS_COST);
                }
                let conn = f.dns.get_or_insert_with(|| Box::new(DnsConn::new(cfg.limits)));
                conn.message_with_header(at, p.payload, header);
                let out = conn.drain();
                let held = conn.held_bytes();
                self.emit_l7(f, 0, Protocol::Dns.layer(), out);
                self.recount_parser(f, held);
            }
            return;
        };
        let flags = ip.tcp.flags;
        f.dirs[dir].tcp_flags |= flags;
        let th = &ip.tcp;
        if flags & SYN != 0 {
            if flags & ACK == 0 {
                note_history(f, dir, H_SYN);
                if dir == 0 {
                    // Like tshark's initial RTT, the handshake is timed
                    // from the last (re)transmission of the SYN.
                    t.syn = true;
                    t.syn_ts = Some(p.ts);
                    t.client_isn.get_or_insert(th.seq);
                }
            } else {
                note_history(f, dir, H_SYNACK);
                if dir == 1 {
                    t.synack = true;
                }
            }
            t.isn[dir].get_or_insert(th.seq);
            if let Some(s) = t.streams.as_mut() {
                s.reasm[dir].on_syn(th.seq);
            }
        } else if flags & ACK != 0 && payload_len == 0 && flags & (FIN | RST) == 0 {
            note_history(f, dir, H_ACK);
        }
        // The handshake RTT as tshark's tcp.analysis.initial_rtt: from the
        // (last) SYN to the first packet with ACK and without SYN, in
        // either direction and whether or not the SYN-ACK was captured
        // (asymmetric routing: a capture point that sees one way only).
        // Unlike tshark, a RST does not complete a handshake: tshark times
        // a refused connection's RST-ACK too, but shows the figure only
        // on later frames, which a refused connection does not have.
        if t.rtt.is_none() && flags & (SYN | ACK | RST) == ACK {
            t.rtt = t.syn_ts.map(|s| p.ts - s);
        }
        let seg = Segment {
            ts: p.ts,
            seq: th.seq,
            ack: th.ack,
            len: payload_len as u32,
            flags,
            window: th.window,
            wscale: th.wscale,
        };
        let remembered = t.analysis.remembered();
        let held = &mut self.held[f.vshard as usize];
        self.last_expert = t.analysis.packet(dir, &seg, t.rtt, held.unacked < FlowConfig::share(cfg.max_total_unacked));
        held.unacked = (held.unacked + t.analysis.remembered()).saturating_sub(remembered);
        if payload_len > 0 {
            note_history(f, dir, H_DATA);
        }
        if flags & FIN != 0 {
            note_history(f, dir, H_FIN);
            t.fin[dir] = true;
        }
        if th.window == 0 && flags & (SYN | RST | FIN) == 0 {
            note_history(f, dir, H_ZWIN);
        }
        let data_seq = if flags & SYN != 0 { th.seq.wrapping_add(1) } else { th.seq };
        let carries = payload_len > 0 || flags & FIN != 0;
        // An acknowledgement of bytes of the other side that were not
        // captured (they become a gap), as the reassembler would take it.
        let acks_bytes = flags & ACK != 0
            && t.isn[1 - dir]
                .is_some_and(|isn| (1..=1 << 30).contains(&(th.ack.wrapping_sub(isn).wrapping_sub(1) as i32)));
        if t.streams.is_none() && (carries || acks_bytes) {
            t.streams = Some(self.streams_for(f, &t));
        }
        let (mut retransmitted, mut gapped) = (false, false);
        if let Some(s) = t.streams.as_deref_mut() {
            let retrans_before = s.reasm[dir].retransmissions;
            let gap_before = s.gap_bytes();
            let ooo_before = s.ooo_bytes();
            // Reassemble, handing the bytes straight to L7.
            let ctx = L7Ctx { limits: cfg.limits, schemas: &self.schemas };
            let clean = t.syn && t.synack;
            let held = &mut self.held[f.vshard as usize];
            let Streams { reasm, l7, digest } = s;
            if carries {
                let started = clean && reasm[dir].started();
                reasm[dir].segment(data_seq, p.payload, ip.missing, flags & FIN != 0, at, &mut |e| {
                    feed(l7, digest, &ctx, started, dir, e)
                });
                if held.ooo_bytes + reasm[dir].ooo_bytes() > FlowConfig::share(cfg.max_total_ooo_bytes) {
                    self.stats.tcp_shard_ooo_overflows += 1;
                    reasm[dir].give_up_holes(at, &mut |e| feed(l7, digest, &ctx, started, dir, e));
                }
            }
            if flags & ACK != 0 {
                let started = clean && reasm[1 - dir].started();
                reasm[1 - dir].on_peer_ack(th.ack, at, &mut |e| feed(l7, digest, &ctx, started, 1 - dir, e));
            }
            held.ooo_bytes = (held.ooo_bytes + s.ooo_bytes()).saturating_sub(ooo_before);
            t.apps |= self.drain_l7(f, s);
            if Self::parser_due(f, payload_len) {
                self.recount_parser(f, s.l7.held_bytes());
            }
            retransmitted = s.reasm[dir].retransmissions > retrans_before;
            gapped = s.gap_bytes() > gap_before;
        }
        if retransmitted {
            note_history(f, dir, H_RETRANS);
        }
        if flags & RST != 0 {
            note_history(f, dir, H_RST);
            t.rst[dir] = true;
        }
        let ended = t.streams.as_ref().is_some_and(|s| s.reasm[0].ended() && s.reasm[1].ended());
        if flags & RST != 0 && !t.closed {
            self.close_tcp(f, &mut t, at, CloseReason::Reset);
        } else if !t.closed && ended {
            self.close_tcp(f, &mut t, at, CloseReason::Fin);
        }
        if t.closed && f.parser_bytes > 0 {
            // What is left once the parser emitted everything.
            self.recount_parser(f, t.streams.as_ref().map_or(0, |s| s.l7.held_bytes()));
        }
        if gapped {
            note_history(f, dir, H_GAP);
        }
        f.tcp = Some(t);
    }

    fn close_tcp(&mut self, f: &mut Flow, t: &mut Tcp, at: At, reason: CloseReason) {
        t.closed = true;
        let Some(s) = t.streams.as_deref_mut() else { return };
        let ctx = L7Ctx { limits: self.cfg.limits, schemas: &self.schemas };
        let clean = t.syn && t.synack;
        let held = &mut self.held[f.vshard as usize];
        held.ooo_bytes = held.ooo_bytes.saturating_sub(s.ooo_bytes());
        for d in 0..2 {
            let Streams { reasm, l7, digest } = &mut *s;
            let started = clean && reasm[d].started();
            reasm[d].flush(at, &mut |e| feed(l7, digest, &ctx, started, d, e));
        }
        s.l7.close(at, reason);
        t.apps |= self.drain_l7(f, s);
        if reason == CloseReason::Fin {
            s.l7.retire();
        }
    }

    /// Emits what the connection's parser produced; returns the
    /// [`APP_GRPC`]/[`APP_GRAPHQL`] bits of what it saw.
    fn drain_l7(&mut self, f: &Flow, s: &mut Streams) -> u8 {
        let (requester, outs) = s.l7.drain();
        let mut apps = 0;
        for (layer, out) in outs.into_iter().flatten() {
            apps |= self.emit_l7(f, requester, layer, out);
        }
        apps
    }

    /// Emits the exchanges and issues an L7 parser produced on flow `f`
    /// (`requester`: the direction that sends requests); returns the
    /// [`APP_GRPC`]/[`APP_GRAPHQL`] bits of what it saw.
    fn emit_l7(&mut self, f: &Flow, requester: usize, layer: &'static str, out: Output) -> u8 {
        let (req_ep, resp_ep) = if requester == 0 { (f.client, f.server) } else { (f.server, f.client) };
        let mut apps = 0;
        for issue in out.issues {
            let (file_index, frame) = untag(issue.at.tag);
            self.issue(IssueRow {
                flow_id: Some(f.id),
                file_index,
                frame_number: Some(frame),
                ts: Some(issue.at.ts_ns),
                layer,
                kind: issue.kind,
                detail: issue.detail,
            });
        }
        for mut ex in out.exchanges {
            let protocol = self.classify(&mut ex, layer, f.proto == 6);
            apps |= match protocol {
                "grpc" => APP_GRPC,
                "graphql" => APP_GRAPHQL,
                _ => 0,
            };
            self.stats.api_calls += 1;
            self.emit(Record::Call(Box::new(CallRow {
                flow_id: f.id,
                protocol,
                src_ip: req_ep.0,
                src_port: req_ep.1,
                dst_ip: resp_ep.0,
                dst_port: resp_ep.1,
                exchange: ex,
            })));
        }
        apps
    }

    /// Names an exchange's application protocol (recognising GraphQL on
    /// the way) and counts it.
    fn classify(&mut self, ex: &mut Exchange, layer: &'static str, over_tcp: bool) -> &'static str {
        let (request, response) = (ex.request.is_some() as u64, ex.response.is_some() as u64);
        let st = &mut self.stats;
        match &ex.detail {
            Detail::WebSocket(_) => {
                st.websocket_messages += 1;
                return "websocket";
            }
            Detail::Db(db) => {
                st.db_requests += request;
                st.db_errors += (db.success == Some(false)) as u64;
                return layer;
            }
            Detail::Kafka(_) => {
                st.kafka_requests += request;
                st.kafka_responses += response;
                return "kafka";
            }
            Detail::Amqp(a) => {
                st.amqp_methods += 1 + a.reply_method.is_some() as u64;
                return "amqp";
            }
            Detail::Redis(_) => {
                st.redis_commands += request;
                st.redis_replies += response;
                return "redis";
            }
            Detail::Tls(_) => {
                st.tls_client_hellos += request;
                st.tls_server_hellos += response;
                return "tls";
            }
            Detail::Dns(_) => {
                st.dns_queries += request;
                st.dns_responses += response;
                if over_tcp {
                    st.dns_tcp_queries += request;
                    st.dns_tcp_responses += response;
                }
                return "dns";
            }
            Detail::Http | Detail::Grpc(_) | Detail::Graphql(_) => {}
        }
        // HTTP/2 messages are those read from HEADERS (stream 1 of an h2c
        // Upgrade carries the HTTP/1.1 request, counted as HTTP/1).
        let has = |m: &Option<trawl_proto::exchange::Message>| {
            m.as_ref()
                .is_some_and(|m| m.version.is_none() && !matches!(m.start, trawl_proto::exchange::StartLine::Unknown))
                as u64
        };
        if ex.stream_id.is_some() {
            st.http2_requests += has(&ex.request);
            st.http2_responses += has(&ex.response);
        } else {
            st.http_requests += request;
            st.http_responses += response;
        }
        st.http_upgrades += ex.upgrade.is_some() as u64;
        let trunc = |m: &Option<trawl_proto::exchange::Message>| m.as_ref().is_some_and(|m| m.body_truncated) as u64;
        st.http_bodies_truncated += trunc(&ex.request) + trunc(&ex.response);
        if let Detail::Grpc(g) = &ex.detail {
            st.grpc_calls += 1;
            st.grpc_messages += (g.messages[0] + g.messages[1]) as u64;
            return "grpc";
        }
        if let Some(op) = trawl_proto::graphql::inspect(ex) {
            ex.detail = Detail::Graphql(Box::new(op));
            self.stats.graphql_operations += 1;
            return "graphql";
        }
        "http"
    }

    /// Records a parse issue (capped).
    pub fn issue(&mut self, row: IssueRow) {
        let held = &mut self.held[self.key_ctx.0 as usize];
        if held.issues >= FlowConfig::share(self.cfg.max_issues as usize) as u64 {
            self.stats.parse_issues_dropped += 1;
            return;
        }
        held.issues += 1;
        self.stats.parse_issues += 1;
        self.emit(Record::Issue(Box::new(row)));
    }

    /// Closes flows idle past their timeout at capture time `now`.
    /// `tick` is the ordinal the rows are keyed by.
    pub fn sweep(&mut self, now: i64, tick: u64) {
        let cfg = self.cfg;
        let expired = self.open_flows(0..VSHARDS, |f| {
            let idle = now - f.last_ts;
            match &f.tcp {
                Some(t) if t.closed => idle > cfg.close_linger_ns,
                Some(_) => idle > cfg.tcp_timeout_ns,
                None => idle > cfg.udp_timeout_ns,
            }
        });
        for (id, v, k) in expired {
            if let Some(f) = self.remove(v, &k) {
                self.key_ctx = (f.vshard, tick, PHASE_SWEEP, id);
                self.seq = 0;
                let at = At { tag: tag(f.file_index, f.frame_number), ts_ns: f.last_ts };
                let reason = f.tcp.as_ref().filter(|t| t.closed).map_or("idle_timeout", |t| closed_reason(t));
                self.finalize(f, reason, at);
            }
        }
    }

    /// End of input: every flow is closed, in flow id order.
    #[cfg(test)]
    pub fn finish(&mut self) {
        self.finish_vshards(0..VSHARDS);
    }

    /// Closes every flow of the virtual shards `range`, as [`FlowTable::finish`].
    pub fn finish_vshards(&mut self, range: std::ops::Range<u8>) {
        for (id, v, k) in self.open_flows(range, |_| true) {
            if let Some(f) = self.remove(v, &k) {
                self.key_ctx = (f.vshard, u64::MAX, PHASE_SWEEP, id);
                self.seq = 0;
                let at = At { tag: tag(f.file_index, f.frame_number), ts_ns: f.last_ts };
                let reason = f.tcp.as_ref().filter(|t| t.closed).map_or("capture_end", |t| closed_reason(t));
                self.finalize(f, reason, at);
            }
        }
    }

    fn finalize(&mut self, mut f: Box<Flow>, reason: &'static str, at: At) {
        let mut l7 = Vec::new();
        let mut digest = None;
        let mut rtt = None;
        let conn_state;
        let zeek;
        let mut metrics = None;
        if let Some(mut t) = f.tcp.take() {
            if !t.closed {
                let why = close_reason_of(reason);
                self.close_tcp(&mut f, &mut t, at, why);
            }
            let held = &mut self.held[f.vshard as usize];
            held.unacked = held.unacked.saturating_sub(t.analysis.remembered());
            let mut m = t.analysis.finish();
            let mut streams = t.streams.take();
            let none = [Reassembler::default(), Reassembler::default()];
            let reasm = streams.as_ref().map_or(&none, |s| &s.reasm);
            m.resent_segments = (reasm[0].retransmissions + reasm[1].retransmissions).min(u32::MAX as u64) as u32;
            self.stats.tcp_retransmissions += m.retransmissions() as u64;
            self.stats.tcp_unacked_dropped += m.unacked_dropped as u64;
            self.stats.tcp_out_of_order += m.out_of_order as u64;
            self.stats.tcp_dup_acks += m.dup_acks as u64;
            self.stats.tcp_zero_windows += m.zero_windows as u64;
            self.stats.tcp_rst_packets += m.rst_packets as u64;
            self.stats.tcp_refused += (m.completeness == 33) as u64;
            metrics = Some(Box::new(m));
            for (dir, r) in f.dirs.iter_mut().zip(reasm) {
                dir.stream_bytes = r.stream_bytes;
                dir.gap_bytes = r.gap_bytes;
                self.stats.tcp_ooo_overflows += r.ooo_overflows;
                self.stats.tcp_gap_bytes += r.gap_bytes;
                self.stats.tcp_stream_bytes += r.stream_bytes;
            }
            if let Some((protocol, c)) = streams.as_ref().and_then(|s| s.l7.outcome()) {
                l7.extend(protocol.labels());
                self.stats.http2_frames += c.frames.iter().sum::<u64>();
                self.stats.http2_headers_frames += c.frames[trawl_proto::h2::kind::HEADERS as usize];
                self.stats.http2_data_frames += c.frames[trawl_proto::h2::kind::DATA as usize];
                self.stats.http2_streams += c.streams;
                self.stats.hpack_unknown_fields += c.hpack_unknown;
                self.stats.http2_resyncs += c.resyncs;
                self.stats.requests_given_up += c.given_up;
                let [frontend, backend] = c.messages;
                self.stats.pgsql_frontend_messages += frontend;
                self.stats.pgsql_backend_messages += backend;
            }
            if t.apps & APP_GRPC != 0 {
                l7.push("gRPC");
            }
            if t.apps & APP_GRAPHQL != 0 {
                l7.push("GraphQL");
            }
            rtt = t.rtt;
            let established = t.syn && t.synack;
            let (fin_c, fin_s, rst_c, rst_s) = (t.fin[0], t.fin[1], t.rst[0], t.rst[1]);
            conn_state = if rst_c || rst_s || (fin_c && fin_s) {
                "closed"
            } else if t.syn && t.rtt.is_none() {
                "in_progress"
            } else {
                "open"
            };
            zeek = zeek_state(t.syn, t.synack, established, fin_c, fin_s, rst_c, rst_s, f.dirs[1].packets > 0);
            let d = match streams.as_mut() {
                Some(s) => s.digest.take(),
                None => self.cfg.hash_streams.then(Digest2::new),
            };
            if let Some(d) = d {
                let Digest2 { hashers: [h0, h1], bytes } = *d;
                digest = Some(Box::new(StreamDigest {
                    dirs: [
                        (bytes[0], crate::input::hex(&h0.finalize())),
                        (bytes[1], crate::input::hex(&h1.finalize())),
                    ],
                    first_from_client: f.first_from_client,
                }));
            }
            self.stats.tcp_flows += 1;
        } else {
            let both = f.dirs[0].packets > 0 && f.dirs[1].packets > 0;
            zeek = if both {
                "SF"
            } else if f.dirs[0].packets > 0 {
                "S0"
            } else {
                "SHR"
            };
            conn_state = if reason == "idle_timeout" { "closed" } else { "open" };
            if let Some(mut conn) = f.dns.take() {
                conn.on_close(at, close_reason_of(reason));
                self.stats.requests_given_up += conn.counts().given_up;
                let out = conn.drain();
                self.emit_l7(&f, 0, Protocol::Dns.layer(), out);
                l7.push("DNS");
            }
            if f.proto == 17 {
                self.stats.udp_flows += 1;
            } else {
                self.stats.other_flows += 1;
            }
        }
        self.stats.flows += 1;
        let protocol = match f.proto {
            6 => "tcp".to_string(),
            17 => "udp".to_string(),
            1 => "icmp".to_string(),
            58 => "icmpv6".to_string(),
            n => format!("ip-{n}"),
        };
        let row = FlowRow {
            flow_id: f.id,
            community_id: community_id(0, f.client.0, f.server.0, f.proto, f.client.1, f.server.1),
            protocol,
            ip_version: f.ip_version,
            src_ip: f.client.0,
            src_port: f.client.1,
            dst_ip: f.server.0,
            dst_port: f.server.1,
            orientation: f.orientation,
            ts: f.first_ts,
            end_ts: f.last_ts,
            conn_state,
            zeek_state: zeek,
            history: f.history,
            end_reason: reason,
            dirs: f.dirs,
            handshake_rtt_ns: rtt,
            tcp: metrics,
            l7_protocols: l7,
            vlan: f.vlan,
            file_index: f.file_index,
            frame_number: f.frame_number,
            digest,
        };
        self.emit(Record::Flow(Box::new(row)));
    }
}

/// How the L7 layer hears of a flow ended for `end_reason`.
fn close_reason_of(end_reason: &str) -> CloseReason {
    match end_reason {
        "capture_end" => CloseReason::CaptureEnd,
        "evicted" => CloseReason::Evicted,
        _ => CloseReason::Timeout,
    }
}

fn closed_reason(t: &Tcp) -> &'static str {
    if t.rst[0] || t.rst[1] { "rst" } else { "fin" }
}

#[allow(clippy::too_many_arguments)]
fn zeek_state(
    syn: bool,
    synack: bool,
    established: bool,
    fin_c: bool,
    fin_s: bool,
    rst_c: bool,
    rst_s: bool,
    server_replied: bool,
) -> &'static str {
    if established {
        return match (fin_c, fin_s, rst_c, rst_s) {
            (_, _, true, _) => "RSTO",
            (_, _, _, true) => "RSTR",
            (true, true, _, _) => "SF",
            (true, false, _, _) => "S2",
            (false, true, _, _) => "S3",
            _ => "S1",
        };
    }
    if syn {
        return if rst_s {
            "REJ"
        } else if rst_c {
            "RSTOS0"
        } else if fin_c {
            "SH"
        } else if !server_replied {
            "S0"
        } else {
            "OTH"
        };
    }
    if synack {
        return if rst_s {
            "RSTRH"
        } else if fin_s {
            "SHR"
        } else {
            "OTH"
        };
    }
    "OTH"
}

fn note_history(f: &mut Flow, dir: usize, bit: u16) {
    if f.hist_bits[dir] & bit == 0 {
        f.hist_bits[dir] |= bit;
        let c = history_letter(bit);
        f.history.push(if dir == 0 { c } else { c.to_ascii_lowercase() });
    }
}

/// Hands one reassembled event to the L7 layer, hashing its bytes first
/// when streams are hashed.
fn feed(
    l7: &mut L7,
    digest: &mut Option<Box<Digest2>>,
    ctx: &L7Ctx<'_>,
    started_clean: bool,
    dir: usize,
    e: StreamEvent<'_>,
) {
    if let (Some(d), StreamEvent::Data { bytes, .. }) = (digest.as_mut(), &e) {
        d.hashers[dir].update(bytes);
        d.bytes[dir] += bytes.len() as u64;
    }
    l7.feed(ctx, started_clean, dir, e);
}

/// Running sha256 and byte count of each direction (`trawl debug streams`).
struct Digest2 {
    hashers: [Sha256; 2],
    bytes: [u64; 2],
}

impl Digest2 {
    fn new() -> Box<Digest2> {
        Box::new(Digest2 { hashers: [Sha256::new(), Sha256::new()], bytes: [0; 2] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::TcpMeta;

    fn udp(i: u16) -> Packet {
        Packet {
            vlan: None,
            ip_version: 4,
            src: IpAddr::from([10, 0, 0, 1]),
            dst: IpAddr::from([10, 0, 0, 2]),
            proto: 17,
            sport: 40000 + i,
            dport: 53,
            tcp: TcpMeta::default(),
            payload_off: 0,
            payload_len: 0,
            missing: 0,
            l4_error: None,
        }
    }

    /// Gives the table packet number `n` (1-based): data from
    /// 10.0.0.1:40000 to port 80 at sequence number `seq`, mid-stream.
    fn tcp_data(t: &mut FlowTable, n: u64, seq: u32, data: &[u8]) {
        let mut tcp = udp(0);
        tcp.proto = 6;
        tcp.dport = 80;
        tcp.tcp = TcpMeta { seq, ack: 1, flags: 0x18, window: 100, ..TcpMeta::default() };
        t.packet(&Pkt {
            ordinal: n,
            ts: n as i64,
            file_index: 0,
            frame_number: n,
            wire_len: 54 + data.len() as u32,
            vshard: 0,
            ip: &tcp,
            payload: data,
        });
    }

    #[test]
    fn shard_out_of_order_budget_is_enforced() {
        // Every flow here is in virtual shard 0, which has a 64th of the budget.
        let mut t = FlowTable::new(FlowConfig { max_total_ooo_bytes: 100 * VSHARDS as usize, ..FlowConfig::default() });
        // Mid-stream data from one side; then segments far ahead of it.
        for (i, seq) in [1000u32, 2000, 3000, 4000].into_iter().enumerate() {
            tcp_data(&mut t, i as u64 + 1, seq, &[b'x'; 60]);
        }
        assert!(t.held[0].ooo_bytes <= 100, "{}", t.held[0].ooo_bytes);
        assert!(t.stats.tcp_shard_ooo_overflows >= 1);
        t.finish();
        assert_eq!(t.held[0].ooo_bytes, 0);
        assert_eq!(t.stats.tcp_stream_bytes, 240);
        assert_eq!(t.stats.tcp_gap_bytes, 3 * 940);
    }

    #[test]
    fn shard_unacked_segment_budget_is_enforced_and_counted() {
        // A capture that sees one direction only: nothing is ever
        // acknowledged, so every data segment would be remembered.
        let mut t = FlowTable::new(FlowConfig { max_total_unacked: 10 * VSHARDS as usize, ..FlowConfig::default() });
        for i in 0..50u32 {
            tcp_data(&mut t, i as u64 + 1, 1000 + i * 100, &[b'x'; 100]);
        }
        assert_eq!(t.held[0].unacked, 10);
        t.finish();
        assert_eq!(t.held[0].unacked, 0);
        assert_eq!(t.stats.tcp_unacked_dropped, 40);
        // The goodput does not depend on what was remembered.
        let rows = t.take_output();
        let m = rows.iter().find_map(|r| if let Record::Flow(f) = &r.record { f.tcp.clone() } else { None });
        assert_eq!(m.map(|m| (m.goodput_bytes, m.unacked_dropped)), Some((5000, 40)));
    }

    #[test]
    fn flow_table_full_evicts_the_stalest_and_loses_nothing() {
        // Room for ten UDP flows in virtual shard 0.
        let mut t =
            FlowTable::new(FlowConfig { max_flow_bytes: 10 * FLOW_COST * VSHARDS as usize, ..FlowConfig::default() });
        for i in 0..50u16 {
            let ip = udp(i);
            t.packet(&Pkt {
                ordinal: i as u64 + 1,
                ts: i as i64 * 1000,
                file_index: 0,
                frame_number: i as u64 + 1,
                wire_len: 60,
                vshard: 0,
                ip: &ip,
                payload: &[],
            });
        }
        assert!(t.len() <= 10);
        t.finish();
        let rows = t.take_output();
        let mut ids: Vec<u64> =
            rows.iter().filter_map(|r| if let Record::Flow(f) = &r.record { Some(f.flow_id) } else { None }).collect();
        ids.sort_unstable();
        assert_eq!(ids, (1..=50).collect::<Vec<u64>>());
        assert_eq!(t.stats.flow_table_evictions, 40);
        assert_eq!(t.stats.udp_flows, 50);
        assert_eq!(t.flow_bytes(), 0);
    }

    /// Packet `n` of a TCP conversation between 10.0.0.1:`port` (side 0)
    /// and 10.0.0.2:80 (side 1).
    #[allow(clippy::too_many_arguments)]
    fn tcp_pkt(t: &mut FlowTable, n: u64, port: u16, side: usize, flags: u8, seq: u32, ack: u32, data: &[u8]) {
        let mut ip = udp(0);
        ip.proto = 6;
        ip.sport = port;
        ip.dport = 80;
        if side == 1 {
            std::mem::swap(&mut ip.src, &mut ip.dst);
            std::mem::swap(&mut ip.sport, &mut ip.dport);
        }
        ip.tcp = TcpMeta { seq, ack, flags, window: 100, ..TcpMeta::default() };
        t.packet(&Pkt {
            ordinal: n,
            ts: n as i64 * 1000,
            file_index: 0,
            frame_number: n,
            wire_len: 54 + data.len() as u32,
            vshard: 0,
            ip: &ip,
            payload: data,
        });
    }

    fn end_reasons(rows: &[Keyed]) -> Vec<(u16, &'static str)> {
        let mut v: Vec<(u16, &'static str)> = rows
            .iter()
            .filter_map(|r| if let Record::Flow(f) = &r.record { Some((f.src_port, f.end_reason)) } else { None })
            .collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn an_unanswered_syn_holds_no_stream_state_until_bytes_flow() {
        let mut t = FlowTable::new(FlowConfig::default());
        tcp_pkt(&mut t, 1, 40000, 0, SYN, 100, 0, &[]);
        assert_eq!(t.flow_bytes(), FLOW_COST + TCP_COST);
        // The handshake completes: still nothing to reassemble.
        tcp_pkt(&mut t, 2, 40000, 1, SYN | ACK, 500, 101, &[]);
        tcp_pkt(&mut t, 3, 40000, 0, ACK, 101, 501, &[]);
        assert_eq!(t.flow_bytes(), FLOW_COST + TCP_COST);
        // The first byte brings reassembly and L7 state, which read the
        // request as though they had been there from the SYN.
        tcp_pkt(&mut t, 4, 40000, 0, ACK | 0x08, 101, 501, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        // The parser holds the request until its response comes.
        let waiting = t.flow_bytes() - (FLOW_COST + TCP_COST + STREAMS_COST);
        assert!((100..4096).contains(&waiting), "{waiting}");
        tcp_pkt(&mut t, 5, 40000, 1, ACK | 0x08, 501, 128, b"HTTP/1.1 204 No Content\r\n\r\n");
        let answered = t.flow_bytes() - (FLOW_COST + TCP_COST + STREAMS_COST);
        assert!(answered < waiting, "{answered} >= {waiting}");
        t.finish();
        assert_eq!(t.flow_bytes(), 0);
        let rows = t.take_output();
        let calls: Vec<_> = rows.iter().filter(|r| matches!(r.record, Record::Call(_))).collect();
        assert_eq!(calls.len(), 1);
        let flow = rows.iter().find_map(|r| if let Record::Flow(f) = &r.record { Some(f) } else { None }).unwrap();
        assert_eq!((flow.dirs[0].stream_bytes, flow.dirs[1].stream_bytes), (27, 27));
        assert_eq!(flow.zeek_state, "S1");
    }

    #[test]
    fn what_parsers_hold_counts_against_the_budget() {
        // Connections that each send a request whose chunked body never
        // ends (benches/hostile: endless_chunked): the bodies the parsers
        // hold are flow state like any other.
        let body_chunk = [b"7d0\r\n".as_slice(), &[b'x'; 2000]].concat();
        let head = b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
        let open_upto = |t: &mut FlowTable, n: &mut u64, port: u16, packets: usize| {
            for (side, flags, seq, ack, data) in [
                (0, SYN, 100, 0, &b""[..]),
                (1, SYN | ACK, 500, 101, &b""[..]),
                (0, ACK | 0x08, 101, 501, &head[..]),
                (0, ACK | 0x08, 101 + head.len() as u32, 501, &body_chunk[..]),
            ]
            .into_iter()
            .take(packets)
            {
                *n += 1;
                tcp_pkt(t, *n, port, side, flags, seq, ack, data);
            }
        };
        let open = |t: &mut FlowTable, n: &mut u64, port: u16| open_upto(t, n, port, 4);
        // Unbounded: one connection holds its body.
        let mut t = FlowTable::new(FlowConfig::default());
        open(&mut t, &mut 0, 1000);
        let one = t.flow_bytes();
        assert!(one > FLOW_COST + TCP_COST + STREAMS_COST + 2000, "{one}");
        let mut t = FlowTable::new(FlowConfig::default());
        open_upto(&mut t, &mut 0, 1000, 3);
        let head_only = t.flow_bytes();
        // Room in shard 0 for ten such connections: forty come.
        let room = 10 * one;
        let mut t = FlowTable::new(FlowConfig { max_flow_bytes: room * VSHARDS as usize, ..FlowConfig::default() });
        let mut n = 0;
        for port in 1000..1040 {
            open(&mut t, &mut n, port);
            assert!(t.flow_bytes() <= room, "{} > {room} at port {port}", t.flow_bytes());
        }
        assert_eq!(t.stats.flow_table_evictions, t.stats.flow_table_evictions_answered);
        assert_eq!(t.stats.flow_table_evictions, 30);
        let evicted = t.stats.flow_table_evictions as usize;
        t.finish();
        assert_eq!(t.flow_bytes(), 0);
        let rows = t.take_output();
        // Every connection has its row, and every request its call row,
        // cut short where its connection was evicted.
        let reasons = end_reasons(&rows);
        assert_eq!(reasons.len(), 40);
        assert_eq!(reasons.iter().filter(|(_, r)| *r == "evicted").count(), evicted);
        let cut: Vec<&str> = rows
            .iter()
            .filter_map(|r| if let Record::Call(c) = &r.record { c.exchange.request.as_ref() } else { None })
            .filter(|m| m.body_truncated)
            .filter_map(|m| m.error.as_deref())
            .collect();
        assert_eq!(cut.len(), 40);
        assert_eq!(cut.iter().filter(|e| **e == "evicted").count(), evicted);
        assert_eq!(cut.iter().filter(|e| **e == "capture_end").count(), 40 - evicted);

        // A shard's share smaller than one such connection: the
        // connection itself is cut short when its parser passes it.
        let share = (head_only + one) / 2;
        let mut t = FlowTable::new(FlowConfig { max_flow_bytes: share * VSHARDS as usize, ..FlowConfig::default() });
        open(&mut t, &mut 0, 1000);
        assert_eq!((t.stats.flow_table_evictions, t.len(), t.flow_bytes()), (1, 0, 0));
        let rows = t.take_output();
        assert_eq!(end_reasons(&rows), [(1000, "evicted")]);
    }

    #[test]
    fn an_acknowledgement_of_bytes_never_captured_still_counts_them_as_a_gap() {
        // The client's 100 bytes were not captured; the server's ACK says
        // they were sent.
        let mut t = FlowTable::new(FlowConfig::default());
        tcp_pkt(&mut t, 1, 40000, 0, SYN, 100, 0, &[]);
        tcp_pkt(&mut t, 2, 40000, 1, SYN | ACK, 500, 101, &[]);
        tcp_pkt(&mut t, 3, 40000, 0, ACK, 101, 501, &[]);
        tcp_pkt(&mut t, 4, 40000, 1, ACK, 501, 201, &[]);
        t.finish();
        assert_eq!(t.stats.tcp_gap_bytes, 100);
    }

    #[test]
    fn a_full_budget_evicts_never_answered_flows_before_conversations() {
        // Room in shard 0 for about six TCP flows with their streams.
        let room = 6 * (FLOW_COST + TCP_COST) + 2 * STREAMS_COST;
        let mut t = FlowTable::new(FlowConfig { max_flow_bytes: room * VSHARDS as usize, ..FlowConfig::default() });
        // Two conversations, answered and carrying bytes...
        let mut n = 0;
        for port in [1000, 1001] {
            let mut next = |t: &mut FlowTable, side, flags, seq, ack, data: &[u8]| {
                n += 1;
                tcp_pkt(t, n, port, side, flags, seq, ack, data);
            };
            next(&mut t, 0, SYN, 100, 0, b"");
            next(&mut t, 1, SYN | ACK, 500, 101, b"");
            next(&mut t, 0, ACK | 0x08, 101, 501, b"PING\r\n");
        }
        // ...then a flood of SYNs that nobody answers.
        for port in 2000..2040 {
            n += 1;
            tcp_pkt(&mut t, n, port, 0, SYN, 7, 0, &[]);
        }
        assert!(t.flow_bytes() <= room, "{} > {room}", t.flow_bytes());
        assert_eq!(t.stats.flow_table_evictions_answered, 0);
        assert!(t.stats.flow_table_evictions >= 34, "{}", t.stats.flow_table_evictions);
        let evicted = t.stats.flow_table_evictions;
        t.finish();
        assert_eq!(t.flow_bytes(), 0);
        let reasons = end_reasons(&t.take_output());
        // Every flow has its row; the conversations lasted to the end.
        assert_eq!(reasons.len(), 42);
        assert_eq!(&reasons[..2], &[(1000, "capture_end"), (1001, "capture_end")]);
        assert_eq!(reasons.iter().filter(|(_, r)| *r == "evicted").count() as u64, evicted);
        // The SYNs evicted are the oldest.
        let kept: Vec<u16> = reasons.iter().filter(|(_, r)| *r == "capture_end").map(|(p, _)| *p).skip(2).collect();
        assert_eq!(kept, (2040 - kept.len() as u16..2040).collect::<Vec<u16>>());
    }
}

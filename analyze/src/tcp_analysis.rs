//! TCP expert analysis of one connection, with the definitions of
//! Wireshark's TCP sequence analysis (`tcp.analysis.*`), so that its
//! counts can be checked against tshark's and read the way engineers
//! already read Wireshark's Expert Information.
//!
//! Each direction keeps what Wireshark keeps per `tcp_flow_t`: the
//! highest next sequence number seen, the last ACK and window it sent,
//! the duplicate-ACK run, the highest contiguous sequence number expected
//! to be acknowledged, and the list of segments sent but not yet
//! acknowledged (which also gives the RTT samples). Every packet is
//! classified in the same order as Wireshark's `tcp_analyze_sequence_number`:
//! zero-window probe, zero window, previous segment not captured,
//! keep-alive, window full, keep-alive ACK, zero-window probe ACK,
//! duplicate ACK, ACKed unseen segment, then spurious / fast /
//! out-of-order / plain retransmission. docs/tcp-insights.md explains
//! each metric and where trawl differs.
//!
//! The analysis sees one packet at a time, in capture order, like
//! tshark's single pass. It knows nothing of Arrow or of the flow table.
//!
//! One file: Wireshark's sequence-analysis rules depend on each other's
//! order and state; split, their precedence would be spread over files. Its
//! tests are the last hundred lines.

use crate::decode::{ACK, FIN, NO_WSCALE, RST, SYN};

/// Segments a direction remembers while they wait for their ACK (as
/// Wireshark's `TCP_MAX_UNACKED_SEGMENTS`); past it, new ones are not
/// remembered, which only weakens the retransmission/out-of-order call.
pub const MAX_UNACKED: usize = 1000;

/// [`Dir::dupacks`] after an ACKed-unseen segment (Wireshark's -1 in
/// an unsigned counter).
const STALLED: u32 = u32::MAX;

/// Flags of one analysed packet (Wireshark's `TCP_A_*`).
pub mod flag {
    pub const RETRANSMISSION: u16 = 1;
    pub const LOST_PACKET: u16 = 1 << 1;
    pub const ACK_LOST_PACKET: u16 = 1 << 2;
    pub const KEEP_ALIVE: u16 = 1 << 3;
    pub const DUPLICATE_ACK: u16 = 1 << 4;
    pub const ZERO_WINDOW: u16 = 1 << 5;
    pub const ZERO_WINDOW_PROBE: u16 = 1 << 6;
    pub const ZERO_WINDOW_PROBE_ACK: u16 = 1 << 7;
    pub const KEEP_ALIVE_ACK: u16 = 1 << 8;
    pub const OUT_OF_ORDER: u16 = 1 << 9;
    pub const FAST_RETRANSMISSION: u16 = 1 << 10;
    pub const WINDOW_UPDATE: u16 = 1 << 11;
    pub const WINDOW_FULL: u16 = 1 << 12;
    pub const SPURIOUS_RETRANSMISSION: u16 = 1 << 13;
    /// Any kind of retransmission (tshark's `tcp.analysis.retransmission`
    /// filter matches all three).
    pub const ANY_RETRANSMISSION: u16 = RETRANSMISSION | FAST_RETRANSMISSION | SPURIOUS_RETRANSMISSION;
}

/// The packet's flags under tshark's field names (`tcp.analysis.NAME`),
/// in a fixed order; `retransmission` comes with every kind of
/// retransmission, as tshark's filter does.
pub fn flag_names(fl: u16) -> impl Iterator<Item = &'static str> {
    use flag::*;
    const NAMES: &[(u16, &str)] = &[
        (ANY_RETRANSMISSION, "retransmission"),
        (FAST_RETRANSMISSION, "fast_retransmission"),
        (SPURIOUS_RETRANSMISSION, "spurious_retransmission"),
        (OUT_OF_ORDER, "out_of_order"),
        (LOST_PACKET, "lost_segment"),
        (ACK_LOST_PACKET, "ack_lost_segment"),
        (DUPLICATE_ACK, "duplicate_ack"),
        (ZERO_WINDOW, "zero_window"),
        (ZERO_WINDOW_PROBE, "zero_window_probe"),
        (ZERO_WINDOW_PROBE_ACK, "zero_window_probe_ack"),
        (KEEP_ALIVE, "keep_alive"),
        (KEEP_ALIVE_ACK, "keep_alive_ack"),
        (WINDOW_UPDATE, "window_update"),
        (WINDOW_FULL, "window_full"),
    ];
    NAMES.iter().filter(move |(f, _)| fl & f != 0).map(|(_, n)| *n)
}

/// `tcp.completeness` bits.
pub mod completeness {
    pub const SYN: u8 = 1;
    pub const SYN_ACK: u8 = 2;
    pub const ACK: u8 = 4;
    pub const DATA: u8 = 8;
    pub const FIN: u8 = 16;
    pub const RST: u8 = 32;
}

/// The TCP header fields the analysis reads, for one packet.
#[derive(Debug, Clone, Copy)]
pub struct Segment {
    pub ts: i64,
    pub seq: u32,
    pub ack: u32,
    /// Payload length as sent (captured bytes plus bytes cut by the snaplen).
    pub len: u32,
    pub flags: u8,
    /// Window field as sent (unscaled).
    pub window: u16,
    /// Window scale option of a SYN, [`NO_WSCALE`] when absent.
    pub wscale: u8,
}

/// Running statistics of RTT samples, in integers so that rows compare
/// exactly; mean and standard deviation are derived when written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RttStats {
    pub samples: u32,
    pub min_ns: i64,
    pub max_ns: i64,
    pub sum_us: u64,
    pub sum_sq_us: u128,
}

impl RttStats {
    fn add(&mut self, ns: i64) {
        let ns = ns.max(0);
        if self.samples == 0 || ns < self.min_ns {
            self.min_ns = ns;
        }
        self.max_ns = self.max_ns.max(ns);
        let us = (ns / 1000) as u64;
        // Capture times can be anything in a damaged file: saturate.
        self.samples = self.samples.saturating_add(1);
        self.sum_us = self.sum_us.saturating_add(us);
        self.sum_sq_us = self.sum_sq_us.saturating_add((us as u128) * (us as u128));
    }

    /// Mean in microseconds.
    pub fn mean_us(&self) -> Option<f64> {
        (self.samples > 0).then(|| self.sum_us as f64 / self.samples as f64)
    }

    /// Population standard deviation in microseconds (Kubeshark's jitter).
    pub fn std_dev_us(&self) -> Option<f64> {
        let mean = self.mean_us()?;
        let var = self.sum_sq_us as f64 / self.samples as f64 - mean * mean;
        Some(var.max(0.0).sqrt())
    }
}

/// The expert metrics of one connection, both directions together
/// unless the name says a side (index 0 is the client, 1 the server).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TcpMetrics {
    /// Packets flagged as any retransmission (plain, fast or spurious),
    /// by the side that sent them.
    pub retransmissions_by: [u32; 2],
    pub fast_retransmissions: u32,
    pub spurious_retransmissions: u32,
    pub out_of_order: u32,
    pub dup_acks: u32,
    /// "Previous segment not captured".
    pub missing_segments: u32,
    /// "ACKed segment that wasn't captured".
    pub acked_unseen: u32,
    pub zero_windows: u32,
    pub zero_window_probes: u32,
    pub window_full: u32,
    pub keep_alives: u32,
    pub rst_packets: u32,
    pub fin_packets: u32,
    /// Packets that occupy sequence space (data, SYN or FIN): the
    /// denominator of the retransmission rate.
    pub seq_packets: u32,
    /// `tcp.completeness` bitmask.
    pub completeness: u8,
    /// Window scale shift each side announced; `None` when its SYN was
    /// not seen or scaling was not agreed (set by [`TcpAnalysis::finish`]).
    pub window_scale: [Option<u8>; 2],
    /// Sum and count of each side's advertised receive window, scaled.
    pub window_sum: [u64; 2],
    pub window_count: [u32; 2],
    /// SYN to SYN-ACK.
    pub initial_rtt_ns: Option<i64>,
    /// SYN to the first payload byte.
    pub connection_time_ns: Option<i64>,
    /// First client payload to the first server payload after it.
    pub ttfb_ns: Option<i64>,
    /// Data-to-ACK samples in both directions (Karn: retransmitted
    /// segments give none).
    pub rtt: RttStats,
    /// Segments not remembered because the caps were reached.
    pub unacked_dropped: u32,
    /// Segments whose every byte had been captured before, whatever their
    /// timing (filled in from reassembly when the connection ends).
    pub resent_segments: u32,
    /// Payload sequence space each side covered, both sides: bytes sent,
    /// each once, whether or not the capture kept them (snaplen).
    pub goodput_bytes: u64,
}

impl TcpMetrics {
    /// Packets flagged as any retransmission, both sides.
    pub fn retransmissions(&self) -> u32 {
        self.retransmissions_by[0].saturating_add(self.retransmissions_by[1])
    }

    /// Share of sequence-space packets that were retransmissions.
    pub fn retransmission_rate(&self) -> f64 {
        if self.seq_packets == 0 { 0.0 } else { self.retransmissions() as f64 / self.seq_packets as f64 }
    }

    /// Mean advertised receive window of side `d`, in bytes.
    pub fn avg_window(&self, d: usize) -> Option<u64> {
        (self.window_count[d] > 0).then(|| self.window_sum[d] / self.window_count[d] as u64)
    }
}

#[derive(Debug, Clone, Copy)]
struct Unacked {
    seq: u32,
    nextseq: u32,
    ts: i64,
    karn: bool,
}

/// Window scaling of a direction, as Wireshark tracks it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Scale {
    /// No SYN seen yet.
    #[default]
    Unknown,
    /// The handshake did not agree on scaling: windows are as sent.
    None,
    Shift(u8),
}

#[derive(Debug, Clone, Default)]
struct Dir {
    /// Highest sequence number + length seen; 0 means not yet known (as
    /// in Wireshark, which also compares absolute numbers).
    nextseq: u32,
    nextseq_ts: i64,
    lastack: u32,
    lastack_ts: i64,
    window: u16,
    /// The last window this side sent came with a SYN (never scaled).
    window_from_syn: bool,
    scale: Scale,
    dupacks: u32,
    lastflags: u16,
    maxseqtobeacked: u32,
    segments: Vec<Unacked>,
}

fn lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

fn gt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

fn le(a: u32, b: u32) -> bool {
    !gt(a, b)
}

/// The analysis state of one connection.
#[derive(Debug, Clone, Default)]
pub struct TcpAnalysis {
    dirs: [Dir; 2],
    /// SYN timestamp (last SYN sent), for initial RTT and connection time.
    syn_ts: Option<i64>,
    synack_seen: bool,
    first_client_data_ts: Option<i64>,
    pub metrics: TcpMetrics,
}

impl TcpAnalysis {
    /// Segments remembered, both directions (for the shard budget).
    pub fn remembered(&self) -> usize {
        self.dirs[0].segments.len() + self.dirs[1].segments.len()
    }

    /// The connection's metrics, once its last packet was analysed.
    pub fn finish(&mut self) -> TcpMetrics {
        let mut m = std::mem::take(&mut self.metrics);
        for (ws, dir) in m.window_scale.iter_mut().zip(&self.dirs) {
            *ws = match dir.scale {
                Scale::Shift(k) => Some(k),
                Scale::Unknown | Scale::None => None,
            };
        }
        m
    }

    /// Analyses one packet sent by side `d` (0 client, 1 server).
    /// `first_rtt_ns` is the connection's handshake RTT once known
    /// (Wireshark's out-of-order threshold); `room` says whether the
    /// shard may remember one more unacknowledged segment. Returns the
    /// packet's flags.
    pub fn packet(&mut self, d: usize, s: &Segment, first_rtt_ns: Option<i64>, room: bool) -> u16 {
        let fl = self.classify(d, s, first_rtt_ns, room);
        self.count(d, s, fl);
        fl
    }

    fn count(&mut self, d: usize, s: &Segment, fl: u16) {
        use flag::*;
        let m = &mut self.metrics;
        let n = |f: u16| (fl & f != 0) as u32;
        m.retransmissions_by[d] += n(ANY_RETRANSMISSION);
        m.fast_retransmissions += n(FAST_RETRANSMISSION);
        m.spurious_retransmissions += n(SPURIOUS_RETRANSMISSION);
        m.out_of_order += n(OUT_OF_ORDER);
        m.dup_acks += n(DUPLICATE_ACK);
        m.missing_segments += n(LOST_PACKET);
        m.acked_unseen += n(ACK_LOST_PACKET);
        m.zero_windows += n(ZERO_WINDOW);
        m.zero_window_probes += n(ZERO_WINDOW_PROBE);
        m.window_full += n(WINDOW_FULL);
        m.keep_alives += n(KEEP_ALIVE);
        m.rst_packets += (s.flags & RST != 0) as u32;
        m.fin_packets += (s.flags & FIN != 0) as u32;
        m.seq_packets += (s.len > 0 || s.flags & (SYN | FIN) != 0) as u32;
        // tcp.completeness; the ACK bit is the handshake's, after a
        // SYN-ACK (tshark also sets it mid-stream: docs/tcp-insights.md).
        if s.flags & SYN != 0 {
            m.completeness |= if s.flags & ACK != 0 { completeness::SYN_ACK } else { completeness::SYN };
        } else if s.flags & ACK != 0 && m.completeness & completeness::SYN_ACK != 0 {
            m.completeness |= completeness::ACK;
        }
        if s.len > 0 {
            m.completeness |= completeness::DATA;
        }
        if s.flags & FIN != 0 {
            m.completeness |= completeness::FIN;
        }
        if s.flags & RST != 0 {
            m.completeness |= completeness::RST;
        }
        // Latency milestones.
        if s.flags & (SYN | ACK) == SYN && d == 0 {
            self.syn_ts = Some(s.ts);
        }
        if s.flags & (SYN | ACK) == SYN | ACK && d == 1 && !self.synack_seen {
            self.synack_seen = true;
            m.initial_rtt_ns = self.syn_ts.map(|t| s.ts - t);
        }
        if s.len > 0 {
            if m.connection_time_ns.is_none() {
                m.connection_time_ns = self.syn_ts.map(|t| s.ts - t);
            }
            if d == 0 {
                self.first_client_data_ts.get_or_insert(s.ts);
            } else if m.ttfb_ns.is_none() {
                m.ttfb_ns = self.first_client_data_ts.map(|t| s.ts - t);
            }
        }
        // The receive window this side advertises (SYNs are never scaled).
        if s.flags & RST == 0 {
            let w = s.window as u64;
            let scaled = match (s.flags & SYN != 0, self.dirs[d].scale) {
                (false, Scale::Shift(k)) => w << k,
                _ => w,
            };
            m.window_sum[d] = m.window_sum[d].saturating_add(scaled);
            m.window_count[d] = m.window_count[d].saturating_add(1);
        }
    }

    fn classify(&mut self, d: usize, s: &Segment, first_rtt_ns: Option<i64>, room: bool) -> u16 {
        use flag::*;
        let (fwd, rev) = split(&mut self.dirs, d);
        let (seq, ack, seglen, flags, window) = (s.seq, s.ack, s.len, s.flags, s.window);
        let mut fl: u16 = 0;

        // Window scaling is agreed by the SYN and SYN-ACK.
        if flags & SYN != 0 {
            if s.wscale != NO_WSCALE {
                fwd.scale = Scale::Shift(s.wscale.min(14));
            }
            if fwd.scale == Scale::Unknown {
                fwd.scale = Scale::None;
                rev.scale = Scale::None;
            } else if flags & ACK != 0 && rev.scale == Scale::None {
                fwd.scale = Scale::None;
            }
        }

        'fwd: {
            // Zero-window probe: one byte at the next expected sequence
            // number while the other side's window is zero.
            if seglen == 1 && seq == fwd.nextseq && rev.window == 0 {
                fl |= ZERO_WINDOW_PROBE;
                break 'fwd;
            }
            if window == 0 && flags & (RST | FIN | SYN) == 0 {
                fl |= ZERO_WINDOW;
            }
            // Previous segment not captured.
            if fwd.nextseq != 0 && gt(seq, fwd.nextseq) && flags & RST == 0 {
                fl |= LOST_PACKET;
            }
            // Keep-alive: 0 or 1 byte one before the next sequence number.
            if seglen <= 1 && seq == fwd.nextseq.wrapping_sub(1) && flags & (SYN | FIN | RST) == 0 {
                fl |= KEEP_ALIVE;
            }
            let plain = flags & (SYN | FIN | RST) == 0;
            if seglen == 0 && window != 0 && window != fwd.window && seq == fwd.nextseq && ack == fwd.lastack && plain {
                fl |= WINDOW_UPDATE;
            }
            // Window full: the data reaches the right edge of the window
            // the other side last advertised.
            if seglen > 0 && rev.scale != Scale::Unknown && plain {
                let shift = match rev.scale {
                    Scale::Shift(k) if !rev.window_from_syn => k,
                    _ => 0,
                };
                let edge = rev.lastack.wrapping_add(((rev.window as u64) << shift) as u32);
                if seq.wrapping_add(seglen) == edge {
                    fl |= WINDOW_FULL;
                }
            }
            if seglen == 0
                && window != 0
                && window == fwd.window
                && seq == fwd.nextseq
                && ack == fwd.lastack
                && rev.lastflags & KEEP_ALIVE != 0
                && plain
            {
                fl |= KEEP_ALIVE_ACK;
                break 'fwd;
            }
            if seglen == 0
                && window == 0
                && window == fwd.window
                && seq == fwd.nextseq
                && ack == fwd.lastack
                && rev.lastflags & ZERO_WINDOW_PROBE != 0
                && plain
            {
                fl |= ZERO_WINDOW_PROBE_ACK;
                break 'fwd;
            }
            if seglen == 0 && window != 0 && window == fwd.window && seq == fwd.nextseq && ack == fwd.lastack && plain {
                // After an ACKed-unseen segment the run restarts at 1.
                fwd.dupacks = if fwd.dupacks == STALLED { 1 } else { fwd.dupacks.saturating_add(1).min(STALLED - 1) };
                fl |= DUPLICATE_ACK;
            }
        }
        if ack != fwd.lastack {
            fwd.dupacks = 0;
        }

        // ACKed segment that wasn't captured: the ACK goes beyond what
        // this side can have received of the other's contiguous data.
        if rev.maxseqtobeacked != 0 && gt(ack, rev.maxseqtobeacked) && flags & ACK != 0 {
            // A plain (not modulo 2^32) comparison, as tshark 4.0's counts
            // on the corpus require.
            if rev.maxseqtobeacked < rev.nextseq {
                // Not flagged again for the same hole.
                rev.maxseqtobeacked = rev.nextseq;
                fl |= ACK_LOST_PACKET;
            } else {
                // The other side is stalled with pure ACKs: flag once, and
                // mark its duplicate-ACK run (as Wireshark 4.0 does, this
                // also makes its next retransmission a fast one).
                if rev.dupacks == 0 {
                    fl |= ACK_LOST_PACKET;
                }
                rev.dupacks = STALLED;
            }
        }

        // Retransmission, fast retransmission, spurious retransmission or
        // out-of-order: a segment that occupies sequence space and does
        // not advance it.
        'retrans: {
            if !(seglen > 0 || flags & (SYN | FIN) != 0) || fl & KEEP_ALIVE != 0 {
                break 'retrans;
            }
            let mut seq_not_advanced = fwd.nextseq != 0 && lt(seq, fwd.nextseq);
            // One byte before nextseq with new data after it: the byte
            // before was a zero-window probe.
            if seglen > 1 && fwd.nextseq.wrapping_sub(1) == seq {
                seq_not_advanced = false;
            }
            if seglen > 0 && rev.lastack != 0 && le(seq.wrapping_add(seglen), rev.lastack) {
                fl |= SPURIOUS_RETRANSMISSION;
                break 'retrans;
            }
            // Fast retransmission first (tshark's default
            // tcp.fastrt_supersedes_ooo): two duplicate ACKs asked for
            // this sequence number less than 20 ms ago.
            let since_rev = s.ts - rev.lastack_ts;
            if seq_not_advanced && rev.dupacks >= 2 && rev.lastack == seq && since_rev < 20_000_000 {
                fl |= FAST_RETRANSMISSION;
                break 'retrans;
            }
            // Out-of-order: it came within one handshake RTT (3 ms when
            // unknown) of the segment that moved nextseq, and does not
            // end exactly there.
            let since_next = s.ts - fwd.nextseq_ts;
            let ooo_thres = first_rtt_ns.filter(|&r| r != 0).unwrap_or(3_000_000);
            let end = seq.wrapping_add(seglen).wrapping_add((flags & (SYN | FIN) != 0) as u32);
            if seq_not_advanced && since_next < ooo_thres && fwd.nextseq != end {
                fl |= OUT_OF_ORDER;
                break 'retrans;
            }
            if seq_not_advanced {
                fl |= RETRANSMISSION;
            }
        }

        // Remember the segment until it is acknowledged.
        let mut nextseq = seq.wrapping_add(seglen);
        if seglen > 0 || flags & (SYN | FIN) != 0 {
            if flags & (SYN | FIN) != 0 {
                nextseq = nextseq.wrapping_add(1);
            }
            if fwd.segments.len() < MAX_UNACKED && room {
                fwd.segments.push(Unacked { seq, nextseq, ts: s.ts, karn: fl & ANY_RETRANSMISSION != 0 });
            } else {
                self.metrics.unacked_dropped += 1;
            }
        }
        if (gt(nextseq, fwd.nextseq) || fwd.nextseq == 0) && fl & ZERO_WINDOW_PROBE == 0 {
            // New sequence space: the payload part of it is goodput.
            let syn_fin = (flags & (SYN | FIN) != 0) as u32;
            let new = if fwd.nextseq == 0 { seglen } else { nextseq.wrapping_sub(fwd.nextseq).saturating_sub(syn_fin) };
            self.metrics.goodput_bytes += new as u64;
            fwd.nextseq = nextseq;
            fwd.nextseq_ts = s.ts;
        }
        if (seq == fwd.maxseqtobeacked || fwd.maxseqtobeacked == 0) && fl & ZERO_WINDOW_PROBE == 0 {
            fwd.maxseqtobeacked = fwd.nextseq;
        }
        fwd.window = window;
        fwd.window_from_syn = flags & SYN != 0;
        fwd.lastack = ack;
        fwd.lastack_ts = s.ts;
        fwd.lastflags = fl;

        // Segments of the other side that this packet acknowledges give
        // an RTT sample (unless retransmitted: Karn) and are forgotten.
        if flags & ACK != 0 {
            let mut sample: Option<(i64, bool)> = None;
            rev.segments.retain_mut(|u| {
                if ack == u.nextseq {
                    sample = Some((s.ts - u.ts, u.karn));
                    false
                } else if gt(ack, u.seq) && le(ack, u.nextseq) {
                    // Partly acknowledged: no sample (as tcp.analysis.ack_rtt).
                    u.seq = ack;
                    true
                } else {
                    gt(u.nextseq, ack)
                }
            });
            if let Some((ns, false)) = sample {
                self.metrics.rtt.add(ns);
            }
        }
        fl
    }
}

/// The direction of the packet and the other one, both mutable.
fn split(dirs: &mut [Dir; 2], d: usize) -> (&mut Dir, &mut Dir) {
    let [a, b] = dirs;
    if d == 0 { (a, b) } else { (b, a) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(ts_ms: i64, seq: u32, ack: u32, len: u32, flags: u8) -> Segment {
        Segment { ts: ts_ms * 1_000_000, seq, ack, len, flags, window: 1000, wscale: NO_WSCALE }
    }

    /// A handshake, then the client sends 3 segments of which the
    /// second is lost: the server dup-ACKs, the client retransmits.
    #[test]
    fn loss_gives_gap_dup_acks_and_fast_retransmission() {
        let mut a = TcpAnalysis::default();
        let rtt = Some(10_000_000);
        let mut flags = vec![];
        let mut p = |d, s: Segment| flags.push(a.packet(d, &s, rtt, true));
        p(0, seg(0, 100, 0, 0, SYN));
        p(1, seg(10, 500, 101, 0, SYN | ACK));
        p(0, seg(20, 101, 501, 0, ACK));
        p(0, seg(21, 101, 501, 100, ACK));
        // 201..301 lost
        p(0, seg(22, 301, 501, 100, ACK));
        p(1, seg(31, 501, 201, 0, ACK));
        p(1, seg(32, 501, 201, 0, ACK));
        p(1, seg(33, 501, 201, 0, ACK));
        p(0, seg(34, 201, 501, 100, ACK));
        assert_eq!(flags[4], flag::LOST_PACKET);
        assert_eq!(flags[6], flag::DUPLICATE_ACK);
        assert_eq!(flags[7], flag::DUPLICATE_ACK);
        assert_eq!(flags[8], flag::FAST_RETRANSMISSION);
        let m = &a.metrics;
        assert_eq!((m.retransmissions(), m.fast_retransmissions, m.dup_acks, m.missing_segments), (1, 1, 2, 1));
        // 300 bytes of sequence space; the resend adds none.
        assert_eq!(m.goodput_bytes, 300);
        assert_eq!(m.initial_rtt_ns, Some(10_000_000));
        assert_eq!(m.connection_time_ns, Some(21_000_000));
        assert_eq!(m.completeness, completeness::SYN | completeness::SYN_ACK | completeness::ACK | completeness::DATA);
        // SYN->SYN-ACK (10 ms), SYN-ACK->ACK (10 ms), first data->ACK (10 ms).
        assert_eq!((m.rtt.samples, m.rtt.min_ns, m.rtt.max_ns), (3, 10_000_000, 10_000_000));
    }

    #[test]
    fn late_copy_is_a_retransmission_and_acked_data_is_spurious() {
        let mut a = TcpAnalysis::default();
        let mut f = vec![];
        let mut p = |d, s: Segment| f.push(a.packet(d, &s, None, true));
        p(0, seg(0, 1000, 1, 100, ACK));
        p(1, seg(1, 1, 1100, 0, ACK));
        // Resent long after, already acknowledged: spurious.
        p(0, seg(500, 1000, 1, 100, ACK));
        p(0, seg(501, 1100, 1, 100, ACK));
        // Resent, not yet acknowledged, well after the last reverse packet.
        p(0, seg(900, 1100, 1, 100, ACK));
        assert_eq!(f[2], flag::SPURIOUS_RETRANSMISSION);
        assert_eq!(f[4], flag::RETRANSMISSION);
        assert_eq!(a.metrics.retransmissions(), 2);
        // Karn: the retransmitted segment's ACK gives no RTT sample.
        a.packet(1, &seg(901, 1, 1200, 0, ACK), None, true);
        assert_eq!(a.metrics.rtt.samples, 1);
    }

    #[test]
    fn zero_window_probe_and_window_full() {
        let mut a = TcpAnalysis::default();
        let mut f = vec![];
        let mut p = |d, s: Segment| f.push(a.packet(d, &s, None, true));
        let mut syn = seg(0, 0x10, 0, 0, SYN);
        syn.wscale = 2;
        p(0, syn);
        let mut synack = seg(1, 0x50, 0x11, 0, SYN | ACK);
        synack.wscale = 0;
        p(1, synack);
        p(0, seg(2, 0x11, 0x51, 0, ACK));
        // The server advertises 200 bytes; the client fills it.
        let mut w = seg(3, 0x51, 0x11, 0, ACK);
        w.window = 200;
        p(1, w);
        p(0, seg(4, 0x11, 0x51, 200, ACK));
        let mut z = seg(5, 0x51, 0x11 + 200, 0, ACK);
        z.window = 0;
        p(1, z);
        p(0, seg(6, 0x11 + 200, 0x51, 1, ACK));
        assert_eq!(f[4], flag::WINDOW_FULL);
        assert_eq!(f[5], flag::ZERO_WINDOW);
        assert_eq!(f[6], flag::ZERO_WINDOW_PROBE);
        assert_eq!(a.finish().window_scale, [Some(2), Some(0)]);
    }
}

#[cfg(test)]
mod size {
    /// Every open TCP connection holds one: keep it small (docs/performance.md).
    #[test]
    fn per_connection_state_stays_small() {
        let n = std::mem::size_of::<super::TcpAnalysis>();
        eprintln!("TcpAnalysis: {n} bytes");
        assert!(n <= 512, "{n}");
    }
}

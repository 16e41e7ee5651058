//! TCP stream reassembly for one direction of a connection.
//!
//! Policy (documented in docs/architecture.md):
//! - Bytes are delivered in sequence order, each byte once. Sequence
//!   numbers are 32-bit and wrap; stream offsets are 64-bit.
//! - Retransmissions and overlaps: the first copy of a byte to arrive
//!   wins (as tshark's follow-stream does); later copies are counted and
//!   dropped, conflicting content included.
//! - Out-of-order segments wait in a buffer capped at `max_ooo_bytes`.
//!   When it is full, the hole before the first waiting segment is
//!   declared a gap and delivery goes on.
//! - A hole is also declared lost when the peer acknowledges data beyond
//!   the first waiting segment (the receiver got bytes we did not), and at
//!   close for anything the peer acknowledged but the capture lacks.
//! - Bytes cut by the snaplen are a gap of their length.
//! - Connections already open when the capture began start at the first
//!   sequence number seen.
//! - FIN ends the stream once every byte before it was delivered.

use std::collections::BTreeMap;

use trawl_proto::At;

/// What the reassembler hands to the L7 layer, in stream order.
#[derive(Debug, PartialEq, Eq)]
pub enum StreamEvent<'a> {
    Data {
        at: At,
        bytes: &'a [u8],
    },
    /// `len` bytes were not captured.
    Gap {
        at: At,
        len: u64,
    },
    /// FIN: the direction is finished.
    End {
        at: At,
    },
}

#[derive(Debug)]
struct Segment {
    data: Vec<u8>,
    /// Bytes after `data` the capture lacks (snaplen).
    missing: u64,
    at: At,
}

/// Reassembly state of one direction.
#[derive(Debug, Default)]
pub struct Reassembler {
    /// Sequence number of stream offset 0.
    base: Option<u32>,
    delivered: u64,
    ooo: BTreeMap<u64, Segment>,
    ooo_bytes: usize,
    /// Cap on `ooo_bytes`.
    max_ooo_bytes: usize,
    fin_off: Option<u64>,
    ended: bool,
    max_acked: u64,
    /// Bytes delivered as data.
    pub stream_bytes: u64,
    /// Bytes declared missing.
    pub gap_bytes: u64,
    /// Segments that brought no new byte (retransmissions).
    pub retransmissions: u64,
    /// Times the out-of-order buffer overflowed.
    pub ooo_overflows: u64,
}

impl Reassembler {
    /// A reassembler that buffers at most `max_ooo_bytes` out of order.
    pub fn with_limit(max_ooo_bytes: usize) -> Reassembler {
        Reassembler { max_ooo_bytes, ..Reassembler::default() }
    }

    /// The SYN's sequence number: the stream starts one after it.
    pub fn on_syn(&mut self, isn: u32) {
        if self.base.is_none() {
            self.base = Some(isn.wrapping_add(1));
        }
    }

    /// True once data or a SYN fixed the start of the stream.
    pub fn started(&self) -> bool {
        self.base.is_some()
    }

    pub fn ended(&self) -> bool {
        self.ended
    }

    fn offset_of(&self, seq: u32) -> Option<i64> {
        let base = self.base?;
        let next = base.wrapping_add(self.delivered as u32);
        Some(self.delivered as i64 + seq.wrapping_sub(next) as i32 as i64)
    }

    /// One segment: `seq` of its first payload byte, the captured payload,
    /// how many payload bytes the capture lacks, and whether it carries FIN.
    pub fn segment(
        &mut self,
        seq: u32,
        data: &[u8],
        missing: usize,
        fin: bool,
        at: At,
        out: &mut impl FnMut(StreamEvent),
    ) {
        if self.ended {
            if !data.is_empty() {
                self.retransmissions += 1;
            }
            return;
        }
        if self.base.is_none() {
            if data.is_empty() && missing == 0 && !fin {
                return;
            }
            self.base = Some(seq);
        }
        let Some(off) = self.offset_of(seq) else {
            return;
        };
        let total = (data.len() + missing) as i64;
        if fin {
            let f = (off + total).max(0) as u64;
            self.fin_off = Some(self.fin_off.map_or(f, |x| x.min(f)));
        }
        if total > 0 {
            let end = off + total;
            if end <= self.delivered as i64 {
                self.retransmissions += 1;
            } else {
                // Trim what was already delivered.
                let skip = (self.delivered as i64 - off).max(0) as usize;
                let (data, missing, off) = if skip <= data.len() {
                    (&data[skip..], missing, off + skip as i64)
                } else {
                    (&data[data.len()..], missing - (skip - data.len()), off + skip as i64)
                };
                let off = off as u64;
                if off == self.delivered {
                    // First copy wins: bytes already buffered out of order
                    // take precedence over this segment's copy of them.
                    match self.ooo.range(off..off + data.len() as u64).next().map(|(k, _)| *k) {
                        Some(k) => {
                            let cut = (k - off) as usize;
                            self.deliver(&data[..cut], 0, at, out);
                            self.drain(out);
                            let rest_seq = self.base.unwrap_or(0).wrapping_add(off as u32).wrapping_add(cut as u32);
                            self.segment(rest_seq, &data[cut..], missing, false, at, out);
                        }
                        None => {
                            self.deliver(data, missing as u64, at, out);
                            self.drain(out);
                        }
                    }
                } else {
                    self.buffer(off, data, missing as u64, at, out);
                }
            }
        }
        self.check_end(at, out);
    }

    fn deliver(&mut self, data: &[u8], missing: u64, at: At, out: &mut impl FnMut(StreamEvent)) {
        if !data.is_empty() {
            out(StreamEvent::Data { at, bytes: data });
            self.delivered += data.len() as u64;
            self.stream_bytes += data.len() as u64;
        }
        if missing > 0 {
            self.gap(missing, at, out);
        }
    }

    fn gap(&mut self, len: u64, at: At, out: &mut impl FnMut(StreamEvent)) {
        out(StreamEvent::Gap { at, len });
        self.delivered += len;
        self.gap_bytes += len;
    }

    /// Delivers buffered segments that became contiguous.
    fn drain(&mut self, out: &mut impl FnMut(StreamEvent)) {
        while let Some(entry) = self.ooo.first_entry() {
            let off = *entry.key();
            if off > self.delivered {
                break;
            }
            let seg = entry.remove();
            self.ooo_bytes -= seg.data.len();
            let skip = (self.delivered - off) as usize;
            let total = seg.data.len() as u64 + seg.missing;
            if (skip as u64) >= total {
                continue;
            }
            if skip <= seg.data.len() {
                self.deliver(&seg.data[skip..], seg.missing, seg.at, out);
            } else {
                self.gap(total - skip as u64, seg.at, out);
            }
        }
    }

    fn buffer(&mut self, off: u64, data: &[u8], missing: u64, at: At, out: &mut impl FnMut(StreamEvent)) {
        // First copy wins: cut the new segment around what is buffered.
        let mut pieces: Vec<(u64, &[u8])> = Vec::new();
        let mut cur = off;
        let end = off + data.len() as u64;
        for (&o, seg) in self.ooo.range(..end) {
            let e = o + seg.data.len() as u64;
            if e <= cur {
                continue;
            }
            if o > cur {
                pieces.push((cur, &data[(cur - off) as usize..(o.min(end) - off) as usize]));
            }
            cur = cur.max(e);
            if cur >= end {
                break;
            }
        }
        if cur < end {
            pieces.push((cur, &data[(cur - off) as usize..]));
        }
        if pieces.is_empty() && !data.is_empty() && missing == 0 {
            self.retransmissions += 1;
            return;
        }
        let last = pieces.len().saturating_sub(1);
        for (i, (o, bytes)) in pieces.into_iter().enumerate() {
            let m = if i == last && o + bytes.len() as u64 == end { missing } else { 0 };
            self.ooo_bytes += bytes.len();
            self.ooo.insert(o, Segment { data: bytes.to_vec(), missing: m, at });
        }
        if data.is_empty() && missing > 0 {
            self.ooo.entry(off).or_insert(Segment { data: Vec::new(), missing, at });
        }
        while self.ooo_bytes > self.max_ooo_bytes {
            // Overflow: give up on the hole before the first buffered segment.
            self.ooo_overflows += 1;
            let Some((&first, _)) = self.ooo.first_key_value() else {
                break;
            };
            if first > self.delivered {
                let seg_at = self.ooo.get(&first).map_or(at, |s| s.at);
                self.gap(first - self.delivered, seg_at, out);
            }
            self.drain(out);
        }
    }

    /// The peer acknowledged up to `ack`: a hole the receiver got but the
    /// capture did not is declared lost once data after it is waiting.
    pub fn on_peer_ack(&mut self, ack: u32, at: At, out: &mut impl FnMut(StreamEvent)) {
        let Some(ack_off) = self.offset_of(ack) else {
            return;
        };
        if ack_off <= 0 {
            return;
        }
        let ack_off = ack_off as u64;
        // Ignore absurd acknowledgements (more than 1 GiB ahead).
        if ack_off > self.delivered + (1 << 30) {
            return;
        }
        self.max_acked = self.max_acked.max(ack_off);
        let Some((&first, seg)) = self.ooo.first_key_value() else {
            return;
        };
        if first > self.delivered && ack_off >= first + seg.data.len() as u64 {
            let seg_at = seg.at;
            self.gap(first - self.delivered, seg_at, out);
            self.drain(out);
            self.check_end(at, out);
        }
    }

    fn check_end(&mut self, at: At, out: &mut impl FnMut(StreamEvent)) {
        if let Some(f) = self.fin_off
            && !self.ended
            && self.delivered >= f
        {
            self.ended = true;
            out(StreamEvent::End { at });
        }
    }

    /// Bytes waiting out of order.
    pub fn ooo_bytes(&self) -> usize {
        self.ooo_bytes
    }

    /// Delivers everything waiting out of order, declaring the holes
    /// before it gaps (the connection is over, or memory is short).
    pub fn give_up_holes(&mut self, at: At, out: &mut impl FnMut(StreamEvent)) {
        while let Some((&first, _)) = self.ooo.first_key_value() {
            if first > self.delivered {
                let seg_at = self.ooo.get(&first).map_or(at, |s| s.at);
                self.gap(first - self.delivered, seg_at, out);
            }
            self.drain(out);
        }
        self.check_end(at, out);
    }

    /// The connection is over: whatever waits is delivered, holes and
    /// acknowledged-but-missing bytes become gaps.
    pub fn flush(&mut self, at: At, out: &mut impl FnMut(StreamEvent)) {
        self.give_up_holes(at, out);
        let limit = self.fin_off.unwrap_or(self.max_acked);
        if !self.ended && self.max_acked > self.delivered && limit > self.delivered {
            let len = self.max_acked.min(limit) - self.delivered;
            self.gap(len, at, out);
        }
        self.check_end(at, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t: i64) -> At {
        At { tag: t as u64, ts_ns: t }
    }

    /// Runs segments and returns the delivered stream with gaps as '?'.
    fn run(segs: &[(u32, &[u8])], cap: usize) -> (Vec<u8>, Reassembler) {
        let mut r = Reassembler::with_limit(cap);
        r.on_syn(99);
        let mut outb = Vec::new();
        for (i, (seq, d)) in segs.iter().enumerate() {
            r.segment(*seq, d, 0, false, at(i as i64), &mut |e| match e {
                StreamEvent::Data { bytes, .. } => outb.extend_from_slice(bytes),
                StreamEvent::Gap { len, .. } => outb.extend(std::iter::repeat_n(b'?', len as usize)),
                StreamEvent::End { .. } => {}
            });
        }
        r.flush(at(100), &mut |e| match e {
            StreamEvent::Data { bytes, .. } => outb.extend_from_slice(bytes),
            StreamEvent::Gap { len, .. } => outb.extend(std::iter::repeat_n(b'?', len as usize)),
            StreamEvent::End { .. } => {}
        });
        (outb, r)
    }

    #[test]
    fn reassembly_in_order_out_of_order_and_retransmit() {
        let (s, r) = run(&[(100, b"abc"), (106, b"ghi"), (103, b"def"), (103, b"def")], 1 << 20);
        assert_eq!(s, b"abcdefghi");
        assert_eq!(r.retransmissions, 1);
    }

    #[test]
    fn reassembly_first_copy_wins_on_conflicting_overlap() {
        // As suricata_tcp-overlap: the later "EVIL" loses to "GOOD".
        let (s, _) = run(&[(100, b"GO"), (104, b"OD!"), (102, b"EVIL")], 1 << 20);
        assert_eq!(s, b"GOEVOD!");
        let (s, _) = run(&[(104, b"OD!"), (102, b"EVIL"), (100, b"GO")], 1 << 20);
        assert_eq!(s, b"GOEVOD!");
        let (s, _) = run(&[(100, b"GOOD"), (102, b"EVIL")], 1 << 20);
        assert_eq!(s, b"GOODIL");
    }

    #[test]
    fn reassembly_overflow_declares_gap() {
        let (s, r) = run(&[(100, b"ab"), (110, b"klmnop"), (120, b"uvwxyz")], 8);
        assert_eq!(s, b"ab????????klmnop????uvwxyz");
        assert!(r.ooo_overflows >= 1);
        assert_eq!(r.gap_bytes, 12);
    }

    #[test]
    fn reassembly_sequence_wraps() {
        let mut r = Reassembler::with_limit(100);
        r.on_syn(u32::MAX - 2);
        let mut got = Vec::new();
        let mut sink = |e: StreamEvent| {
            if let StreamEvent::Data { bytes, .. } = e {
                got.extend_from_slice(bytes)
            }
        };
        r.segment(u32::MAX - 1, b"ab", 0, false, at(1), &mut sink);
        r.segment(2, b"ef", 0, false, at(2), &mut sink);
        r.segment(0, b"cd", 0, false, at(3), &mut sink);
        assert_eq!(got, b"abcdef");
    }

    /// A segment as a test sends it: sequence, data, bytes the capture
    /// cut (snaplen), FIN.
    type Seg<'a> = (u32, &'a [u8], usize, bool);

    /// Runs segments (and peer ACKs, as `Err(ack)`) on a direction whose
    /// SYN had sequence `isn`; returns its events, data as text, gaps as
    /// `?N`, the end as `FIN`.
    fn events(isn: u32, steps: &[Result<Seg<'_>, u32>]) -> (Vec<String>, Reassembler) {
        let mut r = Reassembler::with_limit(1 << 20);
        r.on_syn(isn);
        let mut ev = Vec::new();
        let mut rec = |e: StreamEvent| {
            ev.push(match e {
                StreamEvent::Data { bytes, .. } => String::from_utf8_lossy(bytes).into_owned(),
                StreamEvent::Gap { len, .. } => format!("?{len}"),
                StreamEvent::End { .. } => "FIN".to_string(),
            })
        };
        for (i, s) in steps.iter().enumerate() {
            match *s {
                Ok((seq, data, missing, fin)) => r.segment(seq, data, missing, fin, at(i as i64), &mut rec),
                Err(ack) => r.on_peer_ack(ack, at(i as i64), &mut rec),
            }
        }
        r.flush(at(100), &mut rec);
        (ev, r)
    }

    #[test]
    fn wrap_around_out_of_order_and_retransmitted_across_zero() {
        // ISN 2^32-4: the stream's first three bytes sit below the wrap, the rest above.
        let isn = u32::MAX - 3;
        let (ev, r) = events(
            isn,
            &[
                Ok((2, b"fgh", 0, false)),
                Ok((u32::MAX - 2, b"abc", 0, false)),
                Ok((0, b"de", 0, false)),
                Ok((u32::MAX - 2, b"abc", 0, false)),
            ],
        );
        assert_eq!(ev, ["abc", "de", "fgh"]);
        assert_eq!((r.stream_bytes, r.gap_bytes, r.retransmissions), (8, 0, 1));
    }

    #[test]
    fn overlap_with_delivered_bytes_adds_only_the_new_ones() {
        // A resend that also carries new bytes: the old part is dropped,
        // whatever it says now (first copy wins), the new part delivered.
        let (ev, r) = events(99, &[Ok((100, b"abcd", 0, false)), Ok((102, b"XXef", 0, false))]);
        assert_eq!(ev, ["abcd", "ef"]);
        assert_eq!((r.stream_bytes, r.retransmissions), (6, 0));
    }

    #[test]
    fn overlap_spanning_a_buffered_segment_keeps_the_buffered_bytes() {
        let (ev, _) =
            events(99, &[Ok((104, b"EF", 0, false)), Ok((102, b"cdXXgh", 0, false)), Ok((100, b"ab", 0, false))]);
        assert_eq!(ev.concat(), "abcdEFgh");
    }

    #[test]
    fn a_hole_filled_by_a_retransmission_is_no_gap() {
        let (ev, r) = events(99, &[Ok((100, b"ab", 0, false)), Ok((104, b"ef", 0, false)), Ok((102, b"cd", 0, false))]);
        assert_eq!(ev, ["ab", "cd", "ef"]);
        assert_eq!((r.gap_bytes, r.ooo_overflows), (0, 0));
    }

    #[test]
    fn a_hole_the_peer_acknowledged_is_a_gap_and_its_filler_a_retransmission() {
        // The receiver acknowledged bytes the capture never saw: they were
        // lost to the capture, not the network.
        let (ev, r) =
            events(99, &[Ok((100, b"ab", 0, false)), Ok((104, b"ef", 0, false)), Err(106), Ok((102, b"cd", 0, false))]);
        assert_eq!(ev, ["ab", "?2", "ef"]);
        assert_eq!((r.gap_bytes, r.retransmissions), (2, 1));
    }

    #[test]
    fn fin_before_the_last_data_ends_after_it() {
        let (ev, r) = events(
            99,
            &[
                Ok((100, b"ab", 0, false)),
                Ok((104, b"", 0, true)),
                Ok((102, b"cd", 0, false)),
                Ok((102, b"cd", 0, false)),
            ],
        );
        assert_eq!(ev, ["ab", "cd", "FIN"]);
        assert!(r.ended());
        assert_eq!(r.retransmissions, 1, "data after the end is a retransmission");
    }

    #[test]
    fn bytes_the_capture_cut_are_a_gap_in_place() {
        // Snaplen: a segment of 6 payload bytes of which 2 were captured.
        let (ev, r) = events(99, &[Ok((100, b"ab", 4, false)), Ok((106, b"gh", 0, true))]);
        assert_eq!(ev, ["ab", "?4", "gh", "FIN"]);
        assert_eq!((r.stream_bytes, r.gap_bytes), (4, 4));
    }
}

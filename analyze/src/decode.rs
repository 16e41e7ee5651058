//! Link, network and transport decoding of one frame.
//!
//! Link types: Ethernet (with 802.1Q and QinQ tags), Linux cooked SLL and
//! SLL2, raw IPv4/IPv6 and BSD null/loopback. Any other link type is
//! reported as [`Decoded::UnknownLink`] and skipped by the caller.
//!
//! Slicing uses etherparse's lax slicer, so a frame cut by the snaplen
//! still yields its headers; the payload bytes the capture lacks are
//! counted in [`Packet::missing`] (the reassembler turns them into a gap).
//! IPv4 and IPv6 fragments are put back together by [`Defrag`], which
//! uses etherparse's `IpDefragBuf` for the byte ranges and bounds the
//! number of datagrams in progress and their age in capture time.

use std::collections::HashMap;
use std::net::IpAddr;

use etherparse::defrag::IpDefragBuf;
use etherparse::{
    EtherType, IpFragOffset, IpNumber, LaxIpPayloadSlice, LaxLinkExtSlice, LaxNetSlice, LaxSlicedPacket, TransportSlice,
};

/// TCP header fields the flow tracker needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpMeta {
    pub seq: u32,
    pub ack: u32,
    /// FIN=1 SYN=2 RST=4 PSH=8 ACK=16 URG=32 ECE=64 CWR=128.
    pub flags: u8,
    pub window: u16,
    /// Window scale option (shift) of a SYN or SYN-ACK; [`NO_WSCALE`] when absent.
    pub wscale: u8,
}

/// [`TcpMeta::wscale`] of a segment without the window scale option.
pub const NO_WSCALE: u8 = u8::MAX;

pub const FIN: u8 = 1;
pub const SYN: u8 = 2;
pub const RST: u8 = 4;
pub const ACK: u8 = 16;

/// A decoded IP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub vlan: Option<u16>,
    pub ip_version: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IP protocol number of the transport.
    pub proto: u8,
    /// Ports; for ICMP the type and code.
    pub sport: u16,
    pub dport: u16,
    pub tcp: TcpMeta,
    /// Transport payload as captured: offset and length within the frame
    /// (or within the reassembled datagram).
    pub payload_off: usize,
    pub payload_len: usize,
    /// Payload bytes the IP header announces but the capture lacks.
    pub missing: usize,
    /// Transport header could not be read (truncated or malformed).
    pub l4_error: Option<&'static str>,
}

/// The outcome of decoding one frame.
#[derive(Debug)]
pub enum Decoded {
    Ip(Packet),
    /// An IP fragment, kept by [`Defrag`] until its datagram is whole.
    Fragment(FragPiece),
    /// Not IP (ARP, LLDP, ...): counted, not analysed.
    NotIp,
    UnknownLink(u32),
    Malformed {
        layer: &'static str,
        kind: &'static str,
        detail: String,
    },
}

/// One fragment of an IP datagram.
#[derive(Debug)]
pub struct FragPiece {
    key: FragKey,
    vlan: Option<u16>,
    offset: IpFragOffset,
    more: bool,
    data_off: usize,
    data_len: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FragKey {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    id: u32,
}

impl FragPiece {
    /// Source and destination addresses of the datagram.
    pub fn addrs(&self) -> (IpAddr, IpAddr) {
        (self.key.src, self.key.dst)
    }
}

fn offset_in(base: &[u8], part: &[u8]) -> usize {
    (part.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize)
}

/// Addresses, IP version, payload, announced payload length and fragment
/// fields of an IP header.
type NetParts<'a, 'b> =
    (IpAddr, IpAddr, u8, &'b LaxIpPayloadSlice<'a>, Option<usize>, Option<(u32, IpFragOffset, bool)>);

/// Finds the fragment header in an IPv6 extension chain: (identification,
/// offset, more fragments). Walked here with bounds checks: etherparse
/// 0.21's extension iterator reads past the end of a lax-sliced chain
/// (found by fuzz/fuzz_targets/decode.rs; see the test `fuzz_decode_fce90134`).
fn v6_fragment(mut next: u8, mut exts: &[u8]) -> Option<(u32, IpFragOffset, bool)> {
    for _ in 0..16 {
        let len = match next {
            0 | 43 | 60 | 135 | 139 | 140 => (*exts.get(1)? as usize + 1) * 8,
            51 => (*exts.get(1)? as usize + 2) * 4,
            44 => {
                let b = exts.get(..8)?;
                let off = u16::from_be_bytes([b[2], b[3]]);
                let id = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
                return Some((id, IpFragOffset::try_new(off >> 3).ok()?, off & 1 == 1));
            }
            _ => return None,
        };
        next = *exts.first()?;
        exts = exts.get(len..)?;
    }
    None
}

/// The packet (from its IP header) inside a Linux NFLOG frame (link type
/// 239, what `tcpdump -i nflog:N` writes): a 4-byte header (address
/// family, version, group), then netlink attributes (TLVs, 4-byte
/// aligned: length including the 4-byte head, then type) of which type 9
/// (`NFULA_PAYLOAD`) is the packet. Lengths and types are in the byte
/// order of the host that logged them; no crate reads this framing, so it
/// is walked here. The order is taken from the first attribute (its
/// length fits the frame in one order only, in practice). A payload
/// attribute cut by the snaplen yields what was captured. None when the
/// frame holds no packet.
fn nflog_payload(frame: &[u8]) -> Result<Option<&[u8]>, String> {
    const NFULA_PAYLOAD: u16 = 9;
    if frame.len() < 4 {
        return Err("NFLOG header needs 4 bytes".into());
    }
    let mut little = None;
    let mut pos = 4;
    while frame.len() - pos >= 4 {
        let (a, b) = ([frame[pos], frame[pos + 1]], [frame[pos + 2], frame[pos + 3]]);
        let rest = frame.len() - pos;
        let le = little.unwrap_or_else(|| (4..=rest).contains(&(u16::from_le_bytes(a) as usize)));
        little = Some(le);
        let (len, ty) = if le {
            (u16::from_le_bytes(a) as usize, u16::from_le_bytes(b))
        } else {
            (u16::from_be_bytes(a) as usize, u16::from_be_bytes(b))
        };
        // The two top bits are netlink's nested and byte-order flags.
        if ty & 0x3fff == NFULA_PAYLOAD && len >= 4 {
            return Ok(Some(&frame[pos + 4..pos + len.min(rest)]));
        }
        if len < 4 || len > rest {
            return Err(format!("NFLOG attribute at byte {pos} has length {len}, {rest} bytes left in the frame"));
        }
        pos += (len + 3) & !3;
        pos = pos.min(frame.len());
    }
    Ok(None)
}

/// Decodes a frame of the given link type.
pub fn decode(link: u32, frame: &[u8]) -> Decoded {
    let sliced = match link {
        1 => LaxSlicedPacket::from_ethernet(frame).map_err(|e| e.to_string()),
        113 => {
            // Linux cooked capture v1: 16-byte header, protocol at 14.
            if frame.len() < 16 {
                return Decoded::Malformed {
                    layer: "link",
                    kind: "truncated_link_header",
                    detail: "SLL header needs 16 bytes".into(),
                };
            }
            let proto = u16::from_be_bytes([frame[14], frame[15]]);
            Ok(LaxSlicedPacket::from_ether_type(EtherType(proto), &frame[16..]))
        }
        276 => {
            // Linux cooked capture v2: 20-byte header, protocol at 0.
            if frame.len() < 20 {
                return Decoded::Malformed {
                    layer: "link",
                    kind: "truncated_link_header",
                    detail: "SLL2 header needs 20 bytes".into(),
                };
            }
            let proto = u16::from_be_bytes([frame[0], frame[1]]);
            Ok(LaxSlicedPacket::from_ether_type(EtherType(proto), &frame[20..]))
        }
        0 | 108 => {
            // BSD loopback: a 4-byte address family in either byte order.
            if frame.len() < 4 {
                return Decoded::Malformed {
                    layer: "link",
                    kind: "truncated_link_header",
                    detail: "loopback header needs 4 bytes".into(),
                };
            }
            let le = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]);
            let be = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
            let fam = if le < 256 { le } else { be };
            match fam {
                2 | 24 | 28 | 30 => LaxSlicedPacket::from_ip(&frame[4..]).map_err(|e| e.to_string()),
                _ => return Decoded::NotIp,
            }
        }
        101 | 12 | 14 | 228 | 229 => LaxSlicedPacket::from_ip(frame).map_err(|e| e.to_string()),
        239 => match nflog_payload(frame) {
            Ok(Some(packet)) => LaxSlicedPacket::from_ip(packet).map_err(|e| e.to_string()),
            Ok(None) => return Decoded::NotIp,
            Err(detail) => return Decoded::Malformed { layer: "link", kind: "bad_link_header", detail },
        },
        other => return Decoded::UnknownLink(other),
    };
    let sliced = match sliced {
        Ok(s) => s,
        Err(detail) => {
            return Decoded::Malformed { layer: "link", kind: "bad_link_header", detail };
        }
    };
    let vlan = sliced.link_exts.iter().find_map(|e| match e {
        LaxLinkExtSlice::Vlan(v) => Some(u16::from(v.vlan_identifier())),
        LaxLinkExtSlice::Macsec(_) => None,
    });
    let Some(net) = &sliced.net else {
        if let Some((err, layer)) = &sliced.stop_err
            && !matches!(layer, etherparse::err::Layer::Ethernet2Header)
        {
            return Decoded::Malformed { layer: "ip", kind: "bad_ip_header", detail: err.to_string() };
        }
        return Decoded::NotIp;
    };
    let (src, dst, version, ip_payload, expected, frag): NetParts = match net {
        LaxNetSlice::Ipv4(v4) => {
            let h = v4.header();
            let total = h.total_len() as usize;
            let hl = h.ihl() as usize * 4;
            let exts = v4.extensions().auth.map_or(0, |a| a.slice().len());
            let expected = (total > hl).then(|| total - hl - exts);
            let frag = h
                .is_fragmenting_payload()
                .then(|| (h.identification() as u32, h.fragments_offset(), h.more_fragments()));
            (IpAddr::V4(h.source_addr()), IpAddr::V4(h.destination_addr()), 4, v4.payload(), expected, frag)
        }
        LaxNetSlice::Ipv6(v6) => {
            let h = v6.header();
            let exts_len = v6.extensions().slice().len();
            let pl = h.payload_length() as usize;
            let expected = (pl > 0).then(|| pl.saturating_sub(exts_len));
            let frag =
                if v6.is_payload_fragmented() { v6_fragment(h.next_header().0, v6.extensions().slice()) } else { None };
            (IpAddr::V6(h.source_addr()), IpAddr::V6(h.destination_addr()), 6, v6.payload(), expected, frag)
        }
        LaxNetSlice::Arp(_) => return Decoded::NotIp,
    };
    let proto = ip_payload.ip_number.0;
    if let Some((id, offset, more)) = frag {
        return Decoded::Fragment(FragPiece {
            key: FragKey { src, dst, proto, id },
            vlan,
            offset,
            more,
            data_off: offset_in(frame, ip_payload.payload),
            data_len: ip_payload.payload.len(),
        });
    }
    let captured = ip_payload.payload.len();
    let missing_ip = expected.map_or(0, |e| e.saturating_sub(captured));
    let mut p = Packet {
        vlan,
        ip_version: version,
        src,
        dst,
        proto,
        sport: 0,
        dport: 0,
        tcp: TcpMeta::default(),
        payload_off: offset_in(frame, ip_payload.payload),
        payload_len: captured,
        missing: 0,
        l4_error: None,
    };
    transport(&mut p, frame, sliced.transport.as_ref(), ip_payload.payload, missing_ip);
    Decoded::Ip(p)
}

/// Fills the transport fields of `p` from an already sliced transport
/// header, or slices `l4` itself.
fn transport(p: &mut Packet, base: &[u8], sliced: Option<&TransportSlice>, l4: &[u8], missing_ip: usize) {
    let owned;
    let t = match sliced {
        Some(t) => t,
        None => {
            owned = match IpNumber(p.proto) {
                IpNumber::TCP => etherparse::TcpSlice::from_slice(l4).ok().map(TransportSlice::Tcp),
                IpNumber::UDP => etherparse::UdpSlice::from_slice_lax(l4).ok().map(TransportSlice::Udp),
                IpNumber::ICMP => etherparse::Icmpv4Slice::from_slice(l4).ok().map(TransportSlice::Icmpv4),
                IpNumber::IPV6_ICMP => etherparse::Icmpv6Slice::from_slice(l4).ok().map(TransportSlice::Icmpv6),
                _ => return,
            };
            match &owned {
                Some(t) => t,
                None if p.proto == 6 && l4.len() >= 20 => {
                    // The fixed header is there but its options are cut
                    // (snaplen): the fixed fields still place the packet
                    // in its flow, as tshark does.
                    let be16 = |i: usize| u16::from_be_bytes([l4[i], l4[i + 1]]);
                    let be32 = |i: usize| u32::from_be_bytes([l4[i], l4[i + 1], l4[i + 2], l4[i + 3]]);
                    p.sport = be16(0);
                    p.dport = be16(2);
                    p.tcp = TcpMeta { seq: be32(4), ack: be32(8), flags: l4[13], window: be16(14), wscale: NO_WSCALE };
                    let header = ((l4[12] >> 4) as usize * 4).max(20);
                    p.payload_off = offset_in(base, l4) + l4.len();
                    p.payload_len = 0;
                    p.missing = (l4.len() + missing_ip).saturating_sub(header);
                    return;
                }
                None => {
                    p.l4_error = Some(match IpNumber(p.proto) {
                        IpNumber::TCP => "truncated_tcp_header",
                        IpNumber::UDP => "truncated_udp_header",
                        _ => "truncated_icmp_header",
                    });
                    return;
                }
            }
        }
    };
    match t {
        TransportSlice::Tcp(tcp) => {
            p.sport = tcp.source_port();
            p.dport = tcp.destination_port();
            let raw = tcp.slice();
            let flags = raw.get(13).copied().unwrap_or(0);
            // Only a SYN negotiates the window scale; other segments'
            // options are not walked.
            let wscale = if flags & SYN != 0 {
                tcp.options_iterator().find_map(|o| match o {
                    Ok(etherparse::TcpOptionElement::WindowScale(shift)) => Some(shift),
                    _ => None,
                })
            } else {
                None
            };
            p.tcp = TcpMeta {
                seq: tcp.sequence_number(),
                ack: tcp.acknowledgment_number(),
                flags,
                window: tcp.window_size(),
                wscale: wscale.unwrap_or(NO_WSCALE),
            };
            let payload = tcp.payload();
            p.payload_off = offset_in(base, payload);
            p.payload_len = payload.len();
            p.missing = missing_ip;
        }
        TransportSlice::Udp(udp) => {
            p.sport = udp.source_port();
            p.dport = udp.destination_port();
            let payload = udp.payload();
            p.payload_off = offset_in(base, payload);
            p.payload_len = payload.len();
            p.missing = (udp.length() as usize).saturating_sub(8).saturating_sub(payload.len());
        }
        TransportSlice::Icmpv4(icmp) => {
            p.sport = icmp.type_u8() as u16;
            p.dport = icmp.code_u8() as u16;
            p.payload_len = 0;
        }
        TransportSlice::Icmpv6(icmp) => {
            p.sport = icmp.type_u8() as u16;
            p.dport = icmp.code_u8() as u16;
            p.payload_len = 0;
        }
        _ => {}
    }
}

/// A datagram reassembled from fragments: its transport bytes and the
/// packet decoded from them (offsets refer to `data`).
#[derive(Debug)]
pub struct Reassembled {
    pub data: Vec<u8>,
    pub packet: Packet,
}

/// IPv4/IPv6 fragment reassembly with bounded state.
#[derive(Debug)]
pub struct Defrag {
    /// Datagrams in progress: buffer, last fragment time, datagram id.
    active: HashMap<FragKey, (IpDefragBuf, i64, u64)>,
    max_datagrams: usize,
    timeout_ns: i64,
    /// Datagrams dropped because too many were in progress.
    pub overflows: u64,
    /// Datagrams dropped because they never completed in time.
    pub timeouts: u64,
    /// Fragments that conflicted with each other.
    pub errors: u64,
}

impl Defrag {
    pub fn new(max_datagrams: usize, timeout_ns: i64) -> Defrag {
        Defrag { active: HashMap::new(), max_datagrams, timeout_ns, overflows: 0, timeouts: 0, errors: 0 }
    }

    /// Adds one fragment (`frame` is the frame it was decoded from, `id`
    /// a number for the datagram should this fragment be its first: trawl
    /// gives the frame's ordinal); returns the datagram's id, and the
    /// datagram when it is complete.
    pub fn add(
        &mut self,
        piece: &FragPiece,
        frame: &[u8],
        ts_ns: i64,
        id: u64,
    ) -> Result<(u64, Option<Reassembled>), String> {
        let data = frame.get(piece.data_off..piece.data_off + piece.data_len).unwrap_or(&[]);
        if !self.active.contains_key(&piece.key) && self.active.len() >= self.max_datagrams {
            self.expire(ts_ns);
            if self.active.len() >= self.max_datagrams {
                // Drop the oldest eighth of the datagrams in progress: one
                // scan of them all per many fragments, not per fragment
                // (a flood of first fragments that never complete).
                let mut by_age: Vec<(i64, u32, FragKey)> = self.active.iter().map(|(k, v)| (v.1, k.id, *k)).collect();
                let n = (by_age.len() / 8).max(1);
                if n < by_age.len() {
                    by_age.select_nth_unstable_by_key(n, |e| (e.0, e.1));
                }
                for (_, _, k) in &by_age[..n] {
                    self.active.remove(k);
                }
                self.overflows += n as u64;
            }
        }
        let entry = self
            .active
            .entry(piece.key)
            .or_insert_with(|| (IpDefragBuf::new(IpNumber(piece.key.proto), Vec::new(), Vec::new()), ts_ns, id));
        entry.1 = ts_ns;
        let datagram = entry.2;
        if let Err(e) = entry.0.add(piece.offset, piece.more, data) {
            self.active.remove(&piece.key);
            self.errors += 1;
            return Err(e.to_string());
        }
        if !entry.0.is_complete() {
            return Ok((datagram, None));
        }
        let Some((buf, ..)) = self.active.remove(&piece.key) else {
            return Ok((datagram, None));
        };
        let (data, _) = buf.take_bufs();
        let mut packet = Packet {
            vlan: piece.vlan,
            ip_version: if piece.key.src.is_ipv4() { 4 } else { 6 },
            src: piece.key.src,
            dst: piece.key.dst,
            proto: piece.key.proto,
            sport: 0,
            dport: 0,
            tcp: TcpMeta::default(),
            payload_off: 0,
            payload_len: data.len(),
            missing: 0,
            l4_error: None,
        };
        transport(&mut packet, &data, None, &data, 0);
        Ok((datagram, Some(Reassembled { data, packet })))
    }

    /// Drops datagrams older than the timeout.
    pub fn expire(&mut self, now_ns: i64) {
        let timeout = self.timeout_ns;
        let before = self.active.len();
        self.active.retain(|_, (_, ts, _)| now_ns - *ts <= timeout);
        self.timeouts += (before - self.active.len()) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp_frame() -> Vec<u8> {
        let b = etherparse::PacketBuilder::ethernet2([1; 6], [2; 6])
            .single_vlan(42.try_into().unwrap_or_default())
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 80, 1000, 512)
            .syn();
        let mut v = Vec::new();
        b.write(&mut v, b"hello").ok();
        v
    }

    #[test]
    fn decode_ethernet_vlan_tcp() {
        let f = tcp_frame();
        let Decoded::Ip(p) = decode(1, &f) else { panic!("not decoded") };
        assert_eq!((p.vlan, p.sport, p.dport, p.tcp.seq, p.tcp.flags & SYN), (Some(42), 40000, 80, 1000, SYN));
        assert_eq!(&f[p.payload_off..p.payload_off + p.payload_len], b"hello");
    }

    #[test]
    fn decode_counts_bytes_cut_by_snaplen() {
        let f = tcp_frame();
        let cut = &f[..f.len() - 3];
        let Decoded::Ip(p) = decode(1, cut) else { panic!("not decoded") };
        assert_eq!((p.payload_len, p.missing), (2, 3));
    }

    #[test]
    fn fuzz_decode_fce90134() {
        // Found by fuzz/fuzz_targets/decode.rs: 0x65 0x02 then zeros.
        let mut data = [0u8; 132];
        data[0] = 0x65;
        data[1] = 0x02;
        for link in [0u32, 1, 101, 108, 113, 228, 229, 239, 276] {
            for len in 0..data.len() {
                let _ = decode(link, &data[..len]);
            }
        }
    }

    #[test]
    fn decode_random_frames_never_panic() {
        // Random bytes shaped like IPv4/IPv6 headers (debug builds check
        // the unsafe preconditions inside etherparse too).
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let len = (next() % 120) as usize;
            let mut f: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if let Some(b) = f.first_mut() {
                *b = if next() % 2 == 0 { 0x45 } else { 0x60 | (*b & 0x0f) };
            }
            if f.len() > 6 && next() % 2 == 0 {
                f[6] = [0u8, 43, 44, 60, 51, 6, 17][(next() % 7) as usize];
            }
            for link in [101u32, 1, 113, 276, 0] {
                let _ = decode(link, &f);
            }
        }
    }

    /// An IPv4 frame (raw IP) carrying `data` at fragment offset `off`.
    fn fragment(id: u16, off: u16, more: bool, data: &[u8]) -> Vec<u8> {
        let mut h = etherparse::Ipv4Header::new(data.len() as u16, 64, IpNumber::UDP, [10, 0, 0, 1], [10, 0, 0, 2])
            .unwrap_or_default();
        h.identification = id;
        h.more_fragments = more;
        h.fragment_offset = IpFragOffset::try_new(off / 8).unwrap_or(IpFragOffset::ZERO);
        let mut v = Vec::new();
        h.write(&mut v).ok();
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn defrag_rebuilds_an_ipv4_datagram_in_any_order() {
        // A UDP datagram of 8 + 40 bytes in three fragments, last first.
        let mut udp = vec![0x9c, 0x40, 0x00, 0x35, 0x00, 48, 0, 0];
        udp.extend((0..40u8).map(|b| b + 1));
        let frames =
            [fragment(7, 32, false, &udp[32..]), fragment(7, 0, true, &udp[..16]), fragment(7, 16, true, &udp[16..32])];
        let mut d = Defrag::new(16, 30_000_000_000);
        let mut out = None;
        for (i, f) in frames.iter().enumerate() {
            let Decoded::Fragment(piece) = decode(101, f) else { panic!("frame {i} is not a fragment") };
            match d.add(&piece, f, i as i64, 100 + i as u64) {
                Ok((datagram, Some(r))) => {
                    assert_eq!(datagram, 100, "the datagram is named after its first fragment");
                    out = Some(r)
                }
                Ok((_, None)) => assert!(i < 2, "incomplete after the last fragment"),
                Err(e) => panic!("{e}"),
            }
        }
        let r = out.unwrap_or_else(|| panic!("no datagram"));
        assert_eq!((r.packet.proto, r.packet.sport, r.packet.dport), (17, 40000, 53));
        assert_eq!(&r.data[r.packet.payload_off..r.packet.payload_off + r.packet.payload_len], &udp[8..]);
    }

    #[test]
    fn defrag_is_bounded() {
        let mut d = Defrag::new(4, 1_000);
        for id in 0..10u16 {
            let f = fragment(id, 0, true, &[0u8; 16]);
            let Decoded::Fragment(piece) = decode(101, &f) else { panic!("not a fragment") };
            let _ = d.add(&piece, &f, 0, u64::from(id));
        }
        assert_eq!(d.overflows, 6);
        d.expire(10_000);
        assert_eq!(d.timeouts, 4);
    }

    /// Every frame of a real NFLOG capture (testdata/scenarios/nflog.pcap,
    /// recorded by make_nflog.sh) decodes to the TCP packet tshark shows:
    /// ports and flags of the first three (the handshake), and the request
    /// line of the fourth.
    #[test]
    fn decode_nflog_frames_of_a_real_capture() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/scenarios/nflog.pcap");
        let bytes = std::fs::read(path).unwrap_or_default();
        let mut reader = pcap_file::pcap::PcapReader::new(&bytes[..]).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(u32::from(reader.header().datalink), 239);
        let mut packets = Vec::new();
        while let Some(Ok(rec)) = reader.next_packet() {
            let Decoded::Ip(p) = decode(239, &rec.data) else { panic!("frame {} not decoded", packets.len() + 1) };
            let payload = rec.data[p.payload_off..p.payload_off + p.payload_len].to_vec();
            packets.push((p.sport, p.dport, p.tcp.flags, payload));
        }
        assert_eq!(packets.len(), 24);
        let head: Vec<(u16, u16, u8)> = packets[..3].iter().map(|p| (p.0, p.1, p.2)).collect();
        assert_eq!(head, [(58320, 8000, SYN), (8000, 58320, SYN | ACK), (58320, 8000, ACK)]);
        assert!(packets[3].3.starts_with(b"GET /order.json HTTP/1.1\r\n"));
        // Cut, garbled or big-endian framing: data, not a panic.
        assert!(matches!(decode(239, &[2, 0]), Decoded::Malformed { .. }));
        assert!(matches!(decode(239, &[2, 0, 0, 5, 0xff, 0x7f, 1, 0]), Decoded::Malformed { .. }));
        assert!(matches!(decode(239, &[2, 0, 0, 5, 0, 8, 0, 1, 0, 0, 0, 0]), Decoded::NotIp));
    }

    #[test]
    fn decode_unknown_link_and_short_frames() {
        assert!(matches!(decode(147, &[0; 40]), Decoded::UnknownLink(147)));
        assert!(matches!(decode(113, &[0; 3]), Decoded::Malformed { .. }));
        assert!(matches!(decode(0, &[2, 0, 0, 0]), Decoded::Ip(_) | Decoded::Malformed { .. } | Decoded::NotIp));
    }
}

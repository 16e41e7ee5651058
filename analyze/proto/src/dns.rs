//! DNS messages as exchanges: a query and its response, paired by
//! transaction id on one flow (UDP, or TCP with its 2-byte length
//! prefix), with the questions, the question types, the answers and the
//! response code. mDNS and LLMNR share the format and are read the same.
//!
//! The header and the questions are read here (a checked view: counts,
//! names with compression pointers, bounded); answers are rendered from
//! simple-dns's parse of the whole message when it accepts it.

use get_size2::GetSize;
use simple_dns::Packet;
use simple_dns::rdata::RData;

use crate::detail::DnsInfo;
use crate::exchange::{CloseReason, Headers, Message, Output, StartLine};
use crate::pairing::{Asked, Book, Pairing};
use crate::parser::{Counts, Parser};
use crate::{At, Limits, Side};

/// The parts of a message this module reads.
#[derive(Debug, Clone, PartialEq, Eq, GetSize)]
pub struct Header {
    pub id: u16,
    pub response: bool,
    pub opcode: u8,
    pub rcode: u8,
    pub questions: Vec<(String, u16)>,
}

const MAX_QUESTIONS: usize = 16;
const MAX_ANSWERS: usize = 64;
const MAX_NAME: usize = 255;

/// Reads a DNS header and its questions; None if `b` is not a
/// well-formed DNS message start.
pub fn header(b: &[u8]) -> Option<Header> {
    let h = b.get(..12)?;
    let flags = u16::from_be_bytes([h[2], h[3]]);
    let qd = u16::from_be_bytes([h[4], h[5]]) as usize;
    let opcode = ((flags >> 11) & 0xf) as u8;
    if opcode > 6 || qd > 64 {
        return None;
    }
    let mut pos = 12;
    let mut questions = Vec::new();
    for _ in 0..qd {
        let name = read_name(b, &mut pos)?;
        let t = b.get(pos..pos + 4)?;
        pos += 4;
        if questions.len() < MAX_QUESTIONS {
            questions.push((name, u16::from_be_bytes([t[0], t[1]])));
        }
    }
    Some(Header {
        id: u16::from_be_bytes([h[0], h[1]]),
        response: flags & 0x8000 != 0,
        opcode,
        rcode: (flags & 0xf) as u8,
        questions,
    })
}

/// A name at `*pos` (advanced past it), compression pointers followed
/// (bounded).
fn read_name(b: &[u8], pos: &mut usize) -> Option<String> {
    let mut out = String::new();
    let mut at = *pos;
    let mut jumped = false;
    for _ in 0..128 {
        let len = *b.get(at)? as usize;
        if len == 0 {
            if !jumped {
                *pos = at + 1;
            }
            return Some(out);
        }
        if len & 0xc0 == 0xc0 {
            let ptr = ((len & 0x3f) << 8) | *b.get(at + 1)? as usize;
            if !jumped {
                *pos = at + 2;
            }
            jumped = true;
            if ptr >= at {
                return None;
            }
            at = ptr;
            continue;
        }
        if len & 0xc0 != 0 {
            return None;
        }
        let label = b.get(at + 1..at + 1 + len)?;
        if !out.is_empty() {
            out.push('.');
        }
        // Lower case as it is copied (names compare case-blind).
        out.extend(label.iter().map(|&c| if c.is_ascii_graphic() { c.to_ascii_lowercase() as char } else { '?' }));
        if out.len() > MAX_NAME {
            return None;
        }
        at += 1 + len;
    }
    None
}

/// The name of a record type.
pub fn type_name(t: u16) -> String {
    match t {
        1 => "A".into(),
        2 => "NS".into(),
        5 => "CNAME".into(),
        6 => "SOA".into(),
        12 => "PTR".into(),
        13 => "HINFO".into(),
        15 => "MX".into(),
        16 => "TXT".into(),
        28 => "AAAA".into(),
        33 => "SRV".into(),
        35 => "NAPTR".into(),
        41 => "OPT".into(),
        43 => "DS".into(),
        46 => "RRSIG".into(),
        47 => "NSEC".into(),
        48 => "DNSKEY".into(),
        64 => "SVCB".into(),
        65 => "HTTPS".into(),
        252 => "AXFR".into(),
        255 => "ANY".into(),
        n => format!("TYPE{n}"),
    }
}

/// The name of a response code.
pub fn rcode_name(r: u8) -> &'static str {
    match r {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        _ => "RESERVED",
    }
}

fn opcode_name(o: u8) -> &'static str {
    match o {
        0 => "QUERY",
        1 => "IQUERY",
        2 => "STATUS",
        4 => "NOTIFY",
        5 => "UPDATE",
        _ => "RESERVED",
    }
}

/// Answer data of a whole message, or why simple-dns could not read it
/// (a name that loops, a record cut short).
fn answers(b: &[u8]) -> Result<Vec<String>, String> {
    let p = Packet::parse(b).map_err(|e| e.to_string())?;
    Ok(p.answers
        .iter()
        .take(MAX_ANSWERS)
        .map(|rr| match &rr.rdata {
            RData::A(a) => std::net::Ipv4Addr::from(a.address).to_string(),
            RData::AAAA(a) => std::net::Ipv6Addr::from(a.address).to_string(),
            RData::CNAME(c) => c.0.to_string().trim_end_matches('.').to_ascii_lowercase(),
            RData::PTR(c) => c.0.to_string().trim_end_matches('.').to_ascii_lowercase(),
            RData::NS(c) => c.0.to_string().trim_end_matches('.').to_ascii_lowercase(),
            RData::MX(m) => format!("{} {}", m.preference, m.exchange.to_string().trim_end_matches('.')),
            RData::SRV(s) => {
                format!("{} {} {} {}", s.priority, s.weight, s.port, s.target.to_string().trim_end_matches('.'))
            }
            RData::TXT(t) => t
                .attributes()
                .into_iter()
                .map(|(k, v)| v.map_or(k.clone(), |v| format!("{k}={v}")))
                .collect::<Vec<_>>()
                .join(" "),
            other => format!("{:?}", other.type_code()),
        })
        .collect())
}

/// DNS state of one flow: queries waiting for their responses.
#[derive(Debug, GetSize)]
pub struct DnsConn {
    limits: Limits,
    /// Queries waiting for their responses (by transaction id).
    pairs: Pairing<Asked<DnsInfo>>,
    /// TCP: bytes of an incomplete length-prefixed message, per side.
    held: [Vec<u8>; 2],
    held_at: [At; 2],
    lost: [bool; 2],
}

impl DnsConn {
    pub fn new(limits: Limits) -> DnsConn {
        DnsConn {
            limits,
            pairs: Pairing::new(limits.max_pending),
            held: Default::default(),
            held_at: [At::default(); 2],
            lost: [false; 2],
        }
    }

    /// One whole DNS message (a UDP payload, or a TCP message without
    /// its length prefix).
    pub fn message(&mut self, at: At, b: &[u8]) {
        self.message_with_header(at, b, header(b));
    }

    /// [`DnsConn::message`] of a message whose header is parsed already
    /// (`header(b)`).
    pub fn message_with_header(&mut self, at: At, b: &[u8], h: Option<Header>) {
        let Some(h) = h else {
            self.pairs.rows.issue(at, "bad_dns_message", format!("{} bytes that are not a DNS message", b.len()));
            return;
        };
        let cap = self.limits.max_body_bytes;
        let body = b[..b.len().min(cap)].to_vec();
        let (questions, types): (Vec<String>, Vec<String>) =
            h.questions.iter().map(|(n, t)| (n.clone(), type_name(*t))).unzip();
        let start = if h.response {
            StartLine::Response { status: h.rcode as u16, reason: rcode_name(h.rcode).into() }
        } else {
            StartLine::Request {
                method: opcode_name(h.opcode).into(),
                target: questions.first().cloned().unwrap_or_default(),
            }
        };
        let msg = Message {
            at,
            end: at,
            start,
            version: None,
            headers: Headers::default(),
            head_size: 12,
            body_truncated: b.len() > cap,
            body,
            body_size: b.len() as u64,
            error: None,
        };
        let info = DnsInfo { id: h.id, questions, question_types: types, answers: Vec::new() };
        if !h.response {
            self.pairs.wait(Asked { key: h.id.into(), request: msg, info });
            return;
        }
        let answers = answers(b).unwrap_or_else(|e| {
            self.pairs.rows.issue(
                at,
                "bad_dns_answers",
                format!("the answers of response {} are unreadable: {e}", h.id),
            );
            Vec::new()
        });
        match self.pairs.answer(|q| q.key == i64::from(h.id)) {
            Some(Asked { request, mut info, .. }) => {
                info.answers = answers;
                self.pairs.rows.row(Some(request), Some(msg), info, None);
            }
            None => self.pairs.rows.row(None, Some(msg), DnsInfo { answers, ..info }, Some("no_request")),
        }
    }
}

impl Parser for DnsConn {
    fn held_bytes(&self) -> usize {
        self.get_heap_size()
    }
    fn counts(&self) -> Counts {
        self.pairs.counts()
    }

    /// Takes what was produced so far.
    fn drain(&mut self) -> Output {
        self.pairs.rows().drain()
    }

    /// TCP: in-order bytes of length-prefixed messages from one side.
    fn on_data(&mut self, side: Side, at: At, data: &[u8]) {
        let i = side.index();
        if self.lost[i] {
            return;
        }
        let (mut held, mut held_at) = (std::mem::take(&mut self.held[i]), self.held_at[i]);
        let max = self.limits.max_head_bytes;
        crate::feed_held(&mut held, &mut held_at, at, data, |first_at, _, bytes| {
            let mut pos = 0;
            while let Some(len) = bytes.get(pos..pos + 2).map(|l| u16::from_be_bytes([l[0], l[1]]) as usize) {
                let Some(m) = bytes.get(pos + 2..pos + 2 + len) else { break };
                self.message(if pos == 0 { first_at } else { at }, m);
                pos += 2 + len;
            }
            // A message is at most 64 KiB; beyond the head cap it is skipped.
            if bytes.len() - pos > max {
                self.lost[i] = true;
                return bytes.len();
            }
            pos
        });
        (self.held[i], self.held_at[i]) = (held, held_at);
    }

    /// TCP: bytes of one side were not captured; its framing is lost.
    fn on_gap(&mut self, side: Side, at: At, _len: u64) {
        let i = side.index();
        if !self.lost[i] {
            self.lost[i] = true;
            self.held[i].clear();
            self.pairs.rows.issue(at, "dns_framing_lost", "a gap in a DNS-over-TCP stream".into());
        }
    }

    /// The flow ended: queries without a response are emitted.
    fn on_close(&mut self, _at: At, reason: CloseReason) {
        self.pairs.close(reason);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testing::{Step, every_chunking};

    fn at(n: i64) -> At {
        At { tag: n as u64, ts_ns: n }
    }

    /// A query for www.example.com (A) and its response: CNAME
    /// edge.example.net, then A 93.184.216.34.
    pub(crate) fn example() -> (Vec<u8>, Vec<u8>) {
        let q_name = [3, b'w', b'w', b'w', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'c', b'o', b'm', 0];
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(&q_name);
        q.extend_from_slice(&[0, 1, 0, 1]);
        let mut r = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0];
        r.extend_from_slice(&q_name);
        r.extend_from_slice(&[0, 1, 0, 1]);
        r.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60]);
        let target = [4, b'e', b'd', b'g', b'e', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'n', b'e', b't', 0];
        r.extend_from_slice(&(target.len() as u16).to_be_bytes());
        let target_at = r.len();
        r.extend_from_slice(&target);
        r.extend_from_slice(&[0xc0, target_at as u8, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 93, 184, 216, 34]);
        (q, r)
    }

    #[test]
    fn query_and_response_pair_by_id() {
        let (q, r) = example();
        let mut c = DnsConn::new(Limits::default());
        c.message(at(1), &q);
        c.message(at(2), &r);
        let out = c.drain();
        assert_eq!(out.exchanges.len(), 1);
        let ex = &out.exchanges[0];
        let d = ex.detail.dns().unwrap();
        assert_eq!(
            (d.id, &d.questions[..], &d.question_types[..]),
            (0x1234, &["www.example.com".to_string()][..], &["A".to_string()][..])
        );
        assert_eq!(d.answers, ["edge.example.net", "93.184.216.34"]);
        assert!(matches!(ex.response.as_ref().unwrap().start, StartLine::Response { status: 0, .. }));
        assert_eq!(ex.error, None);
    }

    /// A response whose answer names point at themselves (a compression
    /// loop) pairs with its query; the unreadable answers are reported.
    #[test]
    fn answers_whose_names_loop_are_reported_not_dropped_silently() {
        let (q, mut r) = example();
        // The first answer's name, at offset 33, points at itself.
        assert_eq!(r[33..35], [0xc0, 12]);
        r[34] = 33;
        let mut c = DnsConn::new(Limits::default());
        c.message(at(1), &q);
        c.message(at(2), &r);
        let out = c.drain();
        assert_eq!(out.exchanges.len(), 1);
        assert_eq!(out.exchanges[0].detail.dns().map(|d| d.answers.len()), Some(0));
        let issues: Vec<&str> = out.issues.iter().map(|i| i.kind).collect();
        assert_eq!(issues, ["bad_dns_answers"]);
    }

    #[test]
    fn tcp_messages_are_length_prefixed_and_may_be_split() {
        let (q, r) = example();
        let mut query = (q.len() as u16).to_be_bytes().to_vec();
        query.extend_from_slice(&q);
        let mut answer = (r.len() as u16).to_be_bytes().to_vec();
        answer.extend_from_slice(&r);
        let out = every_chunking(
            || Box::new(DnsConn::new(Limits::default())),
            &[Step::Data(Side::Requester, &query), Step::Data(Side::Responder, &answer)],
        );
        assert_eq!(out.exchanges.len(), 1);
        assert_eq!(out.exchanges[0].detail.dns().map(|d| d.answers.len()), Some(2));
    }

    #[test]
    fn unanswered_and_unasked_and_garbage() {
        let (q, mut r) = example();
        r[1] = 0x99;
        let mut c = DnsConn::new(Limits::default());
        c.message(at(1), &q);
        c.message(at(2), &r);
        c.message(at(3), &[1, 2, 3]);
        c.on_close(At::default(), CloseReason::Fin);
        let out = c.drain();
        let errs: Vec<_> = out.exchanges.iter().map(|e| e.error.as_deref()).collect();
        assert_eq!(errs, [Some("no_request"), Some("no_response")]);
        assert_eq!(out.issues[0].kind, "bad_dns_message");
        for cut in 0..r.len() {
            let _ = header(&r[..cut]);
        }
    }
}

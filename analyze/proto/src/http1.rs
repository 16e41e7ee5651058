//! HTTP/1.0 and HTTP/1.1 over a reassembled TCP connection.
//!
//! [`Http1Conn`] is fed the bytes of each side in capture order
//! ([`Http1Conn::on_data`]), told about lost bytes ([`Http1Conn::on_gap`]),
//! about a side's FIN ([`Http1Conn::on_end`]) and about the end of the
//! connection ([`Http1Conn::on_close`]). It emits one [`Exchange`] per
//! request/response pair, in request order, pipelining included.
//!
//! Heads are parsed by `httparse` (lenient configuration). A head that
//! httparse rejects but that is still recognisably HTTP (a complete head
//! whose first line starts with a token) becomes a message with its
//! `error` set, so that odd methods and broken request lines stay visible.
//!
//! Body framing follows RFC 9112 §6.3: no body for HEAD, 1xx, 204 and 304;
//! CONNECT with 2xx turns the connection into a tunnel; chunked (with
//! trailers); Content-Length; otherwise close-delimited for responses and
//! empty for requests. 1xx interim responses (100-continue) are recorded on
//! the exchange and do not consume the request. After a 101 or an accepted
//! CONNECT the connection leaves HTTP/1 ([`Http1Conn::upgraded`]).
//!
//! After a gap, a body of known length just skips the lost bytes; anything
//! else resynchronises on the next line that looks like a request line
//! (requester side) or a status line (responder side).
//!
//! Stored bodies are capped at [`Limits::max_body_bytes`] and decoded
//! (gzip, deflate, br) for the stored copy, the decoded copy capped too.
//!
//! One file: heads, body framing, pipelining, interim responses, switches
//! and resynchronisation are one state machine per connection. Tests are
//! the last two hundred lines.

use get_size2::GetSize;
use std::collections::VecDeque;

use crate::body::decode_body;
use crate::exchange::{CloseReason, Exchange, Headers, Message, Output, StartLine};
use crate::pairing::Rows;
use crate::parser::{Counts, Parser, Switch};
use crate::{At, Limits, Side};

/// Does this look like the start of an HTTP/1 message?
#[derive(Debug, Clone, Copy, PartialEq, Eq, GetSize)]
pub enum Probe {
    /// A request line: these bytes come from the requester.
    Request,
    /// A status line: these bytes come from the responder.
    Response,
    /// Not enough bytes to tell.
    NeedMore,
    NotHttp,
}

/// Classifies the first bytes of one side of a connection.
pub fn probe(data: &[u8]) -> Probe {
    let data = trim_leading_newlines(data);
    if data.is_empty() {
        return Probe::NeedMore;
    }
    if data.len() >= 5 && &data[..5] == b"HTTP/" {
        return if data.len() >= 7 && &data[5..7] == b"1." {
            Probe::Response
        } else if data.len() < 7 {
            Probe::NeedMore
        } else {
            Probe::NotHttp
        };
    }
    if b"HTTP/".starts_with(&data[..data.len().min(5)]) {
        return Probe::NeedMore;
    }
    // A request line: text naming HTTP/1 (odd or broken methods included).
    let line_end = memchr::memchr(b'\n', data);
    let line = trim_cr(&data[..line_end.unwrap_or(data.len()).min(8192)]);
    if !is_text_line(line) {
        return Probe::NotHttp;
    }
    if memchr::memmem::find(line, b"HTTP/1.").is_some() {
        return Probe::Request;
    }
    let token_len = line.iter().take_while(|b| is_method_char(**b)).count();
    if line_end.is_none() && line.len() < 8192 && token_len > 0 {
        return Probe::NeedMore;
    }
    // A bare method with no version (HTTP/0.9 style): let the other side
    // decide; a status line from it makes the connection HTTP.
    if line_end.is_some() && token_len == line.len() && (3..=32).contains(&token_len) {
        return Probe::NeedMore;
    }
    Probe::NotHttp
}

/// Printable text (UTF-8 bytes allowed), no control characters but tab.
fn is_text_line(line: &[u8]) -> bool {
    line.iter().all(|b| *b >= 0x20 && *b != 0x7f || *b == b'\t')
}

fn is_method_char(b: u8) -> bool {
    b.is_ascii_uppercase() || b == b'_' || b == b'-'
}

fn trim_leading_newlines(mut d: &[u8]) -> &[u8] {
    while let [b'\r' | b'\n', rest @ ..] = d {
        d = rest;
    }
    d
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, GetSize)]
enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    Trailer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, GetSize)]
enum Phase {
    Head,
    Length(u64),
    Chunked(Chunk),
    UntilClose,
    /// Waiting for the response to a CONNECT or Upgrade request.
    Paused,
    Resync,
    Tunnel,
    Closed,
}

#[derive(Debug, GetSize)]
struct Dir {
    phase: Phase,
    /// Bytes kept between calls: a partial head, a partial chunk line, the
    /// resync window, or the bytes held while paused.
    buf: Vec<u8>,
    /// Where `buf[0]` was seen.
    buf_at: At,
    /// The message whose body is being read.
    cur: Option<Message>,
    /// Slot sequence number of `cur`.
    cur_seq: u64,
    /// Raw (not yet content-decoded) stored body of `cur`.
    raw: Vec<u8>,
}

impl Dir {
    fn new(phase: Phase) -> Dir {
        Dir { phase, buf: Vec::new(), buf_at: At::default(), cur: None, cur_seq: 0, raw: Vec::new() }
    }
}

#[derive(Debug, Default, GetSize)]
struct Slot {
    request: Option<Message>,
    req_done: bool,
    response: Option<Message>,
    resp_done: bool,
    is_head: bool,
    is_connect: bool,
    wants_upgrade: bool,
    interim: Vec<u16>,
    upgrade: Option<String>,
}

/// HTTP/1 parser state for one TCP connection.
#[derive(Debug, GetSize)]
pub struct Http1Conn {
    limits: Limits,
    dirs: [Dir; 2],
    slots: VecDeque<Slot>,
    /// Sequence number of `slots[0]`.
    slot_base: u64,
    /// Sequence number of the slot the next final response belongs to.
    resp_next: u64,
    upgraded: Option<String>,
    /// The capture began mid-connection and the requester side has not
    /// reached its first request line yet.
    joined_mid_stream: bool,
    /// Bytes of a request were skipped while joining mid-stream.
    partial_request: bool,
    tunnel_bytes: u64,
    /// Requests the full queue gave up.
    given_up: u64,
    /// The switch to a protocol another parser reads (h2c, websocket),
    /// until the caller takes it.
    switch: Option<Box<Switch>>,
    rows: Rows,
}

/// Upgrade protocols whose bytes are handed to another parser.
fn parsed_elsewhere(proto: &str) -> bool {
    proto == "h2c" || proto == "websocket"
}

impl Http1Conn {
    /// A parser for a connection. `mid_stream` is true when the capture
    /// did not see the connection start, so that the first bytes of each
    /// side may be the middle of a message: parsing then starts by
    /// resynchronising.
    pub fn new(limits: Limits, mid_stream: bool) -> Http1Conn {
        let phase = if mid_stream { Phase::Resync } else { Phase::Head };
        Http1Conn {
            limits,
            dirs: [Dir::new(phase), Dir::new(phase)],
            slots: VecDeque::new(),
            slot_base: 0,
            resp_next: 0,
            upgraded: None,
            joined_mid_stream: mid_stream,
            partial_request: false,
            tunnel_bytes: 0,
            given_up: 0,
            switch: None,
            rows: Rows::default(),
        }
    }

    /// The protocol the connection switched to, if it left HTTP/1.
    pub fn upgraded(&self) -> Option<&str> {
        self.upgraded.as_deref()
    }

    /// Bytes seen after the connection left HTTP/1.
    pub fn tunnel_bytes(&self) -> u64 {
        self.tunnel_bytes
    }

    // ---- internals ----

    fn issue(&mut self, at: At, kind: &'static str, detail: String) {
        self.rows.issue(at, kind, detail);
    }

    fn mark_gap(&mut self, i: usize, len: u64) {
        if let Some(m) = self.dirs[i].cur.as_mut() {
            m.body_size += len;
            m.body_truncated = true;
            m.error.get_or_insert_with(|| "gap".to_string());
        }
    }

    fn enter_resync(&mut self, i: usize) {
        let d = &mut self.dirs[i];
        d.phase = Phase::Resync;
        d.buf.clear();
    }

    /// Processes `data` (whose bytes before `split` were seen at
    /// `first_at`, the rest at `at`); returns how many bytes were consumed.
    fn process(&mut self, side: Side, first_at: At, at: At, split: usize, data: &[u8]) -> usize {
        let i = side.index();
        let mut pos = 0;
        while pos < data.len() {
            let here = if pos < split { first_at } else { at };
            let phase = self.dirs[i].phase;
            match phase {
                Phase::Head => match self.parse_head(side, here, &data[pos..]) {
                    Some(n) => pos += n,
                    None => return pos,
                },
                Phase::Length(rem) => {
                    let n = rem.min((data.len() - pos) as u64) as usize;
                    self.store_body(i, at, &data[pos..pos + n]);
                    pos += n;
                    if rem == n as u64 {
                        self.finish_message(side, at);
                    } else {
                        self.dirs[i].phase = Phase::Length(rem - n as u64);
                    }
                }
                Phase::UntilClose => {
                    self.store_body(i, at, &data[pos..]);
                    pos = data.len();
                }
                Phase::Chunked(c) => match self.chunked(side, at, c, &data[pos..]) {
                    Some(n) => pos += n,
                    None => return pos,
                },
                Phase::Paused => {
                    if data.len() - pos > self.limits.max_head_bytes {
                        self.issue(
                            at,
                            "paused_overflow",
                            "too many bytes sent before the response to a CONNECT/Upgrade request".into(),
                        );
                        self.enter_resync(i);
                        continue;
                    }
                    return pos;
                }
                Phase::Resync => match resync_point(side, &data[pos..]) {
                    Ok(off) => {
                        if off > 0 {
                            self.partial_request |= side == Side::Requester && self.joined_mid_stream;
                        }
                        if std::mem::take(&mut self.partial_request) && side == Side::Requester {
                            // The capture began inside a request: its
                            // response is still to come and must not be
                            // paired with the next request.
                            self.slots.push_back(Slot { req_done: true, ..Slot::default() });
                        }
                        if side == Side::Requester {
                            self.joined_mid_stream = false;
                        }
                        pos += off;
                        self.dirs[i].phase = Phase::Head;
                    }
                    Err(keep) => {
                        if data.len() - keep > pos {
                            self.partial_request |= side == Side::Requester && self.joined_mid_stream;
                        }
                        return data.len() - keep;
                    }
                },
                Phase::Tunnel | Phase::Closed => {
                    self.tunnel_bytes += (data.len() - pos) as u64;
                    if let Some(sw) = self.switch.as_mut().filter(|_| phase == Phase::Tunnel) {
                        let (held_at, held) = &mut sw.held[i];
                        if held.is_empty() {
                            *held_at = here;
                        }
                        let room = self.limits.max_head_bytes.saturating_sub(held.len());
                        held.extend_from_slice(&data[pos..data.len().min(pos + room)]);
                    }
                    return data.len();
                }
            }
        }
        pos
    }

    /// Parses one head at the start of `data`. Returns the bytes consumed,
    /// or None when more bytes are needed.
    fn parse_head(&mut self, side: Side, at: At, data: &[u8]) -> Option<usize> {
        let i = side.index();
        // Blank lines between messages are tolerated (RFC 9112 §2.2).
        let skip = data.len() - trim_leading_newlines(data).len();
        if skip > 0 {
            return Some(skip);
        }
        let mut storage = [httparse::EMPTY_HEADER; 128];
        let nh = self.limits.max_headers.min(storage.len());
        let headers = &mut storage[..nh];
        let mut cfg = httparse::ParserConfig::default();
        cfg.allow_spaces_after_header_name_in_responses(true)
            .allow_obsolete_multiline_headers_in_responses(true)
            .allow_multiple_spaces_in_request_line_delimiters(true)
            .allow_multiple_spaces_in_response_status_delimiters(true)
            .ignore_invalid_headers_in_requests(true)
            .ignore_invalid_headers_in_responses(true);
        let parsed: Result<Option<ParsedHead>, String> = match side {
            Side::Requester => {
                let mut req = httparse::Request::new(headers);
                match cfg.parse_request(&mut req, data) {
                    Ok(httparse::Status::Complete(n)) => Ok(Some((
                        n,
                        StartLine::Request {
                            method: req.method.unwrap_or_default().to_string(),
                            target: req.path.unwrap_or_default().to_string(),
                        },
                        req.version,
                        collect_headers(req.headers),
                    ))),
                    Ok(httparse::Status::Partial) => Ok(None),
                    Err(e) => Err(e.to_string()),
                }
            }
            Side::Responder => {
                let mut resp = httparse::Response::new(headers);
                match cfg.parse_response(&mut resp, data) {
                    Ok(httparse::Status::Complete(n)) => Ok(Some((
                        n,
                        StartLine::Response {
                            status: resp.code.unwrap_or(0),
                            reason: resp.reason.unwrap_or("").to_string(),
                        },
                        resp.version,
                        collect_headers(resp.headers),
                    ))),
                    Ok(httparse::Status::Partial) => Ok(None),
                    Err(e) => Err(e.to_string()),
                }
            }
        };
        let (n, start, version, headers, error) = match parsed {
            Ok(Some((n, s, v, h))) => (n, s, v, h, None),
            Ok(None) => {
                if data.len() > self.limits.max_head_bytes {
                    self.issue(
                        at,
                        "head_too_large",
                        format!("message head longer than {} bytes", self.limits.max_head_bytes),
                    );
                    self.enter_resync(i);
                    return Some(data.len());
                }
                return None;
            }
            Err(e) => match lenient_head(side, data, self.limits.max_head_bytes) {
                Lenient::Head(n, s, v, h) => {
                    let kind = if side == Side::Requester { "bad_request_line" } else { "bad_status_line" };
                    let first = String::from_utf8_lossy(&data[..memchr::memchr(b'\n', data).unwrap_or(0)])
                        .trim_end()
                        .to_string();
                    self.issue(at, kind, format!("{e}: {first:?}"));
                    (n, s, v, h, Some(format!("parse_error: {e}")))
                }
                Lenient::NeedMore => return None,
                Lenient::No => {
                    let kind = if side == Side::Requester { "bad_request" } else { "bad_response" };
                    let first = String::from_utf8_lossy(&data[..data.len().min(40)]).to_string();
                    self.issue(at, kind, format!("{e} at {first:?}; resynchronising"));
                    self.enter_resync(i);
                    return Some(1);
                }
            },
        };
        if headers.len() >= nh {
            self.issue(at, "too_many_headers", format!("more than {nh} headers; the rest were dropped"));
        }
        let msg = Message {
            at,
            end: at,
            start,
            version,
            headers,
            head_size: n as u64,
            body: Vec::new(),
            body_size: 0,
            body_truncated: false,
            error,
        };
        match side {
            Side::Requester => self.start_request(at, msg),
            Side::Responder => self.start_response(at, msg),
        }
        Some(n)
    }

    fn start_request(&mut self, at: At, msg: Message) {
        let method = match &msg.start {
            StartLine::Request { method, .. } => method.clone(),
            StartLine::Response { .. } | StartLine::Unknown => String::new(),
        };
        let framing = request_framing(&msg);
        // A server cannot know the method of a request line it could not
        // parse, so HEAD semantics apply to well-formed requests only.
        let slot = Slot {
            is_head: method.eq_ignore_ascii_case("HEAD") && msg.error.is_none(),
            is_connect: method.eq_ignore_ascii_case("CONNECT"),
            wants_upgrade: msg.header("upgrade").is_some() && msg.version == Some(1),
            ..Slot::default()
        };
        let pause = slot.is_connect || slot.wants_upgrade;
        if self.slots.len() >= self.limits.max_pending {
            self.issue(
                at,
                "too_many_pending",
                format!("more than {} requests waiting for responses", self.limits.max_pending),
            );
            if let Some(old) = self.slots.pop_front() {
                self.given_up += 1;
                self.slot_base += 1;
                self.resp_next = self.resp_next.max(self.slot_base);
                self.emit(old, Some("no_response".into()));
            }
        }
        self.slots.push_back(slot);
        let seq = self.slot_base + self.slots.len() as u64 - 1;
        self.begin_body(Side::Requester, at, msg, seq, framing);
        if pause && self.dirs[0].phase == Phase::Head {
            self.dirs[0].phase = Phase::Paused;
        }
    }

    /// A head was read: its side now reads the body framed by `framing`
    /// (or, for `Phase::Head`, the message is complete already).
    fn begin_body(&mut self, side: Side, at: At, msg: Message, seq: u64, framing: Phase) {
        let d = &mut self.dirs[side.index()];
        d.cur = Some(msg);
        d.cur_seq = seq;
        d.raw = Vec::new();
        if let Phase::Length(n) = framing {
            // Sized once: the stored copy never regrows.
            d.raw.reserve(n.min(self.limits.max_body_bytes as u64) as usize);
        }
        d.phase = framing;
        if framing == Phase::Head {
            self.finish_message(side, at);
        }
    }

    fn start_response(&mut self, at: At, msg: Message) {
        let status = match msg.start {
            StartLine::Response { status, .. } => status,
            StartLine::Request { .. } | StartLine::Unknown => 0,
        };
        let waiting = self.resp_next < self.slot_base + self.slots.len() as u64;
        if (100..200).contains(&status) && status != 101 {
            // Interim response: recorded, the request stays open.
            let idx = self.resp_next.saturating_sub(self.slot_base) as usize;
            if let Some(slot) = self.slots.get_mut(idx).filter(|_| waiting) {
                slot.interim.push(status);
            }
            return;
        }
        if !waiting {
            // A response whose request was not captured.
            self.slots.push_back(Slot { req_done: true, ..Slot::default() });
        }
        let seq = self.resp_next.max(self.slot_base);
        self.resp_next = seq + 1;
        let idx = (seq - self.slot_base) as usize;
        let (is_head, is_connect, wants_upgrade) =
            self.slots.get(idx).map_or((false, false, false), |s| (s.is_head, s.is_connect, s.wants_upgrade));
        let mut tunnel = None;
        let framing = if status == 101 {
            tunnel = Some(msg.header("upgrade").unwrap_or("unknown").to_ascii_lowercase());
            Phase::Head
        } else if is_connect && (200..300).contains(&status) {
            tunnel = Some("connect".to_string());
            Phase::Head
        } else if is_head || status == 204 || status == 304 {
            Phase::Head
        } else {
            response_framing(&msg)
        };
        if let (Some(proto), Some(slot)) = (&tunnel, self.slots.get_mut(idx)) {
            slot.upgrade = Some(proto.clone());
        }
        let switch = tunnel.as_deref().filter(|p| parsed_elsewhere(p)).map(|p| {
            Box::new(Switch {
                protocol: p.to_string(),
                request: self.slots.get(idx).and_then(|s| s.request.clone()),
                response: msg.clone(),
                next_index: 0,
                held: Default::default(),
            })
        });
        self.begin_body(Side::Responder, at, msg, seq, framing);
        if let Some(proto) = tunnel {
            self.upgraded = Some(proto);
            self.switch = switch;
            if let Some(sw) = self.switch.as_mut() {
                sw.next_index = self.rows.next_index();
            }
            let held_at = self.dirs[0].buf_at;
            for (i, d) in self.dirs.iter_mut().enumerate() {
                d.phase = Phase::Tunnel;
                self.tunnel_bytes += d.buf.len() as u64;
                if let Some(sw) = self.switch.as_mut() {
                    // The requester's bytes held while the 101 was awaited.
                    sw.held[i] = (held_at, std::mem::take(&mut d.buf));
                }
                d.buf.clear();
            }
        } else if is_connect || wants_upgrade {
            // Refused: the requester's held bytes are HTTP/1 again.
            let held = std::mem::take(&mut self.dirs[0].buf);
            let held_at = self.dirs[0].buf_at;
            if self.dirs[0].phase == Phase::Paused {
                self.dirs[0].phase = Phase::Head;
                if !held.is_empty() {
                    self.on_data(Side::Requester, held_at, &held);
                }
            }
        }
    }

    fn chunked(&mut self, side: Side, at: At, c: Chunk, data: &[u8]) -> Option<usize> {
        let i = side.index();
        match c {
            Chunk::Size => {
                let Some(nl) = memchr::memchr(b'\n', data) else {
                    return self.line_wait(side, at, data);
                };
                let line = &data[..nl];
                let hex_end = line.iter().position(|b| !b.is_ascii_hexdigit()).unwrap_or(line.len());
                let size = std::str::from_utf8(&line[..hex_end]).ok().and_then(|s| u64::from_str_radix(s, 16).ok());
                match size {
                    Some(0) => self.dirs[i].phase = Phase::Chunked(Chunk::Trailer),
                    Some(n) => self.dirs[i].phase = Phase::Chunked(Chunk::Data(n)),
                    None => {
                        self.issue(
                            at,
                            "bad_chunk_size",
                            format!("chunk size line {:?}", String::from_utf8_lossy(&line[..line.len().min(40)])),
                        );
                        if let Some(m) = self.dirs[i].cur.as_mut() {
                            m.error.get_or_insert_with(|| "parse_error: bad chunk size".into());
                            m.body_truncated = true;
                        }
                        self.finish_message(side, at);
                        self.enter_resync(i);
                    }
                }
                Some(nl + 1)
            }
            Chunk::Data(rem) => {
                let n = rem.min(data.len() as u64) as usize;
                self.store_body(i, at, &data[..n]);
                self.dirs[i].phase =
                    Phase::Chunked(if rem == n as u64 { Chunk::DataEnd } else { Chunk::Data(rem - n as u64) });
                Some(n)
            }
            Chunk::DataEnd => match data {
                [b'\r', b'\n', ..] => {
                    self.dirs[i].phase = Phase::Chunked(Chunk::Size);
                    Some(2)
                }
                [b'\n', ..] => {
                    self.dirs[i].phase = Phase::Chunked(Chunk::Size);
                    Some(1)
                }
                [b'\r'] => None,
                _ => {
                    self.issue(at, "bad_chunk_end", "chunk data not followed by CRLF".into());
                    self.dirs[i].phase = Phase::Chunked(Chunk::Size);
                    Some(0)
                }
            },
            Chunk::Trailer => {
                let Some(nl) = memchr::memchr(b'\n', data) else {
                    return self.line_wait(side, at, data);
                };
                let line = trim_cr(&data[..nl]);
                if line.is_empty() {
                    self.finish_message(side, at);
                } else if let Some(m) = self.dirs[i].cur.as_mut()
                    && let Some(colon) = memchr::memchr(b':', line)
                {
                    m.headers.push(
                        String::from_utf8_lossy(&line[..colon]).trim(),
                        &String::from_utf8_lossy(&line[colon + 1..]),
                    );
                }
                Some(nl + 1)
            }
        }
    }

    /// A chunk-size or trailer line is incomplete.
    fn line_wait(&mut self, side: Side, at: At, data: &[u8]) -> Option<usize> {
        if data.len() > 4096 {
            let i = side.index();
            self.issue(at, "bad_chunk_size", "chunk line longer than 4096 bytes".into());
            if let Some(m) = self.dirs[i].cur.as_mut() {
                m.body_truncated = true;
                m.error.get_or_insert_with(|| "parse_error: chunk line too long".into());
            }
            self.finish_message(side, at);
            self.enter_resync(i);
            return Some(data.len());
        }
        None
    }

    fn store_body(&mut self, i: usize, at: At, bytes: &[u8]) {
        let cap = self.limits.max_body_bytes;
        let d = &mut self.dirs[i];
        if let Some(m) = d.cur.as_mut() {
            m.body_size += bytes.len() as u64;
            m.end = at;
            let room = cap.saturating_sub(d.raw.len());
            if bytes.len() > room {
                m.body_truncated = true;
            }
            d.raw.extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
    }

    /// The current message of a side is complete (or abandoned).
    fn finish_message(&mut self, side: Side, at: At) {
        let i = side.index();
        let d = &mut self.dirs[i];
        if matches!(d.phase, Phase::Length(_) | Phase::Chunked(_) | Phase::UntilClose) {
            d.phase = Phase::Head;
        }
        let Some(mut m) = d.cur.take() else { return };
        let raw = std::mem::take(&mut d.raw);
        if m.end.ts_ns < at.ts_ns {
            m.end = at;
        }
        decode_body(&mut m, raw, self.limits.max_body_bytes, &mut self.rows.output().issues);
        let seq = d.cur_seq;
        if seq < self.slot_base {
            // Its slot was already emitted (pending cap); report it alone.
            let (req, resp) = if side == Side::Requester { (Some(m), None) } else { (None, Some(m)) };
            self.rows.emit(Exchange {
                request: req,
                response: resp,
                error: Some("unpaired".into()),
                ..Exchange::default()
            });
            return;
        }
        let idx = (seq - self.slot_base) as usize;
        if let Some(slot) = self.slots.get_mut(idx) {
            if side == Side::Requester {
                slot.request = Some(m);
                slot.req_done = true;
            } else {
                slot.response = Some(m);
                slot.resp_done = true;
            }
        }
        while self.slots.front().is_some_and(|s| s.req_done && s.resp_done) {
            if let Some(slot) = self.slots.pop_front() {
                self.slot_base += 1;
                self.emit(slot, None);
            }
        }
    }

    fn emit(&mut self, slot: Slot, error: Option<String>) {
        let error = error.or_else(|| if slot.request.is_none() { Some("no_request".into()) } else { None });
        self.rows.emit(Exchange {
            request: slot.request,
            response: slot.response,
            interim: slot.interim,
            upgrade: slot.upgrade,
            error,
            ..Exchange::default()
        });
    }
}

impl Parser for Http1Conn {
    fn held_bytes(&self) -> usize {
        self.get_heap_size()
    }
    fn counts(&self) -> Counts {
        Counts { given_up: self.given_up, ..Counts::default() }
    }

    /// In-order bytes from one side.
    fn on_data(&mut self, side: Side, at: At, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let i = side.index();
        let (mut held, mut held_at) = (std::mem::take(&mut self.dirs[i].buf), self.dirs[i].buf_at);
        crate::feed_held(&mut held, &mut held_at, at, data, |first_at, split, bytes| {
            self.process(side, first_at, at, split, bytes)
        });
        let d = &mut self.dirs[i];
        // What `process` held meanwhile (a resync window) comes first.
        if d.buf.is_empty() {
            d.buf = held;
            d.buf_at = held_at;
        } else {
            d.buf.extend_from_slice(&held);
        }
    }

    /// `len` bytes of one side were not captured.
    fn on_gap(&mut self, side: Side, at: At, len: u64) {
        let i = side.index();
        let phase = self.dirs[i].phase;
        match phase {
            Phase::Length(rem) if rem > len => {
                self.dirs[i].phase = Phase::Length(rem - len);
                self.mark_gap(i, len);
            }
            Phase::Length(rem) => {
                self.mark_gap(i, rem);
                self.finish_message(side, at);
                if len > rem {
                    self.enter_resync(i);
                }
            }
            Phase::Chunked(Chunk::Data(rem)) if rem > len => {
                self.dirs[i].phase = Phase::Chunked(Chunk::Data(rem - len));
                self.mark_gap(i, len);
            }
            Phase::UntilClose => self.mark_gap(i, len),
            Phase::Tunnel | Phase::Closed => self.tunnel_bytes += len,
            Phase::Resync => self.dirs[i].buf.clear(),
            Phase::Head if self.dirs[i].buf.is_empty() => self.enter_resync(i),
            _ => {
                if let Some(m) = self.dirs[i].cur.as_mut() {
                    m.error.get_or_insert_with(|| "gap".to_string());
                    m.body_truncated = true;
                    self.finish_message(side, at);
                } else if phase == Phase::Paused {
                    // The held bytes can no longer be trusted.
                    self.dirs[i].buf.clear();
                }
                self.enter_resync(i);
            }
        }
    }

    /// One side sent FIN: a close-delimited body ends here.
    fn on_end(&mut self, side: Side, at: At) {
        let i = side.index();
        match self.dirs[i].phase {
            Phase::UntilClose => self.finish_message(side, at),
            Phase::Length(_) | Phase::Chunked(_) => {
                if let Some(m) = self.dirs[i].cur.as_mut() {
                    m.error.get_or_insert_with(|| "connection_closed".to_string());
                    m.body_truncated = true;
                }
                self.finish_message(side, at);
            }
            Phase::Head if !self.dirs[i].buf.is_empty() => {
                let n = self.dirs[i].buf.len();
                self.issue(
                    at,
                    "truncated_head",
                    format!("{} bytes of an unfinished message head at connection end", n),
                );
            }
            _ => {}
        }
        let d = &mut self.dirs[i];
        d.buf.clear();
        d.phase = Phase::Closed;
    }

    /// The connection is over (RST, idle timeout or end of capture):
    /// everything still open is emitted. `reason` becomes the error of
    /// incomplete messages (`capture_end`, `connection_reset`, ...).
    fn on_close(&mut self, at: At, reason: CloseReason) {
        for side in [Side::Requester, Side::Responder] {
            let i = side.index();
            match self.dirs[i].phase {
                Phase::UntilClose if !reason.cut_short() => self.finish_message(side, at),
                Phase::Length(_) | Phase::Chunked(_) | Phase::UntilClose => {
                    if let Some(m) = self.dirs[i].cur.as_mut() {
                        m.error.get_or_insert_with(|| reason.name().to_string());
                        m.body_truncated = true;
                    }
                    self.finish_message(side, at);
                }
                _ => {}
            }
            let d = &mut self.dirs[i];
            // Closed connections linger in the flow table (for late
            // packets) while the parser reads nothing more: its buffers
            // go now, not at the end of the linger.
            d.buf = Vec::new();
            d.raw = Vec::new();
            d.phase = Phase::Closed;
        }
        while let Some(slot) = self.slots.pop_front() {
            self.slot_base += 1;
            let error =
                if slot.request.is_some() && slot.response.is_none() { Some("no_response".to_string()) } else { None };
            self.emit(slot, error);
        }
        self.slots = VecDeque::new();
        self.resp_next = self.resp_next.max(self.slot_base);
    }

    /// Takes what was produced so far.
    fn drain(&mut self) -> Output {
        self.rows.drain()
    }

    /// Takes the switch to h2c or WebSocket, once the connection made it
    /// (the 101 exchange itself stays in [`Http1Conn::drain`]'s output).
    /// Later bytes belong to the new protocol's parser.
    fn take_switch(&mut self) -> Option<Box<Switch>> {
        self.switch.take()
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn collect_headers(h: &[httparse::Header<'_>]) -> Headers {
    let mut out = Headers::default();
    for h in h.iter().filter(|h| !h.name.is_empty()) {
        match std::str::from_utf8(h.value) {
            Ok(v) => out.push(h.name, v),
            Err(_) => out.push(h.name, &String::from_utf8_lossy(h.value)),
        }
    }
    out
}

fn content_length(m: &Message) -> Option<u64> {
    m.header("content-length").and_then(|v| v.split(',').next()).and_then(|v| v.trim().parse().ok())
}

fn is_chunked(m: &Message) -> Option<bool> {
    m.headers
        .iter()
        .filter(|(k, _)| *k == "transfer-encoding")
        .last()
        .map(|(_, v)| v.rsplit(',').next().is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked")))
}

fn request_framing(m: &Message) -> Phase {
    match is_chunked(m) {
        Some(true) => Phase::Chunked(Chunk::Size),
        _ => match content_length(m) {
            Some(0) | None => Phase::Head,
            Some(n) => Phase::Length(n),
        },
    }
}

fn response_framing(m: &Message) -> Phase {
    match is_chunked(m) {
        Some(true) => Phase::Chunked(Chunk::Size),
        Some(false) => Phase::UntilClose,
        None => match content_length(m) {
            Some(0) => Phase::Head,
            Some(n) => Phase::Length(n),
            None => Phase::UntilClose,
        },
    }
}

/// A parsed head: bytes, start line, minor version, headers.
type ParsedHead = (usize, StartLine, Option<u8>, Headers);

enum Lenient {
    Head(usize, StartLine, Option<u8>, Headers),
    NeedMore,
    No,
}

/// Reads a head that httparse rejected, when it is still recognisably an
/// HTTP/1 message: a complete head whose first line starts with a method
/// token (requests) or with `HTTP/` (responses).
fn lenient_head(side: Side, data: &[u8], max: usize) -> Lenient {
    let first_end = memchr::memchr(b'\n', data);
    let first = trim_cr(&data[..first_end.unwrap_or(data.len())]);
    let plausible = match side {
        Side::Requester => {
            is_text_line(first)
                && (first.first().is_some_and(|b| is_method_char(*b))
                    || memchr::memmem::find(first, b"HTTP/1.").is_some())
        }
        Side::Responder => first.starts_with(b"HTTP/"),
    };
    if !plausible {
        return Lenient::No;
    }
    let end = memchr::memmem::find(data, b"\r\n\r\n")
        .map(|p| p + 4)
        .or_else(|| memchr::memmem::find(data, b"\n\n").map(|p| p + 2));
    let Some(end) = end.filter(|e| *e <= max) else {
        return if data.len() > max { Lenient::No } else { Lenient::NeedMore };
    };
    let line = String::from_utf8_lossy(first).to_string();
    let version = memchr::memmem::find(first, b"HTTP/1.").and_then(|p| first.get(p + 7)).and_then(|b| match b {
        b'0' => Some(0),
        b'1' => Some(1),
        _ => None,
    });
    let start = match side {
        Side::Requester => {
            // The method runs to the first space or slash, and never into
            // the version (`OPTIONSHTTP/1.1`).
            let mut mlen = line.find([' ', '/']).unwrap_or(line.len());
            if line[..mlen].ends_with("HTTP") && line[mlen..].starts_with('/') {
                mlen -= 4;
            }
            let method = line[..mlen].to_string();
            let rest = line[mlen..].trim();
            let target = match rest.rfind("HTTP/") {
                Some(p) => rest[..p].trim(),
                None => rest,
            };
            StartLine::Request { method, target: target.to_string() }
        }
        Side::Responder => {
            let mut parts = line.splitn(3, ' ');
            parts.next();
            let status = parts.next().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
            StartLine::Response { status, reason: parts.next().unwrap_or("").trim().to_string() }
        }
    };
    let mut headers = Headers::default();
    let body_start = first_end.map_or(end, |p| p + 1);
    for raw in data[body_start.min(end)..end].split(|b| *b == b'\n') {
        let raw = trim_cr(raw);
        if let Some(colon) = memchr::memchr(b':', raw) {
            headers.push(String::from_utf8_lossy(&raw[..colon]).trim(), &String::from_utf8_lossy(&raw[colon + 1..]));
        }
    }
    Lenient::Head(end, start, version, headers)
}

/// For bytes from the middle of a connection: which side sent them, if
/// they contain the start of a message (a status line, else a request
/// line) at a line start.
pub fn find_message_start(data: &[u8]) -> Option<Side> {
    [Side::Responder, Side::Requester].into_iter().find(|side| resync_point(*side, data).is_ok())
}

/// Finds where parsing can resume: the start of a line that looks like a
/// request line (requester) or status line (responder). Err(keep) says how
/// many trailing bytes to keep for the next attempt.
fn resync_point(side: Side, data: &[u8]) -> Result<usize, usize> {
    const KEEP: usize = 64;
    let keep = data.len().min(KEEP);
    match side {
        Side::Responder => {
            for p in memchr::memmem::find_iter(data, b"HTTP/1.") {
                if (p == 0 || data[p - 1] == b'\n')
                    && data.len() >= p + 12
                    && data[p + 8] == b' '
                    && data[p + 9].is_ascii_digit()
                {
                    return Ok(p);
                }
            }
            Err(keep)
        }
        Side::Requester => {
            for p in memchr::memmem::find_iter(data, b" HTTP/1.") {
                let ls = memchr::memrchr(b'\n', &data[..p]).map_or(0, |n| n + 1);
                let line = &data[ls..p];
                let mlen = line.iter().take_while(|b| b.is_ascii_uppercase()).count();
                if mlen >= 3 && line.get(mlen) == Some(&b' ') {
                    return Ok(ls);
                }
            }
            Err(keep)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Step, every_chunking};

    fn at(ts: i64) -> At {
        At { tag: ts as u64, ts_ns: ts }
    }

    /// The rows of a conversation, checked not to depend on how its
    /// bytes arrive.
    fn run_all(parts: &[(Side, &[u8])]) -> Vec<Exchange> {
        let steps: Vec<Step<'_>> = parts.iter().map(|(side, b)| Step::Data(*side, b)).collect();
        every_chunking(|| Box::new(Http1Conn::new(Limits::default(), false)), &steps).exchanges
    }

    fn status(e: &Exchange) -> u16 {
        match e.response.as_ref().map(|m| &m.start) {
            Some(StartLine::Response { status, .. }) => *status,
            _ => 0,
        }
    }

    #[test]
    fn http1_pipelined_with_lengths_and_chunks() {
        let req = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b?x=1 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloHEAD /c HTTP/1.1\r\n\r\n";
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nwiki\r\n5\r\npedia\r\n0\r\nX-Trailer: yes\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n";
        let ex = run_all(&[(Side::Requester, req), (Side::Responder, resp)]);
        assert_eq!(ex.len(), 3);
        assert_eq!(status(&ex[0]), 200);
        assert_eq!(ex[0].response.as_ref().map(|m| m.body.clone()), Some(b"abc".to_vec()));
        assert_eq!(ex[1].request.as_ref().map(|m| m.body.clone()), Some(b"hello".to_vec()));
        let r1 = ex[1].response.as_ref().map(|m| (m.body.clone(), m.header("x-trailer").map(str::to_string)));
        assert_eq!(ex[0].request.as_ref().map(|m| m.headers.iter().collect::<Vec<_>>()), Some(vec![("host", "x")]));
        assert_eq!(r1, Some((b"wikipedia".to_vec(), Some("yes".to_string()))));
        // HEAD: the Content-Length of the response announces no body.
        assert_eq!(status(&ex[2]), 200);
        assert_eq!(ex[2].response.as_ref().map(|m| m.body_size), Some(0));
        assert!(ex.iter().all(|e| e.error.is_none()));
    }

    #[test]
    fn http1_continue_close_delimited_and_no_body_statuses() {
        let req = b"PUT /u HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nokGET /n HTTP/1.1\r\n\r\nGET /m HTTP/1.0\r\n\r\n";
        let resp = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\nHTTP/1.0 200 OK\r\n\r\nuntil close";
        let mut c = Http1Conn::new(Limits::default(), false);
        c.on_data(Side::Requester, at(1), req);
        c.on_data(Side::Responder, at(2), resp);
        c.on_end(Side::Responder, at(3));
        c.on_close(at(4), CloseReason::Fin);
        let ex = c.drain().exchanges;
        assert_eq!(ex.len(), 3);
        assert_eq!(ex[0].interim, vec![100]);
        assert_eq!(status(&ex[0]), 204);
        assert_eq!(status(&ex[1]), 304);
        assert_eq!(ex[2].response.as_ref().map(|m| m.body.clone()), Some(b"until close".to_vec()));
        assert!(ex.iter().all(|e| e.error.is_none()));
    }

    #[test]
    fn http1_unanswered_request_and_orphan_response_are_rows() {
        let ex = run_all(&[(Side::Requester, b"GET /x HTTP/1.1\r\n\r\n")]);
        assert_eq!(ex.len(), 1);
        assert_eq!(ex[0].error.as_deref(), Some("no_response"));
        let ex = run_all(&[(Side::Responder, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")]);
        assert_eq!(ex.len(), 1);
        assert_eq!(ex[0].error.as_deref(), Some("no_request"));
        assert_eq!(status(&ex[0]), 404);
    }

    #[test]
    fn http1_body_cap_and_gzip_decoding() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&b"0123456789".repeat(1000)).ok();
        let body = gz.finish().unwrap_or_default();
        let mut resp =
            format!("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        resp.extend_from_slice(&body);
        let mut c = Http1Conn::new(Limits { max_body_bytes: 100, ..Limits::default() }, false);
        c.on_data(Side::Requester, at(1), b"GET / HTTP/1.1\r\n\r\n");
        c.on_data(Side::Responder, at(2), &resp);
        let ex = c.drain().exchanges;
        let m = ex[0]
            .response
            .as_ref()
            .map(|m| (m.body.len(), m.body_size, &m.body[..10] == b"0123456789", m.body_truncated));
        // The wire body is small enough to store, and decodes to 10 kB,
        // of which the cap keeps 100 bytes: the stored copy says it is cut
        // (a decompression bomb is not mistaken for a small body).
        assert_eq!(m, Some((100, body.len() as u64, true, true)));
    }

    #[test]
    fn http1_deflate_and_br_bodies_are_decoded() {
        use std::io::Write;
        let text = b"trawl decodes deflate and brotli bodies".repeat(20);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&text).ok();
        let zlib = z.finish().unwrap_or_default();
        let mut br = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut br, 4096, 5, 22);
            w.write_all(&text).ok();
        }
        for (enc, body) in [("deflate", zlib), ("br", br)] {
            let mut resp =
                format!("HTTP/1.1 200 OK\r\nContent-Encoding: {enc}\r\nContent-Length: {}\r\n\r\n", body.len())
                    .into_bytes();
            resp.extend_from_slice(&body);
            let mut c = Http1Conn::new(Limits::default(), false);
            c.on_data(Side::Requester, at(1), b"GET / HTTP/1.1\r\n\r\n");
            c.on_data(Side::Responder, at(2), &resp);
            let out = c.drain();
            let m = out.exchanges[0].response.as_ref();
            assert_eq!(m.map(|m| (m.body.clone(), m.body_truncated)), Some((text.clone(), false)), "{enc}");
            assert!(out.issues.is_empty(), "{enc}: {:?}", out.issues);
        }
    }

    #[test]
    fn http1_gap_in_body_skips_and_gap_in_head_resyncs() {
        let steps = [
            Step::Data(Side::Requester, b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"),
            Step::Data(Side::Responder, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab"),
            Step::Gap(Side::Responder, 4),
            Step::Data(Side::Responder, b"ghij"),
            Step::Data(Side::Responder, b"HTTP/1.1 200 OK\r\nContent-"),
            Step::Gap(Side::Responder, 30),
            Step::Data(Side::Responder, b"junk junk\r\nHTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"),
        ];
        let ex = every_chunking(|| Box::new(Http1Conn::new(Limits::default(), false)), &steps).exchanges;
        assert_eq!(ex.len(), 2, "{ex:#?}");
        assert_eq!(ex[0].response.as_ref().map(|m| (m.body_size, m.body_truncated)), Some((10, true)));
        assert_eq!(ex[0].response.as_ref().and_then(|m| m.error.clone()).as_deref(), Some("gap"));
        // The second response head was cut by the gap; parsing resumes at
        // the next status line, which answers the second request.
        assert_eq!(status(&ex[1]), 500);
    }

    #[test]
    fn http1_joined_mid_stream_resynchronises() {
        // The capture began inside a response body and inside a request.
        let mut c = Http1Conn::new(Limits::default(), true);
        c.on_data(Side::Requester, at(1), b"ding: gzip\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n");
        c.on_data(Side::Responder, at(2), b"tail of an earlier body...\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 304 Not Modified\r\n\r\n");
        c.on_close(at(3), CloseReason::CaptureEnd);
        let ex = c.drain().exchanges;
        // The first response answers a request whose head was cut; the
        // second answers GET /next.
        assert_eq!(ex.len(), 2, "{ex:#?}");
        assert_eq!(ex[0].error.as_deref(), Some("no_request"));
        assert_eq!(status(&ex[0]), 200);
        assert_eq!(
            ex[1].request.as_ref().map(|m| m.start.clone()),
            Some(StartLine::Request { method: "GET".into(), target: "/next".into() })
        );
        assert_eq!(status(&ex[1]), 304);
    }

    #[test]
    fn http1_upgrade_leaves_http() {
        let mut c = Http1Conn::new(Limits::default(), false);
        c.on_data(
            Side::Requester,
            at(1),
            b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello",
        );
        c.on_data(Side::Responder, at(2), b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi");
        c.on_close(at(3), CloseReason::Fin);
        let out = c.drain();
        assert_eq!(out.exchanges.len(), 1);
        assert_eq!(out.exchanges[0].upgrade.as_deref(), Some("websocket"));
        assert_eq!(c.upgraded(), Some("websocket"));
        assert_eq!(c.tunnel_bytes(), 11);
        assert!(out.issues.is_empty(), "{:?}", out.issues);
    }

    #[test]
    fn http1_malformed_request_line_is_kept() {
        let ex = run_all(&[
            (Side::Requester, b"CCM_POST/HTTP/1.1\r\nHost: a\r\n\r\n"),
            (Side::Responder, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
        ]);
        assert_eq!(ex.len(), 1);
        let req = ex[0].request.as_ref().map(|m| (m.start.clone(), m.error.is_some()));
        assert_eq!(req, Some((StartLine::Request { method: "CCM_POST".into(), target: "/".into() }, true)));
        assert_eq!(status(&ex[0]), 400);
    }

    #[test]
    fn probe_classifies_first_bytes() {
        assert_eq!(probe(b"GET / HTTP/1.1\r\n"), Probe::Request);
        assert_eq!(probe(b"HTTP/1.1 200 OK\r\n"), Probe::Response);
        assert_eq!(probe(b"GET / HT"), Probe::NeedMore);
        assert_eq!(probe(b"HTT"), Probe::NeedMore);
        assert_eq!(probe(b"\x16\x03\x01\x02\x00"), Probe::NotHttp);
        assert_eq!(probe(b"PRI * HTTP/2.0\r\n"), Probe::NotHttp);
        assert_eq!(probe(b"\xc3\x83 / HTTP/1.\n"), Probe::Request);
        assert_eq!(probe(b"OPTIONS\nHost: a\n\n"), Probe::NeedMore);
        assert_eq!(probe(b"SSH-2.0-OpenSSH\r\n"), Probe::NotHttp);
        assert_eq!(find_message_start(b"body tail\r\nHTTP/1.1 200 OK\r\n"), Some(Side::Responder));
        assert_eq!(find_message_start(b"x=1\r\nPOST /a HTTP/1.1\r\n"), Some(Side::Requester));
        assert_eq!(find_message_start(b"\x00\x01binary"), None);
    }
}

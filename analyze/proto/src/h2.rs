//! Cleartext HTTP/2 (RFC 9113) over a reassembled TCP connection: frames,
//! header blocks (HPACK, [`crate::hpack`]), and one [`Exchange`] per
//! stream with its request and response headers, trailers, bodies and
//! errors.
//!
//! A connection is entered three ways: by the client's connection
//! preface (prior knowledge), after an HTTP/1.1 `Upgrade: h2c` (the
//! upgrade request is stream 1's request), or mid-way, when the capture
//! did not see the start. Mid-way, the parser looks for a run of
//! plausible frame headers to lock onto, decodes what HPACK state allows
//! (see [`crate::hpack`]) and says which headers it could not. The same
//! resynchronisation follows a gap in the capture.
//!
//! DATA is streamed, never buffered whole: its bytes go to the stream's
//! body (kept up to [`Limits::max_body_bytes`]) and to its gRPC framer.
//! Other frames are buffered up to [`Limits::max_head_bytes`]; a header
//! block beyond that is skipped and the HPACK state treated as partial.
//! Open streams are capped by [`Limits::max_streams`].
//!
//! One file: frames, the stream table, header blocks and their
//! resynchronisation are one state machine per connection; HPACK and gRPC
//! decoding live apart (`hpack/`, `grpc.rs`). Tests are the last two
//! hundred lines.

use get_size2::GetSize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use crate::body::decode_body;
use crate::detail::{Detail, GrpcCall};
use crate::exchange::{CloseReason, Exchange, Headers, Message, Output, StartLine};
use crate::grpc::{self, Framer, Schemas};
use crate::pairing::Rows;
use crate::parser::{Counts, Parser};
use crate::{At, Limits, Side, hpack};

/// The client connection preface.
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Frame types (RFC 9113 §6).
pub mod kind {
    pub const DATA: u8 = 0;
    pub const HEADERS: u8 = 1;
    pub const PRIORITY: u8 = 2;
    pub const RST_STREAM: u8 = 3;
    pub const SETTINGS: u8 = 4;
    pub const PUSH_PROMISE: u8 = 5;
    pub const PING: u8 = 6;
    pub const GOAWAY: u8 = 7;
    pub const WINDOW_UPDATE: u8 = 8;
    pub const CONTINUATION: u8 = 9;
}

/// Frame flags.
pub mod flag {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// Largest frame payload considered plausible when looking for frames
/// (SETTINGS_MAX_FRAME_SIZE may be raised to 2^24-1, but no peer seen in
/// practice sends DATA frames past 1 MiB).
const PLAUSIBLE_MAX: u32 = 1 << 20;

/// The 9-byte frame header: a checked view of the wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, GetSize)]
pub struct FrameHeader {
    pub len: u32,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
}

impl FrameHeader {
    pub const LEN: usize = 9;

    /// Reads a frame header; None if fewer than 9 bytes.
    pub fn parse(b: &[u8]) -> Option<FrameHeader> {
        let h = b.get(..Self::LEN)?;
        Some(FrameHeader {
            len: u32::from_be_bytes([0, h[0], h[1], h[2]]),
            kind: h[3],
            flags: h[4],
            stream: u32::from_be_bytes([h[5], h[6], h[7], h[8]]),
        })
    }

    /// Could this header start a frame of a well-behaved connection?
    /// Used only to find frames after a gap or when joining mid-way.
    pub fn plausible(&self) -> bool {
        if self.stream & 0x8000_0000 != 0 || self.len > PLAUSIBLE_MAX {
            return false;
        }
        let on_stream = self.stream != 0;
        let (len_ok, flags_ok) = match self.kind {
            kind::DATA => (true, self.flags & !(flag::END_STREAM | flag::PADDED) == 0),
            kind::HEADERS => (
                self.len > 0,
                self.flags & !(flag::END_STREAM | flag::END_HEADERS | flag::PADDED | flag::PRIORITY) == 0,
            ),
            kind::PRIORITY => (self.len == 5, self.flags == 0),
            kind::RST_STREAM => (self.len == 4, self.flags == 0),
            kind::SETTINGS => (self.len.is_multiple_of(6) && self.len <= 16 * 6, self.flags & !flag::ACK == 0),
            kind::PUSH_PROMISE => (self.len >= 4, self.flags & !(flag::END_HEADERS | flag::PADDED) == 0),
            kind::PING => (self.len == 8, self.flags & !flag::ACK == 0),
            kind::GOAWAY => (self.len >= 8 && self.len <= 16 * 1024, self.flags == 0),
            kind::WINDOW_UPDATE => (self.len == 4, self.flags == 0),
            kind::CONTINUATION => (self.len > 0, self.flags & !flag::END_HEADERS == 0),
            _ => return false,
        };
        let stream_ok = match self.kind {
            kind::SETTINGS | kind::PING | kind::GOAWAY => !on_stream,
            kind::WINDOW_UPDATE => true,
            _ => on_stream,
        };
        len_ok && flags_ok && stream_ok
    }
}

/// Name of an HTTP/2 error code.
pub fn error_name(code: u32) -> String {
    const NAMES: [&str; 14] = [
        "NO_ERROR",
        "PROTOCOL_ERROR",
        "INTERNAL_ERROR",
        "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT",
        "STREAM_CLOSED",
        "FRAME_SIZE_ERROR",
        "REFUSED_STREAM",
        "CANCEL",
        "COMPRESSION_ERROR",
        "CONNECT_ERROR",
        "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY",
        "HTTP_1_1_REQUIRED",
    ];
    NAMES.get(code as usize).map_or_else(|| format!("0x{code:x}"), |n| n.to_string())
}

/// What the first bytes of one side of a connection look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, GetSize)]
pub enum Probe {
    /// The client connection preface.
    Preface,
    /// A run of well-formed frames from the first byte (a connection
    /// joined mid-way, or a server's first SETTINGS).
    Frames,
    NeedMore,
    No,
}

/// Classifies the first bytes of one side.
pub fn probe(data: &[u8]) -> Probe {
    let n = data.len().min(PREFACE.len());
    if data[..n] == PREFACE[..n] {
        return if n == PREFACE.len() { Probe::Preface } else { Probe::NeedMore };
    }
    match chain(data, 0) {
        Chain::Frames(frames, first) if frames >= 2 || matches!(first, kind::HEADERS | kind::SETTINGS) => Probe::Frames,
        Chain::Frames(..) | Chain::NeedMore => Probe::NeedMore,
        Chain::No => Probe::No,
    }
}

enum Chain {
    /// Plausible frames ending exactly at the end of the data (count,
    /// type of the first), or at least two complete ones.
    Frames(usize, u8),
    NeedMore,
    No,
}

fn chain(data: &[u8], mut pos: usize) -> Chain {
    let mut frames = 0;
    let mut first = 0;
    loop {
        let Some(h) = FrameHeader::parse(&data[pos.min(data.len())..]) else {
            return if frames >= 2 {
                Chain::Frames(frames, first)
            } else if frames == 0 && pos < data.len() && !plausible_prefix(&data[pos..]) {
                Chain::No
            } else {
                Chain::NeedMore
            };
        };
        if !h.plausible() {
            return if frames >= 2 { Chain::Frames(frames, first) } else { Chain::No };
        }
        if frames == 0 {
            first = h.kind;
        }
        let end = pos + FrameHeader::LEN + h.len as usize;
        if end > data.len() {
            return if frames >= 2 { Chain::Frames(frames, first) } else { Chain::NeedMore };
        }
        frames += 1;
        pos = end;
        if pos == data.len() {
            return Chain::Frames(frames, first);
        }
    }
}

/// Could `b` (shorter than a frame header) begin a plausible one?
fn plausible_prefix(b: &[u8]) -> bool {
    let len_ok = b.len() < 3 || u32::from_be_bytes([0, b[0], b[1], b[2]]) <= PLAUSIBLE_MAX;
    let kind_ok = b.len() < 4 || b[3] <= kind::CONTINUATION;
    len_ok && kind_ok
}

/// Offset of the first place in `data` where frames can be followed to
/// its end (or through two whole frames).
pub fn find_frames(data: &[u8]) -> Option<usize> {
    (0..data.len().saturating_sub(FrameHeader::LEN - 1)).find(|&off| matches!(chain(data, off), Chain::Frames(..)))
}

/// How a connection is entered.
#[derive(Debug, GetSize)]
pub enum Start {
    /// The requester sends the connection preface first.
    Preface,
    /// After an HTTP/1.1 `Upgrade: h2c`: the request is stream 1's, and
    /// the requester's preface follows.
    Upgrade { request: Option<Box<Message>>, next_index: u32 },
    /// The capture began after the connection did.
    MidStream,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, GetSize)]
enum State {
    /// Matching the connection preface; bytes matched so far.
    Preface(usize),
    Header,
    /// Inside a DATA frame: data and padding bytes to come.
    Data {
        stream: u32,
        data: u32,
        pad: u32,
        end_stream: bool,
    },
    Skip(u32),
    Resync,
}

#[derive(Debug, GetSize)]
struct PendingBlock {
    stream: u32,
    /// PUSH_PROMISE: the promised stream.
    promised: Option<u32>,
    end_stream: bool,
    bytes: Vec<u8>,
    wire: u64,
    overflow: bool,
    at: At,
}

#[derive(Debug, GetSize)]
struct Dir {
    state: State,
    buf: Vec<u8>,
    buf_at: At,
    hpack: hpack::Decoder,
    block: Option<PendingBlock>,
}

#[derive(Debug, Default, GetSize)]
struct Stream {
    /// By role: request, response.
    msgs: [Option<Message>; 2],
    raw: [Vec<u8>; 2],
    ended: [bool; 2],
    interim: Vec<u16>,
    framers: [Framer; 2],
}

/// HTTP/2 parser state for one connection.
#[derive(Debug, GetSize)]
pub struct H2Conn {
    limits: Limits,
    /// Shared by every connection (not this one's to count).
    #[get_size(ignore)]
    schemas: Option<Arc<Schemas>>,
    dirs: [Dir; 2],
    streams: BTreeMap<u32, Stream>,
    /// Recently finished streams: late frames for them are not new streams.
    closed: VecDeque<u32>,
    /// Roles were found reversed (mid-way: the side the caller took for
    /// the requester sends responses).
    flipped: bool,
    roles_known: bool,
    goaway: Option<String>,
    counts: Counts,
    rows: Rows,
}

const CLOSED_MEMORY: usize = 64;
/// Bytes kept while looking for frames.
const RESYNC_WINDOW: usize = 64 * 1024;

impl H2Conn {
    pub fn new(limits: Limits, start: Start, schemas: Option<Arc<Schemas>>) -> H2Conn {
        let mid = matches!(start, Start::MidStream);
        let dir = |state| Dir {
            state,
            buf: Vec::new(),
            buf_at: At::default(),
            hpack: hpack::Decoder::new(limits.max_hpack_table, mid),
            block: None,
        };
        let (req_state, resp_state) =
            if mid { (State::Resync, State::Resync) } else { (State::Preface(0), State::Header) };
        let mut c = H2Conn {
            limits,
            schemas,
            dirs: [dir(req_state), dir(resp_state)],
            streams: BTreeMap::new(),
            closed: VecDeque::new(),
            flipped: false,
            roles_known: !mid,
            goaway: None,
            counts: Counts::default(),
            rows: Rows::default(),
        };
        if mid {
            c.counts.resyncs = 2;
        }
        if let Start::Upgrade { request, next_index } = start {
            c.rows = Rows::starting_at(next_index);
            let s = c.streams.entry(1).or_default();
            s.ended[0] = true;
            s.msgs[0] = request.map(|m| *m);
            c.counts.streams += 1;
        }
        c
    }

    fn role(&self, side_idx: usize) -> usize {
        side_idx ^ self.flipped as usize
    }

    fn issue(&mut self, at: At, kind: &'static str, detail: String) {
        self.rows.issue(at, kind, detail);
    }

    /// Processes `data` from side `i` (bytes before `split` seen at
    /// `first_at`, the rest at `at`); returns the bytes consumed.
    fn process(&mut self, i: usize, first_at: At, at: At, split: usize, data: &[u8]) -> usize {
        let mut pos = 0;
        while pos < data.len() {
            let here = if pos < split { first_at } else { at };
            match self.dirs[i].state {
                State::Preface(matched) => {
                    let n = (PREFACE.len() - matched).min(data.len() - pos);
                    if data[pos..pos + n] != PREFACE[matched..matched + n] {
                        self.issue(
                            here,
                            "bad_preface",
                            "the client's first bytes are not the HTTP/2 connection preface".into(),
                        );
                        self.dirs[i].state = State::Resync;
                        self.counts.resyncs += 1;
                        continue;
                    }
                    pos += n;
                    self.dirs[i].state =
                        if matched + n == PREFACE.len() { State::Header } else { State::Preface(matched + n) };
                }
                State::Resync => match find_frames(&data[pos..]) {
                    Some(off) => {
                        pos += off;
                        self.dirs[i].state = State::Header;
                    }
                    None => {
                        let rest = data.len() - pos;
                        return if rest > RESYNC_WINDOW { data.len() - RESYNC_WINDOW } else { pos };
                    }
                },
                State::Skip(left) => {
                    let n = (left as usize).min(data.len() - pos);
                    pos += n;
                    self.dirs[i].state = if n == left as usize { State::Header } else { State::Skip(left - n as u32) };
                }
                State::Data { stream, data: left, pad, end_stream } => {
                    let n = (left as usize).min(data.len() - pos);
                    self.data_bytes(i, stream, at, &data[pos..pos + n]);
                    pos += n;
                    let left = left - n as u32;
                    if left > 0 {
                        self.dirs[i].state = State::Data { stream, data: left, pad, end_stream };
                        continue;
                    }
                    let p = (pad as usize).min(data.len() - pos);
                    pos += p;
                    if p < pad as usize {
                        self.dirs[i].state = State::Data { stream, data: 0, pad: pad - p as u32, end_stream };
                        continue;
                    }
                    self.dirs[i].state = State::Header;
                    if end_stream {
                        self.end_stream(i, stream, at);
                    }
                }
                State::Header => {
                    let Some(h) = FrameHeader::parse(&data[pos..]) else { return pos };
                    let t = (h.kind as usize).min(10);
                    if h.kind == kind::DATA {
                        let padded = h.flags & flag::PADDED != 0;
                        let need = FrameHeader::LEN + padded as usize;
                        if data.len() - pos < need {
                            return pos;
                        }
                        self.counts.frames[t] += 1;
                        let pad = if padded { data[pos + FrameHeader::LEN] as u32 } else { 0 };
                        let body = h.len.saturating_sub(padded as u32);
                        if pad > body {
                            self.issue(
                                here,
                                "bad_padding",
                                format!("DATA frame on stream {} pads {} of {} bytes", h.stream, pad, body),
                            );
                        }
                        let pad = pad.min(body);
                        pos += need;
                        self.pending_interrupted(i, here, h.kind);
                        self.data_start(i, h.stream, here);
                        self.dirs[i].state = State::Data {
                            stream: h.stream,
                            data: body - pad,
                            pad,
                            end_stream: h.flags & flag::END_STREAM != 0,
                        };
                        continue;
                    }
                    let total = FrameHeader::LEN + h.len as usize;
                    if h.len as usize > self.limits.max_head_bytes {
                        self.counts.frames[t] += 1;
                        self.issue(here, "frame_too_large", format!("{} byte frame of type {} skipped", h.len, h.kind));
                        if matches!(h.kind, kind::HEADERS | kind::PUSH_PROMISE | kind::CONTINUATION) {
                            self.dirs[i].hpack.lost_blocks();
                            self.dirs[i].block = None;
                        }
                        pos += FrameHeader::LEN;
                        self.dirs[i].state = State::Skip(h.len);
                        continue;
                    }
                    if data.len() - pos < total {
                        return pos;
                    }
                    self.counts.frames[t] += 1;
                    self.frame(i, h, &data[pos + FrameHeader::LEN..pos + total], here, at);
                    pos += total;
                }
            }
        }
        pos
    }

    /// A frame other than CONTINUATION arrived while a header block was
    /// incomplete: the block is lost.
    fn pending_interrupted(&mut self, i: usize, at: At, kind: u8) {
        if kind != kind::CONTINUATION && self.dirs[i].block.take().is_some() {
            self.dirs[i].hpack.lost_blocks();
            self.issue(at, "missing_continuation", format!("a header block was interrupted by a frame of type {kind}"));
        }
    }

    fn frame(&mut self, i: usize, h: FrameHeader, p: &[u8], here: At, at: At) {
        self.pending_interrupted(i, here, h.kind);
        match h.kind {
            kind::HEADERS | kind::PUSH_PROMISE => {
                let mut body = p;
                if h.flags & flag::PADDED != 0 {
                    let Some((&pad, rest)) = body.split_first() else { return self.bad_frame(here, h) };
                    if pad as usize > rest.len() {
                        return self.bad_frame(here, h);
                    }
                    body = &rest[..rest.len() - pad as usize];
                }
                let mut promised = None;
                if h.kind == kind::PUSH_PROMISE {
                    let Some(id) = body.get(..4) else { return self.bad_frame(here, h) };
                    promised = Some(u32::from_be_bytes([id[0], id[1], id[2], id[3]]) & 0x7fff_ffff);
                    body = &body[4..];
                } else if h.flags & flag::PRIORITY != 0 {
                    let Some(rest) = body.get(5..) else { return self.bad_frame(here, h) };
                    body = rest;
                }
                let block = PendingBlock {
                    stream: h.stream,
                    promised,
                    end_stream: h.kind == kind::HEADERS && h.flags & flag::END_STREAM != 0,
                    bytes: body.to_vec(),
                    wire: h.len as u64,
                    overflow: false,
                    at: here,
                };
                if h.flags & flag::END_HEADERS != 0 {
                    self.header_block(i, block, at);
                } else {
                    self.dirs[i].block = Some(block);
                }
            }
            kind::CONTINUATION => {
                let cap = self.limits.max_head_bytes;
                let Some(mut block) = self.dirs[i].block.take() else { return };
                if block.stream != h.stream {
                    self.dirs[i].hpack.lost_blocks();
                    return self.issue(
                        here,
                        "missing_continuation",
                        format!(
                            "CONTINUATION for stream {} while a block of stream {} was open",
                            h.stream, block.stream
                        ),
                    );
                }
                block.wire += h.len as u64;
                if block.overflow {
                } else if block.bytes.len() + p.len() > cap {
                    // Said at once: a block that never ends (a CONTINUATION
                    // flood) must not go unreported, nor keep its bytes.
                    block.overflow = true;
                    block.bytes = Vec::new();
                    self.issue(
                        block.at,
                        "header_block_too_large",
                        format!("header block of stream {} over {} bytes", block.stream, cap),
                    );
                } else {
                    block.bytes.extend_from_slice(p);
                }
                if h.flags & flag::END_HEADERS != 0 {
                    self.header_block(i, block, at);
                } else {
                    self.dirs[i].block = Some(block);
                }
            }
            kind::RST_STREAM => {
                let code = p.get(..4).map_or(0, |c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
                if self.streams.contains_key(&h.stream) {
                    self.finish(h.stream, at, Some(format!("rst_stream: {}", error_name(code))));
                }
            }
            kind::GOAWAY => {
                let last = p.get(..4).map_or(0, |c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) & 0x7fff_ffff);
                let code = p.get(4..8).map_or(0, |c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
                let debug = String::from_utf8_lossy(p.get(8..).unwrap_or_default()).into_owned();
                let why = format!("goaway: {}", error_name(code));
                if code != 0 {
                    self.issue(
                        here,
                        "goaway",
                        format!(
                            "{why} (last stream {last}){}",
                            if debug.is_empty() { String::new() } else { format!(": {debug}") }
                        ),
                    );
                    self.goaway = Some(why.clone());
                }
                // Streams the sender never processed.
                let sender_is_server = self.role(i) == 1;
                let dropped: Vec<u32> =
                    self.streams.keys().copied().filter(|&id| id > last && (id % 2 == 1) == sender_is_server).collect();
                for id in dropped {
                    self.finish(id, at, Some(why.clone()));
                }
            }
            _ => {}
        }
    }

    fn bad_frame(&mut self, at: At, h: FrameHeader) {
        self.issue(
            at,
            "bad_frame",
            format!("malformed frame of type {} ({} bytes) on stream {}", h.kind, h.len, h.stream),
        );
    }

    fn header_block(&mut self, i: usize, block: PendingBlock, at: At) {
        let decoded = if block.overflow {
            self.dirs[i].hpack.lost_blocks();
            None
        } else {
            let was_partial = self.dirs[i].hpack.is_partial();
            let b = self.dirs[i].hpack.decode(&block.bytes);
            self.counts.hpack_unknown += b.unknown as u64;
            if let Some(e) = &b.error
                && !was_partial
            {
                self.issue(block.at, "hpack_error", format!("stream {}: {e}", block.stream));
            }
            if b.table_capped {
                self.issue(
                    block.at,
                    "hpack_table_capped",
                    format!("a dynamic table size above {} bytes was refused", self.limits.max_hpack_table),
                );
            }
            Some(b)
        };
        let fields = decoded.as_ref().map(|b| &b.fields[..]).unwrap_or_default();
        let has = |name: &str| fields.iter().any(|(n, _)| n == name);
        if !self.roles_known && (has(":method") || has(":status")) {
            self.roles_known = true;
            let is_request = has(":method") && block.promised.is_none();
            if is_request != (self.role(i) == 0) {
                self.flip();
            }
        }
        let complete = decoded.as_ref().is_some_and(|b| b.unknown == 0 && b.error.is_none());
        if let Some(promised) = block.promised {
            // The promised request, sent by the server.
            if self.admit(promised, block.at) {
                let msg = new_message(block.at, fields, block.wire, complete);
                let s = self.streams.entry(promised).or_default();
                s.msgs[0] = Some(msg);
                s.ended[0] = true;
            }
            return;
        }
        let role = self.role(i);
        if !self.admit(block.stream, block.at) {
            return;
        }
        let s = self.streams.entry(block.stream).or_default();
        let status = fields.iter().find(|(n, _)| n == ":status").and_then(|(_, v)| v.parse::<u16>().ok());
        if role == 1 && s.msgs[1].is_none() && status.is_some_and(|st| (100..200).contains(&st)) {
            s.interim.extend(status);
            return;
        }
        match s.msgs[role].as_mut() {
            Some(m) if !matches!(m.start, StartLine::Unknown) || !m.headers.is_empty() => {
                // Trailers.
                for (n, v) in fields {
                    m.headers.push(n, v);
                }
                m.head_size += block.wire;
                m.end = at;
            }
            Some(m) => {
                // Data came first (joined mid-way): the head arrives late.
                let fresh = new_message(block.at, fields, block.wire, complete);
                m.start = fresh.start;
                m.headers = fresh.headers;
                m.head_size = fresh.head_size;
            }
            None => s.msgs[role] = Some(new_message(block.at, fields, block.wire, complete)),
        }
        if block.end_stream {
            self.end_stream(i, block.stream, at);
        }
    }

    /// Makes room for stream `id`; false if it finished recently.
    fn admit(&mut self, id: u32, at: At) -> bool {
        if self.streams.contains_key(&id) {
            return true;
        }
        if self.closed.contains(&id) {
            return false;
        }
        if self.streams.len() >= self.limits.max_streams
            && let Some(&oldest) = self.streams.keys().next()
        {
            self.issue(at, "too_many_streams", format!("more than {} open streams", self.limits.max_streams));
            self.finish(oldest, at, Some("too_many_streams".into()));
        }
        self.counts.streams += 1;
        self.streams.insert(id, Stream::default());
        true
    }

    fn flip(&mut self) {
        self.flipped = !self.flipped;
        for s in self.streams.values_mut() {
            s.msgs.swap(0, 1);
            s.raw.swap(0, 1);
            s.ended.swap(0, 1);
            s.framers.swap(0, 1);
        }
    }

    fn data_start(&mut self, i: usize, stream: u32, at: At) {
        let role = self.role(i);
        if !self.admit(stream, at) {
            return;
        }
        if let Some(s) = self.streams.get_mut(&stream) {
            s.framers[role].frame_start();
            s.msgs[role].get_or_insert_with(|| new_message(at, &[], 0, false));
        }
    }

    fn data_bytes(&mut self, i: usize, stream: u32, at: At, bytes: &[u8]) {
        let role = self.role(i);
        let cap = self.limits.max_body_bytes;
        let Some(s) = self.streams.get_mut(&stream) else { return };
        let Some(m) = s.msgs[role].as_mut() else { return };
        m.body_size += bytes.len() as u64;
        m.end = at;
        let raw = &mut s.raw[role];
        let room = cap.saturating_sub(raw.len());
        if bytes.len() > room {
            m.body_truncated = true;
        }
        raw.extend_from_slice(&bytes[..bytes.len().min(room)]);
        s.framers[role].data(bytes, cap);
    }

    fn end_stream(&mut self, i: usize, stream: u32, at: At) {
        let role = self.role(i);
        let Some(s) = self.streams.get_mut(&stream) else { return };
        s.ended[role] = true;
        if let Some(m) = s.msgs[role].as_mut() {
            m.end = at;
        }
        // The stream is done once the response is: a client still sending
        // after that is cut off by the server (RFC 9113 §8.1).
        if role == 1 {
            self.finish(stream, at, None);
        }
    }

    /// Emits stream `id`.
    fn finish(&mut self, id: u32, at: At, error: Option<String>) {
        let Some(mut s) = self.streams.remove(&id) else { return };
        self.closed.push_back(id);
        if self.closed.len() > CLOSED_MEMORY {
            self.closed.pop_front();
        }
        let cap = self.limits.max_body_bytes;
        let [mut req, mut resp] = std::mem::take(&mut s.msgs);
        for (role, m) in [&mut req, &mut resp].into_iter().enumerate() {
            if let Some(m) = m.as_mut() {
                if !s.ended[role] && error.is_some() {
                    m.body_truncated |= m.body_size > 0;
                    if m.end.ts_ns < at.ts_ns && s.ended.iter().all(|e| !e) {
                        m.end = at;
                    }
                }
                let raw = std::mem::take(&mut s.raw[role]);
                decode_body(m, raw, cap, &mut self.rows.output().issues);
            }
        }
        fn content_type(m: &Option<Message>) -> Option<&str> {
            m.as_ref().and_then(|m| m.header("content-type"))
        }
        let detail = if grpc::is_grpc(content_type(&req)) || grpc::is_grpc(content_type(&resp)) {
            Detail::Grpc(Box::new(self.grpc_call(&s, &req, &resp)))
        } else {
            Detail::Http
        };
        let error = error.or_else(|| match (&req, &resp) {
            (None, _) => Some("no_request".into()),
            (_, None) => Some("no_response".into()),
            _ => None,
        });
        self.rows.emit(Exchange {
            request: req,
            response: resp,
            interim: s.interim,
            error,
            stream_id: Some(id),
            detail,
            ..Exchange::default()
        });
    }

    fn grpc_call(&self, s: &Stream, req: &Option<Message>, resp: &Option<Message>) -> GrpcCall {
        let path = req.as_ref().and_then(|m| match &m.start {
            StartLine::Request { target, .. } => Some(target.as_str()),
            _ => None,
        });
        let (service, method) = path.and_then(grpc::split_path).unwrap_or_default();
        let last = |m: &Option<Message>, name: &str| {
            m.as_ref().and_then(|m| m.headers.iter().filter(|(n, _)| *n == name).last().map(|(_, v)| v.to_string()))
        };
        let mut call = GrpcCall {
            service: service.to_string(),
            method: method.to_string(),
            status: last(resp, "grpc-status").and_then(|v| v.trim().parse().ok()),
            message: last(resp, "grpc-message").filter(|v| !v.is_empty()).map(|v| grpc::decode_message(&v)),
            messages: [s.framers[0].count, s.framers[1].count],
            compressed: s.framers[0].compressed + s.framers[1].compressed,
            decoded: [None, None],
        };
        let cap = self.limits.max_body_bytes;
        for (role, m) in [req, resp].into_iter().enumerate() {
            if s.framers[role].kept.is_empty() {
                continue;
            }
            let enc = m.as_ref().and_then(|m| m.header("grpc-encoding"));
            call.decoded[role] =
                Some(grpc::messages_json(&call, &s.framers[role].kept, enc, self.schemas.as_deref(), role == 0, cap));
        }
        call
    }
}

impl Parser for H2Conn {
    fn held_bytes(&self) -> usize {
        self.get_heap_size()
    }
    /// True when the side the caller called the requester turned out to
    /// send the responses (decided from the first header block).
    fn flipped(&self) -> bool {
        self.flipped
    }

    fn counts(&self) -> Counts {
        self.counts
    }

    /// Takes what was produced so far.
    fn drain(&mut self) -> Output {
        self.rows.drain()
    }

    /// In-order bytes from one side.
    fn on_data(&mut self, side: Side, at: At, data: &[u8]) {
        let i = side.index();
        let (mut held, mut held_at) = (std::mem::take(&mut self.dirs[i].buf), self.dirs[i].buf_at);
        crate::feed_held(&mut held, &mut held_at, at, data, |first_at, split, bytes| {
            self.process(i, first_at, at, split, bytes)
        });
        (self.dirs[i].buf, self.dirs[i].buf_at) = (held, held_at);
    }

    /// `len` bytes of one side were not captured.
    fn on_gap(&mut self, side: Side, _at: At, len: u64) {
        let i = side.index();
        let role = self.role(i);
        if let State::Data { stream, data, pad, end_stream } = self.dirs[i].state
            && len <= data as u64
            && self.dirs[i].buf.is_empty()
        {
            // Inside a DATA frame: the frame boundary is still known.
            if let Some(s) = self.streams.get_mut(&stream) {
                s.framers[role].gap();
                if let Some(m) = s.msgs[role].as_mut() {
                    m.body_size += len;
                    m.body_truncated = true;
                    m.error.get_or_insert_with(|| "gap".into());
                }
            }
            self.dirs[i].state = State::Data { stream, data: data - len as u32, pad, end_stream };
            return;
        }
        let d = &mut self.dirs[i];
        d.buf.clear();
        d.state = State::Resync;
        d.block = None;
        d.hpack.lost_blocks();
        self.counts.resyncs += 1;
        for s in self.streams.values_mut() {
            if s.ended[role] {
                continue;
            }
            s.framers[role].gap();
            if let Some(m) = s.msgs[role].as_mut() {
                m.body_truncated = true;
                m.error.get_or_insert_with(|| "gap".into());
            }
        }
    }

    /// The connection ended: open streams are emitted with `reason`.
    fn on_close(&mut self, at: At, reason: CloseReason) {
        let ids: Vec<u32> = self.streams.keys().copied().collect();
        for id in ids {
            let why = self.goaway.clone().unwrap_or_else(|| reason.name().to_string());
            self.finish(id, at, Some(why));
        }
    }
}

/// A message from a decoded header block (pseudo-headers kept in the
/// headers, as sent).
fn new_message(at: At, fields: &[(String, String)], wire: u64, complete: bool) -> Message {
    let get = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let start = if let Some(method) = get(":method") {
        StartLine::Request { method, target: get(":path").unwrap_or_default() }
    } else if let Some(status) = get(":status").and_then(|s| s.parse().ok()) {
        StartLine::Response { status, reason: String::new() }
    } else {
        StartLine::Unknown
    };
    let mut headers = Headers::default();
    for (n, v) in fields {
        headers.push(n, v);
    }
    let error = (!complete && !fields.is_empty()).then(|| "headers_incomplete".to_string());
    Message {
        at,
        end: at,
        start,
        version: None,
        headers,
        head_size: wire,
        body: Vec::new(),
        body_size: 0,
        body_truncated: false,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Step, every_chunking};

    fn at(n: i64) -> At {
        At { tag: n as u64, ts_ns: n }
    }

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn encode(headers: &[(&str, &str)], enc: &mut loona_hpack::Encoder<'_>) -> Vec<u8> {
        enc.encode(headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
    }

    /// A gRPC unary call: request HEADERS + DATA, response HEADERS, DATA
    /// and trailers; the HEADERS of the request split by CONTINUATION and
    /// the response DATA padded.
    #[test]
    fn grpc_call_with_continuation_padding_and_trailers() {
        let mut ce = loona_hpack::Encoder::new();
        let mut se = loona_hpack::Encoder::new();
        let req = encode(
            &[
                (":method", "POST"),
                (":scheme", "http"),
                (":path", "/helloworld.Greeter/SayHello"),
                (":authority", "a"),
                ("content-type", "application/grpc"),
            ],
            &mut ce,
        );
        let (h1, h2) = req.split_at(10);
        let mut client = PREFACE.to_vec();
        client.extend(frame(kind::SETTINGS, 0, 0, &[]));
        client.extend(frame(kind::HEADERS, 0, 1, h1));
        client.extend(frame(kind::CONTINUATION, flag::END_HEADERS, 1, h2));
        client.extend(frame(kind::DATA, flag::END_STREAM, 1, &[0, 0, 0, 0, 7, 0x0a, 5, b'w', b'o', b'r', b'l', b'd']));
        let mut server = frame(kind::SETTINGS, 0, 0, &[]);
        server.extend(frame(
            kind::HEADERS,
            flag::END_HEADERS,
            1,
            &encode(&[(":status", "200"), ("content-type", "application/grpc")], &mut se),
        ));
        let mut padded = vec![3u8, 0, 0, 0, 0, 2, 0x08, 0x2a];
        padded.extend([0, 0, 0]);
        server.extend(frame(kind::DATA, flag::PADDED, 1, &padded));
        server.extend(frame(
            kind::HEADERS,
            flag::END_HEADERS | flag::END_STREAM,
            1,
            &encode(&[("grpc-status", "5"), ("grpc-message", "not%20found")], &mut se),
        ));
        let steps = [Step::Data(Side::Requester, &client), Step::Data(Side::Responder, &server)];
        let out = every_chunking(|| Box::new(H2Conn::new(Limits::default(), Start::Preface, None)), &steps);
        let mut c = H2Conn::new(Limits::default(), Start::Preface, None);
        c.on_data(Side::Requester, at(1), &client);
        c.on_data(Side::Responder, at(2), &server);
        assert!(out.issues.is_empty(), "{:?}", out.issues);
        assert_eq!(out.exchanges.len(), 1);
        let ex = &out.exchanges[0];
        assert_eq!(ex.stream_id, Some(1));
        assert_eq!(ex.error, None);
        let g = ex.detail.grpc().unwrap();
        assert_eq!(
            (g.service.as_str(), g.method.as_str(), g.status, g.message.as_deref()),
            ("helloworld.Greeter", "SayHello", Some(5), Some("not found"))
        );
        assert_eq!(g.messages, [1, 1]);
        assert_eq!(g.decoded[0].as_deref(), Some(r#"[{"1":"world"}]"#));
        assert_eq!(g.decoded[1].as_deref(), Some(r#"[{"1":42}]"#));
        assert_eq!(ex.response.as_ref().unwrap().body_size, 7, "padding is not body");
        assert_eq!(c.counts().frames[kind::CONTINUATION as usize], 1);
    }

    #[test]
    fn rst_stream_and_goaway_end_streams_with_errors() {
        let mut ce = loona_hpack::Encoder::new();
        let get = |p: &str, e: &mut loona_hpack::Encoder<'_>| {
            encode(&[(":method", "GET"), (":path", p), (":scheme", "http")], e)
        };
        let mut client = PREFACE.to_vec();
        client.extend(frame(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM, 1, &get("/a", &mut ce)));
        client.extend(frame(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM, 3, &get("/b", &mut ce)));
        client.extend(frame(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM, 5, &get("/c", &mut ce)));
        let mut server = frame(kind::RST_STREAM, 0, 1, &8u32.to_be_bytes());
        server.extend(frame(kind::GOAWAY, 0, 0, &[0, 0, 0, 3, 0, 0, 0, 2]));
        let mut c = H2Conn::new(Limits::default(), Start::Preface, None);
        c.on_data(Side::Requester, at(1), &client);
        c.on_data(Side::Responder, at(2), &server);
        c.on_close(at(3), CloseReason::Fin);
        let out = c.drain();
        let errs: Vec<_> = out.exchanges.iter().map(|e| (e.stream_id, e.error.clone())).collect();
        assert_eq!(
            errs,
            [
                (Some(1), Some("rst_stream: CANCEL".into())),
                (Some(5), Some("goaway: INTERNAL_ERROR".into())),
                (Some(3), Some("goaway: INTERNAL_ERROR".into()))
            ]
        );
        assert_eq!(out.issues[0].kind, "goaway");
    }

    /// Joined mid-way, a side whose first frames are responses is told
    /// apart from the requester by its header blocks.
    #[test]
    fn mid_stream_join_finds_frames_and_roles() {
        let mut se = loona_hpack::Encoder::new();
        let mut server = vec![0x55; 5]; // the tail of an earlier frame
        server.extend(frame(kind::HEADERS, flag::END_HEADERS, 7, &encode(&[(":status", "404")], &mut se)));
        server.extend(frame(kind::DATA, flag::END_STREAM, 7, b"gone"));
        let mut c = H2Conn::new(Limits::default(), Start::MidStream, None);
        // The caller guessed wrong: it calls the server the requester.
        c.on_data(Side::Requester, at(1), &server);
        assert!(c.flipped());
        let out = c.drain();
        assert_eq!(out.exchanges.len(), 1);
        let ex = &out.exchanges[0];
        assert_eq!(ex.error.as_deref(), Some("no_request"));
        assert_eq!(ex.response.as_ref().map(|m| m.body.as_slice()), Some(&b"gone"[..]));
    }

    #[test]
    fn probe_tells_prefaces_and_frames_from_other_protocols() {
        assert_eq!(probe(&PREFACE[..10]), Probe::NeedMore);
        assert_eq!(probe(PREFACE), Probe::Preface);
        assert_eq!(probe(&frame(kind::SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100])), Probe::Frames);
        assert_eq!(probe(b"GET / HTTP/1.1\r\n"), Probe::No);
        assert_eq!(probe(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03]), Probe::No, "TLS");
        assert_eq!(probe(&frame(kind::DATA, 0, 1, b"x")), Probe::NeedMore, "one DATA frame is not enough");
    }

    /// A gap inside a DATA frame truncates that body and keeps the
    /// framing; a gap across frames is followed by a search for the next.
    #[test]
    fn gaps_truncate_bodies_and_resynchronise() {
        let mut ce = loona_hpack::Encoder::new();
        let mut se = loona_hpack::Encoder::new();
        let get = |p: &str, e: &mut loona_hpack::Encoder<'_>| encode(&[(":method", "GET"), (":path", p)], e);
        let mut client = PREFACE.to_vec();
        client.extend(frame(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM, 1, &get("/a", &mut ce)));
        client.extend(frame(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM, 3, &get("/b", &mut ce)));
        let mut server = frame(kind::HEADERS, flag::END_HEADERS, 1, &encode(&[(":status", "200")], &mut se));
        let data = frame(kind::DATA, flag::END_STREAM, 1, b"0123456789");
        server.extend(&data[..12]);
        let mut later = vec![0xaa; 7];
        later.extend(frame(
            kind::HEADERS,
            flag::END_HEADERS,
            3,
            &encode(&[(":status", "404")], &mut loona_hpack::Encoder::new()),
        ));
        later.extend(frame(kind::DATA, flag::END_STREAM, 3, b"nope"));
        let steps = [
            Step::Data(Side::Requester, &client),
            Step::Data(Side::Responder, &server),
            // Four body bytes lost inside the frame, then its last three.
            Step::Gap(Side::Responder, 4),
            Step::Data(Side::Responder, &data[16..]),
            // A gap across frames: the next frames are found again.
            Step::Gap(Side::Responder, 100),
            Step::Data(Side::Responder, &later),
        ];
        let out = every_chunking(|| Box::new(H2Conn::new(Limits::default(), Start::Preface, None)), &steps);
        let mut c = H2Conn::new(Limits::default(), Start::Preface, None);
        for s in steps {
            match s {
                Step::Data(side, b) => c.on_data(side, at(1), b),
                Step::Gap(side, len) => c.on_gap(side, at(1), len),
            }
        }
        let rows: Vec<_> = out
            .exchanges
            .iter()
            .map(|e| {
                let r = e.response.as_ref().unwrap();
                (e.stream_id, r.body_size, r.body_truncated, r.error.clone())
            })
            .collect();
        assert_eq!(rows, [(Some(1), 10, true, Some("gap".into())), (Some(3), 4, false, None)]);
        assert_eq!(c.counts().resyncs, 1);
    }

    #[test]
    fn streams_are_capped() {
        let limits = Limits { max_streams: 2, ..Limits::default() };
        let mut ce = loona_hpack::Encoder::new();
        let mut client = PREFACE.to_vec();
        for id in [1u32, 3, 5] {
            client.extend(frame(
                kind::HEADERS,
                flag::END_HEADERS | flag::END_STREAM,
                id,
                &encode(&[(":method", "GET"), (":path", "/")], &mut ce),
            ));
        }
        let mut c = H2Conn::new(limits, Start::Preface, None);
        c.on_data(Side::Requester, at(1), &client);
        let out = c.drain();
        assert_eq!(out.exchanges.len(), 1);
        assert_eq!(out.exchanges[0].error.as_deref(), Some("too_many_streams"));
    }

    /// A header block that never ends (a CONTINUATION flood) is reported
    /// once, when it passes the cap, and keeps none of its bytes.
    #[test]
    fn a_continuation_flood_is_reported_when_it_passes_the_cap() {
        let limits = Limits { max_head_bytes: 4096, ..Limits::default() };
        let mut ce = loona_hpack::Encoder::new();
        let mut client = PREFACE.to_vec();
        client.extend(frame(kind::HEADERS, 0, 1, &encode(&[(":method", "GET"), (":path", "/")], &mut ce)));
        for _ in 0..100 {
            client.extend(frame(kind::CONTINUATION, 0, 1, &[0x40; 1000]));
        }
        let mut c = H2Conn::new(limits, Start::Preface, None);
        c.on_data(Side::Requester, at(1), &client);
        assert!(c.dirs[0].block.as_ref().is_some_and(|b| b.overflow && b.bytes.is_empty()));
        c.on_close(at(2), CloseReason::CaptureEnd);
        let kinds: Vec<&str> = c.drain().issues.iter().map(|i| i.kind).collect();
        assert_eq!(kinds, ["header_block_too_large"]);
    }
}

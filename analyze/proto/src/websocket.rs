//! WebSocket (RFC 6455) after an HTTP/1.1 Upgrade: frames are unmasked
//! and joined into messages (fragmentation, control frames between
//! fragments), compressed messages are inflated (permessage-deflate,
//! RFC 7692, with or without context takeover), and each message becomes
//! one [`Exchange`]: a client's message is its `request`, a server's its
//! `response`.
//!
//! Payloads stream through; at most [`Limits::max_body_bytes`] of each
//! message is kept. A gap inside a frame's payload truncates that
//! message; a gap anywhere else loses the framing of that direction,
//! which is reported and not guessed at.

use flate2::{Decompress, FlushDecompress, Status};
use get_size2::GetSize;

use crate::detail::{Detail, WebSocketInfo};
use crate::exchange::{CloseReason, Exchange, Message, Output, StartLine};
use crate::pairing::Rows;
use crate::parser::Parser;
use crate::{At, Issue, Limits, Side};

fn opcode_name(op: u8) -> Option<&'static str> {
    Some(match op {
        1 => "text",
        2 => "binary",
        8 => "close",
        9 => "ping",
        10 => "pong",
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, GetSize)]
enum State {
    Header,
    Payload {
        left: u64,
        control: bool,
        fin: bool,
        mask: Option<[u8; 4]>,
        offset: u64,
    },
    /// Framing lost (a gap, a malformed frame): bytes are ignored.
    Lost,
}

#[derive(Debug, GetSize)]
struct Partial {
    opcode: u8,
    at: At,
    end: At,
    head: u64,
    payload: Vec<u8>,
    size: u64,
    fragments: u32,
    truncated: bool,
    compressed: bool,
    error: Option<String>,
}

impl Partial {
    fn new(opcode: u8, at: At, compressed: bool) -> Partial {
        Partial {
            opcode,
            at,
            end: at,
            head: 0,
            payload: Vec::new(),
            size: 0,
            fragments: 0,
            truncated: false,
            compressed,
            error: None,
        }
    }
}

#[derive(GetSize)]
struct Dir {
    state: State,
    buf: Vec<u8>,
    buf_at: At,
    /// The data message being assembled, and a control frame.
    data: Option<Partial>,
    control: Option<Partial>,
    #[get_size(size_fn = inflater_size)]
    inflate: Option<Decompress>,
    /// Reset the inflater after each message (no context takeover).
    reset_each: bool,
}

/// An inflater's state: its 32 KiB window and zlib's tables.
fn inflater_size(inflate: &Option<Decompress>) -> usize {
    if inflate.is_some() { 40 << 10 } else { 0 }
}

impl std::fmt::Debug for Dir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dir").field("state", &self.state).field("buffered", &self.buf.len()).finish()
    }
}

/// WebSocket parser state for one connection.
#[derive(Debug, GetSize)]
pub struct WsConn {
    limits: Limits,
    dirs: [Dir; 2],
    target: Option<String>,
    rows: Rows,
}

impl WsConn {
    /// A parser for the bytes after the Upgrade. `request` and
    /// `response` are the Upgrade exchange (for the target and the
    /// negotiated extensions); `next_index` continues the connection's
    /// exchange numbering.
    pub fn new(limits: Limits, request: Option<&Message>, response: &Message, next_index: u32) -> WsConn {
        let ext = response.header("sec-websocket-extensions").unwrap_or("").to_ascii_lowercase();
        let deflate = ext.contains("permessage-deflate");
        let dir = |reset_each: bool| Dir {
            state: State::Header,
            buf: Vec::new(),
            buf_at: At::default(),
            data: None,
            control: None,
            inflate: deflate.then(|| Decompress::new(false)),
            reset_each,
        };
        let target = request.and_then(|m| match &m.start {
            StartLine::Request { target, .. } => Some(target.clone()),
            _ => None,
        });
        WsConn {
            limits,
            dirs: [dir(ext.contains("client_no_context_takeover")), dir(ext.contains("server_no_context_takeover"))],
            target,
            rows: Rows::starting_at(next_index),
        }
    }

    fn lose(&mut self, i: usize, at: At, why: &str) {
        if self.dirs[i].state == State::Lost {
            return;
        }
        self.rows.output().issues.push(Issue {
            at,
            kind: "ws_framing_lost",
            detail: format!("WebSocket framing of the {} lost: {why}", if i == 0 { "client" } else { "server" }),
        });
        self.dirs[i].state = State::Lost;
        self.dirs[i].buf.clear();
        for p in [self.dirs[i].data.take(), self.dirs[i].control.take()].into_iter().flatten() {
            let mut p = p;
            p.truncated = true;
            p.error.get_or_insert_with(|| why.to_string());
            self.emit(i, p);
        }
    }

    fn process(&mut self, i: usize, at: At, data: &[u8]) -> usize {
        let mut pos = 0;
        while pos < data.len() {
            match self.dirs[i].state {
                State::Lost => return data.len(),
                State::Header => {
                    let b = &data[pos..];
                    if b.len() < 2 {
                        return pos;
                    }
                    let (fin, rsv1, op) = (b[0] & 0x80 != 0, b[0] & 0x40 != 0, b[0] & 0x0f);
                    let masked = b[1] & 0x80 != 0;
                    let (len, mut n) = match b[1] & 0x7f {
                        126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as u64, 4),
                        127 if b.len() >= 10 => {
                            (u64::from_be_bytes([b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9]]), 10)
                        }
                        126 | 127 => return pos,
                        l => (l as u64, 2),
                    };
                    let mask = if masked {
                        let Some(k) = b.get(n..n + 4) else { return pos };
                        n += 4;
                        Some([k[0], k[1], k[2], k[3]])
                    } else {
                        None
                    };
                    let control = op >= 8;
                    if b[0] & 0x30 != 0
                        || (opcode_name(op).is_none() && op != 0)
                        || (control && (len > 125 || !fin))
                        || len >> 63 != 0
                    {
                        self.lose(i, at, &format!("malformed frame (byte 0x{:02x}, length {len})", b[0]));
                        return data.len();
                    }
                    let d = &mut self.dirs[i];
                    if control {
                        let mut p = Partial::new(op, at, false);
                        p.head = n as u64;
                        p.fragments = 1;
                        d.control = Some(p);
                    } else if op == 0 {
                        match d.data.as_mut() {
                            Some(p) => {
                                p.fragments += 1;
                                p.head += n as u64;
                            }
                            None => {
                                self.lose(i, at, "continuation frame without a message");
                                return data.len();
                            }
                        }
                    } else {
                        if let Some(mut old) = d.data.take() {
                            old.error.get_or_insert_with(|| "unfinished".into());
                            self.emit(i, old);
                        }
                        let d = &mut self.dirs[i];
                        let mut p = Partial::new(op, at, rsv1 && d.inflate.is_some());
                        p.head = n as u64;
                        p.fragments = 1;
                        d.data = Some(p);
                    }
                    pos += n;
                    self.dirs[i].state = State::Payload { left: len, control, fin, mask, offset: 0 };
                    if len == 0 {
                        self.frame_done(i);
                    }
                }
                State::Payload { left, control, fin, mask, offset } => {
                    let n = (left.min((data.len() - pos) as u64)) as usize;
                    let mut chunk = data[pos..pos + n].to_vec();
                    if let Some(k) = mask {
                        for (j, b) in chunk.iter_mut().enumerate() {
                            *b ^= k[((offset + j as u64) % 4) as usize];
                        }
                    }
                    self.payload(i, control, &chunk, at);
                    pos += n;
                    self.dirs[i].state =
                        State::Payload { left: left - n as u64, control, fin, mask, offset: offset + n as u64 };
                    if left == n as u64 {
                        self.frame_done(i);
                    }
                }
            }
        }
        pos
    }

    fn payload(&mut self, i: usize, control: bool, chunk: &[u8], at: At) {
        let cap = self.limits.max_body_bytes;
        let d = &mut self.dirs[i];
        let Some(p) = (if control { d.control.as_mut() } else { d.data.as_mut() }) else { return };
        p.size += chunk.len() as u64;
        p.end = at;
        if p.compressed {
            if let Some(z) = d.inflate.as_mut()
                && let Err(e) = inflate_into(z, chunk, &mut p.payload, cap, &mut p.truncated)
            {
                p.error = Some(format!("inflate: {e}"));
                d.inflate = None;
            }
            return;
        }
        let room = cap.saturating_sub(p.payload.len());
        p.truncated |= chunk.len() > room;
        p.payload.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }

    fn frame_done(&mut self, i: usize) {
        let State::Payload { control, fin, .. } = self.dirs[i].state else { return };
        self.dirs[i].state = State::Header;
        if control {
            if let Some(p) = self.dirs[i].control.take() {
                self.emit(i, p);
            }
            return;
        }
        if !fin {
            return;
        }
        let cap = self.limits.max_body_bytes;
        let d = &mut self.dirs[i];
        let Some(mut p) = d.data.take() else { return };
        if p.compressed
            && p.error.is_none()
            && let Some(z) = d.inflate.as_mut()
        {
            if let Err(e) = inflate_into(z, &[0, 0, 0xff, 0xff], &mut p.payload, cap, &mut p.truncated) {
                p.error = Some(format!("inflate: {e}"));
                d.inflate = None;
            } else if d.reset_each {
                z.reset(false);
            }
        }
        self.emit(i, p);
    }

    fn emit(&mut self, i: usize, p: Partial) {
        let close_code =
            (p.opcode == 8 && p.payload.len() >= 2).then(|| u16::from_be_bytes([p.payload[0], p.payload[1]]));
        let info = WebSocketInfo {
            opcode: opcode_name(p.opcode).unwrap_or("continuation"),
            from_client: i == 0,
            close_code,
            fragments: p.fragments,
            target: self.target.clone(),
        };
        let msg = Message {
            head_size: p.head,
            body: p.payload,
            body_truncated: p.truncated,
            ..Message::wire(p.at, p.end, StartLine::Unknown, p.size)
        };
        let (request, response) = if i == 0 { (Some(msg), None) } else { (None, Some(msg)) };
        self.rows.emit(Exchange {
            request,
            response,
            error: p.error,
            detail: Detail::WebSocket(Box::new(info)),
            ..Exchange::default()
        });
    }
}

impl Parser for WsConn {
    fn held_bytes(&self) -> usize {
        self.get_heap_size()
    }
    /// Takes what was produced so far.
    fn drain(&mut self) -> Output {
        self.rows.drain()
    }

    /// In-order bytes from one side.
    fn on_data(&mut self, side: Side, at: At, data: &[u8]) {
        let i = side.index();
        let (mut held, mut held_at) = (std::mem::take(&mut self.dirs[i].buf), self.dirs[i].buf_at);
        crate::feed_held(&mut held, &mut held_at, at, data, |first_at, _, bytes| self.process(i, first_at, bytes));
        (self.dirs[i].buf, self.dirs[i].buf_at) = (held, held_at);
    }

    /// `len` bytes of one side were not captured.
    fn on_gap(&mut self, side: Side, at: At, len: u64) {
        let i = side.index();
        let d = &mut self.dirs[i];
        if let State::Payload { left, control, fin, mask, offset } = d.state
            && len <= left
            && d.buf.is_empty()
        {
            let p = if control { d.control.as_mut() } else { d.data.as_mut() };
            if let Some(p) = p {
                p.size += len;
                p.truncated = true;
                p.error.get_or_insert_with(|| "gap".into());
                // A compressed stream cannot be inflated past a hole.
                if p.compressed {
                    d.inflate = None;
                }
            }
            d.state = State::Payload { left: left - len, control, fin, mask, offset: offset + len };
            if left == len {
                self.frame_done(i);
            }
            return;
        }
        self.lose(i, at, "gap");
    }

    /// The connection ended: unfinished messages are emitted as such.
    fn on_close(&mut self, _at: At, reason: CloseReason) {
        for i in 0..2 {
            for p in [self.dirs[i].data.take(), self.dirs[i].control.take()].into_iter().flatten() {
                let mut p = p;
                p.truncated = true;
                p.error.get_or_insert_with(|| reason.name().to_string());
                self.emit(i, p);
            }
        }
    }
}

/// Inflates `input` with `z`, appending at most `cap` bytes of output to
/// `out` (the rest is inflated and dropped, to keep the window right).
fn inflate_into(
    z: &mut Decompress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    cap: usize,
    truncated: &mut bool,
) -> Result<(), String> {
    let mut scratch = [0u8; 8192];
    loop {
        let before_in = z.total_in();
        let before_out = z.total_out();
        let status = z.decompress(input, &mut scratch, FlushDecompress::Sync).map_err(|e| e.to_string())?;
        let used = (z.total_in() - before_in) as usize;
        let made = (z.total_out() - before_out) as usize;
        input = &input[used..];
        let room = cap.saturating_sub(out.len());
        *truncated |= made > room;
        out.extend_from_slice(&scratch[..made.min(room)]);
        if status == Status::StreamEnd || (input.is_empty() && made < scratch.len()) || (used == 0 && made == 0) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::Headers;
    use crate::testing::{Step, every_chunking};

    fn at(n: i64) -> At {
        At { tag: n as u64, ts_ns: n }
    }

    fn upgrade(ext: Option<&str>) -> (Message, Message) {
        let mut req = Message {
            at: at(0),
            end: at(0),
            start: StartLine::Request { method: "GET".into(), target: "/chat".into() },
            version: Some(1),
            headers: Headers::default(),
            head_size: 0,
            body: vec![],
            body_size: 0,
            body_truncated: false,
            error: None,
        };
        req.headers.push("upgrade", "websocket");
        let mut resp = req.clone();
        resp.start = StartLine::Response { status: 101, reason: "Switching Protocols".into() };
        if let Some(e) = ext {
            resp.headers.push("sec-websocket-extensions", e);
        }
        (req, resp)
    }

    /// RFC 6455 §5.7 examples: a masked "Hello", a fragmented unmasked
    /// "Hello" with a ping between the fragments, and a close.
    #[test]
    fn rfc6455_examples_become_messages() {
        let (req, resp) = upgrade(None);
        let client = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
        let server = [
            &[0x01, 0x03, 0x48, 0x65, 0x6c][..],
            &[0x89, 0x00],
            &[0x80, 0x02, 0x6c, 0x6f],
            &[0x88, 0x04, 0x03, 0xe8, b'o', b'k'],
        ]
        .concat();
        let steps = [Step::Data(Side::Requester, &client), Step::Data(Side::Responder, &server)];
        let out = every_chunking(|| Box::new(WsConn::new(Limits::default(), Some(&req), &resp, 1)), &steps);
        let rows: Vec<_> = out
            .exchanges
            .iter()
            .map(|e| {
                let w = e.detail.websocket().unwrap();
                let m = e.request.as_ref().or(e.response.as_ref()).unwrap();
                (
                    e.index,
                    w.opcode,
                    w.from_client,
                    String::from_utf8_lossy(&m.body).into_owned(),
                    w.fragments,
                    w.close_code,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                (1, "text", true, "Hello".to_string(), 1, None),
                (2, "ping", false, String::new(), 1, None),
                (3, "text", false, "Hello".to_string(), 2, None),
                (4, "close", false, "\u{3}\u{fffd}ok".to_string(), 1, Some(1000)),
            ]
        );
        assert_eq!(out.exchanges[0].detail.websocket().unwrap().target.as_deref(), Some("/chat"));
    }

    /// RFC 7692 §7.2.3.2: "Hello" compressed twice with context takeover;
    /// the second message refers back to the first.
    #[test]
    fn permessage_deflate_with_context_takeover() {
        let (req, resp) = upgrade(Some("permessage-deflate"));
        let mut c = WsConn::new(Limits::default(), Some(&req), &resp, 0);
        c.on_data(Side::Responder, at(1), &[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
        c.on_data(Side::Responder, at(2), &[0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00]);
        let out = c.drain();
        let bodies: Vec<_> = out.exchanges.iter().map(|e| e.response.as_ref().unwrap().body.clone()).collect();
        assert_eq!(bodies, [b"Hello".to_vec(), b"Hello".to_vec()]);
        assert!(out.exchanges.iter().all(|e| e.error.is_none()));
    }

    #[test]
    fn malformed_frames_and_gaps_are_reported() {
        let (req, resp) = upgrade(None);
        let steps = [
            Step::Data(Side::Requester, &[0x81, 0x05, b'H', b'e']),
            Step::Gap(Side::Requester, 3),
            Step::Data(Side::Responder, &[0x8f, 0x00]),
        ];
        let out = every_chunking(|| Box::new(WsConn::new(Limits::default(), Some(&req), &resp, 0)), &steps);
        assert_eq!(out.exchanges.len(), 1);
        assert_eq!(out.exchanges[0].error.as_deref(), Some("gap"));
        assert_eq!(out.exchanges[0].request.as_ref().unwrap().body_size, 5);
        assert_eq!(out.issues.len(), 1);
        assert_eq!(out.issues[0].kind, "ws_framing_lost");
    }
}

//! Redis (RESP2 and RESP3): commands and their replies, paired in order
//! (pipelining), pub/sub deliveries as rows of their own.
//!
//! The reader is incremental and keeps no value whole: it walks the
//! nested types with a stack of element counts and skips bulk payloads as
//! they stream by, keeping only what a row needs (the command, its key,
//! the reply's type and error text, each cut at 64 bytes). Inline
//! commands (`PING\r\n`, as `redis-cli` and telnet send them) are read
//! too.

use crate::detail::RedisInfo;
use crate::exchange::{CloseReason, Message, Output, StartLine};
use crate::pairing::{Asked, Book, Pairing};
use crate::parser::{Counts, Parser};
use crate::{At, Limits, Side};
use get_size2::GetSize;

const KEEP: usize = 64;
/// Arguments shown in a command line.
const LINE_ARGS: usize = 4;
const MAX_DEPTH: usize = 32;
const MAX_LINE: usize = 64 * 1024;

fn type_name(t: u8) -> &'static str {
    match t {
        b'+' => "simple",
        b'-' | b'!' => "error",
        b':' => "integer",
        b'$' => "bulk",
        b'*' => "array",
        b'_' => "null",
        b'%' => "map",
        b'~' => "set",
        b'>' => "push",
        b',' => "double",
        b'#' => "boolean",
        b'(' => "bignum",
        b'=' => "verbatim",
        b'|' => "attribute",
        _ => "inline",
    }
}

/// A top-level value read so far.
#[derive(Debug, Default, GetSize)]
struct Top {
    kind: u8,
    /// The first strings (of an array: its first elements).
    parts: Vec<String>,
    null: bool,
    at: At,
    size: u64,
}

#[derive(Debug, Default, GetSize)]
struct Reader {
    /// Remaining elements of each open aggregate.
    stack: Vec<u64>,
    /// Bytes of the current bulk payload (plus its CRLF) still to come,
    /// and whether it is kept.
    bulk_left: u64,
    keep_bulk: bool,
    line: Vec<u8>,
    top: Option<Top>,
    lost: bool,
}

impl Reader {
    /// Reads `data`; calls `done` with each complete top-level value.
    fn feed(&mut self, at: At, mut data: &[u8], done: &mut impl FnMut(Top)) -> Result<(), String> {
        while !data.is_empty() && !self.lost {
            if self.bulk_left > 0 {
                let n = (self.bulk_left as usize).min(data.len());
                if self.keep_bulk
                    && let Some(t) = self.top.as_mut()
                    && let Some(p) = t.parts.last_mut()
                {
                    let payload = &data[..n.min(self.bulk_left.saturating_sub(2) as usize)];
                    let room = KEEP.saturating_sub(p.len());
                    p.push_str(&String::from_utf8_lossy(&payload[..payload.len().min(room)]));
                }
                if let Some(t) = self.top.as_mut() {
                    t.size += n as u64;
                }
                self.bulk_left -= n as u64;
                data = &data[n..];
                if self.bulk_left == 0 {
                    self.element_done(done);
                }
                continue;
            }
            let Some(end) = memchr::memchr(b'\n', data) else {
                if self.line.len() + data.len() > MAX_LINE {
                    return Err("a line longer than 64 KiB".into());
                }
                self.line.extend_from_slice(data);
                return Ok(());
            };
            self.line.extend_from_slice(&data[..=end]);
            data = &data[end + 1..];
            let line = std::mem::take(&mut self.line);
            self.line_done(at, &line, done)?;
        }
        Ok(())
    }

    fn line_done(&mut self, at: At, raw: &[u8], done: &mut impl FnMut(Top)) -> Result<(), String> {
        let line = raw.strip_suffix(b"\r\n").or_else(|| raw.strip_suffix(b"\n")).unwrap_or(raw);
        let depth = self.stack.len();
        let top = self.top.get_or_insert_with(|| Top { at, ..Top::default() });
        top.size += raw.len() as u64;
        let Some((&t, rest)) = line.split_first() else {
            // An empty line between inline commands.
            if depth == 0 {
                self.top = None;
            }
            return Ok(());
        };
        if depth == 0 {
            top.kind = t;
        }
        // Keep the value itself (top level) or the first elements of a
        // top-level aggregate.
        let keep = depth == 0 || (depth == 1 && top.parts.len() < LINE_ARGS);
        let text = || String::from_utf8_lossy(&rest[..rest.len().min(KEEP)]).into_owned();
        let number = || {
            std::str::from_utf8(rest)
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .ok_or_else(|| format!("bad length {:?}", String::from_utf8_lossy(rest)))
        };
        match t {
            b'*' | b'%' | b'~' | b'>' | b'|' => {
                let n = number()?;
                if n <= 0 {
                    top.null |= n < 0 && depth == 0;
                    self.element_done(done);
                } else {
                    if depth >= MAX_DEPTH {
                        return Err("aggregates nested too deep".into());
                    }
                    let n = n as u64 * if matches!(t, b'%' | b'|') { 2 } else { 1 };
                    self.stack.push(n);
                }
            }
            b'$' | b'!' | b'=' => {
                let n = number()?;
                if n < 0 {
                    top.null |= depth == 0;
                    self.element_done(done);
                } else {
                    self.keep_bulk = keep;
                    if keep {
                        top.parts.push(String::new());
                    }
                    self.bulk_left = n as u64 + 2;
                }
            }
            b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => {
                if keep {
                    top.parts.push(text());
                }
                self.element_done(done);
            }
            _ if depth == 0 => {
                // An inline command.
                top.kind = 0;
                top.parts = line
                    .split(|c| c.is_ascii_whitespace())
                    .filter(|w| !w.is_empty())
                    .take(LINE_ARGS)
                    .map(|w| String::from_utf8_lossy(&w[..w.len().min(KEEP)]).into_owned())
                    .collect();
                self.element_done(done);
            }
            _ => return Err(format!("unexpected type byte 0x{t:02x} inside an aggregate")),
        }
        Ok(())
    }

    fn element_done(&mut self, done: &mut impl FnMut(Top)) {
        loop {
            match self.stack.last_mut() {
                None => {
                    if let Some(t) = self.top.take() {
                        done(t);
                    }
                    return;
                }
                Some(n) => {
                    *n -= 1;
                    if *n > 0 {
                        return;
                    }
                    self.stack.pop();
                }
            }
        }
    }
}

/// Does this look like the start of a RESP command (an array of bulk
/// strings, or an inline command of a few printable words)?
pub fn probe(b: &[u8]) -> bool {
    let line = match memchr::memchr(b'\n', b) {
        Some(e) => &b[..e],
        None => return false,
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match line.split_first() {
        Some((b'*', n)) => {
            std::str::from_utf8(n).ok().and_then(|n| n.parse::<u32>().ok()).is_some_and(|n| n > 0)
                && b.get(line.len() + 2) == Some(&b'$')
        }
        _ => false,
    }
}

/// Redis state of one TCP connection.
#[derive(Debug, GetSize)]
pub struct RedisConn {
    readers: [Reader; 2],
    /// Commands waiting for their replies, paired in order.
    pairs: Pairing<Asked<RedisInfo>>,
}

impl RedisConn {
    pub fn new(limits: Limits) -> RedisConn {
        RedisConn { readers: Default::default(), pairs: Pairing::new(limits.max_pending) }
    }

    fn message(v: &Top, at: At, start: StartLine) -> Message {
        Message::wire(v.at, at, start, v.size)
    }

    fn request(&mut self, v: Top, at: At) {
        let command = v.parts.first().map(|c| c.to_ascii_uppercase());
        let key = v.parts.get(1).cloned();
        let line = (!v.parts.is_empty()).then(|| {
            let mut p = v.parts.clone();
            if let Some(c) = p.first_mut() {
                *c = c.to_ascii_uppercase();
            }
            p.join(" ")
        });
        let m = Self::message(
            &v,
            at,
            StartLine::Request { method: command.clone().unwrap_or_default(), target: key.clone().unwrap_or_default() },
        );
        self.pairs.wait(Asked { key: 0, request: m, info: RedisInfo { command, line, key, ..RedisInfo::default() } });
    }

    fn reply(&mut self, v: Top, at: At) {
        let reply = if v.null { "null" } else { type_name(v.kind) };
        let error = (reply == "error").then(|| v.parts.first().cloned().unwrap_or_default());
        // A pub/sub delivery: an array (RESP2) or push (RESP3) whose first
        // element names it.
        let delivery = matches!(v.kind, b'*' | b'>')
            && v.parts.first().is_some_and(|p| matches!(p.as_str(), "message" | "pmessage" | "smessage"));
        let m = Self::message(&v, at, StartLine::Unknown);
        if delivery || self.pairs.waiting.is_empty() {
            let info = RedisInfo {
                command: v.parts.first().cloned(),
                key: v.parts.get(1).cloned(),
                reply: Some(reply),
                error,
                ..RedisInfo::default()
            };
            self.pairs.rows.row(None, Some(m), info, (!delivery).then_some("no_request"));
            return;
        }
        if let Some(Asked { request, mut info, .. }) = self.pairs.answer(|_| true) {
            info.reply = Some(reply);
            info.error = error;
            self.pairs.rows.row(Some(request), Some(m), info, None);
        }
    }
}

impl Parser for RedisConn {
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

    /// In-order bytes from one side.
    fn on_data(&mut self, side: Side, at: At, data: &[u8]) {
        let i = side.index();
        let mut reader = std::mem::take(&mut self.readers[i]);
        let mut values = Vec::new();
        if let Err(e) = reader.feed(at, data, &mut |t| values.push(t)) {
            reader.lost = true;
            self.pairs.rows.issue(
                at,
                "bad_resp",
                format!("RESP framing of the {} lost: {e}", if i == 0 { "client" } else { "server" }),
            );
        }
        self.readers[i] = reader;
        for v in values {
            if i == 0 {
                self.request(v, at);
            } else {
                self.reply(v, at);
            }
        }
    }

    /// Bytes of one side were not captured: its framing is lost.
    fn on_gap(&mut self, side: Side, at: At, _len: u64) {
        let r = &mut self.readers[side.index()];
        if !r.lost {
            r.lost = true;
            self.pairs.rows.issue(at, "resp_framing_lost", "a gap in a Redis stream".into());
        }
    }

    /// The connection ended: commands without a reply are emitted.
    fn on_close(&mut self, _at: At, reason: CloseReason) {
        self.pairs.close(reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Step, every_chunking};

    fn at(n: i64) -> At {
        At { tag: n as u64, ts_ns: n }
    }

    /// Command, key, reply type, error text, row error.
    type Row = (Option<String>, Option<String>, Option<&'static str>, Option<String>, Option<String>);

    fn rows(out: &Output) -> Vec<Row> {
        out.exchanges
            .iter()
            .map(|e| {
                let r = e.detail.redis().unwrap();
                (r.command.clone(), r.key.clone(), r.reply, r.error.clone(), e.error.clone())
            })
            .collect()
    }

    #[test]
    fn pipelined_commands_pair_in_order_across_segments() {
        let req = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n*2\r\n$3\r\nget\r\n$3\r\nkey\r\nPING\r\n*2\r\n$4\r\nINCR\r\n$3\r\nkey\r\n";
        let resp = b"+OK\r\n$5\r\nvalue\r\n+PONG\r\n-ERR value is not an integer or out of range\r\n";
        let out = every_chunking(
            || Box::new(RedisConn::new(Limits::default())),
            &[Step::Data(Side::Requester, req), Step::Data(Side::Responder, resp)],
        );
        assert_eq!(
            rows(&out),
            [
                (Some("SET".into()), Some("key".into()), Some("simple"), None, None),
                (Some("GET".into()), Some("key".into()), Some("bulk"), None, None),
                (Some("PING".into()), None, Some("simple"), None, None),
                (
                    Some("INCR".into()),
                    Some("key".into()),
                    Some("error"),
                    Some("ERR value is not an integer or out of range".into()),
                    None
                ),
            ]
        );
    }

    #[test]
    fn resp3_aggregates_and_pubsub_deliveries() {
        let mut c = RedisConn::new(Limits::default());
        c.on_data(Side::Requester, at(1), b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n*2\r\n$9\r\nSUBSCRIBE\r\n$2\r\nch\r\n");
        c.on_data(
            Side::Responder,
            at(2),
            b"%2\r\n+server\r\n+redis\r\n+proto\r\n:3\r\n>3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
        );
        let out = c.drain();
        let r = rows(&out);
        assert_eq!(r[0].2, Some("map"));
        assert_eq!(r[1].2, Some("push"));
        assert_eq!(
            r[2],
            (Some("message".into()), Some("ch".into()), Some("push"), None, None),
            "a delivery is a row without a request"
        );
    }

    #[test]
    fn large_values_stream_through_without_being_kept() {
        let mut c = RedisConn::new(Limits::default());
        let big = vec![b'x'; 1 << 20];
        let mut req = b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$1048576\r\n".to_vec();
        req.extend_from_slice(&big);
        req.extend_from_slice(b"\r\n");
        for b in req.chunks(1000) {
            c.on_data(Side::Requester, at(1), b);
        }
        c.on_data(Side::Responder, at(2), b"+OK\r\n");
        let out = c.drain();
        assert_eq!(out.exchanges.len(), 1);
        assert_eq!(out.exchanges[0].request.as_ref().unwrap().body_size, req.len() as u64);
        assert!(probe(&req));
        assert!(!probe(b"GET / HTTP/1.1\r\n"));
    }
}

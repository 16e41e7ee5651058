//! The row model every parser produces: an [`Exchange`] (a request and
//! its response, either of which may be missing) of [`Message`]s, with
//! the protocol's [`Detail`], collected in an [`Output`] with the parse
//! issues; and why a connection ended ([`CloseReason`]).
//!
//! HTTP's vocabulary (start line, headers, bodies) is the common one:
//! binary protocols fill a message's timing and size
//! ([`Message::wire`]) and put what they say in their detail.

use crate::detail::Detail;
use crate::{At, Issue};
use get_size2::GetSize;

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq, GetSize)]
pub enum StartLine {
    Request {
        method: String,
        target: String,
    },
    Response {
        status: u16,
        reason: String,
    },
    /// The head was not captured or could not be decoded (an HTTP/2
    /// stream joined mid-way, a WebSocket message).
    Unknown,
}

/// Headers of a message, stored in one buffer: names lower-cased, values
/// trimmed, in order, repeats kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, GetSize)]
pub struct Headers {
    buf: String,
    /// (name end, value end) offsets into `buf`; each entry starts where
    /// the previous one ended.
    ends: Vec<(u32, u32)>,
}

impl Headers {
    /// Adds a header; the name is lower-cased.
    pub fn push(&mut self, name: &str, value: &str) {
        let start = self.buf.len();
        self.buf.push_str(name);
        self.buf[start..].make_ascii_lowercase();
        let n = self.buf.len() as u32;
        self.buf.push_str(value.trim());
        self.ends.push((n, self.buf.len() as u32));
    }

    /// (name, value) pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        let mut start = 0usize;
        self.ends.iter().map(move |&(n, v)| {
            let name = self.buf.get(start..n as usize).unwrap_or("");
            let value = self.buf.get(n as usize..v as usize).unwrap_or("");
            start = v as usize;
            (name, value)
        })
    }

    /// The first value of a header, by lower-case name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

/// One HTTP message (request or response).
#[derive(Debug, Clone, PartialEq, Eq, GetSize)]
pub struct Message {
    /// Where the first byte of the message was seen.
    pub at: At,
    /// Where the last byte seen of the message was.
    pub end: At,
    pub start: StartLine,
    /// Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1; None when unreadable.
    pub version: Option<u8>,
    /// Header names lower-cased, in order, repeats kept. Trailers of a
    /// chunked body are appended.
    pub headers: Headers,
    /// Bytes of the start line and headers.
    pub head_size: u64,
    /// The stored body: content-decoded and capped.
    pub body: Vec<u8>,
    /// Body bytes on the wire, after de-chunking, before content decoding.
    pub body_size: u64,
    /// The stored body is incomplete.
    pub body_truncated: bool,
    /// Why the message is incomplete or malformed.
    pub error: Option<String>,
}

impl Message {
    /// The first value of a header, by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }
}

/// A request and its response, either of which may be missing.
#[derive(Debug, Clone, PartialEq, Eq, Default, GetSize)]
pub struct Exchange {
    /// 0-based position on the connection.
    pub index: u32,
    pub request: Option<Message>,
    pub response: Option<Message>,
    /// Status codes of 1xx interim responses before the final one.
    pub interim: Vec<u16>,
    /// Protocol the connection switched to after this exchange.
    pub upgrade: Option<String>,
    /// Why the exchange is incomplete: `no_response`, `no_request`, ...
    pub error: Option<String>,
    /// HTTP/2 stream identifier; None for HTTP/1.
    pub stream_id: Option<u32>,
    /// What the row says beyond the request and response, by protocol.
    pub detail: Detail,
}

/// What the parser produced since the caller last drained it.
#[derive(Debug, Default, GetSize)]
pub struct Output {
    pub exchanges: Vec<Exchange>,
    pub issues: Vec<Issue>,
}

impl Message {
    /// A message of a binary protocol as a row's request or response: its
    /// timing and size (`body_size`), no headers or stored body.
    pub fn wire(at: At, end: At, start: StartLine, size: u64) -> Message {
        Message {
            at,
            end,
            start,
            version: None,
            headers: Headers::default(),
            head_size: 0,
            body: Vec::new(),
            body_size: size,
            body_truncated: false,
            error: None,
        }
    }
}

/// Why a connection ended, as its parser is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, GetSize)]
pub enum CloseReason {
    /// The capture ended with the connection open: an unanswered request
    /// may have been answered after it (`capture_end`).
    CaptureEnd,
    /// The connection was reset (RST).
    Reset,
    /// The connection idled out in capture time.
    Timeout,
    /// Both sides closed (FIN).
    Fin,
    /// The analyzer stopped following the connection to stay within its
    /// flow-state budget: like the end of the capture, an unanswered
    /// request may have been answered after it (`evicted`).
    Evicted,
}

impl CloseReason {
    /// The name an incomplete message's error gets.
    pub fn name(self) -> &'static str {
        match self {
            CloseReason::CaptureEnd => "capture_end",
            CloseReason::Reset => "connection_reset",
            CloseReason::Timeout => "connection_timeout",
            CloseReason::Fin => "fin",
            CloseReason::Evicted => "evicted",
        }
    }

    /// The error of a request left without a response: `capture_end` when
    /// the capture ended first, `evicted` when the analyzer stopped
    /// following the connection (the response may exist), else
    /// `no_response`.
    pub fn unanswered(self) -> &'static str {
        match self {
            CloseReason::CaptureEnd | CloseReason::Evicted => self.name(),
            _ => "no_response",
        }
    }

    /// True when the connection may have gone on past what was seen (the
    /// capture ended, or the analyzer stopped following it).
    pub fn cut_short(self) -> bool {
        matches!(self, CloseReason::CaptureEnd | CloseReason::Evicted)
    }
}

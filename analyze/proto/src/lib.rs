//! Sans-IO, incremental L7 parsers for trawl.
//!
//! Parsers here consume reassembled byte streams, one direction at a time,
//! in capture order. They never do I/O, never read a clock (every call
//! carries the capture timestamp of the bytes), and know nothing of Arrow,
//! Parquet or threads. "Need more bytes" is a normal state: a parser keeps
//! what it needs (a partial head, a body up to its cap) and waits.
//!
//! Malformed traffic is data: problems are reported as [`Issue`]s next to
//! the records, never as `Err`.
//!
//! Every byte count the traffic controls is capped by [`Limits`].
//!
//! What every parser produces is in [`exchange`] (the row model) and
//! [`detail`] (each protocol's part of a row); stored bodies are
//! content-decoded by one module (`body`).
//!
//! Supported: HTTP/1.0 and HTTP/1.1 ([`http1`]); cleartext HTTP/2 with
//! HPACK ([`h2`], [`hpack`]); gRPC message framing and schema-less or
//! descriptor-driven protobuf decoding ([`grpc`]); GraphQL operations
//! ([`graphql`]); WebSocket messages ([`websocket`]); DNS queries and
//! responses ([`dns`]) and the addresses DNS responses give
//! ([`dns_answers`], for naming peers); TLS handshakes ([`tls`]); Redis
//! ([`redis`]); PostgreSQL ([`postgres`]), MySQL ([`mysql`]) and MongoDB
//! ([`mongodb`]), whose rows share [`detail::DbInfo`]; Kafka ([`kafka`]); AMQP
//! 0-9-1 ([`amqp`]). The binary ones are cut into messages by one
//! length-prefix reader (`frames`).
use get_size2::GetSize;

pub mod amqp;
mod body;
pub mod detail;
pub mod dns;
pub mod dns_answers;
pub mod exchange;
mod frames;
pub mod graphql;
pub mod grpc;
pub mod h2;
pub mod hpack;
pub mod http1;
pub mod kafka;
pub mod mongodb;
pub mod mysql;
mod pairing;
pub mod parser;
pub mod postgres;
pub mod redis;
pub mod registry;
#[cfg(test)]
mod testing;
pub mod tls;
pub mod websocket;

/// Caps on everything the traffic controls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, GetSize)]
pub struct Limits {
    /// Bytes of a body kept per message (after content decoding).
    pub max_body_bytes: usize,
    /// Bytes of a message head (start line and headers) before it is
    /// declared malformed.
    pub max_head_bytes: usize,
    /// Headers parsed per message; the rest are dropped and reported.
    pub max_headers: usize,
    /// Requests waiting for a response on one connection; beyond this the
    /// oldest is emitted without a response.
    pub max_pending: usize,
    /// Bytes an HPACK dynamic table may grow to (a peer's table size
    /// update above it is refused and reported).
    pub max_hpack_table: usize,
    /// Open HTTP/2 streams tracked per connection; beyond this the oldest
    /// is emitted as `too_many_streams`.
    pub max_streams: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 64 * 1024,
            max_head_bytes: 64 * 1024,
            max_headers: 128,
            max_pending: 256,
            max_hpack_table: 64 * 1024,
            max_streams: 1024,
        }
    }
}

/// Which side of a connection sent some bytes, in L7 terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, GetSize)]
pub enum Side {
    /// The side that sends requests.
    Requester,
    /// The side that sends responses.
    Responder,
}

impl Side {
    /// 0 for the requester, 1 for the responder (parsers keep per-side
    /// state in two-element arrays).
    pub fn index(self) -> usize {
        match self {
            Side::Requester => 0,
            Side::Responder => 1,
        }
    }
}

/// Runs an incremental parser over the bytes it kept from earlier calls
/// (`held`, the first of them seen at `held_at`) followed by `data` (seen
/// at `at`). `process(first_at, split, bytes)` gets them as one slice,
/// with the offset where `data` starts and when the held part was seen,
/// and returns how many bytes it consumed; the rest is kept for the next
/// call. Parsers call it with `held` taken out of their state, so that
/// `process` may borrow the parser.
pub(crate) fn feed_held(
    held: &mut Vec<u8>,
    held_at: &mut At,
    at: At,
    data: &[u8],
    process: impl FnOnce(At, usize, &[u8]) -> usize,
) {
    if held.is_empty() {
        let used = process(at, 0, data).min(data.len());
        if used < data.len() {
            held.extend_from_slice(&data[used..]);
            *held_at = at;
        }
    } else {
        let split = held.len();
        held.extend_from_slice(data);
        let used = process(*held_at, split, held).min(held.len());
        if used >= split {
            *held_at = at;
        }
        held.drain(..used);
    }
}

/// Where in the capture some bytes came from: an opaque tag chosen by the
/// caller (trawl uses the packet's file and frame number) and the capture
/// time in nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, GetSize)]
pub struct At {
    pub tag: u64,
    pub ts_ns: i64,
}

/// A problem found in the traffic.
#[derive(Debug, Clone, PartialEq, Eq, GetSize)]
pub struct Issue {
    pub at: At,
    /// Stable short identifier, e.g. `bad_request_line`.
    pub kind: &'static str,
    pub detail: String,
}

/// Percent-decodes `s` (`+` as a space when `plus_is_space`, as in form
/// encoding); invalid escapes are kept as they are.
pub(crate) fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex =
            b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(h)) => {
                out.push(h);
                i += 3;
                continue;
            }
            (b'+', _) if plus_is_space => out.push(b' '),
            (c, _) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

//! The one contract of every connection parser ([`Parser`]): bytes,
//! gaps and the end of each side in, rows out, and a switch to another
//! protocol when the connection makes one (an HTTP/1 Upgrade).
//!
//! The caller (analyze's L7 layer) holds a `Box<dyn Parser>` per
//! connection and never needs to know which protocol it is talking to.

use crate::exchange::{CloseReason, Message, Output};
use crate::{At, Side};
use get_size2::GetSize;

/// A connection parser: bytes in, rows out. Every call carries the
/// capture position of its bytes; none does I/O.
pub trait Parser: std::fmt::Debug + Send {
    /// In-order bytes from one side.
    fn on_data(&mut self, side: Side, at: At, data: &[u8]);
    /// `len` bytes of one side were not captured.
    fn on_gap(&mut self, side: Side, at: At, len: u64);
    /// One side ended its stream (FIN). Most protocols wait for the
    /// connection's close instead.
    fn on_end(&mut self, _side: Side, _at: At) {}
    /// The connection ended: everything still open is emitted, its error
    /// naming `reason`.
    fn on_close(&mut self, at: At, reason: CloseReason);
    /// Takes the rows and issues produced so far.
    fn drain(&mut self) -> Output;
    /// The connection left this protocol for another (h2c, WebSocket),
    /// once: the caller hands the rest of the connection to the parser
    /// for that protocol, starting with the switch's bytes.
    fn take_switch(&mut self) -> Option<Box<Switch>> {
        None
    }
    /// True when the side the caller called the requester turned out to
    /// send the responses (HTTP/2 joined without a preface).
    fn flipped(&self) -> bool {
        false
    }
    /// What the parser counted, for the run's summary.
    fn counts(&self) -> Counts {
        Counts::default()
    }
    /// Heap bytes the parser holds (buffers, messages awaiting their
    /// answers, decoding tables), counted against the flow-state budget
    /// so that traffic cannot make parsers hold more than the budget
    /// allows. An estimate from allocations' capacities, not a walk of
    /// the allocator.
    fn held_bytes(&self) -> usize;
}

/// The connection left HTTP/1 for a protocol parsed elsewhere.
#[derive(Debug, GetSize)]
pub struct Switch {
    /// The Upgrade protocol, lower-cased: `h2c` or `websocket`.
    pub protocol: String,
    /// The request that asked for the switch.
    pub request: Option<Message>,
    /// The 101 response.
    pub response: Message,
    /// 0-based index the next exchange on the connection gets.
    pub next_index: u32,
    /// Bytes each side (requester, responder) sent after the switch, and
    /// where the first of them was seen.
    pub held: [(At, Vec<u8>); 2],
}

/// What a parser counted, for the run's summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, GetSize)]
pub struct Counts {
    /// Requests the connection's full queue of waiting requests gave up
    /// ([`crate::Limits::max_pending`]).
    pub given_up: u64,
    /// Messages read from the requester and from the responder, for
    /// protocols whose messages are counted apart from their rows
    /// (PostgreSQL, as tshark counts them).
    pub messages: [u64; 2],
    /// HTTP/2: frames read, by type (index 10: unknown types).
    pub frames: [u64; 11],
    /// HTTP/2: streams seen.
    pub streams: u64,
    /// HTTP/2: header fields that referenced table entries never seen.
    pub hpack_unknown: u64,
    /// HTTP/2: times the parser had to look for frames (joined mid-way, gaps).
    pub resyncs: u64,
}

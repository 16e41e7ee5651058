//! The L7 state of one TCP connection: deciding what it speaks from its
//! first bytes (trawl-proto's registry decides), then handing each
//! reassembled event to the connection's parser, and following an
//! HTTP/1 switch to h2c or WebSocket.

use std::sync::Arc;

use trawl_proto::exchange::{CloseReason, Output};
use trawl_proto::grpc::Schemas;
use trawl_proto::parser::{Counts, Parser};
use trawl_proto::registry::{self, Detect, Protocol, Requester};
use trawl_proto::{At, Limits, Side};

use crate::reassembly::StreamEvent;

/// Bytes of each side kept while deciding what a connection speaks.
const PROBE_MAX: usize = 16 * 1024;

/// What the L7 parsers of a shard share: caps and gRPC schemas.
pub(crate) struct L7Ctx<'a> {
    pub limits: Limits,
    pub schemas: &'a Option<Arc<Schemas>>,
}

pub(crate) enum L7 {
    /// Deciding what the connection speaks; first bytes of each side.
    Probe {
        bufs: [Vec<u8>; 2],
        at: [At; 2],
        mid: bool,
        /// The connection's ports (the registry's tie-breaking hints).
        ports: (u16, u16),
    },
    /// A parser reads the connection. After an HTTP/1 switch, `before`
    /// holds the HTTP/1 parser until its last rows are drained.
    Active {
        protocol: Protocol,
        parser: Box<dyn Parser>,
        /// The direction (0: the flow's client) that sends requests.
        requester: usize,
        before: Option<(Protocol, Box<dyn Parser>)>,
    },
    /// The connection ended with FIN both ways and its parser's rows were
    /// taken: what the flow row needs is kept, the parser is freed
    /// (closed connections linger in the flow table for 60 s of capture
    /// time; on connection-heavy traffic tens of thousands of them).
    Closed {
        protocol: Protocol,
        counts: Counts,
    },
    Unknown,
}

fn side_of(dir: usize, requester: usize) -> Side {
    if dir == requester { Side::Requester } else { Side::Responder }
}

impl L7 {
    pub fn new(ports: (u16, u16)) -> L7 {
        L7::Probe { bufs: [Vec::new(), Vec::new()], at: [At::default(); 2], mid: false, ports }
    }

    /// Hands one reassembled event of direction `dir` to the parser.
    /// `started_clean` says the connection's handshake was seen, so that
    /// the first bytes are the start of the conversation.
    pub fn feed(&mut self, ctx: &L7Ctx<'_>, started_clean: bool, dir: usize, e: StreamEvent<'_>) {
        match self {
            L7::Unknown | L7::Closed { .. } => {}
            L7::Active { parser, requester, .. } => {
                let side = side_of(dir, *requester);
                match e {
                    StreamEvent::Data { at, bytes } => parser.on_data(side, at, bytes),
                    StreamEvent::Gap { at, len } => parser.on_gap(side, at, len),
                    StreamEvent::End { at } => parser.on_end(side, at),
                }
                if let Some(sw) = parser.take_switch() {
                    self.switch(ctx, *sw);
                }
            }
            L7::Probe { bufs, at: first_at, mid, ports } => match e {
                StreamEvent::Data { at, bytes } => {
                    if bufs[dir].is_empty() {
                        first_at[dir] = at;
                    }
                    let room = PROBE_MAX.saturating_sub(bufs[dir].len());
                    bufs[dir].extend_from_slice(&bytes[..bytes.len().min(room)]);
                    let mid_stream = *mid || !started_clean;
                    let next = match registry::detect(&bufs[dir], mid_stream, *ports) {
                        Detect::Wait if bufs[dir].len() >= PROBE_MAX => None,
                        Detect::Wait => return,
                        Detect::No => None,
                        Detect::Found(d) => {
                            let requester = match d.requester {
                                Requester::Sender => dir,
                                Requester::Receiver => 1 - dir,
                                Requester::FlowClient => 0,
                            };
                            d.protocol.parser(&d, ctx.limits, ctx.schemas).map(|parser| (d.protocol, parser, requester))
                        }
                    };
                    let Some((protocol, parser, requester)) = next else {
                        *self = L7::Unknown;
                        return;
                    };
                    let held = std::mem::take(bufs);
                    let held_at = *first_at;
                    *self = L7::Active { protocol, parser, requester, before: None };
                    for d in [requester, 1 - requester] {
                        if !held[d].is_empty() {
                            self.feed(ctx, started_clean, d, StreamEvent::Data { at: held_at[d], bytes: &held[d] });
                        }
                    }
                }
                StreamEvent::Gap { .. } => {
                    bufs[dir].clear();
                    *mid = true;
                }
                StreamEvent::End { .. } => {}
            },
        }
    }

    /// The connection switched protocols (h2c or WebSocket): the new
    /// parser takes over, starting with the bytes sent after the switch.
    fn switch(&mut self, ctx: &L7Ctx<'_>, sw: trawl_proto::parser::Switch) {
        let L7::Active { requester, .. } = *self else { return };
        let L7::Active { protocol: old, parser: old_parser, .. } = std::mem::replace(self, L7::Unknown) else { return };
        let (protocol, parser) = registry::after_switch(&sw, ctx.limits, ctx.schemas);
        *self = L7::Active { protocol, parser, requester, before: Some((old, old_parser)) };
        for (i, (at, bytes)) in sw.held.iter().enumerate() {
            if !bytes.is_empty() {
                let dir = if i == 0 { requester } else { 1 - requester };
                self.feed(ctx, true, dir, StreamEvent::Data { at: *at, bytes });
            }
        }
    }

    /// The connection ended.
    pub fn close(&mut self, at: At, reason: CloseReason) {
        if let L7::Active { parser, .. } = self {
            parser.on_close(at, reason);
        }
    }

    /// The rows produced so far, by layer: a switched-from parser's
    /// first. Also the direction that sends requests (as the parser has
    /// come to know it). Called for every packet that carried bytes, so
    /// it allocates nothing.
    pub fn drain(&mut self) -> (usize, [Option<(&'static str, Output)>; 2]) {
        let L7::Active { protocol, parser, requester, before } = self else { return (0, [None, None]) };
        let requester = if parser.flipped() { 1 - *requester } else { *requester };
        let old = before.take().map(|(p, mut old)| (p.layer(), old.drain()));
        (requester, [old, Some((protocol.layer(), parser.drain()))])
    }

    /// The protocol the connection ended up speaking, and what its
    /// parser counted.
    pub fn outcome(&self) -> Option<(Protocol, Counts)> {
        match self {
            L7::Active { protocol, parser, .. } => Some((*protocol, parser.counts())),
            L7::Closed { protocol, counts } => Some((*protocol, *counts)),
            L7::Probe { .. } | L7::Unknown => None,
        }
    }

    /// Heap bytes the connection's L7 state holds: the first bytes kept
    /// while probing, or what its parser holds.
    pub fn held_bytes(&self) -> usize {
        match self {
            L7::Probe { bufs, .. } => bufs[0].capacity() + bufs[1].capacity(),
            L7::Active { parser, before, .. } => {
                std::mem::size_of_val(&**parser)
                    + parser.held_bytes()
                    + before.as_ref().map_or(0, |(_, p)| std::mem::size_of_val(&**p) + p.held_bytes())
            }
            L7::Closed { .. } | L7::Unknown => 0,
        }
    }

    /// Frees the parser of a connection that ended with FIN both ways,
    /// once its rows were drained: no byte can follow both FINs, so the
    /// parser would read nothing more.
    pub fn retire(&mut self) {
        if let L7::Active { protocol, parser, before: None, .. } = self {
            *self = L7::Closed { protocol: *protocol, counts: parser.counts() };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t: i64) -> At {
        At { tag: t as u64, ts_ns: t }
    }

    /// A connection closed by FIN both ways gives up its parser once its
    /// rows are taken, and still reports what it spoke and counted.
    #[test]
    fn a_retired_connection_keeps_its_outcome_and_reads_nothing_more() {
        let ctx = L7Ctx { limits: Limits::default(), schemas: &None };
        let mut l7 = L7::new((40000, 80));
        let req = b"GET /api/items/7 HTTP/1.1\r\nHost: shop\r\n\r\n";
        let resp = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\n\r\n{}";
        l7.feed(&ctx, true, 0, StreamEvent::Data { at: at(1), bytes: req });
        l7.feed(&ctx, true, 1, StreamEvent::Data { at: at(2), bytes: resp });
        l7.close(at(3), CloseReason::Fin);
        let (_, outs) = l7.drain();
        let rows: usize = outs.iter().flatten().map(|(_, o)| o.exchanges.len()).sum();
        assert_eq!(rows, 1);
        let before = l7.outcome();
        assert_eq!(before.map(|(p, _)| p.layer()), Some("http"));
        l7.retire();
        assert!(matches!(l7, L7::Closed { .. }));
        assert_eq!(l7.outcome(), before);
        // Bytes after both FINs (none should come) are not parsed.
        l7.feed(&ctx, true, 0, StreamEvent::Data { at: at(4), bytes: req });
        let (_, outs) = l7.drain();
        assert!(outs.iter().all(Option::is_none));
    }
}

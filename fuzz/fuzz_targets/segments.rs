//! Shared by the connection fuzz targets: fuzzer bytes as the two sides
//! of a connection. Each control byte picks a side (bit 0), whether a
//! one-byte chunk is a gap of that many bytes instead (bit 1), and the
//! chunk length (bits 2..8, plus one).

use trawl_proto::{At, Side};

// Not every target reads every field (DNS and Redis drop a gap's length).
#[allow(dead_code)]
pub enum Event<'a> {
    Data(Side, At, &'a [u8]),
    Gap(Side, At, u64),
}

/// Calls `f` for each segment or gap; returns the last timestamp used.
pub fn drive(mut rest: &[u8], mut f: impl FnMut(Event<'_>)) -> i64 {
    let mut ts = 0;
    while !rest.is_empty() {
        let ctl = rest[0];
        let n = ((ctl >> 2) as usize + 1).min(rest.len() - 1);
        let side = if ctl & 1 == 0 { Side::Requester } else { Side::Responder };
        let chunk = &rest[1..1 + n];
        ts += 1;
        let at = At { tag: ts as u64, ts_ns: ts };
        if ctl & 2 == 2 && chunk.len() == 1 {
            f(Event::Gap(side, at, chunk[0] as u64));
        } else {
            f(Event::Data(side, at, chunk));
        }
        rest = &rest[1 + n..];
    }
    ts
}

//! Any bytes as the two sides of an HTTP/1 connection, cut into segments
//! at fuzzer-chosen points, with gaps: the parser must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_proto::http1::Http1Conn;
use trawl_proto::{At, Limits, Side};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let limits = Limits { max_body_bytes: 1024, max_head_bytes: 4096, max_headers: 16, max_pending: 8 };
    let mut c = Http1Conn::new(limits, data[0] & 1 == 1);
    let mut rest = &data[1..];
    let mut ts = 0;
    while !rest.is_empty() {
        let ctl = rest[0];
        let n = ((ctl >> 2) as usize + 1).min(rest.len() - 1);
        let side = if ctl & 1 == 0 { Side::Requester } else { Side::Responder };
        let chunk = &rest[1..1 + n];
        ts += 1;
        let at = At { tag: ts as u64, ts_ns: ts };
        if ctl & 2 == 2 && chunk.len() == 1 {
            c.on_gap(side, at, chunk[0] as u64);
        } else {
            c.on_data(side, at, chunk);
        }
        rest = &rest[1 + n..];
    }
    c.on_close(At { tag: 0, ts_ns: ts + 1 }, "capture_end");
    let _ = c.drain();
});

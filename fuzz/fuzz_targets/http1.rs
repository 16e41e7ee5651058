//! Any bytes as the two sides of an HTTP/1 connection, cut into segments
//! at fuzzer-chosen points, with gaps: the parser must never panic.
#![no_main]

#[path = "segments.rs"]
mod segments;

use libfuzzer_sys::fuzz_target;
use segments::Event;
use trawl_proto::exchange::CloseReason;
use trawl_proto::http1::Http1Conn;
use trawl_proto::parser::Parser;
use trawl_proto::{At, Limits};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let limits =
        Limits { max_body_bytes: 1024, max_head_bytes: 4096, max_headers: 16, max_pending: 8, ..Limits::default() };
    let mut c = Http1Conn::new(limits, data[0] & 1 == 1);
    let ts = segments::drive(&data[1..], |e| match e {
        Event::Data(side, at, chunk) => c.on_data(side, at, chunk),
        Event::Gap(side, at, len) => c.on_gap(side, at, len),
    });
    c.on_close(At { tag: 0, ts_ns: ts + 1 }, CloseReason::CaptureEnd);
    let _ = c.drain();
});

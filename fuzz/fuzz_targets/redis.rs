//! Any bytes as the two sides of a Redis connection, cut into segments
//! with gaps: RESP2/RESP3 reading, pairing and pub/sub handling must never
//! panic nor keep more than they should.
#![no_main]

#[path = "segments.rs"]
mod segments;

use libfuzzer_sys::fuzz_target;
use segments::Event;
use trawl_proto::exchange::CloseReason;
use trawl_proto::parser::Parser;
use trawl_proto::redis::RedisConn;
use trawl_proto::{At, Limits};

fuzz_target!(|data: &[u8]| {
    let mut c = RedisConn::new(Limits { max_pending: 8, ..Limits::default() });
    segments::drive(data, |e| match e {
        Event::Data(side, at, chunk) => c.on_data(side, at, chunk),
        Event::Gap(side, at, len) => c.on_gap(side, at, len),
    });
    c.on_close(At::default(), CloseReason::CaptureEnd);
    let _ = c.drain();
});

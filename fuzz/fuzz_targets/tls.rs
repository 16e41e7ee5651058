//! Any bytes as the two sides of a TLS connection, cut into segments with
//! gaps: record and handshake reassembly, hello, fingerprint and
//! certificate parsing must never panic.
#![no_main]

#[path = "segments.rs"]
mod segments;

use libfuzzer_sys::fuzz_target;
use segments::Event;
use trawl_proto::exchange::CloseReason;
use trawl_proto::parser::Parser;
use trawl_proto::tls::TlsConn;
use trawl_proto::{At, Limits};

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_head_bytes: 4096, ..Limits::default() };
    let mut c = TlsConn::new(limits);
    segments::drive(data, |e| match e {
        Event::Data(side, at, chunk) => c.on_data(side, at, chunk),
        Event::Gap(side, at, len) => c.on_gap(side, at, len),
    });
    c.on_close(At::default(), CloseReason::CaptureEnd);
    let _ = c.drain();
});

//! Any bytes as DNS: one UDP message, and the two sides of a DNS-over-TCP
//! connection cut into segments with gaps. Parsing, pairing and answer
//! rendering must never panic.
#![no_main]

#[path = "segments.rs"]
mod segments;

use libfuzzer_sys::fuzz_target;
use segments::Event;
use trawl_proto::dns::DnsConn;
use trawl_proto::exchange::CloseReason;
use trawl_proto::parser::Parser;
use trawl_proto::{At, Limits};

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_body_bytes: 1024, max_head_bytes: 4096, max_pending: 8, ..Limits::default() };
    let mut udp = DnsConn::new(limits);
    udp.message(At::default(), data);
    udp.on_close(At::default(), CloseReason::CaptureEnd);
    let _ = udp.drain();
    let mut tcp = DnsConn::new(limits);
    segments::drive(data, |e| match e {
        Event::Data(side, at, chunk) => tcp.on_data(side, at, chunk),
        Event::Gap(side, at, _) => tcp.on_gap(side, at, 0),
    });
    tcp.on_close(At::default(), CloseReason::CaptureEnd);
    let _ = tcp.drain();
});

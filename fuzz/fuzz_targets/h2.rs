//! Any bytes as the two sides of an HTTP/2 connection (entered by
//! preface, by Upgrade or mid-way), cut into segments at fuzzer-chosen
//! points, with gaps: the frame decoder, HPACK and the stream table must
//! never panic, and must stay within their caps.
#![no_main]

#[path = "segments.rs"]
mod segments;

use libfuzzer_sys::fuzz_target;
use segments::Event;
use trawl_proto::exchange::CloseReason;
use trawl_proto::h2::{H2Conn, PREFACE, Start};
use trawl_proto::parser::Parser;
use trawl_proto::{At, Limits, Side};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let limits = Limits {
        max_body_bytes: 1024,
        max_head_bytes: 4096,
        max_streams: 8,
        max_hpack_table: 4096,
        ..Limits::default()
    };
    let start = match data[0] % 3 {
        0 => Start::Preface,
        1 => Start::Upgrade { request: None, next_index: 1 },
        _ => Start::MidStream,
    };
    let preface = matches!(start, Start::Preface | Start::Upgrade { .. });
    let mut c = H2Conn::new(limits, start, None);
    if preface {
        c.on_data(Side::Requester, At::default(), PREFACE);
    }
    let ts = segments::drive(&data[1..], |e| {
        match e {
            Event::Data(side, at, chunk) => c.on_data(side, at, chunk),
            Event::Gap(side, _, len) => c.on_gap(side, At::default(), len),
        }
        for ex in c.drain().exchanges {
            for m in [&ex.request, &ex.response].into_iter().flatten() {
                assert!(m.body.len() <= 1024 * 8, "stored body over the cap");
            }
        }
    });
    c.on_close(At { tag: 0, ts_ns: ts + 1 }, CloseReason::CaptureEnd);
    let _ = c.drain();
});

//! Any bytes as the two directions of a WebSocket connection (with or
//! without permessage-deflate), cut into segments with gaps: framing,
//! unmasking and inflating must never panic or keep more than the cap.
#![no_main]

#[path = "segments.rs"]
mod segments;

use libfuzzer_sys::fuzz_target;
use segments::Event;
use trawl_proto::exchange::{CloseReason, Headers, Message, StartLine};
use trawl_proto::parser::Parser;
use trawl_proto::websocket::WsConn;
use trawl_proto::{At, Limits};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let mut headers = Headers::default();
    if data[0] & 1 == 1 {
        headers.push("sec-websocket-extensions", "permessage-deflate");
    }
    let response = Message {
        at: At::default(),
        end: At::default(),
        start: StartLine::Response { status: 101, reason: String::new() },
        version: Some(1),
        headers,
        head_size: 0,
        body: Vec::new(),
        body_size: 0,
        body_truncated: false,
        error: None,
    };
    let limits = Limits { max_body_bytes: 1024, ..Limits::default() };
    let mut c = WsConn::new(limits, None, &response, 0);
    segments::drive(&data[1..], |e| match e {
        Event::Data(side, at, chunk) => c.on_data(side, at, chunk),
        Event::Gap(side, at, len) => c.on_gap(side, at, len),
    });
    c.on_close(At::default(), CloseReason::CaptureEnd);
    for ex in c.drain().exchanges {
        for m in [&ex.request, &ex.response].into_iter().flatten() {
            assert!(m.body.len() <= 1024, "stored payload over the cap");
        }
    }
});

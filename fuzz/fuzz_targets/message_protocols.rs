//! Any bytes as the two sides of a connection of any protocol the
//! registry knows (the first byte picks which, and whether the
//! connection was joined mid-way), cut into segments with gaps: framing,
//! pairing and the capped reading of messages must never panic nor keep
//! more than they should. A protocol added to the registry is fuzzed
//! here without another line; detection sees the same bytes.
#![no_main]

#[path = "segments.rs"]
mod segments;

use libfuzzer_sys::fuzz_target;
use segments::Event;
use trawl_proto::exchange::CloseReason;
use trawl_proto::registry::{self, Detection, Protocol, Requester};
use trawl_proto::{At, Limits};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, data)) = data.split_first() else { return };
    let limits = Limits { max_pending: 8, max_streams: 16, ..Limits::default() };
    let protocol = Protocol::ALL[pick as usize % Protocol::ALL.len()];
    let d = Detection { protocol, requester: Requester::Sender, mid_stream: pick & 0x80 != 0 };
    if let Some(mut c) = protocol.parser(&d, limits, &None) {
        segments::drive(data, |e| match e {
            Event::Data(side, at, chunk) => c.on_data(side, at, chunk),
            Event::Gap(side, at, len) => c.on_gap(side, at, len),
        });
        c.on_close(At::default(), CloseReason::CaptureEnd);
        let _ = c.drain();
    }
    let _ = registry::detect(data, pick & 0x80 != 0, (u16::from(pick), 6379));
    let _ = registry::is_dns(data, 53, u16::from(pick));
});

//! Any bytes as gRPC DATA (length-prefixed messages, cut at fuzzer-chosen
//! points) and as a protobuf message decoded without its schema: never a
//! panic, never unbounded recursion.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_proto::grpc::{Framer, messages_json, raw_message};

fuzz_target!(|data: &[u8]| {
    let _ = raw_message(data, 0);
    let mut f = Framer::default();
    for chunk in data.chunks(7) {
        f.data(chunk, 512);
        if chunk.first() == Some(&0xff) {
            f.gap();
            f.frame_start();
        }
    }
    let _ = messages_json(&trawl_proto::detail::GrpcCall::default(), &f.kept, Some("gzip"), None, true, 512);
});

//! Any bytes as a DNS response: the answers (CNAME chains followed) or
//! nothing, never a panic or a loop.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = trawl_proto::dns_answers::answers(data);
});

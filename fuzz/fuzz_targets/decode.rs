//! Any bytes as a frame of each link type trawl decodes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for link in [0u32, 1, 101, 108, 113, 228, 229, 239, 276] {
        let _ = trawl_analyze::decode::decode(link, data);
    }
});

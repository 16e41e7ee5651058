//! Any bytes as a capture file: the whole analyzer (reader, decoder, flows,
//! reassembly, HTTP) must return an outcome or a typed error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir();
    let path = dir.join(format!("trawl-fuzz-{}.pcap", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let opts =
        trawl_analyze::Options { inputs: vec![path.clone()], threads: 2, chunk_size: 4096, ..Default::default() };
    let _ = trawl_analyze::analyze_to_memory(&opts);
    let _ = std::fs::remove_file(&path);
});

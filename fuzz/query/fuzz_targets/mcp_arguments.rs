//! Any bytes as the JSON arguments of every MCP tool: decoding (the
//! budget parameter, the tool's parameter struct, its aliases and the
//! "did you mean" for unknown ones) returns the arguments or an error,
//! never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(args) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    for name in trawl_mcp::tool_names() {
        let _ = trawl_mcp::decode_arguments(name, args.clone());
    }
});

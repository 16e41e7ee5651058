//! Any bytes as a sequence of HPACK header blocks (each prefixed by its
//! length byte) on a clean or a joined-mid-way connection: decoding must
//! never panic and the table must respect its cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_proto::hpack::Decoder;

fuzz_target!(|data: &[u8]| {
    let Some((&first, mut rest)) = data.split_first() else { return };
    let mut d = Decoder::new(4096, first & 1 == 1);
    while let Some((&len, tail)) = rest.split_first() {
        let n = (len as usize).min(tail.len());
        let block = d.decode(&tail[..n]);
        assert!(block.fields.len() <= n, "more fields than bytes");
        rest = &tail[n..];
    }
});

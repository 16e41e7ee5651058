//! Any sequence of TCP headers through one connection's expert analysis:
//! 16 bytes a packet (direction, time step, seq, ack, length, flags,
//! window, window scale).
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_analyze::tcp_analysis::{Segment, TcpAnalysis};

fuzz_target!(|data: &[u8]| {
    let mut a = TcpAnalysis::default();
    let mut ts = 0i64;
    for p in data.chunks_exact(16) {
        let u32_at = |i: usize| u32::from_be_bytes([p[i], p[i + 1], p[i + 2], p[i + 3]]);
        ts = ts.saturating_add(i64::from(p[1]) * 1_000_000 - 64_000_000);
        let s = Segment {
            ts,
            seq: u32_at(2),
            ack: u32_at(6),
            len: u32::from(u16::from_be_bytes([p[10], p[11]])),
            flags: p[12],
            window: u16::from_be_bytes([p[13], p[14]]),
            wscale: p[15],
        };
        let rtt = (p[0] & 2 != 0).then_some(ts.abs() % 1_000_000_000);
        a.packet(usize::from(p[0] & 1), &s, rtt, p[0] & 4 == 0);
    }
    let m = &a.metrics;
    assert!(m.fast_retransmissions + m.spurious_retransmissions <= m.retransmissions());
    assert!(a.remembered() <= 2 * trawl_analyze::tcp_analysis::MAX_UNACKED);
});

//! Sends UDP datagrams at a fixed packet rate, for the capture benchmark
//! (benches/capture_rate.sh): `udp_rate DEST:PORT RATE_PPS SECONDS
//! [PAYLOAD_BYTES]`. It paces against the clock (sending whatever is due
//! each turn, so a late turn catches up) in batches of up to 64 with
//! sendmmsg(2), one system call per batch, and prints the datagrams sent
//! and the rate reached on stdout as `sent N rate R`.
#![allow(unsafe_code)]

use std::net::UdpSocket;
use std::os::fd::AsRawFd;

const BATCH: usize = 64;

/// Sends `n` (at most BATCH) copies of `payload` on a connected socket;
/// returns how many went.
fn send_batch(sock: &UdpSocket, payload: &[u8], n: usize) -> usize {
    let mut iov = [libc::iovec { iov_base: payload.as_ptr() as *mut libc::c_void, iov_len: payload.len() }; BATCH];
    // SAFETY: mmsghdr is plain data; zeroed is valid (no name, no control).
    let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    for (m, v) in msgs.iter_mut().zip(iov.iter_mut()) {
        m.msg_hdr.msg_iov = v;
        m.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: `msgs` holds `n` <= BATCH headers pointing at live iovecs
    // and at `payload`, which outlive the call.
    let sent = unsafe { libc::sendmmsg(sock.as_raw_fd(), msgs.as_mut_ptr(), n.min(BATCH) as libc::c_uint, 0) };
    sent.max(0) as usize
}
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = || -> ! {
        eprintln!("usage: udp_rate DEST:PORT RATE_PPS SECONDS [PAYLOAD_BYTES]");
        std::process::exit(2)
    };
    if args.len() < 4 {
        usage();
    }
    let dest = &args[1];
    let Ok(rate) = args[2].parse::<f64>() else { usage() };
    let Ok(secs) = args[3].parse::<f64>() else { usage() };
    let size: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(18);
    let sock = match UdpSocket::bind("0.0.0.0:0").and_then(|s| s.connect(dest).map(|()| s)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("udp_rate: {dest}: {e}");
            std::process::exit(1)
        }
    };
    let payload = vec![0x5au8; size];
    let start = Instant::now();
    let end = Duration::from_secs_f64(secs);
    let mut sent: u64 = 0;
    loop {
        let t = start.elapsed();
        if t >= end {
            break;
        }
        let due = (t.as_secs_f64() * rate) as u64;
        if sent >= due {
            std::hint::spin_loop();
            continue;
        }
        // Catch up, in bounded bursts so pacing stays even.
        sent += send_batch(&sock, &payload, (due - sent).min(BATCH as u64) as usize) as u64;
    }
    let took = start.elapsed().as_secs_f64();
    println!("sent {sent} rate {:.0}", sent as f64 / took);
}

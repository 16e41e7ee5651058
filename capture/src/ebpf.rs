//! The eBPF backend: a TC classifier (bpf/tc_capture.c, compiled by
//! build.rs) attached with aya on clsact ingress and egress of each
//! interface copies packets into a BPF ring buffer, read here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::pcapng::Direction;
use crate::{Config, Error, Interface, Sink};

/// The record the BPF program writes: its header, then the packet bytes.
#[cfg_attr(not(trawl_ebpf), allow(dead_code))]
const RECORD_HEADER: usize = 24;

/// Nanoseconds to add to CLOCK_MONOTONIC (bpf_ktime_get_ns) for real time.
#[cfg_attr(not(trawl_ebpf), allow(dead_code))]
fn monotonic_to_realtime() -> u64 {
    use nix::time::{ClockId, clock_gettime};
    let read =
        |clock| clock_gettime(clock).map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64).unwrap_or(0);
    read(ClockId::CLOCK_REALTIME).saturating_sub(read(ClockId::CLOCK_MONOTONIC))
}

/// One ring buffer record: (ifindex, monotonic ns, wire length,
/// direction, bytes), or None when it is too short to be one.
#[cfg_attr(not(trawl_ebpf), allow(dead_code))]
fn record(r: &[u8]) -> Option<(u32, u64, u32, Direction, &[u8])> {
    let h = r.get(..RECORD_HEADER)?;
    let u32_at = |i: usize| u32::from_ne_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let ts = u64::from_ne_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]);
    let (len, caplen, ifindex, egress) = (u32_at(8), u32_at(12) as usize, u32_at(16), u32_at(20));
    let data = &r[RECORD_HEADER..(RECORD_HEADER + caplen).min(r.len())];
    Some((ifindex, ts, len, if egress != 0 { Direction::Outbound } else { Direction::Inbound }, data))
}

#[cfg(trawl_ebpf)]
mod loaded {
    use super::*;
    use std::os::fd::{AsFd, OwnedFd};
    use std::sync::atomic::Ordering;
    use std::time::Instant;

    use aya::maps::{PerCpuHashMap, RingBuf};
    use aya::programs::{SchedClassifier, TcAttachType, tc};
    use aya::{Ebpf, EbpfLoader, include_bytes_aligned};

    static PROGRAM: &[u8] = include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tc_capture.o"));

    /// The program, loaded and attached (detached when dropped).
    pub struct Attached {
        bpf: Ebpf,
    }

    fn e(what: &str) -> impl FnOnce(String) -> Error + '_ {
        move |m| Error::Ebpf(format!("{what}: {m}"))
    }

    /// An error with its causes ("failed to create map: Operation not
    /// permitted").
    fn chain(x: &dyn std::error::Error) -> String {
        let mut s = x.to_string();
        let mut cause = x.source();
        while let Some(c) = cause {
            let c_text = c.to_string();
            match c_text.strip_prefix(s.rsplit(": ").next().unwrap_or_default()) {
                // "map error: failed to create map" then "failed to create
                // map: Operation not permitted": say the new part once.
                Some(rest) if !rest.is_empty() => s.push_str(rest),
                _ if s.contains(&c_text) => {}
                _ => s = format!("{s}: {c_text}"),
            }
            cause = c.source();
        }
        s
    }

    /// Loads the program and attaches it to every interface.
    pub fn attach(cfg: &Config) -> Result<Attached, Error> {
        let snaplen = cfg.snaplen;
        let mut bpf = EbpfLoader::new()
            .override_global("snaplen", &snaplen, true)
            .load(PROGRAM)
            .map_err(|x| e("loading the capture program")(chain(&x)))?;
        for (prog, kind) in [("trawl_ingress", TcAttachType::Ingress), ("trawl_egress", TcAttachType::Egress)] {
            let p: &mut SchedClassifier = bpf
                .program_mut(prog)
                .ok_or_else(|| Error::Ebpf(format!("no program {prog}")))?
                .try_into()
                .map_err(|x: aya::programs::ProgramError| e(prog)(x.to_string()))?;
            p.load().map_err(|x| e(prog)(chain(&x)))?;
            for iface in &cfg.interfaces {
                // A packet sent on loopback leaves and arrives on the same
                // interface: take it once, arriving (as tcpdump does).
                if kind == TcAttachType::Egress && crate::is_loopback(iface) {
                    continue;
                }
                // Older kernels attach through the clsact qdisc; TCX needs none.
                let _ = tc::qdisc_add_clsact(iface);
                p.attach(iface, kind)
                    .map_err(|x| Error::Ebpf(format!("--iface {iface}: attaching {prog}: {}", chain(&x))))?;
            }
        }
        Ok(Attached { bpf })
    }

    impl Attached {
        pub fn run(
            mut self,
            names: &BTreeMap<u32, Interface>,
            sink: &mut Sink,
            stop: Arc<AtomicBool>,
            deadline: Option<Duration>,
        ) -> Result<(), Error> {
            let offset = monotonic_to_realtime();
            let start = Instant::now();
            let mut counted = Instant::now();
            let mut ring =
                RingBuf::try_from(self.bpf.take_map("records").ok_or_else(|| Error::Ebpf("no ring buffer".into()))?)
                    .map_err(|x| e("ring buffer")(x.to_string()))?;
            let drops: PerCpuHashMap<_, u32, u64> = PerCpuHashMap::try_from(
                self.bpf.take_map("drops").ok_or_else(|| Error::Ebpf("no drop counters".into()))?,
            )
            .map_err(|x| e("drop counters")(x.to_string()))?;
            // Per interface: records read since the counts were last
            // handed on, and the kernel's cumulative drops as last read.
            // The packets seen are those read plus those dropped.
            let mut counts: Vec<(u32, u64, u64)> = names.keys().map(|&i| (i, 0, 0)).collect();
            let read_counts = |sink: &mut Sink, counts: &mut Vec<(u32, u64, u64)>| {
                for (ifindex, read, dropped_before) in counts.iter_mut() {
                    let now: u64 = drops.get(ifindex, 0).map(|v| v.iter().sum()).unwrap_or_default();
                    let dropped = now.saturating_sub(*dropped_before);
                    *dropped_before = now;
                    sink.files.count(*ifindex, std::mem::take(read) + dropped, dropped);
                }
            };
            let take = |sink: &mut Sink, counts: &mut Vec<(u32, u64, u64)>, item: &[u8]| -> Result<(), Error> {
                let Some((ifindex, ts, len, dir, data)) = record(item) else { return Ok(()) };
                if let Some(c) = counts.iter_mut().find(|c| c.0 == ifindex) {
                    c.1 += 1;
                }
                sink.packet(ifindex, ts + offset, len, dir, data)
            };
            let fd: OwnedFd =
                ring.as_fd().try_clone_to_owned().map_err(|x| Error::Ebpf(format!("ring buffer: {x}")))?;
            loop {
                while let Some(item) = ring.next() {
                    take(sink, &mut counts, &item)?;
                }
                if counted.elapsed() >= Duration::from_millis(100) {
                    read_counts(sink, &mut counts);
                    sink.files.tick()?;
                    counted = Instant::now();
                }
                if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| start.elapsed() >= d) {
                    break;
                }
                // The program wakes this only for a batch (bpf/tc_capture.c):
                // a short timeout takes what trickles in.
                let mut pfd = [nix::poll::PollFd::new(fd.as_fd(), nix::poll::PollFlags::POLLIN)];
                let _ = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(10u16));
            }
            // Detach (the programs go with `self.bpf`), then drain what is
            // left and take the final counts.
            drop(self.bpf);
            while let Some(item) = ring.next() {
                take(sink, &mut counts, &item)?;
            }
            read_counts(sink, &mut counts);
            Ok(())
        }
    }
}

#[cfg(trawl_ebpf)]
pub use loaded::{Attached, attach};

#[cfg(not(trawl_ebpf))]
pub struct Attached;

#[cfg(not(trawl_ebpf))]
pub fn attach(_: &Config) -> Result<Attached, Error> {
    Err(Error::Ebpf("this build has no eBPF capture program: clang was missing when trawl was built (apt-get install clang libbpf-dev, then rebuild)".into()))
}

#[cfg(not(trawl_ebpf))]
impl Attached {
    pub fn run(
        self,
        _: &BTreeMap<u32, Interface>,
        _: &mut Sink,
        _: Arc<AtomicBool>,
        _: Option<Duration>,
    ) -> Result<(), Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse_and_short_ones_are_refused() {
        let mut r = Vec::new();
        r.extend_from_slice(&5u64.to_ne_bytes());
        for v in [1514u32, 4, 3, 1] {
            r.extend_from_slice(&v.to_ne_bytes());
        }
        r.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(record(&r), Some((3, 5, 1514, Direction::Outbound, &[1u8, 2, 3, 4][..])));
        assert_eq!(record(&r[..20]), None);
        // A caplen beyond the record is cut to what is there.
        r.truncate(26);
        assert_eq!(record(&r).map(|x| x.4.len()), Some(2));
    }
}

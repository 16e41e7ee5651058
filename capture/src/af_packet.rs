//! The AF_PACKET backend, for where eBPF is not allowed: one packet
//! socket per interface with a TPACKET_V3 receive ring (blocks of packets
//! shared with the kernel through mmap, as libpcap does), the `--bpf`
//! filter attached in the kernel as classic BPF, and the socket's
//! PACKET_STATISTICS for packets seen and dropped.
//!
//! This module and `bpf_filter` are the crate's only `unsafe` code: the
//! system calls (socket, setsockopt, getsockopt, mmap, bind), and reading
//! the ring. A block is read only while the kernel has handed it to user
//! space (`TP_STATUS_USER`, read with acquire ordering), and handed back
//! with release ordering once read.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::time::{Duration, Instant};

use crate::bpf_filter::{BpfFilter, Instruction};
use crate::pcapng::Direction;
use crate::{Error, Interface, Sink};

const BLOCK_SIZE: usize = 1 << 20;
const BLOCKS: usize = 64;
const FRAME_SIZE: usize = 2048;
/// A block is handed to user space after this long even if not full.
const BLOCK_TIMEOUT_MS: u32 = 50;
pub(crate) const ARPHRD_LOOPBACK: u16 = 772;
const PACKET_OUTGOING: u8 = 4;
/// Offsets in `struct tpacket_block_desc` (its `bh1` header at 8).
const BLOCK_STATUS: usize = 8;
const NUM_PKTS: usize = 12;
const FIRST_PKT: usize = 16;
/// `struct tpacket3_hdr` is 48 bytes; its `sockaddr_ll` follows, aligned
/// to 16.
const SLL: usize = 48;

/// One interface's socket and ring.
struct Ring {
    fd: OwnedFd,
    map: *mut u8,
    ifindex: u32,
    next: usize,
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: `map` is the mapping made in `open`, unmapped once.
        unsafe {
            libc::munmap(self.map.cast(), BLOCK_SIZE * BLOCKS);
        }
    }
}

fn os(what: &str, iface: &str) -> Error {
    Error::Backend(format!("--iface {iface}: AF_PACKET {what}: {}", std::io::Error::last_os_error()))
}

/// The hardware type of an interface (ARPHRD_*: 1 Ethernet, 772
/// loopback, 65534 none as for tun...), from SIOCGIFHWADDR, which
/// reports it for every device (in the caller's network namespace),
/// with or without a hardware address.
pub fn hardware_type(iface: &str) -> Option<u16> {
    /// `struct ifreq` as SIOCGIFHWADDR fills it: the name, then a
    /// sockaddr whose family is the hardware type; 40 bytes in all.
    #[repr(C)]
    struct IfReqHwAddr {
        name: [u8; 16],
        family: u16,
        rest: [u8; 22],
    }
    let name = iface.as_bytes();
    if name.len() >= 16 {
        return None;
    }
    let mut req = IfReqHwAddr { name: [0; 16], family: 0, rest: [0; 22] };
    req.name[..name.len()].copy_from_slice(name);
    // SAFETY: plain system call; the descriptor is owned at once.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return None;
    }
    // SAFETY: `raw` is a new descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: SIOCGIFHWADDR reads and writes one struct ifreq, which
    // `req` is (same size and layout).
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req as *mut IfReqHwAddr) };
    (rc == 0).then_some(req.family)
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> bool {
    // SAFETY: `value` is a live T and its size is passed with it.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        ) == 0
    }
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(i..i + 2)?.try_into().ok()?))
}

impl Ring {
    fn open(iface: &str, ifindex: u32, filter: Option<&[Instruction]>) -> Result<Ring, Error> {
        // Protocol 0 until bound, so no packet of another interface lands
        // in the ring first.
        // SAFETY: plain system call; the descriptor is owned at once.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(os("socket", iface));
        }
        // SAFETY: `raw` is a new descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        if let Some(insns) = filter {
            let mut prog: Vec<libc::sock_filter> =
                insns.iter().map(|i| libc::sock_filter { code: i.code, jt: i.jt, jf: i.jf, k: i.k }).collect();
            let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_mut_ptr() };
            if !setsockopt(&fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog) {
                return Err(os("attaching the --bpf filter", iface));
            }
        }
        let version = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        if !setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_VERSION, &version) {
            return Err(os("TPACKET_V3", iface));
        }
        let req = libc::tpacket_req3 {
            tp_block_size: BLOCK_SIZE as u32,
            tp_block_nr: BLOCKS as u32,
            tp_frame_size: FRAME_SIZE as u32,
            tp_frame_nr: (BLOCK_SIZE * BLOCKS / FRAME_SIZE) as u32,
            tp_retire_blk_tov: BLOCK_TIMEOUT_MS,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        if !setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_RX_RING, &req) {
            return Err(os("receive ring", iface));
        }
        // SAFETY: maps the ring just configured on this socket.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                BLOCK_SIZE * BLOCKS,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(os("mmap of the ring", iface));
        }
        let ring = Ring { fd, map: map.cast(), ifindex, next: 0 };
        // SAFETY: sockaddr_ll is plain data; zeroed is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        addr.sll_ifindex = ifindex as i32;
        // SAFETY: `addr` is a sockaddr_ll of the size passed.
        let rc = unsafe {
            libc::bind(
                ring.fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(os("bind", iface));
        }
        Ok(ring)
    }

    fn status(&self, block: usize) -> *mut u32 {
        // SAFETY: within the mapping (block < BLOCKS), 4-aligned.
        unsafe { self.map.add(block * BLOCK_SIZE + BLOCK_STATUS).cast() }
    }

    /// Reads every block the kernel has handed over, in ring order.
    fn drain(&mut self, sink: &mut Sink, snaplen: usize) -> Result<(), Error> {
        loop {
            let status = self.status(self.next);
            // SAFETY: the status word lives in the mapping; the kernel
            // writes it, so it is read volatile, then fenced.
            let ready = unsafe { std::ptr::read_volatile(status) } & libc::TP_STATUS_USER != 0;
            if !ready {
                return Ok(());
            }
            fence(Ordering::Acquire);
            // SAFETY: the block belongs to user space until handed back
            // below; the kernel does not write it meanwhile.
            let block = unsafe { std::slice::from_raw_parts(self.map.add(self.next * BLOCK_SIZE), BLOCK_SIZE) };
            let result = self.packets(block, sink, snaplen);
            fence(Ordering::Release);
            // SAFETY: as above; this hands the block back to the kernel.
            unsafe { std::ptr::write_volatile(status, libc::TP_STATUS_KERNEL) };
            self.next = (self.next + 1) % BLOCKS;
            result?;
        }
    }

    fn packets(&self, block: &[u8], sink: &mut Sink, snaplen: usize) -> Result<(), Error> {
        let n = u32_at(block, NUM_PKTS).unwrap_or(0);
        let mut at = u32_at(block, FIRST_PKT).unwrap_or(0) as usize;
        for _ in 0..n {
            let Some(h) = block.get(at..at + SLL + 12) else { break };
            let field = |i| u32_at(h, i).unwrap_or(0);
            let (next, sec, nsec, caplen, len) = (field(0), field(4), field(8), field(12) as usize, field(16));
            let mac = u16_at(h, 24).unwrap_or(0) as usize;
            let hatype = u16_at(h, SLL + 8).unwrap_or(0);
            let pkttype = h[SLL + 10];
            let data = block.get(at + mac..at + mac + caplen).unwrap_or(&[]);
            // On loopback every packet is seen leaving and arriving; keep
            // the arrival, as libpcap does.
            if !(hatype == ARPHRD_LOOPBACK && pkttype == PACKET_OUTGOING) {
                let dir = if pkttype == PACKET_OUTGOING { Direction::Outbound } else { Direction::Inbound };
                let ts = u64::from(sec) * 1_000_000_000 + u64::from(nsec);
                sink.packet(self.ifindex, ts, len, dir, &data[..data.len().min(snaplen)])?;
            }
            if next == 0 {
                break;
            }
            at += next as usize;
        }
        Ok(())
    }

    /// Packets seen and dropped since the last call (the kernel resets
    /// the counters as they are read).
    fn counts(&self) -> (u64, u64) {
        // SAFETY: plain data; zeroed is valid.
        let mut st: libc::tpacket_stats_v3 = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: `st` and `len` describe a writable buffer of that size.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut libc::tpacket_stats_v3).cast(),
                &mut len,
            )
        };
        if rc != 0 { (0, 0) } else { (u64::from(st.tp_packets), u64::from(st.tp_drops)) }
    }
}

/// Opens a ring per interface (with the filter, if any).
pub struct Rings(Vec<Ring>);

pub fn open(names: &BTreeMap<u32, Interface>, mut filter: Option<&mut BpfFilter>) -> Result<Rings, Error> {
    let mut rings = Vec::new();
    for (&ifindex, iface) in names {
        // The filter compiled for the interface's link type.
        let insns = filter.as_mut().map(|f| f.instructions(iface.link)).transpose()?;
        rings.push(Ring::open(&iface.name, ifindex, insns.as_deref())?);
    }
    Ok(Rings(rings))
}

impl Rings {
    pub fn run(
        mut self,
        snaplen: u32,
        sink: &mut Sink,
        stop: Arc<AtomicBool>,
        deadline: Option<Duration>,
    ) -> Result<(), Error> {
        let start = Instant::now();
        let mut counted = Instant::now();
        let snaplen = snaplen as usize;
        loop {
            for r in &mut self.0 {
                r.drain(sink, snaplen)?;
            }
            if counted.elapsed() >= Duration::from_millis(100) {
                for r in &self.0 {
                    let (seen, dropped) = r.counts();
                    sink.files.count(r.ifindex, seen, dropped);
                }
                sink.files.tick()?;
                counted = Instant::now();
            }
            if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| start.elapsed() >= d) {
                break;
            }
            let mut fds: Vec<nix::poll::PollFd> =
                self.0.iter().map(|r| nix::poll::PollFd::new(r.fd.as_fd(), nix::poll::PollFlags::POLLIN)).collect();
            let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16));
        }
        // What the kernel still holds: a partly filled block is retired
        // after BLOCK_TIMEOUT_MS, so wait that long once and drain.
        std::thread::sleep(Duration::from_millis(u64::from(BLOCK_TIMEOUT_MS) * 2));
        for r in &mut self.0 {
            r.drain(sink, snaplen)?;
            let (seen, dropped) = r.counts();
            sink.files.count(r.ifindex, seen, dropped);
        }
        Ok(())
    }
}

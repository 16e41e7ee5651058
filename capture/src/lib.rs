//! Packet capture for trawl: an eBPF TC classifier (bpf/tc_capture.c,
//! loaded and attached with aya on ingress and egress of each interface)
//! copies packets into a BPF ring buffer; user space writes them as
//! pcapng into an archive folder, one file per node, under a temporary
//! name until the file is complete.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("eBPF: {0}")]
    Ebpf(String),
    #[error("{0}")]
    Config(String),
}

/// Capture settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub interfaces: Vec<String>,
    /// The archive folder; files go to `ARCHIVE/NODE/`.
    pub archive: PathBuf,
    pub node: String,
    pub snaplen: u32,
    /// Stop after this long (None: until stopped).
    pub duration: Option<Duration>,
    /// Start a new file once the current one holds this many bytes...
    pub rotate_size: Option<u64>,
    /// ...or has been open this long.
    pub rotate_time: Option<Duration>,
    /// Delete the oldest complete files while the node's files exceed
    /// this many bytes (the newest is always kept).
    pub keep: Option<u64>,
}

/// What a capture did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub backend: &'static str,
    pub files: Vec<PathBuf>,
    pub packets: u64,
    pub bytes: u64,
    /// Packets the kernel side saw, and those it dropped (ring buffer full).
    pub seen: u64,
    pub dropped: u64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

/// A pcapng file being written: section header, one interface block per
/// interface as it first appears (nanosecond timestamps), enhanced packet
/// blocks.
struct PcapNg {
    out: BufWriter<File>,
    path: PathBuf,
    interfaces: BTreeMap<u32, u32>,
    /// Bytes written so far.
    written: u64,
    /// Interface names by index, for the interface blocks.
    names: BTreeMap<u32, String>,
    snaplen: u32,
}

fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let pad = (4 - body.len() % 4) % 4;
    let total = (12 + body.len() + pad) as u32;
    let mut b = Vec::with_capacity(total as usize);
    b.extend_from_slice(&kind.to_le_bytes());
    b.extend_from_slice(&total.to_le_bytes());
    b.extend_from_slice(body);
    b.extend(std::iter::repeat_n(0u8, pad));
    b.extend_from_slice(&total.to_le_bytes());
    b
}

impl PcapNg {
    fn create(path: &Path, snaplen: u32, names: BTreeMap<u32, String>) -> Result<PcapNg, Error> {
        let mut out = BufWriter::new(File::create(path).map_err(io(path))?);
        // Section header: byte-order magic, version 1.0, unknown length.
        let mut shb = Vec::new();
        shb.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        let header = block(0x0A0D_0D0A, &shb);
        out.write_all(&header).map_err(io(path))?;
        Ok(PcapNg { out, path: path.to_path_buf(), interfaces: BTreeMap::new(), written: header.len() as u64, names, snaplen })
    }

    fn interface(&mut self, ifindex: u32) -> Result<u32, Error> {
        if let Some(&id) = self.interfaces.get(&ifindex) {
            return Ok(id);
        }
        let id = self.interfaces.len() as u32;
        let mut idb = Vec::new();
        idb.extend_from_slice(&1u16.to_le_bytes()); // LINKTYPE_ETHERNET
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&self.snaplen.to_le_bytes());
        // if_name, if_tsresol (10^-9), end of options.
        let name = self.names.get(&ifindex).cloned().unwrap_or_else(|| format!("if{ifindex}"));
        let mut opt = |code: u16, v: &[u8]| {
            idb.extend_from_slice(&code.to_le_bytes());
            idb.extend_from_slice(&(v.len() as u16).to_le_bytes());
            idb.extend_from_slice(v);
            idb.extend(std::iter::repeat_n(0u8, (4 - v.len() % 4) % 4));
        };
        opt(2, name.as_bytes());
        opt(9, &[9]);
        opt(0, &[]);
        let b = block(1, &idb);
        self.written += b.len() as u64;
        self.out.write_all(&b).map_err(io(&self.path))?;
        self.interfaces.insert(ifindex, id);
        Ok(id)
    }

    fn packet(&mut self, ifindex: u32, ts_ns: u64, len: u32, data: &[u8]) -> Result<(), Error> {
        let id = self.interface(ifindex)?;
        let mut epb = Vec::with_capacity(20 + data.len());
        epb.extend_from_slice(&id.to_le_bytes());
        epb.extend_from_slice(&((ts_ns >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts_ns as u32).to_le_bytes());
        epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
        epb.extend_from_slice(&len.to_le_bytes());
        epb.extend_from_slice(data);
        let b = block(6, &epb);
        self.written += b.len() as u64;
        self.out.write_all(&b).map_err(io(&self.path))
    }

    fn finish(mut self) -> Result<PathBuf, Error> {
        self.out.flush().map_err(io(&self.path))?;
        self.out.get_ref().sync_all().map_err(io(&self.path))?;
        Ok(self.path)
    }
}

/// Nanoseconds to add to CLOCK_MONOTONIC (bpf_ktime_get_ns) for real time.
fn monotonic_to_realtime() -> u64 {
    use nix::time::{ClockId, clock_gettime};
    let read = |clock| clock_gettime(clock).map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64).unwrap_or(0);
    read(ClockId::CLOCK_REALTIME).saturating_sub(read(ClockId::CLOCK_MONOTONIC))
}

/// The node's files, rotated and pruned: the open one is written under
/// a temporary dot-name and renamed when complete.
struct Rotating<'a> {
    cfg: &'a Config,
    dir: &'a Path,
    names: BTreeMap<u32, String>,
    current: Option<(PcapNg, String, Instant)>,
    files: Vec<PathBuf>,
}

impl Rotating<'_> {
    fn open(&mut self, ts_ns: u64) -> Result<(), Error> {
        let name = format!("{}-{ts_ns}.pcapng", self.cfg.node);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        self.current = Some((PcapNg::create(&tmp, self.cfg.snaplen.clamp(1, 65535), self.names.clone())?, name, Instant::now()));
        Ok(())
    }

    fn packet(&mut self, ifindex: u32, ts_ns: u64, len: u32, data: &[u8]) -> Result<(), Error> {
        let due = self.current.as_ref().is_some_and(|(f, _, opened)| {
            self.cfg.rotate_size.is_some_and(|max| f.written >= max) || self.cfg.rotate_time.is_some_and(|t| opened.elapsed() >= t)
        });
        if due {
            self.close()?;
        }
        if self.current.is_none() {
            self.open(ts_ns)?;
        }
        match self.current.as_mut() {
            Some((f, _, _)) => f.packet(ifindex, ts_ns, len, data),
            None => Ok(()),
        }
    }

    /// Completes the open file (flushed, synced, renamed), then applies
    /// retention.
    fn close(&mut self) -> Result<(), Error> {
        let Some((f, name, _)) = self.current.take() else { return Ok(()) };
        let done = f.finish()?;
        let path = self.dir.join(name);
        std::fs::rename(&done, &path).map_err(io(&path))?;
        self.files.push(path);
        if let Some(keep) = self.cfg.keep {
            let size = |p: &PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
            let mut total: u64 = self.files.iter().map(size).sum();
            while total > keep && self.files.len() > 1 {
                let oldest = self.files.remove(0);
                total -= size(&oldest);
                std::fs::remove_file(&oldest).map_err(io(&oldest))?;
            }
        }
        Ok(())
    }
}

/// The record the BPF program writes: its header, then the packet bytes.
const RECORD_HEADER: usize = 24;

/// Captures until `stop` is set or the duration passes.
pub fn run(cfg: &Config, stop: Arc<AtomicBool>) -> Result<Report, Error> {
    if cfg.interfaces.is_empty() {
        return Err(Error::Config("--iface: name at least one interface".into()));
    }
    let dir = cfg.archive.join(&cfg.node);
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    ebpf::run(cfg, &dir, stop)
}

#[cfg(trawl_ebpf)]
mod ebpf {
    use super::*;
    use aya::maps::{PerCpuArray, RingBuf};
    use aya::programs::{SchedClassifier, TcAttachType, tc};
    use aya::{EbpfLoader, include_bytes_aligned};

    static PROGRAM: &[u8] = include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tc_capture.o"));

    fn e(what: &str) -> impl FnOnce(String) -> Error + '_ {
        move |m| Error::Ebpf(format!("{what}: {m}"))
    }

    pub fn run(cfg: &Config, dir: &Path, stop: Arc<AtomicBool>) -> Result<Report, Error> {
        let snaplen = cfg.snaplen.clamp(1, 65535);
        let mut bpf =
            EbpfLoader::new().override_global("snaplen", &snaplen, true).load(PROGRAM).map_err(|x| e("loading the capture program")(x.to_string()))?;
        for (prog, kind) in [("trawl_ingress", TcAttachType::Ingress), ("trawl_egress", TcAttachType::Egress)] {
            let p: &mut SchedClassifier = bpf
                .program_mut(prog)
                .ok_or_else(|| Error::Ebpf(format!("no program {prog}")))?
                .try_into()
                .map_err(|x: aya::programs::ProgramError| e(prog)(x.to_string()))?;
            p.load().map_err(|x| e(prog)(x.to_string()))?;
            for iface in &cfg.interfaces {
                // Older kernels attach through the clsact qdisc; TCX needs none.
                let _ = tc::qdisc_add_clsact(iface);
                p.attach(iface, kind).map_err(|x| Error::Ebpf(format!("--iface {iface}: attaching {prog}: {x}")))?;
            }
        }
        let offset = monotonic_to_realtime();
        let start = Instant::now();
        let mut names = BTreeMap::new();
        for iface in &cfg.interfaces {
            let index = nix::net::if_::if_nametoindex(iface.as_str()).map_err(|x| Error::Config(format!("--iface {iface}: {x}")))?;
            names.insert(index, iface.clone());
        }
        let mut files = Rotating { cfg, dir, names, current: None, files: Vec::new() };
        let mut report = Report { backend: "ebpf", ..Report::default() };
        {
            let mut ring =
                RingBuf::try_from(bpf.map_mut("records").ok_or_else(|| Error::Ebpf("no ring buffer".into()))?).map_err(|x| e("ring buffer")(x.to_string()))?;
            let fd = std::os::fd::AsFd::as_fd(&ring).try_clone_to_owned().map_err(io(dir))?;
            loop {
                while let Some(item) = ring.next() {
                    let r: &[u8] = &item;
                    if r.len() < RECORD_HEADER {
                        continue;
                    }
                    let u32_at = |i: usize| u32::from_ne_bytes([r[i], r[i + 1], r[i + 2], r[i + 3]]);
                    let ts = u64::from_ne_bytes(r[0..8].try_into().unwrap_or_default());
                    let (len, caplen, ifindex) = (u32_at(8), u32_at(12) as usize, u32_at(16));
                    let data = &r[RECORD_HEADER..(RECORD_HEADER + caplen).min(r.len())];
                    files.packet(ifindex, ts + offset, len, data)?;
                    report.packets += 1;
                    report.bytes += data.len() as u64;
                }
                let done = stop.load(Ordering::Relaxed) || cfg.duration.is_some_and(|d| start.elapsed() >= d);
                if done {
                    break;
                }
                let mut pfd = [nix::poll::PollFd::new(std::os::fd::AsFd::as_fd(&fd), nix::poll::PollFlags::POLLIN)];
                let _ = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(100u16));
            }
        }
        // Detach first (dropping the programs), then drain what is left.
        let counters: PerCpuArray<_, u64> =
            PerCpuArray::try_from(bpf.map("counters").ok_or_else(|| Error::Ebpf("no counters".into()))?).map_err(|x| e("counters")(x.to_string()))?;
        let sum = |k: u32| counters.get(&k, 0).map(|v| v.iter().sum::<u64>()).unwrap_or(0);
        report.seen = sum(0);
        report.dropped = sum(1);
        files.close()?;
        report.files = files.files;
        Ok(report)
    }
}

#[cfg(not(trawl_ebpf))]
mod ebpf {
    use super::*;
    pub fn run(_: &Config, _: &Path, _: Arc<AtomicBool>) -> Result<Report, Error> {
        Err(Error::Ebpf(
            "this build has no eBPF capture program: clang was missing when trawl was built (apt-get install clang libbpf-dev, then rebuild)".into(),
        ))
    }
}

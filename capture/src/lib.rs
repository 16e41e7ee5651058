//! Packet capture for trawl. Two backends feed one writer:
//! - [`ebpf`]: a TC classifier (bpf/tc_capture.c, loaded and attached
//!   with aya on ingress and egress of each interface) copies packets
//!   into a BPF ring buffer;
//! - [`af_packet`]: a TPACKET_V3 ring per interface, chosen when eBPF
//!   cannot be loaded (or asked for).
//!
//! User space writes pcapng ([`pcapng`]) into an archive folder, one
//! folder per node, rotated and pruned ([`rotate`]); a file is written
//! under a temporary name until complete. `--bpf` filters
//! ([`bpf_filter`]) are compiled by libpcap.

#[allow(unsafe_code)]
pub mod af_packet;
#[allow(unsafe_code)]
pub mod bpf_filter;
pub mod ebpf;
pub mod kube_watch;
pub mod pcapng;
pub mod rotate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use bpf_filter::BpfFilter;
use pcapng::{Direction, IfCounts};
use rotate::Rotating;

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("eBPF: {0}")]
    Ebpf(String),
    #[error("{0}")]
    Backend(String),
    #[error("kubernetes: {0}")]
    Kube(String),
    #[error("{0}")]
    Filter(#[from] bpf_filter::FilterError),
    #[error("{0}")]
    Config(String),
}

impl Error {
    /// A bad flag or file given by the user (exit 2), not a failure of
    /// the machine.
    pub fn is_user_error(&self) -> bool {
        matches!(self, Error::Config(_) | Error::Filter(_))
    }
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
    /// Which backend (automatic: eBPF, else AF_PACKET).
    pub backend: Backend,
    /// A tcpdump-syntax filter.
    pub filter: Option<String>,
    /// Where the Kubernetes sidecar comes from.
    pub kubernetes: Kubernetes,
}

/// A captured interface: its name and the pcapng link type of its
/// packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub link: u32,
}

/// pcapng link types of captured interfaces.
pub const LINKTYPE_ETHERNET: u32 = 1;
pub const LINKTYPE_RAW: u32 = 101;

/// The link type of an interface's packets, from its hardware type
/// (ARPHRD_*, as the kernel reports it with the interface's link
/// address): Ethernet framing for Ethernet, veth, bridges, VXLAN and
/// loopback; raw IP (no link header) for tun, WireGuard and IP tunnels,
/// where TC and packet sockets see the packet from its IP header on.
fn link_type(iface: &str) -> Result<u32, Error> {
    match af_packet::hardware_type(iface) {
        // ETHER, LOOPBACK; an interface whose type cannot be read is
        // taken as Ethernet.
        None | Some(1 | af_packet::ARPHRD_LOOPBACK) => Ok(LINKTYPE_ETHERNET),
        // NONE (tun, WireGuard), TUNNEL (ipip), TUNNEL6, SIT, IPGRE,
        // IP6GRE, RAWIP.
        Some(65534 | 768 | 769 | 776 | 778 | 823 | 519) => Ok(LINKTYPE_RAW),
        Some(other) => Err(Error::Config(format!(
            "--iface {iface}: its hardware type (ARPHRD {other}) is not one trawl captures; Ethernet-framed (Ethernet, veth, bridges, VXLAN, loopback) and raw-IP (tun, WireGuard, IP tunnels) interfaces are"
        ))),
    }
}

/// The Kubernetes metadata recorded next to the captures.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Kubernetes {
    #[default]
    None,
    /// Watch a cluster; write the timeline sidecar.
    Watch(kube_watch::KubeSource),
    /// Record a kubectl List file (again when it changes).
    FromFile(PathBuf),
}

/// The capture backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// eBPF, falling back to AF_PACKET when the program cannot be loaded
    /// or attached (the reason is reported).
    #[default]
    Auto,
    Ebpf,
    AfPacket,
}

/// What a capture did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// `ebpf` or `af_packet`.
    pub backend: &'static str,
    /// Why eBPF was not used, when it was tried and failed.
    pub fallback: Option<String>,
    /// Complete files this run wrote (and retention kept).
    pub files: Vec<PathBuf>,
    /// Packets written, and their captured bytes.
    pub packets: u64,
    pub bytes: u64,
    /// Packets the kernel side saw, and those it dropped (capture buffer
    /// full). eBPF counts before the filter; AF_PACKET after it.
    pub seen: u64,
    pub dropped: u64,
    /// Packets the `--bpf` filter turned away (eBPF backend, which
    /// filters in user space).
    pub filtered: u64,
    /// What the Kubernetes side recorded, when it ran.
    pub kubernetes: Option<kube_watch::KubeReport>,
    /// What retention (`--keep`) deleted: capture files (this run's or
    /// earlier ones'), Kubernetes sidecars.
    pub deleted: (usize, usize),
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

/// Where packets go: the filter (when applied in user space), the files.
pub struct Sink {
    pub files: Rotating,
    filter: Option<BpfFilter>,
    /// Link type by interface index (what the filter reads the packet as).
    links: BTreeMap<u32, u32>,
    packets: u64,
    bytes: u64,
    filtered: u64,
}

impl Sink {
    /// One packet from a backend (real time in ns).
    pub fn packet(&mut self, ifindex: u32, ts_ns: u64, len: u32, dir: Direction, data: &[u8]) -> Result<(), Error> {
        if let Some(f) = self.filter.as_mut()
            && !f.matches(self.links.get(&ifindex).copied().unwrap_or(LINKTYPE_ETHERNET), ts_ns as i64, len, data)?
        {
            self.filtered += 1;
            return Ok(());
        }
        self.packets += 1;
        self.bytes += data.len() as u64;
        self.files.packet(ifindex, ts_ns, len, dir, data)
    }
}

enum Source {
    Ebpf(ebpf::Attached),
    AfPacket(af_packet::Rings),
}

/// A capture that is set up and running in the kernel: packets are
/// buffered from here on until [`Capture::run`] reads them.
pub struct Capture {
    source: Source,
    sink: Sink,
    names: BTreeMap<u32, Interface>,
    cfg: Config,
    fallback: Option<String>,
    /// The kubectl List recorded at the start (`--k8s-from`).
    recorded: Option<PathBuf>,
}

/// Checks the settings, compiles the filter, and loads and attaches the
/// backend (eBPF, or AF_PACKET when eBPF cannot be loaded and the
/// backend is automatic).
pub fn start(cfg: &Config) -> Result<Capture, Error> {
    if cfg.interfaces.is_empty() {
        return Err(Error::Config("--iface: name at least one interface".into()));
    }
    if !(1..=65535).contains(&cfg.snaplen) {
        return Err(Error::Config(format!("--snaplen: expected 1 to 65535 bytes, got {}", cfg.snaplen)));
    }
    let mut names = BTreeMap::new();
    for iface in &cfg.interfaces {
        let index = nix::net::if_::if_nametoindex(iface.as_str())
            .map_err(|x| Error::Config(format!("--iface {iface}: no such interface ({x})")))?;
        names.insert(index, Interface { name: iface.clone(), link: link_type(iface)? });
    }
    let mut filter = cfg.filter.as_deref().map(BpfFilter::new).transpose()?;
    let dir = cfg.archive.join(&cfg.node);
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let mut fallback = None;
    let attached = match cfg.backend {
        Backend::AfPacket => None,
        Backend::Ebpf => Some(ebpf::attach(cfg)?),
        Backend::Auto => match ebpf::attach(cfg) {
            Ok(a) => Some(a),
            Err(e) => {
                fallback = Some(e.to_string());
                None
            }
        },
    };
    let source = match attached {
        Some(a) => Source::Ebpf(a),
        None => {
            // The kernel applies the filter to an AF_PACKET socket.
            let rings = af_packet::open(&names, filter.as_mut())?;
            filter = None;
            Source::AfPacket(rings)
        }
    };
    // A bad List file is a usage error now, not a surprise later.
    let recorded = match &cfg.kubernetes {
        Kubernetes::FromFile(f) => Some(kube_watch::record_list(f, &dir)?),
        Kubernetes::Watch(kube_watch::KubeSource::Kubeconfig(k)) => {
            kube_watch::check_kubeconfig(k)?;
            None
        }
        _ => None,
    };
    let files = Rotating::new(cfg.clone(), dir, names.clone());
    let links = names.iter().map(|(&i, f)| (i, f.link)).collect();
    Ok(Capture {
        source,
        sink: Sink { files, filter, links, packets: 0, bytes: 0, filtered: 0 },
        names,
        cfg: cfg.clone(),
        fallback,
        recorded,
    })
}

impl Capture {
    /// `ebpf` or `af_packet`.
    pub fn backend(&self) -> &'static str {
        match self.source {
            Source::Ebpf(_) => "ebpf",
            Source::AfPacket(_) => "af_packet",
        }
    }

    /// Why eBPF was not used, when it was tried and failed.
    pub fn fallback(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// Captures until `stop` is set or the duration passes, then
    /// completes the open file.
    pub fn run(self, stop: Arc<AtomicBool>) -> Result<Report, Error> {
        let backend = self.backend();
        let Capture { source, mut sink, names, cfg, fallback, recorded } = self;
        // The Kubernetes side runs beside the capture and stops with it.
        let kube_stop = Arc::new(AtomicBool::new(false));
        let kube = kubernetes_side(&cfg, recorded, kube_stop.clone())?;
        let result = match source {
            Source::Ebpf(a) => a.run(&names, &mut sink, stop, cfg.duration),
            Source::AfPacket(r) => r.run(cfg.snaplen, &mut sink, stop, cfg.duration),
        };
        // Whatever stopped the capture, the open file is completed.
        let closed = sink.files.close();
        kube_stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let kubernetes = match kube {
            Some(h) => Some(h.join().map_err(|_| Error::Kube("the watcher stopped unexpectedly".into()))??),
            None => None,
        };
        result?;
        closed?;
        let IfCounts { received, dropped, .. } = sink.files.totals;
        Ok(Report {
            backend,
            fallback,
            files: sink.files.written,
            packets: sink.packets,
            bytes: sink.bytes,
            seen: received,
            dropped,
            filtered: sink.filtered,
            kubernetes,
            deleted: sink.files.deleted,
        })
    }
}

type KubeThread = std::thread::JoinHandle<Result<kube_watch::KubeReport, Error>>;

/// Starts the Kubernetes side: the watcher, or the kubectl List file
/// recorded again whenever it changes.
fn kubernetes_side(
    cfg: &Config,
    recorded: Option<PathBuf>,
    stop: Arc<AtomicBool>,
) -> Result<Option<KubeThread>, Error> {
    let dir = cfg.archive.join(&cfg.node);
    // A timeline file per ten minutes (or per capture rotation, if
    // longer): each begins with the whole cluster, so not too often.
    let rotate = cfg.rotate_time.unwrap_or(Duration::ZERO).max(Duration::from_secs(600));
    let spawn = |f: Box<dyn FnOnce() -> Result<kube_watch::KubeReport, Error> + Send>| {
        std::thread::Builder::new()
            .name("trawl-kubernetes".into())
            .spawn(f)
            .map(Some)
            .map_err(|e| Error::Kube(format!("starting the watcher: {e}")))
    };
    match cfg.kubernetes.clone() {
        Kubernetes::None => Ok(None),
        Kubernetes::Watch(source) => spawn(Box::new(move || kube_watch::run(&source, &dir, rotate, stop))),
        Kubernetes::FromFile(file) => spawn(Box::new(move || {
            let mtime = |f: &Path| std::fs::metadata(f).and_then(|m| m.modified()).ok();
            let mut seen = mtime(&file);
            let mut report = kube_watch::KubeReport { files: recorded.into_iter().collect(), ..Default::default() };
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                let now = mtime(&file);
                if now != seen {
                    seen = now;
                    match kube_watch::record_list(&file, &dir) {
                        Ok(p) => report.files.push(p),
                        Err(e) => {
                            report.errors += 1;
                            report.last_error = Some(e.to_string());
                        }
                    }
                }
            }
            Ok(report)
        })),
    }
}

/// True for a loopback interface (by its hardware type, as the
/// AF_PACKET backend tells its packets).
#[cfg_attr(not(trawl_ebpf), allow(dead_code))]
pub(crate) fn is_loopback(iface: &str) -> bool {
    af_packet::hardware_type(iface) == Some(af_packet::ARPHRD_LOOPBACK)
}

/// Starts and runs a capture.
pub fn run(cfg: &Config, stop: Arc<AtomicBool>) -> Result<Report, Error> {
    start(cfg)?.run(stop)
}

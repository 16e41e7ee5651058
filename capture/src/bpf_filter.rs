//! BPF filters (`tcpdump` syntax), compiled by the system's libpcap
//! itself so that an expression means exactly what it means to tcpdump
//! and Wireshark: applied in-process ([`BpfFilter::matches`]: export,
//! and the eBPF capture backend) or handed to the kernel as classic BPF
//! ([`BpfFilter::instructions`]: the AF_PACKET backend's socket filter).
//!
//! libpcap is loaded at run time (`libpcap.so.0.8`, the library tcpdump
//! and tshark use), so building trawl needs no libpcap headers and only
//! `--bpf` needs the library. The calls used are `pcap_open_dead`,
//! `pcap_compile`, `pcap_offline_filter`, `pcap_freecode`, `pcap_geterr`
//! and `pcap_close`, which take no locks and touch no network.

use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_void};

use libloading::{Library, Symbol};

/// A filter that cannot be used: libpcap missing, or the expression
/// does not compile (the message says which, and names `--bpf`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(pub String);

type Error = FilterError;

/// One classic BPF instruction, as `struct bpf_insn` / `sock_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instruction {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

#[repr(C)]
struct BpfProgram {
    bf_len: c_uint,
    bf_insns: *mut c_void,
}

#[repr(C)]
struct Timeval {
    tv_sec: std::ffi::c_long,
    tv_usec: std::ffi::c_long,
}

#[repr(C)]
struct PktHdr {
    ts: Timeval,
    caplen: u32,
    len: u32,
}

type OpenDead = unsafe extern "C" fn(c_int, c_int) -> *mut c_void;
type Compile = unsafe extern "C" fn(*mut c_void, *mut BpfProgram, *const c_char, c_int, u32) -> c_int;
type OfflineFilter = unsafe extern "C" fn(*const BpfProgram, *const PktHdr, *const u8) -> c_int;
type FreeCode = unsafe extern "C" fn(*mut BpfProgram);
type GetErr = unsafe extern "C" fn(*mut c_void) -> *const c_char;
type Close = unsafe extern "C" fn(*mut c_void);

const LIBS: &[&str] = &["libpcap.so.0.8", "libpcap.so.1", "libpcap.so", "libpcap.dylib"];
/// PCAP_NETMASK_UNKNOWN.
const NETMASK_UNKNOWN: u32 = 0xffff_ffff;

/// A BPF expression, compiled once per link type.
pub struct BpfFilter {
    expr: String,
    lib: Library,
    /// (link type, compiled program).
    programs: Vec<(u32, Box<BpfProgram>)>,
}

impl BpfFilter {
    /// Loads libpcap and checks that `expr` compiles for Ethernet.
    pub fn new(expr: &str) -> Result<BpfFilter, Error> {
        // SAFETY: loading libpcap runs its initialisers, which have no
        // preconditions.
        let lib = LIBS.iter().find_map(|name| unsafe { Library::new(name) }.ok()).ok_or_else(|| {
            FilterError(
                "--bpf needs libpcap at run time (libpcap.so.0.8, Debian package libpcap0.8), and it was not found"
                    .into(),
            )
        })?;
        let mut f = BpfFilter { expr: expr.to_string(), lib, programs: Vec::new() };
        f.program(1)?;
        Ok(f)
    }

    /// The program for a pcap link type (LINKTYPE_*), compiled once.
    fn program(&mut self, link: u32) -> Result<&BpfProgram, Error> {
        if let Some(i) = self.programs.iter().position(|(l, _)| *l == link) {
            return Ok(&self.programs[i].1);
        }
        // libpcap compiles for a DLT_* value. They are the link types'
        // numbers except for four old ones: LINKTYPE_RAW (101) is DLT_RAW
        // (12 on Linux), LINKTYPE_ATM_RFC1483 (100) is DLT_ATM_RFC1483 (11).
        let dlt = match link {
            101 => 12,
            100 => 11,
            l => l,
        };
        let expr = CString::new(self.expr.as_str())
            .map_err(|_| FilterError("--bpf: the expression contains a NUL byte".into()))?;
        let sym = |e: libloading::Error| FilterError(format!("--bpf: libpcap lacks a function trawl needs: {e}"));
        // SAFETY: the symbols have the C signatures of pcap(3PCAP); the
        // handle is closed on every path and the program freed in Drop.
        unsafe {
            let open: Symbol<OpenDead> = self.lib.get(b"pcap_open_dead\0").map_err(sym)?;
            let compile: Symbol<Compile> = self.lib.get(b"pcap_compile\0").map_err(sym)?;
            let geterr: Symbol<GetErr> = self.lib.get(b"pcap_geterr\0").map_err(sym)?;
            let close: Symbol<Close> = self.lib.get(b"pcap_close\0").map_err(sym)?;
            let handle = open(dlt as c_int, 262_144);
            if handle.is_null() {
                return Err(FilterError(format!("--bpf: libpcap cannot filter link type {link}")));
            }
            let mut prog = Box::new(BpfProgram { bf_len: 0, bf_insns: std::ptr::null_mut() });
            let rc = compile(handle, &mut *prog, expr.as_ptr(), 1, NETMASK_UNKNOWN);
            let err = if rc != 0 { Some(CStr::from_ptr(geterr(handle)).to_string_lossy().to_string()) } else { None };
            close(handle);
            if let Some(err) = err {
                return Err(FilterError(format!("--bpf: `{}` is not a valid filter: {err}", self.expr)));
            }
            self.programs.push((link, prog));
        }
        Ok(&self.programs[self.programs.len() - 1].1)
    }

    /// The program for a link type as classic BPF instructions.
    pub fn instructions(&mut self, link: u32) -> Result<Vec<Instruction>, Error> {
        let prog = self.program(link)?;
        let n = prog.bf_len as usize;
        if n == 0 || prog.bf_insns.is_null() {
            return Ok(Vec::new());
        }
        // SAFETY: pcap_compile filled `bf_insns` with `bf_len` entries of
        // `struct bpf_insn` (u16, u8, u8, u32: 8 bytes, no padding).
        let raw = unsafe { std::slice::from_raw_parts(prog.bf_insns as *const [u8; 8], n) };
        Ok(raw
            .iter()
            .map(|b| Instruction {
                code: u16::from_ne_bytes([b[0], b[1]]),
                jt: b[2],
                jf: b[3],
                k: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
            })
            .collect())
    }

    /// True when the packet passes the filter.
    pub fn matches(&mut self, link: u32, ts_ns: i64, wire_len: u32, data: &[u8]) -> Result<bool, Error> {
        let filter: OfflineFilter = {
            // SAFETY: as in `program`.
            let s: Symbol<OfflineFilter> =
                unsafe { self.lib.get(b"pcap_offline_filter\0") }.map_err(|e| FilterError(format!("--bpf: {e}")))?;
            *s
        };
        let prog: *const BpfProgram = self.program(link)?;
        let hdr = PktHdr {
            ts: Timeval {
                tv_sec: ts_ns.div_euclid(1_000_000_000) as _,
                tv_usec: (ts_ns.rem_euclid(1_000_000_000) / 1000) as _,
            },
            caplen: data.len() as u32,
            len: wire_len.max(data.len() as u32),
        };
        // SAFETY: `prog` was compiled by this library and lives in self;
        // `data` is `caplen` bytes long.
        Ok(unsafe { filter(prog, &hdr, data.as_ptr()) } != 0)
    }
}

impl Drop for BpfFilter {
    fn drop(&mut self) {
        // SAFETY: each program came from pcap_compile and is freed once.
        unsafe {
            if let Ok(free) = self.lib.get::<FreeCode>(b"pcap_freecode\0") {
                for (_, p) in &mut self.programs {
                    free(&mut **p);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet/IPv4/TCP SYN from 10.0.0.1:40000 to 10.0.0.2:80.
    fn syn() -> Vec<u8> {
        let mut f = vec![0u8; 54];
        f[12] = 0x08;
        f[14] = 0x45;
        f[16..18].copy_from_slice(&40u16.to_be_bytes());
        f[22] = 64;
        f[23] = 6;
        f[26..30].copy_from_slice(&[10, 0, 0, 1]);
        f[30..34].copy_from_slice(&[10, 0, 0, 2]);
        f[34..36].copy_from_slice(&40000u16.to_be_bytes());
        f[36..38].copy_from_slice(&80u16.to_be_bytes());
        f[46] = 0x50;
        f[47] = 0x02;
        f
    }

    #[test]
    fn filters_like_tcpdump() {
        let Ok(mut f) = BpfFilter::new("tcp dst port 80 and host 10.0.0.1") else {
            panic!("libpcap is needed for this test (libpcap0.8)");
        };
        assert_eq!(f.matches(1, 0, 54, &syn()).ok(), Some(true));
        // The same packet without its Ethernet header, as a raw-IP link
        // (LINKTYPE_RAW, which libpcap knows as DLT_RAW) gives it.
        assert_eq!(f.matches(101, 0, 40, &syn()[14..]).ok(), Some(true));
        assert_eq!(f.matches(1, 0, 40, &syn()[14..]).ok(), Some(false), "read as Ethernet, it is not the packet");
        let Ok(mut g) = BpfFilter::new("udp or port 443") else { panic!("compile") };
        assert_eq!(g.matches(1, 0, 54, &syn()).ok(), Some(false));
        // `tcp` compiles to a program that ends in accept/reject returns.
        let Ok(mut t) = BpfFilter::new("tcp") else { panic!("compile") };
        let insns = t.instructions(1).unwrap_or_default();
        assert!(insns.len() >= 4 && insns.iter().filter(|i| i.code == 0x06).count() == 2, "{insns:?}");
        let e = BpfFilter::new("tcp port banana").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.starts_with("--bpf: `tcp port banana` is not a valid filter:"), "{e}");
    }
}

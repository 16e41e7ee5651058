//! Capture files: pcap (µs and ns, both byte orders), pcapng (several
//! sections and interfaces, per-interface link type and timestamp
//! resolution) and gzip-compressed versions of both.
//!
//! A file is read in large chunks; each chunk comes with the frames whose
//! records lie wholly inside it ([`Chunk`]), so that packet bytes are never
//! copied on their way to the workers. Framing uses `pcap-file`
//! (`PcapHeader`, `PcapNgParser`); packet blocks are read from their raw
//! bodies so that an odd option never stops a file.
//!
//! Damage (a record cut short, an impossible length, a broken block) ends
//! the file: everything before it is analysed and the damage is reported
//! with its offset ([`Damage`]). Only a file that is not a capture at all
//! is an [`Error`].
//!
//! One file: pcap, pcapng and gzip readers, the time-ordered merge of
//! inputs and damage reporting share the reader's record type and its caps.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use pcap_file::pcap::PcapHeader;
use pcap_file::pcapng::PcapNgParser;
use pcap_file::pcapng::blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption};
use pcap_file::{DataLink, Endianness, PcapError, TsResolution};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::Error;

/// Largest packet record accepted when the file's snaplen is smaller
/// (Wireshark's WTAP_MAX_PACKET_SIZE_STANDARD).
pub const MAX_PACKET: usize = 262_144;
/// Hard ceiling for a record, whatever the snaplen says.
const MAX_RECORD: usize = 16 << 20;

/// One frame inside a chunk.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    /// Capture time, ns since the Unix epoch.
    pub ts_ns: i64,
    /// Link type (tcpdump LINKTYPE_ value).
    pub link: u32,
    /// Byte range of the captured frame inside the chunk.
    pub start: u32,
    pub len: u32,
    /// Length of the frame on the wire.
    pub orig_len: u32,
    /// 1-based number of the frame within its file.
    pub number: u64,
    /// Offset of the captured bytes in the (decompressed) file.
    pub offset: u64,
}

/// A block of file bytes and the frames that lie inside it.
#[derive(Debug)]
pub struct Chunk {
    pub data: Arc<Vec<u8>>,
    pub frames: Vec<Frame>,
}

/// Where and why a file stopped early.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Damage {
    /// Offset in the (decompressed) capture stream where the damage starts.
    pub offset: u64,
    /// Frames read before the damage.
    pub frames_before: u64,
    pub detail: String,
}

/// Capture container formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Pcap,
    Pcapng,
}

/// Bytes read from disk, shared with the progress display.
#[derive(Debug, Default)]
pub struct ReadProgress {
    pub bytes: AtomicU64,
}

/// A reader that hashes and counts the raw file bytes as they pass.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    progress: Arc<ReadProgress>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.progress.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

enum Source {
    Plain(Hashing<File>),
    Gzip(Box<flate2::read::MultiGzDecoder<PrefixedHashing>>),
}

impl Source {
    /// Reads and hashes whatever is left of the file, so that the sha256
    /// covers it all even when parsing stopped early.
    fn finish(self) -> String {
        let mut h = match self {
            Source::Plain(h) => h,
            Source::Gzip(g) => g.into_inner().inner,
        };
        let mut sink = vec![0u8; 1 << 16];
        loop {
            match h.read(&mut sink) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        hex(&h.hasher.finalize())
    }
}

/// Lower-case hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One interface of a pcapng section.
#[derive(Debug, Clone, Copy)]
struct Interface {
    link: u32,
    /// Timestamp units per second.
    units_per_sec: u64,
    /// Seconds added to every timestamp (if_tsoffset).
    offset_s: i64,
}

impl Interface {
    fn of(idb: &InterfaceDescriptionBlock) -> Interface {
        let mut units_per_sec = 1_000_000u64;
        let mut offset_s = 0i64;
        for opt in &idb.options {
            match opt {
                InterfaceDescriptionOption::IfTsResol(r) => {
                    let exp = (r & 0x7f) as u32;
                    units_per_sec = if r & 0x80 == 0 {
                        10u64.checked_pow(exp).unwrap_or(0)
                    } else {
                        2u64.checked_pow(exp).unwrap_or(0)
                    };
                }
                InterfaceDescriptionOption::IfTsOffset(o) => offset_s = *o as i64,
                _ => {}
            }
        }
        Interface { link: u32::from(idb.linktype), units_per_sec, offset_s }
    }
}

/// Capture time (ns) of a pcapng packet block's raw timestamp, scaled by
/// its interface's `if_tsresol` and `if_tsoffset`.
pub fn pcapng_ts_ns(raw: u64, idb: &InterfaceDescriptionBlock) -> i64 {
    scale_ts(raw, Interface::of(idb))
}

enum Framing {
    Pcap { big_endian: bool, nanos: bool, link: u32, max_len: usize },
    Pcapng { parser: Box<PcapNgParser>, interfaces: Vec<Interface> },
}

/// Facts about one input file, for the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct InputInfo {
    /// Where the file is: absolute, or relative to the snapshot directory
    /// when the file lies inside it.
    pub path: String,
    /// The node (host) whose capture this is, for inputs of an archive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    pub size: u64,
    pub sha256: String,
    pub format: Format,
    pub gzip: bool,
    /// Link types seen, as names (`ethernet`, `linux_sll`, ...).
    pub link_types: Vec<String>,
    pub frames: u64,
    pub first_timestamp: Option<String>,
    pub last_timestamp: Option<String>,
    #[serde(skip)]
    pub first_ts_ns: Option<i64>,
    #[serde(skip)]
    pub last_ts_ns: Option<i64>,
    pub damage: Option<Damage>,
    /// Packets the capturing tool says it dropped (pcapng interface
    /// statistics blocks, `isb_ifdrop`, summed over interfaces); absent
    /// when the file does not say (pcap files never do). Packets missing
    /// from the file: gaps near them may be capture loss, not network loss.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture_dropped: Option<u64>,
}

/// Reads one capture file chunk by chunk.
pub struct CaptureReader {
    path: PathBuf,
    src: Option<Source>,
    framing: Framing,
    /// Bytes read but not yet framed (a partial record).
    leftover: Vec<u8>,
    /// Stream offset of `leftover[0]`.
    offset: u64,
    eof: bool,
    done: bool,
    frames: u64,
    chunk_size: usize,
    link_types: Vec<u32>,
    first_ts: Option<i64>,
    last_ts: Option<i64>,
    damage: Option<Damage>,
    size: u64,
    gzip: bool,
    format: Format,
    pool: Vec<Arc<Vec<u8>>>,
    /// Capture drops by interface statistics blocks: the finished
    /// sections' sum, and the current section's latest count per interface.
    drops_done: Option<u64>,
    drops: Vec<Option<u64>>,
}

/// Reads into `buf[filled..want]` until it is full or the input ends.
/// Returns the new fill level and whether the input ended. `buf` must be
/// at least `want` long: recycled chunks already are, so nothing is zeroed.
fn read_full(src: &mut Source, buf: &mut [u8], mut filled: usize, want: usize) -> (usize, io::Result<bool>) {
    while filled < want {
        let n = match src {
            Source::Plain(r) => r.read(&mut buf[filled..want]),
            Source::Gzip(r) => r.read(&mut buf[filled..want]),
        };
        match n {
            Ok(0) => return (filled, Ok(true)),
            Ok(k) => filled += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (filled, Err(e)),
        }
    }
    (filled, Ok(false))
}

/// Grows `buf` to `want` bytes read from `src`; true at end of input.
fn read_more(src: &mut Source, buf: &mut Vec<u8>, want: usize) -> io::Result<bool> {
    let filled = buf.len();
    buf.resize(want.max(filled), 0);
    let (filled, res) = read_full(src, buf, filled, want);
    buf.truncate(filled);
    res
}

/// Chunks kept for reuse (recycled once no tick holds them): enough for
/// the ticks in flight ([`crate::pipeline`]), so that reading rarely
/// allocates, and no more, since each is a chunk of resident memory.
const CHUNK_POOL: usize = 8;

impl CaptureReader {
    /// Opens a capture, detecting gzip and the container format.
    pub fn open(path: &Path, progress: Arc<ReadProgress>, chunk_size: usize) -> Result<CaptureReader, Error> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut hashing = Hashing { inner: file, hasher: Sha256::new(), progress };
        let mut magic = [0u8; 2];
        let n = read_prefix(&mut hashing, &mut magic).map_err(|e| Error::io(path, e))?;
        let gzip = n == 2 && magic == [0x1f, 0x8b];
        // Re-chain the two bytes already read in front of the stream.
        let prefix = magic[..n].to_vec();
        let mut src = if gzip {
            Source::Gzip(Box::new(flate2::read::MultiGzDecoder::new(PrefixedHashing {
                prefix,
                pos: 0,
                inner: hashing,
            })))
        } else {
            Source::Plain(hashing)
        };
        let mut head = if gzip { Vec::new() } else { magic[..n].to_vec() };
        let eof = read_more(&mut src, &mut head, 4096).map_err(|e| Error::io(path, e))?;
        let not_capture = |detail: String| Error::NotACapture { path: path.to_path_buf(), detail };
        if head.len() < 4 {
            return Err(not_capture(format!("{} bytes is too short for a pcap or pcapng header", head.len())));
        }
        let m = [head[0], head[1], head[2], head[3]];
        let (framing, used, format) = match m {
            [0x0a, 0x0d, 0x0d, 0x0a] => {
                let mut buf = head.clone();
                let mut at_eof = eof;
                let (rest_len, parser) = loop {
                    match PcapNgParser::new(&buf) {
                        Ok((rest, parser)) => break (rest.len(), parser),
                        Err(PcapError::IncompleteBuffer) if !at_eof && buf.len() < MAX_RECORD => {
                            let want = buf.len() * 2;
                            at_eof = read_more(&mut src, &mut buf, want).map_err(|e| Error::io(path, e))?;
                        }
                        Err(e) => {
                            return Err(not_capture(format!("pcapng section header is invalid: {e}")));
                        }
                    }
                };
                head = buf;
                (
                    Framing::Pcapng { parser: Box::new(parser), interfaces: Vec::new() },
                    head.len() - rest_len,
                    Format::Pcapng,
                )
            }
            m if pcap_magic(&m).is_some() => {
                let (rest, h) =
                    PcapHeader::from_slice(&head).map_err(|e| not_capture(format!("pcap header is invalid: {e}")))?;
                let used = head.len() - rest.len();
                let max_len = (h.snaplen as usize).clamp(MAX_PACKET, MAX_RECORD);
                (
                    Framing::Pcap {
                        big_endian: h.endianness == Endianness::Big,
                        nanos: h.ts_resolution == TsResolution::NanoSecond,
                        link: u32::from(h.datalink),
                        max_len,
                    },
                    used,
                    Format::Pcap,
                )
            }
            _ => {
                return Err(not_capture(format!(
                    "expected a pcap, pcapng or gzip-compressed capture, found first bytes {}",
                    hex(&m)
                )));
            }
        };
        let mut link_types = Vec::new();
        if let Framing::Pcap { link, .. } = framing {
            link_types.push(link);
        }
        Ok(CaptureReader {
            path: path.to_path_buf(),
            src: Some(src),
            framing,
            leftover: head[used..].to_vec(),
            offset: used as u64,
            eof,
            done: false,
            frames: 0,
            chunk_size,
            link_types,
            first_ts: None,
            last_ts: None,
            damage: None,
            size,
            gzip,
            format,
            pool: Vec::new(),
            drops_done: None,
            drops: Vec::new(),
        })
    }

    /// A chunk buffer the workers no longer hold, else a new one.
    fn recycled_buffer(&mut self) -> Vec<u8> {
        match self.pool.iter().position(|a| Arc::strong_count(a) == 1) {
            Some(i) => Arc::try_unwrap(self.pool.swap_remove(i)).unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// The next chunk of frames; None once the file is finished (or
    /// damaged: see [`CaptureReader::finish`]).
    pub fn next_chunk(&mut self) -> Option<Chunk> {
        loop {
            if self.done {
                return None;
            }
            let want = self.chunk_size.max(self.leftover.len());
            let mut buf = self.recycled_buffer();
            if buf.len() < want {
                buf.resize(want, 0);
            }
            let l = self.leftover.len();
            buf[..l].copy_from_slice(&self.leftover);
            self.leftover.clear();
            let mut filled = l;
            if !self.eof && l < self.chunk_size {
                let src = self.src.as_mut()?;
                let (f, res) = read_full(src, &mut buf, l, want);
                filled = f;
                match res {
                    Ok(eof) => self.eof = eof,
                    Err(e) => {
                        self.eof = true;
                        self.set_damage(self.offset + filled as u64, format!("read error: {e}"));
                    }
                }
            }
            buf.truncate(filled);
            let mut frames = Vec::new();
            let used = self.frame(&buf, &mut frames);
            fill_missing_ts(&mut frames);
            if used < buf.len() {
                if self.damage.is_some() {
                    self.done = true;
                } else if self.eof {
                    self.set_damage(
                        self.offset + used as u64,
                        format!("file cut short in the middle of a record ({} bytes left over)", buf.len() - used),
                    );
                    self.done = true;
                } else {
                    self.leftover.extend_from_slice(&buf[used..]);
                    if frames.is_empty() {
                        // A record larger than a chunk: read more next time.
                        self.chunk_size = (self.leftover.len() * 2).min(MAX_RECORD * 2);
                    }
                }
            } else if self.eof || self.damage.is_some() {
                self.done = true;
            }
            self.offset += used as u64;
            buf.truncate(used);
            if !frames.is_empty() {
                let data = Arc::new(buf);
                if self.pool.len() >= CHUNK_POOL {
                    self.pool.remove(0);
                }
                self.pool.push(data.clone());
                return Some(Chunk { data, frames });
            }
        }
    }

    fn set_damage(&mut self, offset: u64, detail: String) {
        if self.damage.is_none() {
            self.damage = Some(Damage { offset, frames_before: self.frames, detail });
        }
    }

    fn note_frame(&mut self, ts_ns: i64, link: u32) {
        self.frames += 1;
        if !self.link_types.contains(&link) {
            self.link_types.push(link);
        }
        if ts_ns == NO_TS {
            return;
        }
        if self.first_ts.is_none() {
            self.first_ts = Some(ts_ns);
        }
        self.first_ts = self.first_ts.map(|f| f.min(ts_ns));
        self.last_ts = Some(self.last_ts.map_or(ts_ns, |l| l.max(ts_ns)));
    }

    /// Frames whole records in `buf`; returns the bytes consumed.
    fn frame(&mut self, buf: &[u8], frames: &mut Vec<Frame>) -> usize {
        let mut pos = 0usize;
        match &mut self.framing {
            Framing::Pcap { big_endian, nanos, link, max_len } => {
                let (be, ns, link, max_len) = (*big_endian, *nanos, *link, *max_len);
                while let Some(h) = buf.get(pos..pos + 16).and_then(|h| <&[u8; 16]>::try_from(h).ok()) {
                    let (ts_ns, incl, orig) = pcap_record(h, be, ns);
                    if incl > max_len {
                        let off = self.offset + pos as u64;
                        self.set_damage(
                            off,
                            format!(
                                "record of {incl} bytes is larger than the maximum of {max_len}: the file is damaged"
                            ),
                        );
                        return pos;
                    }
                    if buf.len() - pos - 16 < incl {
                        break;
                    }
                    let number = self.frames + 1;
                    frames.push(Frame {
                        ts_ns,
                        link,
                        start: (pos + 16) as u32,
                        len: incl as u32,
                        orig_len: orig.max(incl as u32),
                        number,
                        offset: self.offset + pos as u64 + 16,
                    });
                    self.note_frame(ts_ns, link);
                    pos += 16 + incl;
                }
                pos
            }
            Framing::Pcapng { .. } => self.frame_pcapng(buf, frames),
        }
    }

    fn frame_pcapng(&mut self, buf: &[u8], frames: &mut Vec<Frame>) -> usize {
        let mut pos = 0usize;
        loop {
            let Framing::Pcapng { parser, interfaces } = &mut self.framing else {
                return pos;
            };
            let rest = &buf[pos..];
            if rest.is_empty() {
                return pos;
            }
            // Block length guard before the parser sees it.
            if rest.len() >= 8 {
                let be = parser.section().endianness == Endianness::Big;
                let t = [rest[0], rest[1], rest[2], rest[3]];
                let l = [rest[4], rest[5], rest[6], rest[7]];
                let is_shb = t == [0x0a, 0x0d, 0x0d, 0x0a];
                let len = if is_shb {
                    // Endianness of a new section is in its own magic.
                    if rest.len() < 12 {
                        return pos;
                    }
                    if rest[8..12] == [0x1a, 0x2b, 0x3c, 0x4d] { u32::from_be_bytes(l) } else { u32::from_le_bytes(l) }
                } else if be {
                    u32::from_be_bytes(l)
                } else {
                    u32::from_le_bytes(l)
                } as usize;
                if len > MAX_RECORD + 64 {
                    let off = self.offset + pos as u64;
                    self.set_damage(off, format!("pcapng block of {len} bytes is larger than the maximum of {MAX_RECORD}: the file is damaged"));
                    return pos;
                }
            }
            let before = rest.len();
            let res = parser.next_raw_block(rest);
            let (consumed, ty, body_len) = match res {
                Ok((after, raw)) => (before - after.len(), raw.type_, raw.body.len()),
                Err(PcapError::IncompleteBuffer) => return pos,
                Err(e) => {
                    let off = self.offset + pos as u64;
                    self.set_damage(off, format!("invalid pcapng block: {e}"));
                    return pos;
                }
            };
            let be = parser.section().endianness == Endianness::Big;
            let body = &buf[pos + 8..pos + 8 + body_len];
            let rd = |b: &[u8]| -> u32 {
                let a = [b[0], b[1], b[2], b[3]];
                if be { u32::from_be_bytes(a) } else { u32::from_le_bytes(a) }
            };
            match ty {
                0x0A0D0D0A => {
                    interfaces.clear();
                    self.drops_done = sum_drops(self.drops_done, &std::mem::take(&mut self.drops));
                }
                5 if body.len() >= 12 => {
                    // Interface statistics: isb_ifdrop counts from the
                    // start of the capture, so the latest block of an
                    // interface holds its total.
                    let ifid = rd(&body[0..4]) as usize;
                    if let Some(d) = isb_ifdrop(&body[12..], be)
                        && ifid < interfaces.len()
                    {
                        if self.drops.len() <= ifid {
                            self.drops.resize(ifid + 1, None);
                        }
                        self.drops[ifid] = Some(d);
                    }
                }
                1 => {
                    // Interface description: the parser keeps its owned copy.
                    if let Some(idb) = parser.interfaces().last() {
                        interfaces.push(Interface::of(idb));
                    }
                }
                6 if body.len() >= 20 => {
                    let ifid = rd(&body[0..4]) as usize;
                    let raw_ts = ((rd(&body[4..8]) as u64) << 32) | rd(&body[8..12]) as u64;
                    let caplen = rd(&body[12..16]) as usize;
                    let orig = rd(&body[16..20]);
                    let Some(iface) = interfaces.get(ifid).copied() else {
                        let off = self.offset + pos as u64;
                        self.set_damage(off, format!("packet block names interface {ifid}, which was not described"));
                        return pos;
                    };
                    if caplen > body.len() - 20 {
                        let off = self.offset + pos as u64;
                        self.set_damage(off, "packet block is shorter than its captured length".into());
                        return pos;
                    }
                    let ts_ns = scale_ts(raw_ts, iface);
                    let number = self.frames + 1;
                    frames.push(Frame {
                        ts_ns,
                        link: iface.link,
                        start: (pos + 28) as u32,
                        len: caplen as u32,
                        orig_len: orig.max(caplen as u32),
                        number,
                        offset: self.offset + pos as u64 + 28,
                    });
                    self.note_frame(ts_ns, iface.link);
                }
                3 if body.len() >= 4 => {
                    // Simple packet block: interface 0, no timestamp.
                    let Some(iface) = interfaces.first().copied() else {
                        let off = self.offset + pos as u64;
                        self.set_damage(off, "simple packet block before any interface description".into());
                        return pos;
                    };
                    let orig = rd(&body[0..4]);
                    let caplen = (orig as usize).min(body.len() - 4);
                    // No timestamp: the previous frame's, else the next one's
                    // (filled in by `fill_missing_ts`).
                    let ts_ns = self.last_ts.unwrap_or(NO_TS);
                    let number = self.frames + 1;
                    frames.push(Frame {
                        ts_ns,
                        link: iface.link,
                        start: (pos + 12) as u32,
                        len: caplen as u32,
                        orig_len: orig,
                        number,
                        offset: self.offset + pos as u64 + 12,
                    });
                    self.note_frame(ts_ns, iface.link);
                }
                _ => {}
            }
            pos += consumed;
        }
    }

    /// Finishes the file: hashes what was not read and returns its facts.
    pub fn finish(mut self) -> InputInfo {
        let sha256 = self.src.take().map(Source::finish).unwrap_or_default();
        InputInfo {
            capture_dropped: sum_drops(self.drops_done, &self.drops),
            path: self.path.display().to_string(),
            node: None,
            size: self.size,
            sha256,
            format: self.format,
            gzip: self.gzip,
            link_types: self.link_types.iter().map(|l| link_name(*l)).collect(),
            frames: self.frames,
            first_timestamp: self.first_ts.map(crate::time::rfc3339),
            last_timestamp: self.last_ts.map(crate::time::rfc3339),
            first_ts_ns: self.first_ts,
            last_ts_ns: self.last_ts,
            damage: self.damage,
        }
    }
}

/// `isb_ifdrop` (packets the interface dropped since the capture began)
/// from an interface statistics block's options: the block body after
/// the interface id and timestamp, in the section's byte order. None
/// when the block does not carry it (or its options are cut short).
pub fn isb_ifdrop(opts: &[u8], big_endian: bool) -> Option<u64> {
    let u16_at = |i: usize| -> Option<u16> {
        let b = [*opts.get(i)?, *opts.get(i + 1)?];
        Some(if big_endian { u16::from_be_bytes(b) } else { u16::from_le_bytes(b) })
    };
    let mut i = 0;
    while let (Some(code), Some(len)) = (u16_at(i), u16_at(i + 2)) {
        let v = opts.get(i + 4..i + 4 + len as usize)?;
        match code {
            0 => return None,
            5 => {
                let b: [u8; 8] = v.try_into().ok()?;
                return Some(if big_endian { u64::from_be_bytes(b) } else { u64::from_le_bytes(b) });
            }
            _ => i += 4 + (len as usize).div_ceil(4) * 4,
        }
    }
    None
}

/// Adds the interfaces' drop counts to a running sum; None while no
/// interface has said.
fn sum_drops(sum: Option<u64>, drops: &[Option<u64>]) -> Option<u64> {
    drops.iter().flatten().fold(sum, |a, d| Some(a.unwrap_or(0).saturating_add(*d)))
}

/// (big endian, nanosecond timestamps) of a pcap file's magic number.
pub fn pcap_magic(m: &[u8]) -> Option<(bool, bool)> {
    match m {
        [0xa1, 0xb2, 0xc3, 0xd4] => Some((true, false)),
        [0xd4, 0xc3, 0xb2, 0xa1] => Some((false, false)),
        [0xa1, 0xb2, 0x3c, 0x4d] => Some((true, true)),
        [0x4d, 0x3c, 0xb2, 0xa1] => Some((false, true)),
        _ => None,
    }
}

/// A 16-byte pcap record header: (capture time ns, captured length, wire length).
pub fn pcap_record(h: &[u8; 16], big_endian: bool, nanos: bool) -> (i64, usize, u32) {
    let rd = |i: usize| {
        let a = [h[i], h[i + 1], h[i + 2], h[i + 3]];
        if big_endian { u32::from_be_bytes(a) } else { u32::from_le_bytes(a) }
    };
    let frac = rd(4) as i64;
    (rd(0) as i64 * 1_000_000_000 + if nanos { frac } else { frac * 1000 }, rd(8) as usize, rd(12))
}

/// Marks a frame without a timestamp (pcapng simple packet block).
const NO_TS: i64 = i64::MIN;

/// Gives frames without a timestamp the next known one in the chunk (or 0).
fn fill_missing_ts(frames: &mut [Frame]) {
    let mut next = 0;
    for f in frames.iter_mut().rev() {
        if f.ts_ns == NO_TS {
            f.ts_ns = next;
        } else {
            next = f.ts_ns;
        }
    }
}

fn scale_ts(raw: u64, iface: Interface) -> i64 {
    let ups = iface.units_per_sec.max(1) as i128;
    let ns = raw as i128 * 1_000_000_000 / ups + iface.offset_s as i128 * 1_000_000_000;
    ns.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

fn read_prefix<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A [`Hashing`] reader with a few bytes replayed first.
pub(crate) struct PrefixedHashing {
    prefix: Vec<u8>,
    pos: usize,
    inner: Hashing<File>,
}

impl Read for PrefixedHashing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.prefix.len() {
            let n = (self.prefix.len() - self.pos).min(buf.len());
            buf[..n].copy_from_slice(&self.prefix[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

/// The name of a link type, as the manifest shows it.
pub fn link_name(link: u32) -> String {
    match link {
        0 => "null".into(),
        1 => "ethernet".into(),
        101 | 12 | 14 => "raw".into(),
        108 => "loop".into(),
        113 => "linux_sll".into(),
        228 => "ipv4".into(),
        229 => "ipv6".into(),
        239 => "nflog".into(),
        276 => "linux_sll2".into(),
        other => format!("{:?} ({other})", DataLink::from(other)).to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Options in either byte order: a comment (padded), then isb_ifdrop;
    /// the end-of-options marker or a cut-short option ends the search.
    #[test]
    fn isb_ifdrop_reads_either_byte_order() {
        let opts = |big: bool| {
            let u16b = |v: u16| if big { v.to_be_bytes() } else { v.to_le_bytes() };
            let u64b = |v: u64| if big { v.to_be_bytes() } else { v.to_le_bytes() };
            let mut o = Vec::new();
            o.extend(u16b(1).iter().chain(&u16b(3)).chain(b"abc\0"));
            o.extend(u16b(4).iter().chain(&u16b(8)).chain(&u64b(20)));
            o.extend(u16b(5).iter().chain(&u16b(8)).chain(&u64b(75_613)));
            o.extend([0, 0, 0, 0]);
            o
        };
        assert_eq!(isb_ifdrop(&opts(false), false), Some(75_613));
        assert_eq!(isb_ifdrop(&opts(true), true), Some(75_613));
        assert_eq!(isb_ifdrop(&opts(false)[..20], false), None, "no isb_ifdrop before the end");
        assert_eq!(isb_ifdrop(&opts(false)[..30], false), None, "isb_ifdrop cut short");
        assert_eq!(sum_drops(None, &[None, Some(3), Some(4)]), Some(7));
        assert_eq!(sum_drops(Some(1), &[None]), Some(1));
        assert_eq!(sum_drops(None, &[None]), None);
    }
}

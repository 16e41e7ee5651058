//! The pcapng the capture writes: a section header, one interface
//! description per captured interface (its link type: Ethernet, or raw
//! IP for tun-like devices; nanosecond timestamps),
//! enhanced packet blocks with the packet's direction, and at the end one
//! interface statistics block per interface with the file's packet and
//! drop counts (what Wireshark shows as "Dropped packets", and what
//! `trawl archive boundaries` sums per node).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::{Error, Interface, io};

/// Which way a packet went through the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Inbound,
    Outbound,
    Unknown,
}

/// Counters for one interface over one file's time: packets the kernel
/// side saw, packets it dropped (capture buffer full), and packets that
/// passed the filter and were written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IfCounts {
    pub received: u64,
    pub dropped: u64,
    pub accepted: u64,
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

fn option(out: &mut Vec<u8>, code: u16, v: &[u8]) {
    out.extend_from_slice(&code.to_le_bytes());
    out.extend_from_slice(&(v.len() as u16).to_le_bytes());
    out.extend_from_slice(v);
    out.extend(std::iter::repeat_n(0u8, (4 - v.len() % 4) % 4));
}

/// A pcapng timestamp (nanoseconds): high word, then low word.
fn timestamp(ns: u64) -> [u8; 8] {
    let mut t = [0u8; 8];
    t[..4].copy_from_slice(&((ns >> 32) as u32).to_le_bytes());
    t[4..].copy_from_slice(&(ns as u32).to_le_bytes());
    t
}

/// A pcapng file being written.
pub struct PcapNg {
    out: BufWriter<File>,
    path: PathBuf,
    /// Interface index -> interface id in this file.
    interfaces: BTreeMap<u32, u32>,
    /// Bytes written so far.
    pub written: u64,
    snaplen: u32,
}

impl PcapNg {
    /// Creates the file with an interface block for each interface
    /// (by index), in that order.
    pub fn create(path: &Path, snaplen: u32, names: &BTreeMap<u32, Interface>) -> Result<PcapNg, Error> {
        let mut out = BufWriter::with_capacity(1 << 20, File::create(path).map_err(io(path))?);
        // Section header: byte-order magic, version 1.0, unknown length,
        // and the writer.
        let mut shb = Vec::new();
        shb.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        option(&mut shb, 4, concat!("trawl ", env!("CARGO_PKG_VERSION")).as_bytes());
        option(&mut shb, 0, &[]);
        let header = block(0x0A0D_0D0A, &shb);
        out.write_all(&header).map_err(io(path))?;
        let mut f = PcapNg {
            out,
            path: path.to_path_buf(),
            interfaces: BTreeMap::new(),
            written: header.len() as u64,
            snaplen,
        };
        for (&index, iface) in names {
            f.interface(index, &iface.name, iface.link)?;
        }
        Ok(f)
    }

    fn interface(&mut self, ifindex: u32, name: &str, link: u32) -> Result<u32, Error> {
        if let Some(&id) = self.interfaces.get(&ifindex) {
            return Ok(id);
        }
        let id = self.interfaces.len() as u32;
        let mut idb = Vec::new();
        idb.extend_from_slice(&(link as u16).to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&self.snaplen.to_le_bytes());
        option(&mut idb, 2, name.as_bytes()); // if_name
        option(&mut idb, 9, &[9]); // if_tsresol: 10^-9
        option(&mut idb, 0, &[]);
        self.write(&block(1, &idb))?;
        self.interfaces.insert(ifindex, id);
        Ok(id)
    }

    fn write(&mut self, b: &[u8]) -> Result<(), Error> {
        self.written += b.len() as u64;
        self.out.write_all(b).map_err(io(&self.path))
    }

    /// One packet: its interface, real time in ns, length on the wire,
    /// direction and captured bytes.
    pub fn packet(&mut self, ifindex: u32, ts_ns: u64, len: u32, dir: Direction, data: &[u8]) -> Result<(), Error> {
        let id = match self.interfaces.get(&ifindex) {
            Some(&id) => id,
            None => self.interface(ifindex, &format!("if{ifindex}"), crate::LINKTYPE_ETHERNET)?,
        };
        let mut epb = Vec::with_capacity(36 + data.len());
        epb.extend_from_slice(&id.to_le_bytes());
        epb.extend_from_slice(&timestamp(ts_ns));
        epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
        epb.extend_from_slice(&len.max(data.len() as u32).to_le_bytes());
        epb.extend_from_slice(data);
        epb.extend(std::iter::repeat_n(0u8, (4 - data.len() % 4) % 4));
        // epb_flags: bits 0-1 are the direction (01 inbound, 10 outbound).
        let flags: u32 = match dir {
            Direction::Inbound => 1,
            Direction::Outbound => 2,
            Direction::Unknown => 0,
        };
        if flags != 0 {
            option(&mut epb, 2, &flags.to_le_bytes());
            option(&mut epb, 0, &[]);
        }
        self.write(&block(6, &epb))
    }

    /// Writes the statistics blocks (counts from `start_ns` to `end_ns`),
    /// flushes and syncs; the caller renames the file.
    pub fn finish(mut self, start_ns: u64, end_ns: u64, counts: &BTreeMap<u32, IfCounts>) -> Result<PathBuf, Error> {
        let ids: Vec<(u32, u32)> = self.interfaces.iter().map(|(&k, &v)| (k, v)).collect();
        for (ifindex, id) in ids {
            let c = counts.get(&ifindex).copied().unwrap_or_default();
            let mut isb = Vec::new();
            isb.extend_from_slice(&id.to_le_bytes());
            isb.extend_from_slice(&timestamp(end_ns));
            option(&mut isb, 2, &timestamp(start_ns)); // isb_starttime
            option(&mut isb, 3, &timestamp(end_ns)); // isb_endtime
            option(&mut isb, 4, &c.received.to_le_bytes()); // isb_ifrecv
            option(&mut isb, 5, &c.dropped.to_le_bytes()); // isb_ifdrop
            option(&mut isb, 6, &c.accepted.to_le_bytes()); // isb_filteraccept
            option(&mut isb, 0, &[]);
            self.write(&block(5, &isb))?;
        }
        self.out.flush().map_err(io(&self.path))?;
        self.out.get_ref().sync_all().map_err(io(&self.path))?;
        Ok(self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcapng::{Block, PcapNgReader};

    /// The file reads back with pcap-file: interfaces, the packet with its
    /// direction flag, and the statistics block's drop count.
    #[test]
    fn writes_packets_and_statistics_that_read_back() {
        let dir = std::env::temp_dir().join(format!("trawl-pcapng-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("t.pcapng");
        let names: BTreeMap<u32, Interface> =
            [(7, Interface { name: "eth0".into(), link: 1 }), (9, Interface { name: "wg0".into(), link: 101 })].into();
        let Ok(mut f) = PcapNg::create(&path, 65535, &names) else { panic!("create") };
        assert!(f.packet(9, 1_700_000_000_123_456_789, 60, Direction::Outbound, &[0xab; 42]).is_ok());
        let counts: BTreeMap<u32, IfCounts> = [(9, IfCounts { received: 5, dropped: 3, accepted: 1 })].into();
        assert!(f.finish(1_700_000_000_000_000_000, 1_700_000_001_000_000_000, &counts).is_ok());
        let Ok(file) = File::open(&path) else { panic!("open") };
        let Ok(mut r) = PcapNgReader::new(file) else { panic!("read") };
        let (mut idbs, mut epb, mut drops) = (Vec::new(), None, Vec::new());
        while let Some(Ok(b)) = r.next_block() {
            match b {
                Block::InterfaceDescription(i) => idbs.push((u32::from(i.linktype), i.options.len())),
                Block::EnhancedPacket(p) => {
                    epb = Some((p.interface_id, p.timestamp.as_nanos(), p.original_len, p.data.len(), p.options.len()))
                }
                Block::InterfaceStatistics(s) => drops.push((s.interface_id, format!("{:?}", s.options))),
                _ => {}
            }
        }
        assert_eq!(idbs, [(1, 2), (101, 2)], "Ethernet, raw IP; each with its name and resolution");
        assert_eq!(epb, Some((1, 1_700_000_000_123_456_789, 60, 42, 1)));
        assert_eq!(drops.len(), 2);
        assert!(drops[1].1.contains("IsbIfDrop(3)") && drops[1].1.contains("IsbIfRecv(5)"), "{drops:?}");
        assert!(drops[0].1.contains("IsbIfDrop(0)"), "{drops:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

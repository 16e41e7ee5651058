//! Writing pcapng: one interface per (node, link type), named after the
//! node, with nanosecond timestamps and optional packet comments, through
//! `pcap-file`'s block writer.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use pcap_file::DataLink;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption};
use pcap_file::pcapng::blocks::interface_statistics::{InterfaceStatisticsBlock, InterfaceStatisticsOption};

use crate::Error;

/// A pcapng file being written.
pub struct PcapngOut<W: Write> {
    writer: PcapNgWriter<W>,
    path: PathBuf,
    interfaces: Vec<(String, u32)>,
}

impl<W: Write> PcapngOut<W> {
    /// Starts the file (section header block).
    pub fn new(w: W, path: &Path) -> Result<PcapngOut<W>, Error> {
        let writer =
            PcapNgWriter::new(w).map_err(|e| Error::Output { path: path.to_path_buf(), detail: e.to_string() })?;
        Ok(PcapngOut { writer, path: path.to_path_buf(), interfaces: Vec::new() })
    }

    fn out(&self, e: pcap_file::PcapError) -> Error {
        Error::Output { path: self.path.clone(), detail: e.to_string() }
    }

    fn interface(&mut self, node: &str, link: u32) -> Result<u32, Error> {
        if let Some(i) = self.interfaces.iter().position(|(n, l)| n == node && *l == link) {
            return Ok(i as u32);
        }
        let idb = InterfaceDescriptionBlock {
            linktype: DataLink::from(link),
            snaplen: 0,
            options: vec![
                InterfaceDescriptionOption::IfName(Cow::Owned(node.to_string())),
                InterfaceDescriptionOption::IfTsResol(9),
            ],
        };
        self.writer.write_pcapng_block(idb).map_err(|e| self.out(e))?;
        self.interfaces.push((node.to_string(), link));
        Ok((self.interfaces.len() - 1) as u32)
    }

    /// Writes one packet, seen on `node`, with an optional comment.
    pub fn packet(
        &mut self,
        node: &str,
        link: u32,
        ts_ns: i64,
        wire_len: u32,
        data: &[u8],
        comment: Option<String>,
    ) -> Result<(), Error> {
        let interface_id = self.interface(node, link)?;
        let epb = EnhancedPacketBlock {
            interface_id,
            timestamp: Duration::from_nanos(ts_ns.max(0) as u64),
            original_len: wire_len.max(data.len() as u32),
            data: Cow::Borrowed(data),
            options: comment.map(|c| vec![EnhancedPacketOption::Comment(Cow::Owned(c))]).unwrap_or_default(),
        };
        self.writer.write_pcapng_block(epb).map_err(|e| self.out(e))?;
        Ok(())
    }

    /// Says that the capture of `node` dropped `dropped` packets: an
    /// interface statistics block (`isb_ifdrop`) on the node's first
    /// interface, stamped `ts_ns`, which `trawl analyze` and Wireshark
    /// read. Nothing is written for a node without packets here (no
    /// interface to name).
    pub fn dropped(&mut self, node: &str, ts_ns: i64, dropped: u64) -> Result<(), Error> {
        let Some(i) = self.interfaces.iter().position(|(n, _)| n == node) else { return Ok(()) };
        // pcapng stores the timestamp as its high then its low 32 bits,
        // each in the section's byte order; pcap-file writes one u64.
        let ts = ts_ns.max(0) as u64;
        let timestamp =
            if self.writer.section().endianness == pcap_file::Endianness::Big { ts } else { ts.rotate_left(32) };
        let isb = InterfaceStatisticsBlock {
            interface_id: i as u32,
            timestamp,
            options: vec![InterfaceStatisticsOption::IsbIfDrop(dropped)],
        };
        self.writer.write_pcapng_block(isb).map_err(|e| self.out(e))?;
        Ok(())
    }

    /// The underlying writer and the file's path.
    pub fn into_inner(self) -> (W, PathBuf) {
        (self.writer.into_inner(), self.path)
    }
}

impl PcapngOut<BufWriter<File>> {
    /// Flushes the file and syncs it to disk.
    pub fn finish(self) -> Result<(), Error> {
        let (w, path) = self.into_inner();
        let f = w.into_inner().map_err(|e| Error::io(&path, e.into_error()))?;
        f.sync_all().map_err(|e| Error::io(&path, e))
    }
}

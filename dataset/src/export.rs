//! PCAP export from a dataset: the packet-index rows a query chose
//! (`packets` of the dataset: node, file sequence number, byte offset),
//! read from the captures themselves: the copy uploaded into the dataset
//! (`trawl index --upload-captures`), else the node's file in a local
//! archive (`--archive DIR`, one folder per node). A capture found in
//! neither is named (node and file) in the error.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use object_store::ObjectStoreExt;
use trawl_snapshot::export::{ExportSummary, Sel, bpf_filter, write_atomically};

use crate::Error;
use crate::location::Location;
use crate::records::{FileRecord, get_record};

/// One packet to export: the node it was captured on and where it lies.
#[derive(Debug, Clone)]
pub struct PacketRef {
    pub node: String,
    pub sel: Sel,
}

/// Where a capture's bytes come from.
enum Source {
    Uploaded(bytes::Bytes),
    Local(std::fs::File, PathBuf),
}

impl Source {
    fn read(&self, offset: u64, len: u32, buf: &mut Vec<u8>) -> Result<(), String> {
        buf.resize(len as usize, 0);
        match self {
            Source::Uploaded(b) => {
                let (s, e) = (offset as usize, offset as usize + len as usize);
                let part = b.get(s..e).ok_or("the uploaded capture is shorter than its packet index says")?;
                buf.copy_from_slice(part);
                Ok(())
            }
            Source::Local(f, p) => f.read_exact_at(buf, offset).map_err(|e| format!("{}: {e}", p.display())),
        }
    }
}

/// Exports `packets` (in the order given: capture order) into a pcapng
/// file at `out`, written to a temporary name and renamed when complete.
pub fn export(
    loc: &Location,
    archive: Option<&Path>,
    packets: &[PacketRef],
    bpf: Option<&str>,
    out: &Path,
) -> Result<ExportSummary, Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::storage(loc, format!("starting the I/O runtime: {e}")))?;
    // The captures the packets lie in, each opened once.
    let mut wanted: BTreeMap<(String, u32), ()> = BTreeMap::new();
    for p in packets {
        wanted.insert((p.node.clone(), p.sel.file), ());
    }
    // By node, then file: found per packet without building a key.
    let mut sources: HashMap<String, HashMap<u32, Source>> = HashMap::new();
    for (node, seq) in wanted.into_keys() {
        let rec: FileRecord = rt.block_on(get_record(loc, &node, seq))?;
        let local = archive
            .map(|a| a.join(&node).join(&rec.name))
            .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() == rec.size));
        let src = match (local, &rec.upload) {
            (Some(p), _) => {
                let f = std::fs::File::open(&p).map_err(|e| Error::Config(format!("{}: {e}", p.display())))?;
                Source::Local(f, p)
            }
            (None, Some(up)) => {
                let path = object_store::path::Path::from(up.as_str());
                let bytes = rt
                    .block_on(async { loc.store.get(&path).await?.bytes().await })
                    .map_err(|e| Error::storage(loc, format!("{up}: {e}")))?;
                Source::Uploaded(bytes)
            }
            (None, None) => {
                let hint = archive.map_or("give --archive DIR (one folder per node)".to_string(), |a| {
                    format!("it is not in {} either", a.join(&node).display())
                });
                return Err(Error::Config(format!(
                    "the packets lie in capture {} of node {node} (file {seq}), which was not uploaded (trawl index --upload-captures); {hint}",
                    rec.name
                )));
            }
        };
        sources.entry(node).or_default().insert(seq, src);
    }
    let bpf = bpf_filter(bpf).map_err(|e| Error::Config(e.to_string()))?;
    let mut buf = Vec::new();
    write_atomically(out, bpf, None, |sink| {
        for p in packets {
            let src = sources.get(p.node.as_str()).and_then(|f| f.get(&p.sel.file)).ok_or_else(|| {
                trawl_snapshot::Error::Usage(format!("no capture for node {} file {}", p.node, p.sel.file))
            })?;
            src.read(p.sel.offset, p.sel.caplen, &mut buf).map_err(trawl_snapshot::Error::Usage)?;
            sink.put(&p.node, &p.sel, &buf)?;
        }
        Ok(packets.len() as u64)
    })
    .map_err(|e| Error::Config(e.to_string()))
}

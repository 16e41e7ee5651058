//! The dataset's own records, beside the Delta tables under `_trawl/`:
//!
//! - `_trawl/nodes/NNNNNN.json`: node numbers. A node claims the next
//!   free number by creating its file with put-if-absent, so two nodes
//!   never share one; ids carry it ([`crate::layout::NODE_SHIFT`]).
//! - `_trawl/index/NODE/SEQ.json`: one [`FileRecord`] per indexed
//!   capture file, written before the file's rows are committed. A
//!   record counts only once every table's Delta log holds the node's
//!   transaction with that sequence number.

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::location::Location;

/// What the index knows of one capture file of a node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileRecord {
    /// The node's sequence number of the file (`packets.file_index`).
    pub seq: u32,
    /// The file's name in the node's archive folder.
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub frames: u64,
    pub first_ns: Option<i64>,
    pub last_ns: Option<i64>,
    /// How the file was damaged, when it was (it was analysed up to there).
    pub damage: Option<String>,
    /// Ordinal of the file's first frame and of the frame after its last.
    pub first_ordinal: u64,
    pub next_ordinal: u64,
    /// Timeout sweep state before and after the file.
    pub sweep_before: Option<i64>,
    pub sweep_after: Option<i64>,
    /// The next `api_calls.id` after the file's rows.
    pub next_call_id: u64,
    /// Where an indexer that restarts after this file begins reading:
    /// the file holding the first packet of the oldest connection still
    /// open (files before it need not be read again).
    pub resume_seq: u32,
    /// Every connection was closed at this file's end (the archive was
    /// complete): a later file starts afresh.
    pub closed: bool,
    /// No file was read for this record: it commits the rows of the
    /// connections a batch run closed at the archive's end, after the
    /// last file (`name`) was committed by an earlier run.
    #[serde(default)]
    pub closing: bool,
    /// Rows this file added to each table.
    pub rows: BTreeMap<String, u64>,
    /// Where the capture was uploaded inside the dataset
    /// (`--upload-captures`), relative to the dataset root.
    pub upload: Option<String>,
}

/// How many node entries [`nodes`] reads at once.
const NODE_READS: usize = 16;

pub(crate) fn storage_err(loc: &Location, what: &str, e: impl std::fmt::Display) -> Error {
    Error::storage(loc, format!("{what}: {e}"))
}

fn record_path(node: &str, seq: u32) -> Path {
    Path::from(format!("_trawl/index/{node}/{seq:010}.json"))
}

/// Writes a file's record (before its rows are committed).
pub async fn put_record(loc: &Location, node: &str, rec: &FileRecord) -> Result<(), Error> {
    let path = record_path(node, rec.seq);
    let json = serde_json::to_vec_pretty(rec).map_err(|e| storage_err(loc, path.as_ref(), e))?;
    loc.store.put(&path, PutPayload::from(json)).await.map_err(|e| storage_err(loc, path.as_ref(), e))?;
    Ok(())
}

/// Reads a file's record.
pub async fn get_record(loc: &Location, node: &str, seq: u32) -> Result<FileRecord, Error> {
    get_json(loc, &record_path(node, seq), "a file record").await
}

/// Reads the JSON object at `path`, which should be `what`.
async fn get_json<T: serde::de::DeserializeOwned>(loc: &Location, path: &Path, what: &str) -> Result<T, Error> {
    let bytes = loc
        .store
        .get(path)
        .await
        .map_err(|e| storage_err(loc, path.as_ref(), e))?
        .bytes()
        .await
        .map_err(|e| storage_err(loc, path.as_ref(), e))?;
    serde_json::from_slice(&bytes).map_err(|e| storage_err(loc, path.as_ref(), format!("not {what}: {e}")))
}

/// The records of `node` with sequence numbers in `seqs`, in order.
pub async fn get_records(
    loc: &Location,
    node: &str,
    seqs: std::ops::RangeInclusive<u32>,
) -> Result<Vec<FileRecord>, Error> {
    let mut out = Vec::new();
    for s in seqs {
        out.push(get_record(loc, node, s).await?);
    }
    Ok(out)
}

#[derive(Serialize, Deserialize)]
struct NodeEntry {
    node: String,
}

/// The dataset's nodes and their numbers.
pub async fn nodes(loc: &Location) -> Result<BTreeMap<String, u32>, Error> {
    let prefix = Path::from("_trawl/nodes");
    let metas: Vec<_> =
        loc.store.list(Some(&prefix)).try_collect().await.map_err(|e| storage_err(loc, prefix.as_ref(), e))?;
    let numbered = metas.into_iter().filter_map(|m| {
        let n = m.location.filename()?.strip_suffix(".json")?.parse::<u32>().ok()?;
        Some((n, m.location))
    });
    // One read per node entry, several at once (each is a request on
    // object storage), kept in listing order.
    let entries: Vec<(u32, NodeEntry)> = futures::stream::iter(numbered)
        .map(|(n, path)| async move { get_json::<NodeEntry>(loc, &path, "a node entry").await.map(|e| (n, e)) })
        .buffered(NODE_READS)
        .try_collect()
        .await?;
    let mut out = BTreeMap::new();
    for (n, e) in entries {
        out.entry(e.node).or_insert(n);
    }
    Ok(out)
}

/// The number of `node`, claiming the next free one if it has none.
pub async fn node_number(loc: &Location, node: &str) -> Result<u32, Error> {
    loop {
        let known = nodes(loc).await?;
        if let Some(n) = known.get(node) {
            return Ok(*n);
        }
        let next = known.values().max().map_or(1, |m| m + 1);
        if next >= 1 << (63 - crate::layout::NODE_SHIFT) {
            return Err(Error::storage(loc, "no node number left"));
        }
        let path = Path::from(format!("_trawl/nodes/{next:06}.json"));
        let body = serde_json::to_vec(&NodeEntry { node: node.to_string() }).unwrap_or_default();
        let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
        match loc.store.put_opts(&path, PutPayload::from(body), opts).await {
            Ok(_) => return Ok(next),
            // Another node took it first: look again.
            Err(object_store::Error::AlreadyExists { .. }) => continue,
            Err(e) => return Err(storage_err(loc, path.as_ref(), e)),
        }
    }
}

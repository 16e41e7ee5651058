//! What a reader of the dataset sees: the data files of every table that
//! the Delta logs hold, less those of a commit not yet in every table
//! (a node's commit is whole once each table has its transaction), with
//! each file's node, hour, row count and capture-time range.

use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, TimeUnit};
use futures::stream::{self, StreamExt, TryStreamExt};

use crate::Error;
use crate::layout::{SEQ_TAG, TABLES};
use crate::location::Location;
use crate::records;
use crate::tables;

/// How many nodes' watermarks [`load`] looks up at once.
const WATERMARK_LOOKUPS: usize = 16;

/// The precision of timestamps in Delta file statistics.
const STATS_PRECISION_NS: i64 = 1_000_000;

/// One committed data file.
#[derive(Debug, Clone, PartialEq)]
pub struct DataFile {
    pub table: &'static str,
    /// Relative to the dataset root (`api_calls/node=a/hour=…/part-….parquet`).
    pub path: String,
    pub size: u64,
    pub rows: Option<u64>,
    pub node: String,
    pub hour: String,
    /// The node's file sequence number it was committed with (none for
    /// files written by compaction).
    pub seq: Option<u32>,
    /// Capture time range of its `timestamp` column (ns since the epoch;
    /// bounds, to the statistics' millisecond).
    pub min_ns: Option<i64>,
    pub max_ns: Option<i64>,
}

/// A node of the dataset.
#[derive(Debug, Clone)]
pub struct NodeView {
    pub name: String,
    pub number: u32,
    /// The last file sequence number committed in full
    /// ([`tables::watermark`]).
    pub watermark: Option<u32>,
}

/// The dataset as of one moment.
#[derive(Debug, Clone)]
pub struct View {
    pub loc: Location,
    pub files: Vec<DataFile>,
    pub nodes: Vec<NodeView>,
    /// Capture time of the oldest and newest row.
    pub first_ns: Option<i64>,
    pub last_ns: Option<i64>,
    /// Each table's Delta version.
    pub versions: Vec<(&'static str, u64)>,
}

impl View {
    /// The files of one table.
    pub fn table_files(&self, table: &str) -> impl Iterator<Item = &DataFile> {
        self.files.iter().filter(move |f| f.table == table)
    }
}

fn column<'a>(b: &'a RecordBatch, name: &str) -> Option<&'a ArrayRef> {
    b.column_by_name(name)
}

fn strings(c: Option<&ArrayRef>) -> Option<StringArray> {
    let c = arrow_cast::cast(c?, &DataType::Utf8).ok()?;
    c.as_any().downcast_ref::<StringArray>().cloned()
}

fn ints(c: Option<&ArrayRef>, ts: bool) -> Option<Int64Array> {
    let c = c?;
    let c = if ts { arrow_cast::cast(c, &DataType::Timestamp(TimeUnit::Nanosecond, None)).ok()? } else { c.clone() };
    let c = arrow_cast::cast(&c, &DataType::Int64).ok()?;
    c.as_any().downcast_ref::<Int64Array>().cloned()
}

fn get_i(a: &Option<Int64Array>, i: usize) -> Option<i64> {
    a.as_ref().filter(|a| a.is_valid(i)).map(|a| a.value(i))
}

fn get_s(a: &Option<StringArray>, i: usize) -> Option<String> {
    a.as_ref().filter(|a| a.is_valid(i)).map(|a| a.value(i).to_string())
}

/// True when `path` names a dataset: an object-store URL, or a directory
/// `trawl index` wrote (it holds `_trawl/`).
pub fn is_dataset(path: &std::path::Path) -> bool {
    let s = path.to_string_lossy();
    crate::location::is_url(&s) || path.join("_trawl").is_dir()
}

/// Reads what the dataset at `loc` holds now.
pub async fn load(loc: &Location) -> Result<View, Error> {
    let delta = tables::open(loc, false).await?;
    let mut nodes = Vec::new();
    // The newest frame is exact in the record of each node's last whole file.
    let mut last_ns = None;
    // A node's watermark is a replay of each table's log (delta-rs answers
    // one application's transaction at a time, on its blocking pool): the
    // nodes' lookups run side by side, in node order.
    let marks: Vec<_> = stream::iter(records::nodes(loc).await?)
        .map(|(name, number)| {
            let delta = &delta;
            async move { tables::watermark(loc, delta, &name).await.map(|last| (name, number, last)) }
        })
        .buffered(WATERMARK_LOOKUPS)
        .try_collect()
        .await?;
    for (name, number, last) in marks {
        last_ns = last_ns.max(last.as_ref().and_then(|r| r.last_ns));
        nodes.push(NodeView { name, number, watermark: last.map(|r| r.seq) });
    }
    let mut files = Vec::new();
    let mut versions = Vec::new();
    for ((t, d), expected) in delta.iter().zip(TABLES) {
        debug_assert_eq!(t.name, expected.name);
        let snap = d.snapshot().map_err(|e| Error::storage(loc, format!("{}: {e}", t.name)))?;
        versions.push((t.name, snap.version()));
        let b = snap.add_actions_table(true).map_err(|e| Error::storage(loc, format!("{}: {e}", t.name)))?;
        let path = strings(column(&b, "path"));
        let size = ints(column(&b, "size_bytes"), false);
        let rows = ints(column(&b, "num_records"), false);
        let node = strings(column(&b, "partition.node"));
        let hour = strings(column(&b, "partition.hour"));
        let seq = strings(column(&b, &format!("tags.{SEQ_TAG}")));
        let min = ints(column(&b, "min.timestamp"), true);
        let max = ints(column(&b, "max.timestamp"), true);
        for i in 0..b.num_rows() {
            let Some(p) = get_s(&path, i) else { continue };
            let node_name = get_s(&node, i).unwrap_or_default();
            let seq = get_s(&seq, i).and_then(|s| s.parse::<u32>().ok());
            // A commit not yet in every table stays hidden.
            let whole = match (seq, nodes.iter().find(|n| n.name == node_name)) {
                (Some(s), Some(n)) => n.watermark.is_some_and(|w| s <= w),
                (Some(_), None) => false,
                (None, _) => true,
            };
            if !whole {
                continue;
            }
            files.push(DataFile {
                table: t.name,
                path: format!("{}/{}", t.name, p),
                size: get_i(&size, i).unwrap_or(0).max(0) as u64,
                rows: get_i(&rows, i).map(|r| r.max(0) as u64),
                node: node_name,
                hour: get_s(&hour, i).unwrap_or_default(),
                seq,
                min_ns: get_i(&min, i),
                // Delta statistics keep timestamps to the millisecond, cut
                // down: the true maximum may lie up to 1 ms later.
                max_ns: get_i(&max, i).map(|m| m.saturating_add(STATS_PRECISION_NS - 1)),
            });
        }
    }
    // Packets span every frame: their range is the dataset's.
    let packets = files.iter().filter(|f| f.table == trawl_schemas::PACKETS.name);
    let first_ns = packets.clone().filter_map(|f| f.min_ns).min();
    let last_ns = last_ns.or_else(|| packets.filter_map(|f| f.max_ns).max());
    files.sort_by(|a, b| (a.table, &a.node, a.seq, &a.hour, &a.path).cmp(&(b.table, &b.node, b.seq, &b.hour, &b.path)));
    Ok(View { loc: loc.clone(), files, nodes, first_ns, last_ns, versions })
}

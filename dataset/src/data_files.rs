//! A dataset's data files: one table's rows of one partition (`node`,
//! `hour`), written as Parquet, and the Delta `add` action that names
//! the file with its statistics.
//!
//! trawl writes them itself rather than through deltalake's
//! `RecordBatchWriter`. That writer encodes through parquet's async
//! writer into a multipart upload: each row group is copied into a fresh
//! buffer, then into upload parts, which on a node's local disk cost
//! more CPU than the analysis's own snapshot files (docs/performance.md
//! has the figures). Here a local dataset's file is written in place, as
//! `trawl analyze` writes a snapshot's (not referenced, so not seen,
//! until its commit), and an object store's is encoded into memory and
//! sent in one request, or in parts above [`PART_BYTES`].
//!
//! The statistics are Delta's: the row count, and for each of the first
//! `delta.dataSkippingNumIndexedCols` columns (32 unless the table says
//! otherwise) that is not nested, its null count and, but for bodies,
//! its minimum and maximum from the Parquet footer. Capture times are
//! written to the millisecond, as the Delta protocol asks.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::sync::Arc;

use arrow_array::RecordBatch;
use deltalake_core::kernel::Add;
use deltalake_core::protocol::{ColumnCountStat, ColumnValueStat, Stats};
use object_store::ObjectStore;
use object_store::path::Path;
use parquet::arrow::ArrowWriter;
use parquet::basic::{LogicalType, TimeUnit};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::properties::WriterProperties;
use parquet::file::statistics::Statistics;
use serde_json::Value;
use trawl_schemas::Table;

use crate::Error;
use crate::layout::{HOUR, NODE, file_schema};
use crate::location::Location;

/// Above this size a file goes to an object store in parts.
pub const PART_BYTES: usize = 10 << 20;

/// A file bound for an object store is kept in chunks of this size:
/// one growing buffer would be copied at each doubling into freshly
/// zeroed pages, where chunks this small are reused by the allocator
/// (and sent as they are: a payload is a list of chunks).
const CHUNK_BYTES: usize = 64 << 10;

/// Columns with statistics when the table does not say (Delta's default).
const DEFAULT_INDEXED_COLUMNS: usize = 32;

/// The table property that says how many columns have statistics.
const INDEXED_COLUMNS_PROPERTY: &str = "delta.dataSkippingNumIndexedCols";

/// Where a file's bytes go while it is written.
enum Target {
    /// A local dataset: the file itself.
    File(File),
    /// An object store: memory, sent when the file is finished.
    Memory(Chunks),
}

/// Bytes in chunks of [`CHUNK_BYTES`].
#[derive(Default)]
struct Chunks {
    full: Vec<bytes::Bytes>,
    open: Vec<u8>,
}

impl Chunks {
    fn push(&mut self, mut buf: &[u8]) {
        while !buf.is_empty() {
            if self.open.capacity() == 0 {
                self.open.reserve_exact(CHUNK_BYTES);
            }
            let n = (CHUNK_BYTES - self.open.len()).min(buf.len());
            self.open.extend_from_slice(&buf[..n]);
            buf = &buf[n..];
            if self.open.len() == CHUNK_BYTES {
                self.full.push(std::mem::take(&mut self.open).into());
            }
        }
    }

    /// Every chunk, in order.
    fn take(&mut self) -> Vec<bytes::Bytes> {
        if !self.open.is_empty() {
            self.full.push(std::mem::take(&mut self.open).into());
        }
        std::mem::take(&mut self.full)
    }
}

impl Write for Target {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Target::File(f) => f.write(buf),
            Target::Memory(m) => {
                m.push(buf);
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Target::File(f) => f.flush(),
            Target::Memory(_) => Ok(()),
        }
    }
}

/// One data file being written.
pub struct DataFile {
    /// Relative to the table's root: `node=N/hour=H/part-….parquet`.
    rel: String,
    /// Relative to the dataset's root: `TABLE/` then `rel`.
    path: Path,
    node: String,
    hour: String,
    writer: ArrowWriter<Target>,
}

impl DataFile {
    /// Starts a file of `table`'s rows for the partition (`node`, `hour`).
    pub fn create(
        loc: &Location,
        table: &Table,
        node: &str,
        hour: &str,
        props: &WriterProperties,
    ) -> Result<DataFile, Error> {
        // Node names are letters, digits, '-', '_' and '.', hours are
        // `2026-12-07T14`: nothing in the path needs escaping.
        let dir = format!("{NODE}={node}/{HOUR}={hour}");
        let rel = format!("{dir}/part-{}.zstd.parquet", uuid::Uuid::new_v4().simple());
        let path = Path::from(format!("{}/{rel}", table.name));
        let target = match &loc.local {
            Some(root) => {
                let d = root.join(table.name).join(&dir);
                std::fs::create_dir_all(&d).map_err(|e| Error::storage(loc, format!("{}: {e}", d.display())))?;
                let p = root.join(table.name).join(&rel);
                Target::File(File::create(&p).map_err(|e| Error::storage(loc, format!("{}: {e}", p.display())))?)
            }
            None => Target::Memory(Chunks::default()),
        };
        let writer = ArrowWriter::try_new(target, file_schema(table), Some(props.clone()))
            .map_err(|e| Error::storage(loc, format!("{path}: {e}")))?;
        Ok(DataFile { rel, path, node: node.to_string(), hour: hour.to_string(), writer })
    }

    /// The partition's hour.
    pub fn hour(&self) -> &str {
        &self.hour
    }

    /// Appends rows (in the stored types, without the partition columns).
    pub fn write(&mut self, loc: &Location, batch: &RecordBatch) -> Result<(), Error> {
        self.writer.write(batch).map_err(|e| Error::storage(loc, format!("{}: {e}", self.path)))
    }

    /// Finishes the file (sent to the store when it is not local) and
    /// returns its `add` action; `indexed` is the number of columns
    /// with statistics ([`indexed_columns`]).
    pub async fn finish(mut self, loc: &Location, indexed: usize) -> Result<Add, Error> {
        let err = |e: &dyn std::fmt::Display| Error::storage(loc, format!("{}: {e}", self.path));
        let meta = self.writer.finish().map_err(|e| err(&e))?;
        // Every byte, footer included, went through the writer's count.
        let size = self.writer.bytes_written();
        if let Target::Memory(m) = self.writer.inner_mut() {
            put(&loc.store, &self.path, m.take()).await.map_err(|e| err(&e))?;
        }
        let stats = serde_json::to_string(&stats(&meta, indexed)).map_err(|e| err(&e))?;
        Ok(Add {
            path: self.rel,
            size: i64::try_from(size).unwrap_or(i64::MAX),
            partition_values: [(NODE.to_string(), Some(self.node)), (HOUR.to_string(), Some(self.hour))]
                .into_iter()
                .collect(),
            // The time the file was written: Delta's `modificationTime`
            // (vacuum's clock), not a capture time.
            modification_time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            data_change: true,
            stats: Some(stats),
            tags: None,
            deletion_vector: None,
            base_row_id: None,
            default_row_commit_version: None,
            clustering_provider: None,
        })
    }
}

/// One put, or a multipart upload of [`PART_BYTES`] parts above that.
async fn put(store: &Arc<dyn ObjectStore>, path: &Path, chunks: Vec<bytes::Bytes>) -> object_store::Result<()> {
    use object_store::{ObjectStoreExt, PutPayload};
    let per_part = PART_BYTES / CHUNK_BYTES;
    if chunks.len() <= per_part {
        return store.put(path, chunks.into_iter().collect::<PutPayload>()).await.map(|_| ());
    }
    let mut upload = store.put_multipart(path).await?;
    for part in chunks.chunks(per_part) {
        if let Err(e) = upload.put_part(part.iter().cloned().collect::<PutPayload>()).await {
            let _ = upload.abort().await;
            return Err(e);
        }
    }
    upload.complete().await.map(|_| ())
}

/// How many columns of a table have statistics: the table's
/// `delta.dataSkippingNumIndexedCols` (-1 for all), else 32.
pub fn indexed_columns(configuration: &HashMap<String, String>) -> usize {
    match configuration.get(INDEXED_COLUMNS_PROPERTY).and_then(|v| v.parse::<i64>().ok()) {
        Some(n) if n < 0 => usize::MAX,
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
        None => DEFAULT_INDEXED_COLUMNS,
    }
}

/// Delta statistics of a written file, from its Parquet footer.
fn stats(meta: &ParquetMetaData, indexed: usize) -> Stats {
    let mut out = Stats {
        num_records: meta.file_metadata().num_rows(),
        min_values: HashMap::new(),
        max_values: HashMap::new(),
        null_count: HashMap::new(),
    };
    let schema = meta.file_metadata().schema_descr();
    let mut tops = 0usize;
    let mut last_top = None;
    for (i, col) in schema.columns().iter().enumerate() {
        let top = col.path().parts().first().map_or("", String::as_str);
        if last_top != Some(top) {
            last_top = Some(top);
            tops += 1;
        }
        if tops > indexed {
            break;
        }
        // Maps and lists (repeated leaves) have no Delta statistics.
        if col.max_rep_level() > 0 || col.path().parts().len() != 1 {
            continue;
        }
        let timestamp = match col.logical_type_ref() {
            Some(LogicalType::Timestamp(t)) => Some(&t.unit),
            _ => None,
        };
        let text = matches!(col.logical_type_ref(), Some(LogicalType::String));
        let mut nulls = 0i64;
        let (mut lo, mut hi) = (None, None);
        let (mut counted, mut bounded) = (true, true);
        for rg in meta.row_groups() {
            // Bodies are written without statistics: they get none here.
            let Some((s, n)) = rg.column(i).statistics().and_then(|s| Some((s, s.null_count_opt()?))) else {
                counted = false;
                break;
            };
            nulls += i64::try_from(n).unwrap_or(i64::MAX);
            let (min, max) = (bound(s, timestamp, text, true), bound(s, timestamp, text, false));
            if min.is_none() || max.is_none() {
                // Bounds are missing when a row group is all null; any
                // other gap leaves the file's bounds unknown.
                bounded &= u64::try_from(rg.num_rows()).is_ok_and(|r| r == n);
            }
            lo = pick(lo, min, true);
            hi = pick(hi, max, false);
        }
        if !counted {
            continue;
        }
        out.null_count.insert(top.to_string(), ColumnCountStat::Value(nulls));
        if let (true, Some(lo), Some(hi)) = (bounded, lo, hi) {
            out.min_values.insert(top.to_string(), ColumnValueStat::Value(lo.json()));
            out.max_values.insert(top.to_string(), ColumnValueStat::Value(hi.json()));
        }
    }
    out
}

/// A column bound, comparable within its column.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Bound {
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Microseconds since the epoch (UTC).
    Micros(i64),
    Text(String),
}

impl Bound {
    fn json(self) -> Value {
        match self {
            Bound::Bool(b) => Value::Bool(b),
            Bound::Int(i) => Value::from(i),
            Bound::Float(f) => Value::from(f),
            Bound::Micros(us) => Value::String(millis_rfc3339(us)),
            Bound::Text(s) => Value::String(s),
        }
    }
}

/// The lower (`min`) or higher of two bounds.
fn pick(a: Option<Bound>, b: Option<Bound>, min: bool) -> Option<Bound> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if (a < b) == min { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// A row group's minimum or maximum of one column. Text bounds that
/// Parquet shortened are still bounds (the maximum is rounded up).
fn bound(s: &Statistics, timestamp: Option<&TimeUnit>, text: bool, min: bool) -> Option<Bound> {
    fn side<T: Copy>(lo: Option<&T>, hi: Option<&T>, min: bool) -> Option<T> {
        if min { lo.copied() } else { hi.copied() }
    }
    Some(match s {
        Statistics::Boolean(v) => Bound::Bool(side(v.min_opt(), v.max_opt(), min)?),
        Statistics::Int32(v) => Bound::Int(i64::from(side(v.min_opt(), v.max_opt(), min)?)),
        Statistics::Int64(v) => {
            let x = side(v.min_opt(), v.max_opt(), min)?;
            match timestamp {
                Some(TimeUnit::MILLIS) => Bound::Micros(x.saturating_mul(1000)),
                Some(TimeUnit::MICROS) => Bound::Micros(x),
                Some(TimeUnit::NANOS) => Bound::Micros(x.div_euclid(1000)),
                None => Bound::Int(x),
            }
        }
        Statistics::Double(v) => Bound::Float(side(v.min_opt(), v.max_opt(), min)?),
        Statistics::ByteArray(v) if text => {
            let b = if min { v.min_opt() } else { v.max_opt() }?;
            Bound::Text(std::str::from_utf8(b.data()).ok()?.to_string())
        }
        _ => return None,
    })
}

/// `2026-12-07T14:02:44.135Z`: a time in microseconds, to the
/// millisecond below (the Delta protocol's statistics).
fn millis_rfc3339(us: i64) -> String {
    let s = trawl_schemas::time::rfc3339(us.div_euclid(1000).saturating_mul(1_000_000));
    // `rfc3339` writes nine digits: drop the last six.
    match s.get(..s.len().saturating_sub(7)) {
        Some(head) => format!("{head}Z"),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_times_are_written_to_the_millisecond_below() {
        assert_eq!(millis_rfc3339(1_765_000_000_135_999), "2025-12-06T05:46:40.135Z");
        assert_eq!(millis_rfc3339(0), "1970-01-01T00:00:00.000Z");
    }

    /// A file of ints, text, capture times, a body without bounds and a
    /// map: a row group of three rows, then one of two all-null rows.
    #[test]
    fn statistics_come_from_the_footer() {
        use arrow_array::builder::{MapBuilder, StringBuilder};
        use arrow_array::{ArrayRef, BinaryArray, Int64Array, StringArray, TimestampMicrosecondArray};
        use arrow_schema::{DataType, Field, Schema, TimeUnit as ArrowUnit};
        use parquet::file::properties::EnabledStatistics;
        use parquet::schema::types::ColumnPath;

        let mut map = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        for _ in 0..3 {
            map.keys().append_value("k");
            map.values().append_value("v");
            map.append(true).expect("map");
        }
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![Some(7), None, Some(-3)])),
            Arc::new(StringArray::from(vec![Some("GET"), Some("POST"), None])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![
                    1_765_000_000_135_999,
                    1_765_000_000_000_001,
                    1_765_000_001_000_000,
                ])
                .with_timezone("UTC"),
            ),
            Arc::new(BinaryArray::from(vec![&b"a"[..], b"b", b"c"])),
            Arc::new(map.finish()),
        ];
        let schema = Arc::new(Schema::new(
            cols.iter()
                .zip(["n", "method", "timestamp", "body", "headers"])
                .map(|(c, name)| Field::new(name, c.data_type().clone(), true))
                .collect::<Vec<_>>(),
        ));
        assert!(matches!(schema.field(2).data_type(), DataType::Timestamp(ArrowUnit::Microsecond, _)));
        let batch = RecordBatch::try_new(schema.clone(), cols).expect("batch");
        let nulls = RecordBatch::try_new(
            schema.clone(),
            schema.fields().iter().map(|f| arrow_array::new_null_array(f.data_type(), 2)).collect(),
        )
        .expect("nulls");
        let props = WriterProperties::builder()
            .set_column_statistics_enabled(ColumnPath::from("body"), EnabledStatistics::None)
            .build();
        let mut w = ArrowWriter::try_new(Vec::new(), schema, Some(props)).expect("writer");
        w.write(&batch).expect("write");
        w.flush().expect("row group");
        w.write(&nulls).expect("write");
        let meta = w.close().expect("close");
        let json = |n| serde_json::to_value(stats(&meta, n)).expect("json");

        let s = json(32);
        assert_eq!(s["numRecords"], 5);
        assert_eq!(s["minValues"]["n"], -3);
        assert_eq!(s["maxValues"]["n"], 7);
        assert_eq!(s["nullCount"]["n"], 3, "one, and the null row group's two");
        assert_eq!(s["minValues"]["method"], "GET");
        assert_eq!(s["maxValues"]["method"], "POST");
        assert_eq!(s["minValues"]["timestamp"], "2025-12-06T05:46:40.000Z");
        assert_eq!(s["maxValues"]["timestamp"], "2025-12-06T05:46:41.000Z");
        // Bodies and maps have no statistics.
        for none in ["body", "headers"] {
            assert!(s["minValues"].get(none).is_none(), "{none}");
            assert!(s["nullCount"].get(none).is_none(), "{none}");
        }
        // Only the first N columns have statistics.
        let s = json(2);
        assert!(s["minValues"].get("timestamp").is_none());
        assert_eq!(s["maxValues"]["method"], "POST");
    }

    #[test]
    fn indexed_columns_follow_the_table_property() {
        let conf = |v: &str| HashMap::from([(INDEXED_COLUMNS_PROPERTY.to_string(), v.to_string())]);
        assert_eq!(indexed_columns(&HashMap::new()), 32);
        assert_eq!(indexed_columns(&conf("5")), 5);
        assert_eq!(indexed_columns(&conf("-1")), usize::MAX);
    }

    #[test]
    fn chunks_keep_every_byte_in_order() {
        let mut c = Chunks::default();
        let data: Vec<u8> = (0..CHUNK_BYTES * 2 + 17).map(|i| (i % 251) as u8).collect();
        c.push(&data[..5]);
        c.push(&data[5..CHUNK_BYTES + 3]);
        c.push(&data[CHUNK_BYTES + 3..]);
        let chunks = c.take();
        assert_eq!(chunks.iter().map(|b| b.len()).collect::<Vec<_>>(), vec![CHUNK_BYTES, CHUNK_BYTES, 17]);
        assert_eq!(chunks.concat(), data);
        assert!(c.take().is_empty());
    }

    #[test]
    fn bounds_order_within_a_column() {
        assert_eq!(pick(Some(Bound::Int(3)), Some(Bound::Int(-2)), true), Some(Bound::Int(-2)));
        assert_eq!(pick(Some(Bound::Int(3)), Some(Bound::Int(-2)), false), Some(Bound::Int(3)));
        assert_eq!(pick(None, Some(Bound::Text("b".into())), true), Some(Bound::Text("b".into())));
    }
}

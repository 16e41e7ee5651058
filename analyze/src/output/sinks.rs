//! Where rows go in their final order: Parquet files (one per table, a
//! snapshot's), or memory (tests, `trawl debug streams`).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use trawl_schemas::{ColumnType, Table};

use crate::Error;
use crate::packets::PacketIndex;
use crate::records::{Keyed, worker_of};

use super::builders::{Sorted, Tables, TickBatches};

/// A table's row group is closed once this many bytes of it are buffered
/// (encoded and compressed pages, held in memory until the row group is
/// written out): on bulk traffic, where stored bodies fill row groups,
/// this is the writer's largest buffer (docs/performance.md, memory).
const ROW_GROUP_BYTES: usize = 16 << 20;

/// A column's data page, and its dictionary, are written out once this
/// many bytes of it are buffered (parquet's default is 1 MiB each). A
/// column writer holds both until then, and a row group of the calls and
/// flows tables has over a hundred and fifty columns in progress at once.
const PAGE_BYTES: usize = 256 << 10;

/// One Parquet file being written.
pub struct ParquetTable {
    writer: Option<ArrowWriter<File>>,
    path: PathBuf,
    rows: u64,
}

impl ParquetTable {
    pub fn create(dir: &Path, table: &'static Table) -> Result<ParquetTable, Error> {
        let path = dir.join(table.file_name());
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        let schema: SchemaRef = Arc::new(table.arrow_schema());
        let props = writer_properties(table);
        let writer = ArrowWriter::try_new(file, schema, Some(props))
            .map_err(|e| Error::Output { path: path.clone(), detail: e.to_string() })?;
        Ok(ParquetTable { writer: Some(writer), path, rows: 0 })
    }

    /// Closes the file; returns the row count.
    pub fn finish(mut self) -> Result<u64, Error> {
        if let Some(w) = self.writer.take() {
            w.close().map_err(|e| Error::Output { path: self.path.clone(), detail: e.to_string() })?;
        }
        Ok(self.rows)
    }
}

/// How trawl writes a table's Parquet files (snapshots and datasets).
pub fn writer_properties(table: &Table) -> WriterProperties {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default()))
        .set_max_row_group_row_count(Some(128 * 1024))
        .set_data_page_size_limit(PAGE_BYTES)
        .set_dictionary_page_size_limit(PAGE_BYTES)
        // Row-group statistics prune as well for trawl's queries and
        // cost a fraction of page-level ones.
        .set_statistics_enabled(parquet::file::properties::EnabledStatistics::Chunk);
    // Dictionary encoding pays only for repetitive columns; bodies,
    // URLs and free text would just fill and abandon a dictionary.
    // Header and query values (dates, etags, lengths, ids) are too.
    use parquet::schema::types::ColumnPath;
    for c in table.columns {
        if matches!(c.name, "request_body" | "response_body" | "url" | "path" | "detail" | "community_id" | "history") {
            props = props.set_column_dictionary_enabled(ColumnPath::from(c.name), false);
        }
        // Times, numbers and client ports are close to one value per row:
        // interning them cost CPU and, once the dictionary filled, the
        // file was larger than plain zstd (measured per column on both
        // benchmark captures, docs/performance.md).
        if c.ty == ColumnType::Timestamp || unique_per_row(table.name, c.name) {
            props = props.set_column_dictionary_enabled(ColumnPath::from(c.name), false);
        }
        // Counters, ports, sizes and codes: LZ4 compresses these small
        // columns about as well as zstd, for less CPU, and without the
        // ~100 KB of zstd contexts each column writer of each row group
        // holds (measured: 20-35 MB less peak RSS on the bulk capture).
        // Times stay on zstd: their columns are the largest numbers.
        if matches!(
            c.ty,
            ColumnType::UInt8
                | ColumnType::UInt16
                | ColumnType::UInt32
                | ColumnType::UInt64
                | ColumnType::Int32
                | ColumnType::Int64
                | ColumnType::Float64
                | ColumnType::Bool
        ) {
            props = props.set_column_compression(ColumnPath::from(c.name), Compression::LZ4_RAW);
        }
        // Bodies: Snappy costs a fraction of zstd's CPU (and measured
        // less than LZ4 here), and much of what crosses networks
        // (media, archives, TLS) does not compress anyway.
        if c.ty == ColumnType::Binary {
            props = props.set_column_compression(ColumnPath::from(c.name), Compression::SNAPPY);
            // Min/max of bodies prune nothing and cost comparisons.
            props = props.set_column_statistics_enabled(
                ColumnPath::from(c.name),
                parquet::file::properties::EnabledStatistics::None,
            );
        }
        // The packet index's positions and times grow row by row:
        // delta encoding stores them in a few bits each.
        if table.name == trawl_schemas::PACKETS.name
            && matches!(c.name, "ordinal" | "timestamp" | "frame_number" | "offset")
        {
            props = props
                .set_column_dictionary_enabled(ColumnPath::from(c.name), false)
                .set_column_encoding(ColumnPath::from(c.name), parquet::basic::Encoding::DELTA_BINARY_PACKED);
        }
        // Flow ids are as many as flows: a dictionary would only grow.
        if table.name == trawl_schemas::PACKETS.name && c.name == "flow_id" {
            props = props.set_column_dictionary_enabled(ColumnPath::from(c.name), false);
        }
        if c.ty == ColumnType::StringMap {
            // Map values by both names they go by: the snapshot's
            // (`entries.values`) and a dataset's (Delta's `key_value.value`).
            for (entries, values) in [("entries", "values"), ("key_value", "value")] {
                props = props.set_column_dictionary_enabled(
                    ColumnPath::new(vec![c.name.into(), entries.into(), values.into()]),
                    false,
                );
            }
        }
    }
    props.build()
}

/// Numeric columns whose values are (nearly) unique per row of `table`.
fn unique_per_row(table: &str, column: &str) -> bool {
    match column {
        "id" | "frame_number" | "elapsed_time_us" | "duration_us" | "src_port" => true,
        "index" => table == trawl_schemas::API_CALLS.name,
        "flow_id" => table == trawl_schemas::FLOWS.name,
        _ => false,
    }
}

/// Where one table's batches go, in their final order.
pub trait TableOut {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), Error>;
}

impl TableOut for ParquetTable {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), Error> {
        let out = |e: String| Error::Output { path: self.path.clone(), detail: e };
        let w = self.writer.as_mut().ok_or_else(|| out("writer already closed".into()))?;
        w.write(batch).map_err(|e| out(e.to_string()))?;
        if w.in_progress_size() >= ROW_GROUP_BYTES {
            w.flush().map_err(|e| out(e.to_string()))?;
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }
}

/// Where rows go, in their final order.
pub trait Sink {
    /// True when the sink takes Arrow batches built by the workers
    /// ([`Sink::write_batches`]) rather than rows ([`Sink::write_rows`]).
    fn wants_batches(&self) -> bool;
    fn write_rows(&mut self, rows: &[Keyed]) -> Result<(), Error>;
    /// One tick: each worker's batches.
    fn write_batches(&mut self, ticks: Vec<TickBatches>) -> Result<(), Error>;
    /// One tick's frames, for the packet index.
    fn write_packets(&mut self, _index: &PacketIndex) -> Result<(), Error> {
        Ok(())
    }
    /// A file of a fed run ([`crate::pipeline::run_feed`]) is done: every
    /// row it completed has been written.
    fn file_end(&mut self, _end: &crate::pipeline::FileEnd) -> Result<(), Error> {
        Ok(())
    }
}

/// Keeps rows in memory (tests, `trawl debug streams`).
#[derive(Default)]
pub struct MemorySink {
    pub rows: Vec<Keyed>,
}

impl Sink for MemorySink {
    fn wants_batches(&self) -> bool {
        false
    }
    fn write_rows(&mut self, rows: &[Keyed]) -> Result<(), Error> {
        self.rows.extend_from_slice(rows);
        Ok(())
    }
    fn write_batches(&mut self, _: Vec<TickBatches>) -> Result<(), Error> {
        Err(Error::Internal("MemorySink takes rows".into()))
    }
}

/// Writes the tables of a snapshot into a directory.
pub struct ParquetSink {
    tables: Tables<ParquetTable>,
    packets: ParquetTable,
    next_call_id: u64,
}

impl ParquetSink {
    pub fn create(dir: &Path) -> Result<ParquetSink, Error> {
        Ok(ParquetSink {
            tables: Tables {
                flows: ParquetTable::create(dir, &trawl_schemas::FLOWS)?,
                api_calls: ParquetTable::create(dir, &trawl_schemas::API_CALLS)?,
                parse_issues: ParquetTable::create(dir, &trawl_schemas::PARSE_ISSUES)?,
            },
            packets: ParquetTable::create(dir, &trawl_schemas::PACKETS)?,
            next_call_id: 1,
        })
    }

    /// Closes the files; returns (table name, rows) for each.
    pub fn finish(self) -> Result<Vec<(&'static str, u64)>, Error> {
        let Tables { flows, api_calls, parse_issues } = self.tables;
        Ok(vec![
            (trawl_schemas::FLOWS.name, flows.finish()?),
            (trawl_schemas::API_CALLS.name, api_calls.finish()?),
            (trawl_schemas::PARSE_ISSUES.name, parse_issues.finish()?),
            (trawl_schemas::PACKETS.name, self.packets.finish()?),
        ])
    }
}

/// The `tcp_expert` column of the packet index: each frame's flags by
/// name, null for a frame without any.
fn expert_lists(flags: &[u16]) -> arrow_array::ListArray {
    let mut b = ListBuilder::new(StringBuilder::new());
    for &fl in flags {
        if fl == 0 {
            b.append(false);
        } else {
            for n in crate::tcp_analysis::flag_names(fl) {
                b.values().append_value(n);
            }
            b.append(true);
        }
    }
    b.finish()
}

impl Sink for ParquetSink {
    fn wants_batches(&self) -> bool {
        true
    }

    fn write_rows(&mut self, _: &[Keyed]) -> Result<(), Error> {
        Err(Error::Internal("ParquetSink takes batches".into()))
    }

    fn write_packets(&mut self, index: &PacketIndex) -> Result<(), Error> {
        match packets_batch(index)? {
            Some(b) => self.packets.write(&b),
            None => Ok(()),
        }
    }

    fn write_batches(&mut self, ticks: Vec<TickBatches>) -> Result<(), Error> {
        let t = &mut self.tables;
        write_tick(&mut t.flows, &ticks, |b| &b.tables.flows, None)?;
        write_tick(&mut t.api_calls, &ticks, |b| &b.tables.api_calls, Some(&mut self.next_call_id))?;
        write_tick(&mut t.parse_issues, &ticks, |b| &b.tables.parse_issues, None)
    }
}

/// The rows of the packet index for one tick's frames (none for a tick
/// without frames).
pub fn packets_batch(index: &PacketIndex) -> Result<Option<RecordBatch>, Error> {
    use arrow_array::{TimestampNanosecondArray, UInt32Array, UInt64Array};
    if index.frames.is_empty() {
        return Ok(None);
    }
    let f = &index.frames;
    let n = f.len() as u64;
    let cols: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from_iter_values(index.first_ordinal..index.first_ordinal + n)),
        Arc::new(TimestampNanosecondArray::from_iter_values(f.iter().map(|x| x.ts)).with_timezone("UTC")),
        Arc::new(UInt32Array::from_iter_values(f.iter().map(|x| x.file_index))),
        Arc::new(UInt64Array::from_iter_values(f.iter().map(|x| x.frame_number))),
        Arc::new(UInt64Array::from_iter_values(f.iter().map(|x| x.offset))),
        Arc::new(UInt32Array::from_iter_values(f.iter().map(|x| x.caplen))),
        Arc::new(UInt32Array::from_iter_values(f.iter().map(|x| x.wire_len))),
        Arc::new(UInt32Array::from_iter_values(f.iter().map(|x| x.link))),
        Arc::new(UInt64Array::from_iter(index.flow_ids.iter().copied())),
        Arc::new(UInt64Array::from_iter(f.iter().map(|x| x.datagram))),
        Arc::new(expert_lists(&index.tcp_expert)),
    ];
    let schema: SchemaRef = Arc::new(trawl_schemas::PACKETS.arrow_schema());
    let batch = RecordBatch::try_new(schema, cols).map_err(|e| Error::Internal(format!("packets: {e}")))?;
    Ok(Some(batch))
}

/// Writes one table's rows of a tick. Each worker's rows are sorted by
/// key, virtual shard first, and each worker owns a contiguous range of
/// virtual shards ([`crate::records::worker_of`]): the tick's order is
/// the workers' batches in turn, each written whole (no copy). With
/// `ids`, the first column is the row's 1-based number in the final
/// order, counted on from `ids` (`api_calls.id`).
pub fn write_tick(
    out: &mut dyn TableOut,
    ticks: &[TickBatches],
    table: impl Fn(&TickBatches) -> &Sorted,
    mut ids: Option<&mut u64>,
) -> Result<(), Error> {
    let n = ticks.len() as u32;
    for (w, tb) in ticks.iter().enumerate() {
        let (keys, batch) = table(tb);
        if keys.is_empty() {
            continue;
        }
        // Sorted by virtual shard first: the first and last keys bound them all.
        for k in [keys.first(), keys.last()].into_iter().flatten() {
            if worker_of(k.0, n) != w as u32 {
                return Err(Error::Internal(format!("virtual shard {} came from worker {w}", k.0)));
            }
        }
        let mut batch = batch.clone();
        if let Some(next) = ids.as_deref_mut() {
            let len = batch.num_rows() as u64;
            let numbers = arrow_array::UInt64Array::from_iter_values(*next..*next + len);
            *next += len;
            let mut cols = batch.columns().to_vec();
            cols[0] = Arc::new(numbers);
            batch = RecordBatch::try_new(batch.schema(), cols).map_err(|e| Error::Internal(e.to_string()))?;
        }
        out.write(&batch)?;
    }
    Ok(())
}

//! The indexer's sink: rows of a fed analysis, streamed into the Delta
//! tables, and committed once per capture file.
//!
//! At each file's end ([`FileEnd`]) the sink writes the file's
//! [`FileRecord`], then commits each table in turn ([`TABLES`] order)
//! with a Delta transaction `(trawl-index/NODE, seq)` and the data files
//! tagged with `seq`. A restart reads the lowest sequence number every
//! table holds, and a table that already holds the file's transaction
//! is not committed to again: nothing is lost, nothing is doubled.

use std::collections::{BTreeMap, HashMap, VecDeque};

use arrow_array::RecordBatch;
use deltalake_core::DeltaTable;
use deltalake_core::kernel::transaction::CommitBuilder;
use deltalake_core::kernel::{Action, Transaction};
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use parquet::file::properties::WriterProperties;
use trawl_analyze::output::{Sink, TableOut, TickBatches, packets_batch, write_tick};
use trawl_analyze::packets::PacketIndex;
use trawl_analyze::records::Keyed;
use trawl_analyze::{Error as AnalyzeError, FileEnd};
use trawl_schemas::Table;

use crate::data_files::{DataFile, indexed_columns};
use crate::layout::{HOUR, NODE, SEQ_TAG, TABLES, split_by_hour, to_stored};
use crate::location::Location;
use crate::records::{FileRecord, put_record};
use crate::tables::app_id;

/// One table's writer.
struct TableSink {
    table: &'static Table,
    delta: DeltaTable,
    props: WriterProperties,
    /// Columns with Delta statistics.
    indexed: usize,
    /// The current capture file's data files, one per hour.
    files: Vec<DataFile>,
    /// The last sequence number this table held when the run started.
    committed: Option<u32>,
    rows: u64,
}

/// What the sink needs from the indexer.
pub(crate) struct SinkSetup {
    pub loc: Location,
    pub node: String,
    pub rt: tokio::runtime::Handle,
    pub tables: Vec<(&'static Table, DeltaTable, Option<u32>)>,
    pub next_call_id: u64,
    /// Files read since the oldest one a restart may need: (seq, name,
    /// first ordinal, last capture time).
    pub window: VecDeque<(u32, String, u64, Option<i64>)>,
    /// A restart reads back at most this much capture time.
    pub replay_window_ns: i64,
    /// Upload each capture into the dataset.
    pub upload_captures: bool,
    /// Drop the node's hours older than this before its newest packet.
    pub retain_ns: Option<i64>,
}

pub(crate) struct DatasetSink {
    s: SinkSetup,
    tables: Vec<TableSink>,
    /// Files committed by this run, in order.
    pub done: Vec<FileRecord>,
    /// Capture time of the last frame written: the hour of rows without
    /// a time of their own.
    last_ts: i64,
    /// The hour of capture the last housekeeping ran in (one per hour).
    housekept_hour: Option<String>,
    pub dropped: crate::retention::Dropped,
    pub compacted: crate::compaction::Compacted,
}

fn out_err(loc: &Location, what: impl std::fmt::Display) -> AnalyzeError {
    AnalyzeError::Output { path: loc.to_string().into(), detail: what.to_string() }
}

/// A dataset error where the analysis's sink reports one.
fn sink_err(e: crate::Error) -> AnalyzeError {
    match e {
        crate::Error::Storage { location, detail } => AnalyzeError::Output { path: location.into(), detail },
        crate::Error::Analyze(e) => e,
        other => AnalyzeError::Output { path: Default::default(), detail: other.to_string() },
    }
}

impl DatasetSink {
    pub fn new(s: SinkSetup) -> Result<DatasetSink, AnalyzeError> {
        let mut tables = Vec::new();
        for (table, delta, committed) in &s.tables {
            let snapshot = delta.snapshot().map_err(|e| out_err(&s.loc, format!("{}: {e}", table.name)))?;
            tables.push(TableSink {
                table,
                delta: delta.clone(),
                props: trawl_analyze::output::writer_properties(table),
                indexed: indexed_columns(snapshot.metadata().configuration()),
                files: Vec::new(),
                committed: *committed,
                rows: 0,
            });
        }
        Ok(DatasetSink {
            s,
            tables,
            done: Vec::new(),
            last_ts: 0,
            housekept_hour: None,
            dropped: Default::default(),
            compacted: Default::default(),
        })
    }

    fn table(&mut self, t: &Table) -> (&SinkSetup, &mut TableSink) {
        let i = TABLES.iter().position(|x| x.name == t.name).unwrap_or(0);
        (&self.s, &mut self.tables[i])
    }

    /// The file whose frames hold `ordinal`, among those read.
    fn resume_seq(&mut self, end: &FileEnd) -> u32 {
        let last_ns = end.info.as_ref().and_then(|i| i.last_ts_ns);
        self.s.window.push_back((end.file_index, file_name(end), end.first_ordinal, last_ns));
        let Some(oldest) = end.oldest_open else {
            self.s.window.clear();
            return end.file_index + 1;
        };
        // Drop files before the one holding the oldest open connection,
        // and those older than the replay window (their connections will
        // be seen mid-stream after a restart).
        let horizon = last_ns.map(|l| l - self.s.replay_window_ns);
        while self.s.window.len() > 1 {
            let next_first = self.s.window[1].2;
            let too_old = matches!((horizon, self.s.window[0].3), (Some(h), Some(t)) if t < h);
            if next_first <= oldest || too_old {
                self.s.window.pop_front();
            } else {
                break;
            }
        }
        self.s.window.front().map_or(end.file_index, |w| w.0)
    }

    fn upload(&self, end: &FileEnd) -> Result<Option<String>, AnalyzeError> {
        if !self.s.upload_captures || end.info.is_none() {
            return Ok(None);
        }
        let rel = format!("captures/{NODE}={}/{}", self.s.node, file_name(end));
        let path = object_store::path::Path::from(rel.as_str());
        let store = self.s.loc.store.clone();
        let src = end.path.clone();
        self.s
            .rt
            .block_on(async move {
                use tokio::io::AsyncWriteExt;
                let mut file = tokio::fs::File::open(&src).await.map_err(|e| format!("{}: {e}", src.display()))?;
                // Multipart above 10 MB, a single put below.
                let mut w = object_store::buffered::BufWriter::new(store, path);
                tokio::io::copy(&mut file, &mut w).await.map_err(|e| e.to_string())?;
                w.shutdown().await.map_err(|e| e.to_string())
            })
            .map_err(|e| out_err(&self.s.loc, format!("uploading {rel}: {e}")))?;
        Ok(Some(rel))
    }
}

impl DatasetSink {
    /// Housekeeping, once per hour of capture time: the node's finished
    /// hours compacted, expired log entries deleted, then (with
    /// `--retain`) the node's old hours dropped.
    fn hourly(&mut self, rec: &FileRecord) -> Result<(), AnalyzeError> {
        let newest = rec.last_ns.unwrap_or(self.last_ts);
        let hour = crate::layout::hour_of(newest);
        if self.housekept_hour.as_ref() == Some(&hour) {
            return Ok(());
        }
        let (loc, node, rt) = (self.s.loc.clone(), self.s.node.clone(), self.s.rt.clone());
        let mut compacted = std::mem::take(&mut self.compacted);
        for t in &mut self.tables {
            rt.block_on(crate::compaction::compact_table(
                &loc,
                t.table,
                &mut t.delta,
                &node,
                &hour,
                &t.props,
                &mut compacted,
            ))
            .map_err(|e| out_err(&loc, e))?;
            rt.block_on(crate::tables::clean_expired_logs(&loc, t.table, &t.delta)).map_err(|e| out_err(&loc, e))?;
        }
        self.compacted = compacted;
        self.housekept_hour = Some(hour);
        let Some(retain) = self.s.retain_ns else { return Ok(()) };
        let cutoff = newest - retain;
        let mut dropped = std::mem::take(&mut self.dropped);
        for t in &mut self.tables {
            rt.block_on(crate::retention::drop_table(&loc, t.table, &mut t.delta, &node, cutoff, &mut dropped))
                .map_err(|e| out_err(&loc, e))?;
        }
        rt.block_on(crate::retention::drop_captures(&loc, &node, cutoff, rec.resume_seq.min(rec.seq), &mut dropped))
            .map_err(|e| out_err(&loc, e))?;
        self.dropped = dropped;
        Ok(())
    }
}

fn file_name(end: &FileEnd) -> String {
    end.path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default()
}

/// A table's writer as the analysis's row writer sees it.
struct Out<'a> {
    s: &'a SinkSetup,
    t: &'a mut TableSink,
    fallback_ns: i64,
}

impl TableOut for Out<'_> {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), AnalyzeError> {
        let (s, t) = (self.s, &mut *self.t);
        for (hour, part) in split_by_hour(batch, self.fallback_ns) {
            let stored = to_stored(t.table, &part).map_err(|e| out_err(&s.loc, e))?;
            let i = match t.files.iter().position(|f| f.hour() == hour) {
                Some(i) => i,
                None => {
                    t.files.push(DataFile::create(&s.loc, t.table, &s.node, &hour, &t.props).map_err(sink_err)?);
                    t.files.len() - 1
                }
            };
            t.files[i].write(&s.loc, &stored).map_err(sink_err)?;
            t.rows += part.num_rows() as u64;
        }
        Ok(())
    }
}

impl Sink for DatasetSink {
    fn wants_batches(&self) -> bool {
        true
    }

    fn write_rows(&mut self, _: &[Keyed]) -> Result<(), AnalyzeError> {
        Err(AnalyzeError::Internal("the dataset sink takes batches".into()))
    }

    fn write_packets(&mut self, index: &PacketIndex) -> Result<(), AnalyzeError> {
        let Some(b) = packets_batch(index)? else { return Ok(()) };
        let fallback_ns = index.frames.first().map_or(self.last_ts, |f| f.ts);
        self.last_ts = index.frames.last().map_or(self.last_ts, |f| f.ts);
        let (s, t) = self.table(&trawl_schemas::PACKETS);
        Out { s, t, fallback_ns }.write(&b)
    }

    fn write_batches(&mut self, ticks: Vec<TickBatches>) -> Result<(), AnalyzeError> {
        let fallback_ns = self.last_ts;
        let mut next_id = self.s.next_call_id;
        {
            let (s, t) = self.table(&trawl_schemas::FLOWS);
            write_tick(&mut Out { s, t, fallback_ns }, &ticks, |b| &b.tables.flows, None)?;
        }
        {
            let (s, t) = self.table(&trawl_schemas::API_CALLS);
            write_tick(&mut Out { s, t, fallback_ns }, &ticks, |b| &b.tables.api_calls, Some(&mut next_id))?;
        }
        {
            let (s, t) = self.table(&trawl_schemas::PARSE_ISSUES);
            write_tick(&mut Out { s, t, fallback_ns }, &ticks, |b| &b.tables.parse_issues, None)?;
        }
        self.s.next_call_id = next_id;
        Ok(())
    }

    fn file_end(&mut self, end: &FileEnd) -> Result<(), AnalyzeError> {
        let seq = end.file_index;
        let resume_seq = self.resume_seq(end);
        let upload = self.upload(end)?;
        let info = end.info.as_ref();
        let rows: BTreeMap<String, u64> = self.tables.iter().map(|t| (t.table.name.to_string(), t.rows)).collect();
        let rec = FileRecord {
            seq,
            name: file_name(end),
            size: info.map_or(0, |i| i.size),
            sha256: info.map(|i| i.sha256.clone()).unwrap_or_default(),
            frames: info.map_or(0, |i| i.frames),
            first_ns: info.and_then(|i| i.first_ts_ns),
            last_ns: info.and_then(|i| i.last_ts_ns),
            damage: info.and_then(|i| i.damage.as_ref()).map(|d| format!("{d:?}")),
            closing: info.is_none(),
            first_ordinal: end.first_ordinal,
            next_ordinal: end.next_ordinal,
            sweep_before: end.sweep_before,
            sweep_after: end.sweep_after,
            next_call_id: self.s.next_call_id,
            resume_seq,
            closed: end.oldest_open.is_none() && end.closes,
            rows,
            upload,
        };
        let (loc, node, rt) = (self.s.loc.clone(), self.s.node.clone(), self.s.rt.clone());
        rt.block_on(put_record(&loc, &node, &rec)).map_err(|e| out_err(&loc, e))?;
        for t in &mut self.tables {
            let files = std::mem::take(&mut t.files);
            let adds = rt
                .block_on(async {
                    let mut adds = Vec::with_capacity(files.len());
                    for f in files {
                        adds.push(f.finish(&loc, t.indexed).await?);
                    }
                    Ok::<_, crate::Error>(adds)
                })
                .map_err(sink_err)?;
            t.rows = 0;
            if t.committed.is_some_and(|c| c >= seq) {
                // Committed before a restart; these files stay unreferenced
                // (vacuum removes them).
                continue;
            }
            // A table with no rows of this file is not committed to (its
            // record says so: `tables::watermark`), but for the packet
            // index, which every file commits to.
            if adds.is_empty() && t.table.name != trawl_schemas::PACKETS.name {
                continue;
            }
            let actions: Vec<Action> = adds
                .into_iter()
                .map(|mut a| {
                    a.tags.get_or_insert_with(HashMap::new).insert(SEQ_TAG.into(), Some(seq.to_string()));
                    Action::Add(a)
                })
                .collect();
            let props = crate::tables::commit_properties()
                .with_application_transaction(Transaction::new(app_id(&node), i64::from(seq)))
                .with_metadata([
                    ("trawl.node".to_string(), serde_json::json!(node)),
                    ("trawl.file".to_string(), serde_json::json!(rec.name)),
                    ("trawl.seq".to_string(), serde_json::json!(seq)),
                ]);
            let op = DeltaOperation::Write {
                mode: SaveMode::Append,
                partition_by: Some(vec![NODE.into(), HOUR.into()]),
                predicate: None,
            };
            let snapshot = t.delta.snapshot().map_err(|e| out_err(&loc, format!("{}: {e}", t.table.name)))?;
            let finalized = rt
                .block_on(async {
                    CommitBuilder::from(props)
                        .with_actions(actions)
                        .build(Some(snapshot), t.delta.log_store(), op)
                        .await
                })
                .map_err(|e| out_err(&loc, format!("committing {} of {}: {e}", t.table.name, rec.name)))?;
            t.delta.state = Some(finalized.snapshot());
        }
        self.hourly(&rec)?;
        self.done.push(rec);
        Ok(())
    }
}

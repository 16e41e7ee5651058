//! Compaction: each capture file adds one data file per table and hour,
//! so a node's hour of one-minute rotations is 60 small files per table.
//! Once an hour is over, the node's files of it are rewritten as one
//! (a Delta commit that removes them and adds the new file, both with
//! `dataChange: false`: readers see the same rows before and after, and
//! a query running across it keeps its files until the vacuum, an hour
//! later). Each node compacts only its own partitions, so nodes never
//! conflict; the indexer runs it between files, once per hour of capture.

use deltalake_core::DeltaTable;
use deltalake_core::kernel::Action;
use deltalake_core::kernel::transaction::CommitBuilder;
use deltalake_core::protocol::DeltaOperation;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::collections::BTreeMap;
use trawl_schemas::Table;

use crate::Error;
use crate::data_files::{DataFile, indexed_columns};
use crate::layout::{HOUR, NODE};
use crate::location::Location;

/// An hour with fewer files than this is left alone.
pub const MIN_FILES: usize = 4;

/// What one pass did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Compacted {
    /// Hours (of all tables) rewritten, and the files they had.
    pub hours: u64,
    pub files_before: u64,
    pub rows: u64,
}

/// Rewrites each of `node`'s hours of table `t` before `current_hour`
/// that has at least [`MIN_FILES`] files as one file.
pub async fn compact_table(
    loc: &Location,
    t: &Table,
    delta: &mut DeltaTable,
    node: &str,
    current_hour: &str,
    props: &parquet::file::properties::WriterProperties,
    out: &mut Compacted,
) -> Result<(), Error> {
    let err = |e: &dyn std::fmt::Display| Error::storage(loc, format!("compacting {}: {e}", t.name));
    let snapshot = delta.snapshot().map_err(|e| err(&e))?;
    let indexed = indexed_columns(snapshot.metadata().configuration());
    let views: Vec<_> =
        snapshot.snapshot().file_views(delta.log_store().as_ref(), None).try_collect().await.map_err(|e| err(&e))?;
    let mut hours: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for v in views {
        let parts = v.partition_values_map();
        let hour = parts.get(HOUR).cloned().flatten().unwrap_or_default();
        if parts.get(NODE).and_then(|n| n.as_deref()) == Some(node) && hour.as_str() < current_hour {
            hours.entry(hour).or_default().push(v);
        }
    }
    for (hour, files) in hours {
        if files.len() < MIN_FILES {
            continue;
        }
        let mut file = DataFile::create(loc, t, node, &hour, props)?;
        let mut rows = 0u64;
        let mut removes = Vec::new();
        for f in &files {
            let path = Path::from(format!("{}/{}", t.name, f.path()));
            // Small files (that is why they are compacted): read whole.
            let bytes = loc.store.get(&path).await.map_err(|e| err(&e))?.bytes().await.map_err(|e| err(&e))?;
            let reader =
                ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| err(&e))?.build().map_err(|e| err(&e))?;
            for b in reader {
                let b = b.map_err(|e| err(&e))?;
                rows += b.num_rows() as u64;
                file.write(loc, &b)?;
            }
            removes.push(Action::Remove(f.remove_action(false)));
        }
        let mut add = file.finish(loc, indexed).await?;
        // The same rows, in fewer files.
        add.data_change = false;
        let mut actions = vec![Action::Add(add)];
        actions.extend(removes);
        let op = DeltaOperation::Optimize {
            predicate: Some(format!("{NODE} = '{node}' AND {HOUR} = '{hour}'")),
            target_size: 0,
        };
        let snapshot = delta.snapshot().map_err(|e| err(&e))?;
        let done = CommitBuilder::from(crate::tables::commit_properties())
            .with_actions(actions)
            .build(Some(snapshot), delta.log_store(), op)
            .await
            .map_err(|e| err(&e))?;
        delta.state = Some(done.snapshot());
        out.hours += 1;
        out.files_before += files.len() as u64;
        out.rows += rows;
    }
    Ok(())
}

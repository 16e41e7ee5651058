//! The dataset's Delta tables: opened, created on first use, and the
//! sequence number each node has committed to all of them.

use deltalake_core::DeltaTable;
use deltalake_core::kernel::StructType;
use deltalake_core::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake_core::kernel::transaction::CommitProperties;
use deltalake_core::operations::create::CreateBuilder;
use deltalake_core::protocol::SaveMode;
use deltalake_core::table::builder::DeltaTableBuilder;
use deltalake_core::table::config::TablePropertiesExt;
use trawl_schemas::Table;

use crate::Error;
use crate::layout::{HOUR, NODE, TABLES, table_schema};
use crate::location::Location;
use crate::records::{FileRecord, get_record};

/// How trawl commits. Delta's cleanup of expired log entries lists the
/// whole `_delta_log` folder and by default runs after every commit, a
/// cost that grows with the table's history (a day of one-minute
/// rotations is 1,440 versions per table, several listing pages on S3):
/// trawl runs it once an hour of capture instead ([`clean_expired_logs`]).
pub fn commit_properties() -> CommitProperties {
    CommitProperties::default().with_cleanup_expired_logs(Some(false))
}

/// Deletes a table's log entries older than its log retention (30 days
/// unless the table says otherwise), as Delta's writers do after a
/// commit; returns how many.
pub async fn clean_expired_logs(loc: &Location, table: &Table, delta: &DeltaTable) -> Result<usize, Error> {
    let enabled = delta.snapshot().map_err(|e| delta_err(loc, table, e))?.table_config().enable_expired_log_cleanup();
    if !enabled {
        return Ok(0);
    }
    deltalake_core::checkpoints::cleanup_metadata(delta, None).await.map_err(|e| delta_err(loc, table, e))
}

/// The Delta application id of a node's indexer: its transactions carry
/// the sequence number of the file they committed.
pub fn app_id(node: &str) -> String {
    format!("trawl-index/{node}")
}

fn delta_err(loc: &Location, table: &Table, e: impl std::fmt::Display) -> Error {
    Error::storage(loc, format!("{}: {e}", table.name))
}

/// Opens every table; creates the missing ones when `create` is set.
pub async fn open(loc: &Location, create: bool) -> Result<Vec<(&'static Table, DeltaTable)>, Error> {
    let mut out = Vec::new();
    for t in TABLES {
        let url = loc.join(&format!("{}/", t.name))?;
        let load = || async {
            DeltaTableBuilder::from_url(url.clone())
                .map_err(|e| delta_err(loc, t, e))?
                .load()
                .await
                .map_err(|e| delta_err(loc, t, e))
        };
        let table = match load().await {
            Ok(table) => table,
            Err(_) if create => {
                let schema: StructType = (&table_schema(t)).try_into_kernel().map_err(|e| delta_err(loc, t, e))?;
                let made = CreateBuilder::new()
                    .with_location(url.as_str())
                    .with_table_name(t.name)
                    .with_columns(schema.fields().cloned())
                    .with_partition_columns([NODE, HOUR])
                    .with_save_mode(SaveMode::Ignore)
                    // Version 0 is written put-if-absent: when another node
                    // creates the table at the same moment, this create must
                    // fail (and load theirs), not retry as a second version
                    // that replaces the table's metadata under their commits.
                    .with_commit_properties(commit_properties().with_max_retries(0))
                    .await;
                match made {
                    Ok(table) => table,
                    // Another node created it at the same moment.
                    Err(_) => load().await?,
                }
            }
            Err(e) => {
                return Err(Error::Location {
                    location: loc.to_string(),
                    detail: format!("not a trawl dataset ({e}); `trawl index ARCHIVE --to DATASET` writes one"),
                });
            }
        };
        out.push((t, table));
    }
    Ok(out)
}

/// The last sequence number `node` committed to `table`.
pub async fn committed_seq(
    loc: &Location,
    table: &Table,
    delta: &DeltaTable,
    node: &str,
) -> Result<Option<u32>, Error> {
    let snap = delta.snapshot().map_err(|e| delta_err(loc, table, e))?;
    let v = snap
        .transaction_version(delta.log_store().as_ref(), app_id(node))
        .await
        .map_err(|e| delta_err(loc, table, e))?;
    Ok(v.and_then(|v| u32::try_from(v).ok()))
}

/// The record of the last file `node` committed in full: each table
/// holds it, or had no rows of it. A file's rows of a table with none
/// are not committed to it (but for `packets`, which every file commits
/// to), and the file's record says which tables had rows. The indexer
/// starts a file's commits only once the file before is whole, so the
/// highest number any table holds is the only one that may be partial.
/// Readers show a node's files up to it; a restart goes on after it.
pub async fn watermark(
    loc: &Location,
    tables: &[(&'static Table, DeltaTable)],
    node: &str,
) -> Result<Option<FileRecord>, Error> {
    let mut held = Vec::with_capacity(tables.len());
    for (t, d) in tables {
        held.push(committed_seq(loc, t, d, node).await?);
    }
    whole_through(loc, tables, &held, node).await
}

/// [`watermark`] from what each table holds (`held`, in `tables` order).
pub async fn whole_through(
    loc: &Location,
    tables: &[(&'static Table, DeltaTable)],
    held: &[Option<u32>],
    node: &str,
) -> Result<Option<FileRecord>, Error> {
    let Some(top) = held.iter().flatten().max().copied() else { return Ok(None) };
    let rec = get_record(loc, node, top).await?;
    let whole =
        tables.iter().zip(held).all(|((t, _), h)| h.is_some_and(|h| h >= top) || rec.rows.get(t.name) == Some(&0));
    match (whole, top.checked_sub(1)) {
        (true, _) => Ok(Some(rec)),
        (false, Some(before)) => get_record(loc, node, before).await.map(Some),
        (false, None) => Ok(None),
    }
}

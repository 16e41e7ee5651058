//! `--retain`: a node's hours older than the retention are dropped from
//! every table (a Delta commit of `remove` actions for the node's
//! partitions), their uploaded captures and index records deleted, and
//! the files no commit references any more vacuumed. Time is capture
//! time: the cut is `retain` before the node's newest committed packet.
//!
//! Each node drops only its own partitions, so nodes never conflict
//! (Delta lets removes of some files and appends of others commit side by
//! side). Readers of an older version keep their files for an hour
//! (the vacuum's retention), so a query running across a drop finishes.

use deltalake_core::DeltaTable;
use deltalake_core::kernel::Action;
use deltalake_core::kernel::transaction::CommitBuilder;
use deltalake_core::protocol::DeltaOperation;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use trawl_schemas::Table;

use crate::Error;
use crate::layout::{HOUR, NODE, hour_of};
use crate::location::Location;
use crate::records::get_record;

/// What one pass dropped.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Dropped {
    /// Data files removed, over all tables.
    pub files: u64,
    pub rows: u64,
    /// Uploaded captures and index records deleted.
    pub captures: u64,
    pub records: u64,
    /// Files the vacuum deleted (removed before, or never committed).
    pub vacuumed: u64,
}

/// Drops `node`'s hours of table `t` before `cutoff_ns` (capture time),
/// then vacuums the table.
pub async fn drop_table(
    loc: &Location,
    t: &Table,
    delta: &mut DeltaTable,
    node: &str,
    cutoff_ns: i64,
    out: &mut Dropped,
) -> Result<(), Error> {
    let cutoff_hour = hour_of(cutoff_ns);
    {
        let err = |e: deltalake_core::DeltaTableError| Error::storage(loc, format!("{}: {e}", t.name));
        let snapshot = delta.snapshot().map_err(err)?;
        let views: Vec<_> =
            snapshot.snapshot().file_views(delta.log_store().as_ref(), None).try_collect().await.map_err(err)?;
        let mut removes = Vec::new();
        for v in &views {
            let parts = v.partition_values_map();
            let of_node = parts.get(NODE).and_then(|n| n.as_deref()) == Some(node);
            let old = parts.get(HOUR).and_then(|h| h.as_deref()).is_some_and(|h| h < cutoff_hour.as_str());
            if of_node && old {
                removes.push(Action::Remove(v.remove_action(true)));
                out.rows += v.num_records().map_or(0, |n| n as u64);
            }
        }
        if removes.is_empty() {
            return Ok(());
        }
        out.files += removes.len() as u64;
        let op = DeltaOperation::Delete { predicate: Some(format!("{NODE} = '{node}' AND {HOUR} < '{cutoff_hour}'")) };
        let props = crate::tables::commit_properties().with_metadata([
            ("trawl.node".to_string(), serde_json::json!(node)),
            ("trawl.retain_before".to_string(), serde_json::json!(cutoff_hour)),
        ]);
        let done = CommitBuilder::from(props)
            .with_actions(removes)
            .build(Some(snapshot), delta.log_store(), op)
            .await
            .map_err(|e| Error::storage(loc, format!("dropping old hours of {}: {e}", t.name)))?;
        delta.state = Some(done.snapshot());
        let (vacuumed, metrics) = delta
            .clone()
            .vacuum()
            .with_retention_period(chrono::Duration::hours(1))
            .with_enforce_retention_duration(false)
            .await
            .map_err(|e| Error::storage(loc, format!("vacuuming {}: {e}", t.name)))?;
        out.vacuumed += metrics.files_deleted.len() as u64;
        *delta = vacuumed;
    }
    Ok(())
}

/// Deletes `node`'s uploaded captures and index records of files that
/// ended before `cutoff_ns`; `keep_from` is the first record a restart
/// still needs (its `resume_seq`).
pub async fn drop_captures(
    loc: &Location,
    node: &str,
    cutoff_ns: i64,
    keep_from: u32,
    out: &mut Dropped,
) -> Result<(), Error> {
    let prefix = Path::from(format!("_trawl/index/{node}"));
    let metas: Vec<_> = loc.store.list(Some(&prefix)).try_collect().await.map_err(|e| Error::storage(loc, e))?;
    let mut seqs: Vec<u32> = metas
        .iter()
        .filter_map(|m| m.location.filename()?.strip_suffix(".json")?.parse().ok())
        .filter(|s| *s < keep_from)
        .collect();
    seqs.sort_unstable();
    for seq in seqs {
        let rec = get_record(loc, node, seq).await?;
        if rec.last_ns.is_some_and(|l| l >= cutoff_ns) || (rec.last_ns.is_none() && !rec.closing) {
            break;
        }
        if let Some(up) = &rec.upload {
            match loc.store.delete(&Path::from(up.as_str())).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => out.captures += 1,
                Err(e) => return Err(Error::storage(loc, format!("{up}: {e}"))),
            }
        }
        let path = Path::from(format!("_trawl/index/{node}/{seq:010}.json"));
        loc.store.delete(&path).await.map_err(|e| Error::storage(loc, format!("{path}: {e}")))?;
        out.records += 1;
    }
    Ok(())
}

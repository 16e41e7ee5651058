//! What every tool call shares: how the server was started ([`Config`]),
//! the background dissection jobs, and the opened catalogs with the match
//! counts asked of them ([`Inner`], [`Opened`]). The server and the tools
//! both depend on this; neither depends on the other's internals.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use trawl_query::{Catalog, Engine, KflQuery, KflRows};

use crate::data::DataDir;
use crate::error::ToolResult;
use crate::jobs::Jobs;

/// How the server was started.
#[derive(Debug, Clone)]
pub struct Config {
    pub data: DataDir,
    /// Exposes `delete_snapshot`.
    pub allow_destructive: bool,
    /// Threads for queries and indexing (0: one per core).
    pub threads: usize,
    /// Log each tool call to stderr.
    pub log: bool,
    /// Where queries run (`--cluster`: on a cluster's executors).
    pub engine: Engine,
    /// The longest a tool call may run (`--call-timeout`): past it the
    /// call is cancelled and answered with an error.
    pub call_timeout: std::time::Duration,
    /// Mask credentials and personal data in every result (`--redact`).
    pub redact: bool,
    /// Tool calls that run queries at once (`--max-concurrent-calls`; 0:
    /// one per core, at least two); more wait their turn, within their
    /// time limit, so that memory and latency stay bounded under load.
    pub max_concurrent_calls: usize,
}

/// Snapshot folders and their manifests' modification times.
type CatalogKey = Vec<(PathBuf, Option<SystemTime>)>;

/// What every tool call shares.
pub struct Inner {
    pub config: Config,
    /// With `--redact`: masks what results hold (one salt for the
    /// server's life, so a value masks alike in every call).
    pub redactor: Option<trawl_investigate::secrets::Redactor>,
    pub jobs: Jobs,
    /// Turns for the calls that run queries ([`Config::max_concurrent_calls`]).
    pub turns: tokio::sync::Semaphore,
    /// How many turns there are.
    pub turns_total: usize,
    /// Opened catalogs by snapshot set, reopened when a manifest changes.
    catalogs: Mutex<HashMap<CatalogKey, Arc<Opened>>>,
}

/// The most catalogs kept open (each holds Parquet metadata, not rows).
const CATALOG_CACHE: usize = 16;

impl Inner {
    pub fn new(config: Config) -> Inner {
        let redactor = config.redact.then(trawl_investigate::secrets::Redactor::new);
        let turns_total = match config.max_concurrent_calls {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()).max(2),
            n => n,
        };
        Inner {
            config,
            redactor,
            jobs: Jobs::default(),
            turns: tokio::sync::Semaphore::new(turns_total),
            turns_total,
            catalogs: Mutex::new(HashMap::new()),
        }
    }

    /// The catalog of some snapshots (by folder), opened once and reused
    /// while their manifests stay the same.
    pub async fn catalog(&self, snaps: &[PathBuf]) -> ToolResult<Arc<Opened>> {
        let key: Vec<(PathBuf, Option<SystemTime>)> = snaps.iter().map(|p| (p.clone(), freshness(p))).collect();
        if let Some(c) = self.catalogs.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(c.clone());
        }
        let cat = if let [one] = snaps {
            Catalog::open_on(one, self.config.threads, &self.config.engine).await?
        } else {
            Catalog::open_many(snaps, self.config.threads, &self.config.engine).await?
        };
        let cat = Arc::new(Opened { catalog: cat, totals: Mutex::new(HashMap::new()) });
        let mut cache = self.catalogs.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CATALOG_CACHE {
            cache.clear();
        }
        cache.insert(key, cat.clone());
        Ok(cat)
    }

    /// Drops the cached catalogs that read a snapshot (it was deleted or re-indexed).
    pub fn evict(&self, snap: &std::path::Path) {
        self.catalogs.lock().unwrap_or_else(|p| p.into_inner()).retain(|k, _| !k.iter().any(|(p, _)| p == snap));
    }
}

/// What changes when a snapshot's data does: its manifest's time; for a
/// dataset, which grows as nodes commit, the newest Delta log entry of a
/// local one, or the current second for one on object storage (a
/// catalog is reused for at most a second).
fn freshness(p: &std::path::Path) -> Option<SystemTime> {
    if trawl_dataset::read::is_dataset(p) {
        if p.is_dir() {
            return trawl_dataset::layout::TABLES
                .iter()
                .filter_map(|t| std::fs::metadata(p.join(t.name).join("_delta_log")).and_then(|m| m.modified()).ok())
                .max();
        }
        let secs = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        return Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs));
    }
    std::fs::metadata(p.join(trawl_analyze::MANIFEST)).and_then(|m| m.modified()).ok()
}

/// An opened catalog and the match counts of the filters asked of it.
/// Snapshots are immutable, and a re-indexed one opens a new catalog, so
/// a count stays true for as long as its catalog lives: paging through
/// results costs one count, not one per page.
pub struct Opened {
    pub catalog: Catalog,
    totals: Mutex<HashMap<String, usize>>,
}

/// The most counts kept per catalog.
const TOTALS_CACHE: usize = 1024;

impl std::ops::Deref for Opened {
    type Target = Catalog;
    fn deref(&self) -> &Catalog {
        &self.catalog
    }
}

impl Opened {
    /// One page of a KFL query and how many rows match in all.
    pub async fn page(&self, q: &KflQuery) -> ToolResult<(usize, KflRows)> {
        let key = format!("{:?}\u{0}{}\u{0}{:?}\u{0}{:?}\u{0}{:?}", q.table, q.filter, q.also, q.start_ns, q.end_ns);
        let known = self.totals.lock().unwrap_or_else(|p| p.into_inner()).get(&key).copied();
        if let Some(t) = known {
            let (df, notes) = self.catalog.kfl_frame(q).await?;
            return Ok((t, KflRows { batches: df.collect().await?, notes }));
        }
        let (total, rows) = self.catalog.kfl_page(q).await?;
        let mut totals = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        if totals.len() >= TOTALS_CACHE {
            totals.clear();
        }
        totals.insert(key, total);
        Ok((total, rows))
    }
}

//! The data folder `trawl mcp --data DIR` serves, and the one place that
//! turns names from a client into paths.
//!
//! ```text
//! DIR/
//!   archive/     the capture archive: one folder per node (read only;
//!                `--archive` may point elsewhere)
//!   snapshots/   the workspace of named snapshots (trawl snapshot --workspace)
//!   exports/     PCAPs written by export_snapshot_pcap and get_api_call_details
//! ```
//!
//! Clients never pass paths: they pass snapshot names and file names,
//! which are single path components checked by
//! `trawl_snapshot::workspace::check_name`, so every file a tool writes
//! stays inside DIR.

use std::path::{Path, PathBuf};

use serde_json::json;
use trawl_snapshot::workspace;

use crate::error::{ToolError, ToolResult};

#[derive(Debug, Clone)]
pub struct DataDir {
    pub root: PathBuf,
    pub archive: PathBuf,
    pub snapshots: PathBuf,
    pub exports: PathBuf,
    /// A dataset written by `trawl index` (a local folder or an `s3://`
    /// URL), served as the snapshot named [`DATASET`]: always current,
    /// every node's data. Queries without a snapshot read it.
    pub dataset: Option<String>,
}

/// The snapshot name a served dataset goes by.
pub const DATASET: &str = "dataset";

/// Why the data folder cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("--data {}: {detail}", path.display())]
    Invalid { path: PathBuf, detail: String },
}

impl DataDir {
    /// Opens (and if need be creates) the data folder. `archive` overrides
    /// `DIR/archive`.
    pub fn open(root: &Path, archive: Option<&Path>) -> Result<DataDir, DataDirError> {
        let bad = |detail: String| DataDirError::Invalid { path: root.to_path_buf(), detail };
        if root.exists() && !root.is_dir() {
            return Err(bad("expected a folder (it holds archive/, snapshots/ and exports/), found a file".into()));
        }
        std::fs::create_dir_all(root.join("snapshots")).map_err(|e| bad(format!("cannot create snapshots/: {e}")))?;
        let root = root.canonicalize().map_err(|e| bad(e.to_string()))?;
        let archive = match archive {
            Some(a) => a
                .canonicalize()
                .map_err(|e| DataDirError::Invalid { path: a.to_path_buf(), detail: format!("--archive: {e}") })?,
            None => root.join("archive"),
        };
        let d =
            DataDir { snapshots: root.join("snapshots"), exports: root.join("exports"), archive, root, dataset: None };
        d.sweep_dead_indexes();
        Ok(d)
    }

    /// Removes the half-written indexes (`.index.tmp-PID`) of processes
    /// that are gone: a server stopped mid-dissection leaves its snapshot
    /// unindexed and whole, and this takes away the leftovers.
    fn sweep_dead_indexes(&self) {
        let Ok(snaps) = std::fs::read_dir(&self.snapshots) else { return };
        for snap in snaps.flatten() {
            let Ok(entries) = std::fs::read_dir(snap.path()) else { continue };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if let Some(pid) = name.strip_prefix(".index.tmp-").and_then(|p| p.parse::<u32>().ok())
                    && !Path::new(&format!("/proc/{pid}")).exists()
                {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }

    /// Serves a dataset too (`trawl mcp --dataset`, or `--data` naming one).
    pub fn with_dataset(mut self, location: String) -> DataDir {
        self.dataset = Some(location);
        self
    }

    /// The dataset's location as a path (a URL stays a URL), if one is served.
    pub fn dataset_path(&self) -> Option<PathBuf> {
        self.dataset.as_ref().map(PathBuf::from)
    }

    /// The names of the workspace's snapshots (and [`DATASET`] when a
    /// dataset is served).
    pub fn snapshot_names(&self) -> Vec<String> {
        let mut names: Vec<String> =
            workspace::list(&self.snapshots).map(|l| l.into_iter().map(|e| e.name).collect()).unwrap_or_default();
        if self.dataset.is_some() {
            names.insert(0, DATASET.to_string());
        }
        names
    }

    /// The folder of an existing snapshot; an unknown name lists the known
    /// ones. With a dataset served, [`DATASET`] and any name that is not a
    /// workspace snapshot (a node: ids of a dataset read `NODE/ID`) are
    /// the dataset.
    pub fn snapshot(&self, name: &str) -> ToolResult<PathBuf> {
        let known = self.snapshot_names();
        if let Some(p) = self.dataset_path()
            && (name == DATASET || !known.iter().any(|k| k == name))
        {
            return Ok(p);
        }
        if workspace::check_name(name).is_ok() && known.iter().any(|k| k == name) {
            return Ok(self.snapshots.join(name));
        }
        Err(ToolError::new(format!("no snapshot named `{name}`")).with("known_snapshots", json!(known)))
    }

    /// The folder a new snapshot gets.
    pub fn new_snapshot(&self, name: &str) -> ToolResult<PathBuf> {
        let p = workspace::path_of(&self.snapshots, name).map_err(|e| ToolError::new(format!("name: {e}")))?;
        if p.exists() {
            return Err(ToolError::new(format!(
                "a snapshot named `{name}` already exists; snapshots are immutable: choose another name or delete it"
            ))
            .with("known_snapshots", json!(self.snapshot_names())));
        }
        Ok(p)
    }

    /// A file to write under `exports/`; `name` is one path component.
    pub fn export_file(&self, name: &str, extension: &str) -> ToolResult<PathBuf> {
        let stem = name.strip_suffix(extension).unwrap_or(name);
        workspace::check_name(stem).map_err(|_| {
            ToolError::new(format!(
                "name `{name}`: expected a file name of letters, digits, `.`, `_` or `-` (no folders); it is written under {}",
                self.exports.display()
            ))
        })?;
        std::fs::create_dir_all(&self.exports)
            .map_err(|e| ToolError::new(format!("{}: {e}", self.exports.display())))?;
        Ok(self.exports.join(format!("{stem}{extension}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_names_stay_inside_the_data_folder() {
        let dir = std::env::temp_dir().join(format!("trawl-mcp-data-{}", std::process::id()));
        let d = DataDir::open(&dir, None).unwrap_or_else(|e| panic!("{e}"));
        for bad in ["../x", "/etc/passwd", "a/b", "..", ".hidden", ""] {
            assert!(d.export_file(bad, ".pcapng").is_err(), "{bad}");
            assert!(d.new_snapshot(bad).is_err(), "{bad}");
            assert!(d.snapshot(bad).is_err(), "{bad}");
        }
        assert_eq!(d.export_file("errors", ".pcapng").ok(), Some(d.root.join("exports/errors.pcapng")));
        assert_eq!(d.export_file("errors.pcapng", ".pcapng").ok(), Some(d.root.join("exports/errors.pcapng")));
        let e = d.snapshot("nope").err().map(|e| e.to_json()).unwrap_or_default();
        assert_eq!(e["known_snapshots"], json!([]));
        // A dead process's half-written index goes; a live one's stays.
        let snap = d.snapshots.join("s1");
        let dead = snap.join(".index.tmp-4294967295");
        let live = snap.join(format!(".index.tmp-{}", std::process::id()));
        std::fs::create_dir_all(&dead).ok();
        std::fs::create_dir_all(&live).ok();
        let _ = DataDir::open(&dir, None);
        assert!(!dead.exists() && live.exists());
        std::fs::remove_dir_all(&dir).ok();
    }
}

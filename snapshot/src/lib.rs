//! Capture archives and snapshots.
//!
//! The forensic loop Kubeshark runs on a cluster, over files:
//! 1. [`archive`]: which window of raw capture exists, per node
//!    (`trawl archive boundaries`).
//! 2. [`create`]: freeze a window of it, for some nodes and workloads,
//!    into a snapshot (`raw/<node>.pcapng` plus Kubernetes sidecars), and
//!    index it now or later (delayed indexing).
//! 3. [`export`]: packets of the flows a KFL filter picked, through the
//!    packet index, as pcapng for Wireshark; [`bpf`] filters in-process.
//! 4. [`pack`]: a snapshot as one checksummed `.tar.zst` for CI artifacts.
//! 5. [`workspace`]: named snapshots, listed and deleted.

pub mod archive;
#[allow(unsafe_code)]
pub mod bpf;
pub mod create;
mod error;
pub mod export;
pub mod merge;
pub mod pack;
pub mod pcapng;
pub mod resolve;
pub mod window;
pub mod workspace;

use std::path::Path;

pub use error::Error;

/// The file describing a snapshot cut from an archive.
pub const SNAPSHOT_FILE: &str = "snapshot.json";

/// Makes every file below `dir` read-only: a complete snapshot is immutable.
pub fn seal(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let e = e.map_err(|e| Error::io(dir, e))?;
        let p = e.path();
        let ft = e.file_type().map_err(|err| Error::io(&p, err))?;
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if ft.is_dir() {
            seal(&p)?;
        } else if ft.is_file() {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o444)).map_err(|e| Error::io(&p, e))?;
        }
    }
    Ok(())
}

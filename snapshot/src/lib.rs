//! Capture archives and snapshots.
//!
//! The forensic loop Kubeshark runs on a cluster, over files:
//! 1. [`archive`]: which window of raw capture exists, per node
//!    (`trawl archive boundaries`).
//! 2. [`create`]: freeze a window of it, for some nodes and workloads,
//!    into a snapshot (`raw/<node>.pcapng` plus Kubernetes sidecars), and
//!    index it now or later (delayed indexing).
//! 3. [`export`]: packets of the flows a KFL filter picked, through the
//!    packet index, as pcapng for Wireshark (`--bpf` through
//!    `trawl_capture::bpf_filter`).
//! 4. [`pack`]: a snapshot as one checksummed `.tar.zst` for CI artifacts.
//! 5. [`workspace`]: named snapshots, listed and deleted.

pub mod archive;
pub mod create;
mod error;
pub mod export;
pub mod merge;
pub mod pack;
pub mod pcapng;
pub mod resolve;
pub mod window;
pub mod workspace;

use std::path::{Path, PathBuf};

pub use error::Error;

/// The file describing a snapshot cut from an archive.
pub const SNAPSHOT_FILE: &str = "snapshot.json";

/// The files of a snapshot folder, relative to it, in name order. Hidden
/// entries (temporaries of a create or an index in progress) are not
/// part of it; anything but files and folders is an error.
pub fn snapshot_files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
        for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let e = e.map_err(|e| Error::io(dir, e))?;
            let p = e.path();
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let ft = e.file_type().map_err(|err| Error::io(&p, err))?;
            if ft.is_dir() {
                walk(root, &p, out)?;
            } else if ft.is_file() {
                out.push(p.strip_prefix(root).unwrap_or(&p).to_path_buf());
            } else {
                return Err(Error::invalid(&p, "a snapshot holds only files and folders"));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

/// Makes every file of a snapshot read-only: a complete snapshot is immutable.
pub fn seal(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    for f in snapshot_files(dir)? {
        let p = dir.join(f);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o444)).map_err(|e| Error::io(&p, e))?;
    }
    Ok(())
}

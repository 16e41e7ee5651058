//! The snapshot directory: written under a temporary name beside its
//! destination, renamed into place when complete.

use std::fs;
use std::path::{Path, PathBuf};

use crate::Error;

/// A snapshot directory being written: everything goes to a temporary
/// sibling directory that is renamed into place by [`Snapshot::commit`].
pub struct Snapshot {
    pub tmp: PathBuf,
    pub dest: PathBuf,
    force: bool,
}

impl Snapshot {
    /// The temporary directory a snapshot for `dest` is written in by
    /// this process (so that an interrupted run can remove it).
    pub fn tmp_path(dest: &Path) -> PathBuf {
        let name = dest.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "snapshot".into());
        let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        parent.join(format!(".{name}.tmp-{}", std::process::id()))
    }

    pub fn begin(dest: &Path, force: bool) -> Result<Snapshot, Error> {
        if dest.exists() && !force {
            return Err(Error::Config(format!(
                "{}: output already exists (use --force to replace it)",
                dest.display()
            )));
        }
        let tmp = Snapshot::tmp_path(dest);
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        }
        fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        Ok(Snapshot { tmp, dest: dest.to_path_buf(), force })
    }

    pub fn write_file(&self, name: &str, bytes: &[u8]) -> Result<(), Error> {
        let p = self.tmp.join(name);
        fs::write(&p, bytes).map_err(|e| Error::io(&p, e))
    }

    /// Moves the finished snapshot into place.
    pub fn commit(self) -> Result<PathBuf, Error> {
        if self.dest.exists() && self.force {
            let old = self.tmp.with_extension("old");
            fs::rename(&self.dest, &old).map_err(|e| Error::io(&self.dest, e))?;
            fs::rename(&self.tmp, &self.dest).map_err(|e| Error::io(&self.dest, e))?;
            let _ = fs::remove_dir_all(&old);
        } else {
            fs::rename(&self.tmp, &self.dest).map_err(|e| Error::io(&self.dest, e))?;
        }
        Ok(self.dest.clone())
    }

    /// Removes the temporary directory after a failure.
    pub fn abort(self) {
        let _ = fs::remove_dir_all(&self.tmp);
    }
}

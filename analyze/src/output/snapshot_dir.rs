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
    /// The folder temporaries for `dest` are written in, and the prefix of
    /// their names (`.NAME.tmp-`, then the writing process's id).
    fn tmp_prefix(dest: &Path) -> (&Path, String) {
        let name = dest.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "snapshot".into());
        let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        (parent, format!(".{name}.tmp-"))
    }

    /// The temporary directory a snapshot for `dest` is written in by
    /// this process (so that an interrupted run can remove it).
    pub fn tmp_path(dest: &Path) -> PathBuf {
        let (parent, prefix) = Snapshot::tmp_prefix(dest);
        parent.join(format!("{prefix}{}", std::process::id()))
    }

    /// [`Snapshot::tmp_path`], once what runs killed before they finished
    /// left for `dest` is removed ([`Snapshot::remove_stale_temporaries`]):
    /// what every writer of an output calls before it starts.
    pub fn claim_tmp_path(dest: &Path) -> PathBuf {
        Snapshot::remove_stale_temporaries(dest);
        Snapshot::tmp_path(dest)
    }

    /// Removes what runs killed before they finished (SIGKILL, a crash, a
    /// power cut) left beside `dest`: temporaries of [`Snapshot::tmp_path`]
    /// named after a process that is no longer running, and the previous
    /// output a killed `--force` run had moved aside. Returns how many.
    /// Where `/proc` is missing, nothing is removed.
    pub fn remove_stale_temporaries(dest: &Path) -> usize {
        if !Path::new("/proc/self").exists() {
            return 0;
        }
        let (parent, prefix) = Snapshot::tmp_prefix(dest);
        let own = std::process::id().to_string();
        let Ok(entries) = fs::read_dir(parent) else { return 0 };
        let mut removed = 0;
        for e in entries.flatten() {
            let file = e.file_name().to_string_lossy().to_string();
            let Some(rest) = file.strip_prefix(&prefix) else { continue };
            let pid = rest.split('.').next().unwrap_or_default();
            let dead = !pid.is_empty()
                && pid.bytes().all(|b| b.is_ascii_digit())
                && pid != own
                && !Path::new("/proc").join(pid).exists();
            if dead {
                let p = e.path();
                let gone = if p.is_dir() { fs::remove_dir_all(&p) } else { fs::remove_file(&p) };
                removed += gone.is_ok() as usize;
            }
        }
        removed
    }

    pub fn begin(dest: &Path, force: bool) -> Result<Snapshot, Error> {
        if dest.exists() && !force {
            return Err(Error::Config(format!(
                "{}: output already exists (use --force to replace it)",
                dest.display()
            )));
        }
        let tmp = Snapshot::claim_tmp_path(dest);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_temporaries_of_dead_processes_are_removed() {
        let dir = std::env::temp_dir().join(format!("trawl-stale-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).ok();
        let dest = dir.join("out.snap");
        // PID 1 runs; no process has PID 999999999 (above Linux's maximum).
        for name in [".out.snap.tmp-1", ".out.snap.tmp-999999999", ".out.snap.tmp-999999999.old", ".out.snap.tmp-x"] {
            fs::create_dir_all(dir.join(name)).ok();
        }
        fs::write(dir.join(".other.snap.tmp-999999999"), b"").ok();
        assert_eq!(Snapshot::remove_stale_temporaries(&dest), 2);
        let mut left: Vec<String> = fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into())
            .collect();
        left.sort();
        assert_eq!(left, [".other.snap.tmp-999999999", ".out.snap.tmp-1", ".out.snap.tmp-x"]);
        let _ = fs::remove_dir_all(&dir);
    }
}

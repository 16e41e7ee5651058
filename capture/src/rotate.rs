//! A node's files in the archive, rotated and pruned: the open file is
//! written under a temporary dot-name (`.NODE-STARTNS.pcapng.tmp`, which
//! every reader skips) and renamed when complete, so no partial file
//! ever looks complete. Retention deletes the oldest complete files
//! while the node's files (Kubernetes sidecars included) exceed the
//! limit; the newest is always kept, and so is the sidecar in force when
//! the oldest kept file starts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::pcapng::{Direction, IfCounts, PcapNg};
use crate::{Config, Error, Interface, io};

struct Open {
    file: PcapNg,
    name: String,
    opened: Instant,
    start_ns: u64,
}

/// Real time now, in ns since the Unix epoch.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

pub struct Rotating {
    cfg: Config,
    dir: PathBuf,
    names: BTreeMap<u32, Interface>,
    current: Option<Open>,
    /// Complete files of this node, oldest first (earlier runs' too).
    kept: Vec<PathBuf>,
    /// Files this run completed.
    pub written: Vec<PathBuf>,
    /// Counts since the open file started (or since the last file closed).
    counts: BTreeMap<u32, IfCounts>,
    /// Counts over the whole run.
    pub totals: IfCounts,
    /// What retention deleted: capture files, Kubernetes sidecars.
    pub deleted: (usize, usize),
}

impl Rotating {
    /// `names`: the interfaces by index; each file describes all of them.
    pub fn new(cfg: Config, dir: PathBuf, names: BTreeMap<u32, Interface>) -> Rotating {
        // Earlier runs' complete files count towards retention, oldest first.
        let mut kept: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&dir)
            .map(|r| {
                r.flatten()
                    .filter(|e| {
                        let n = e.file_name().to_string_lossy().to_string();
                        n.ends_with(".pcapng") && !n.starts_with('.')
                    })
                    .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
                    .collect()
            })
            .unwrap_or_default();
        kept.sort();
        let kept = kept.into_iter().map(|(_, p)| p).collect();
        Rotating {
            cfg,
            dir,
            names,
            current: None,
            kept,
            written: Vec::new(),
            counts: BTreeMap::new(),
            totals: IfCounts::default(),
            deleted: (0, 0),
        }
    }

    fn open(&mut self, ts_ns: u64) -> Result<(), Error> {
        let name = format!("{}-{ts_ns}.pcapng", self.cfg.node);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let file = PcapNg::create(&tmp, self.cfg.snaplen, &self.names)?;
        self.current = Some(Open { file, name, opened: Instant::now(), start_ns: ts_ns });
        Ok(())
    }

    fn due(&self) -> bool {
        self.current.as_ref().is_some_and(|o| {
            self.cfg.rotate_size.is_some_and(|max| o.file.written >= max)
                || self.cfg.rotate_time.is_some_and(|t| o.opened.elapsed() >= t)
        })
    }

    /// Writes one packet that passed the filter, rotating first if due.
    pub fn packet(&mut self, ifindex: u32, ts_ns: u64, len: u32, dir: Direction, data: &[u8]) -> Result<(), Error> {
        if self.due() {
            self.close()?;
        }
        if self.current.is_none() {
            self.open(ts_ns)?;
        }
        self.counts.entry(ifindex).or_default().accepted += 1;
        self.totals.accepted += 1;
        match self.current.as_mut() {
            Some(o) => o.file.packet(ifindex, ts_ns, len, dir, data),
            None => Ok(()),
        }
    }

    /// Adds the kernel side's counts (packets seen, dropped) since the
    /// last call; they go into the open file's statistics.
    pub fn count(&mut self, ifindex: u32, received: u64, dropped: u64) {
        let c = self.counts.entry(ifindex).or_default();
        c.received += received;
        c.dropped += dropped;
        self.totals.received += received;
        self.totals.dropped += dropped;
    }

    /// Closes the open file when its time is up, so a quiet interface
    /// still yields complete files.
    pub fn tick(&mut self) -> Result<(), Error> {
        if self.due() { self.close() } else { Ok(()) }
    }

    /// Completes the open file (statistics, flushed, synced, renamed),
    /// then applies retention.
    pub fn close(&mut self) -> Result<(), Error> {
        let Some(o) = self.current.take() else { return Ok(()) };
        let done = o.file.finish(o.start_ns, now_ns().max(o.start_ns), &std::mem::take(&mut self.counts))?;
        let path = self.dir.join(o.name);
        std::fs::rename(&done, &path).map_err(io(&path))?;
        self.written.push(path.clone());
        self.kept.push(path);
        if let Some(keep) = self.cfg.keep {
            self.retain(keep)?;
        }
        Ok(())
    }

    /// Deletes the oldest complete capture files while the node's files,
    /// Kubernetes sidecars included, exceed `keep` bytes (the newest
    /// capture file stays), and the sidecars no kept file needs: those
    /// before the one in force when the oldest kept file starts (a
    /// reader names a packet with the last sidecar at or before it).
    fn retain(&mut self, keep: u64) -> Result<(), Error> {
        let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let mut sidecars = sidecars(&self.dir);
        let mut total: u64 = self.kept.iter().map(|p| size(p)).chain(sidecars.iter().map(|(_, p)| size(p))).sum();
        loop {
            if let Some(start) = self.kept.first().and_then(|p| start_ns(p)) {
                let in_force = sidecars.iter().rposition(|(t, _)| *t <= start).unwrap_or(0);
                for (_, p) in sidecars.drain(..in_force) {
                    total = total.saturating_sub(size(&p));
                    remove(&p)?;
                    self.deleted.1 += 1;
                }
            }
            if total <= keep || self.kept.len() <= 1 {
                return Ok(());
            }
            let oldest = self.kept.remove(0);
            total = total.saturating_sub(size(&oldest));
            remove(&oldest)?;
            self.deleted.0 += 1;
            self.written.retain(|p| p != &oldest);
        }
    }
}

/// Deletes a file; one already gone is no error.
fn remove(path: &Path) -> Result<(), Error> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(path)(e)),
        _ => Ok(()),
    }
}

/// A node folder's complete Kubernetes sidecars (`k8s-<unix ms>.json[l]`;
/// one being written has a dot-name), oldest first, with their time in ns.
fn sidecars(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .filter_map(|e| {
                    let t = trawl_schemas::k8s::time_from_name(&e.file_name().to_string_lossy())?;
                    Some((u64::try_from(t).ok()?, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// The start of a capture file, from its name (`NODE-<start ns>.pcapng`).
fn start_ns(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?.strip_suffix(".pcapng")?;
    name.rsplit_once('-')?.1.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Backend, Kubernetes};

    fn config(dir: &Path, keep: u64) -> Config {
        Config {
            interfaces: vec!["lo".into()],
            archive: dir.to_path_buf(),
            node: "node-a".into(),
            snaplen: 65535,
            duration: None,
            rotate_size: None,
            rotate_time: None,
            keep: Some(keep),
            backend: Backend::Auto,
            filter: None,
            kubernetes: Kubernetes::None,
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut n: Vec<String> = std::fs::read_dir(dir)
            .map(|r| r.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        n.sort();
        n
    }

    /// Sidecars count towards `--keep`; once the oldest capture file goes,
    /// the sidecars before the one in force at the new oldest file's start
    /// go too, and the one in force stays.
    #[test]
    fn retention_counts_sidecars_and_keeps_the_one_in_force() {
        let dir = std::env::temp_dir().join(format!("trawl-rotate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(std::fs::create_dir_all(&dir).is_ok());
        // Sidecars at 1.0 s, 2.0 s and 3.0 s (names in unix ms), 10 kB each,
        // and one being written (a dot-name: not counted, not deleted).
        for name in ["k8s-1000.jsonl", "k8s-2000.json", "k8s-3000.jsonl", ".k8s-4000.jsonl.tmp"] {
            assert!(std::fs::write(dir.join(name), vec![b'x'; 10_000]).is_ok());
        }
        // Two capture files of about 1.6 kB (one 1500-byte packet each),
        // starting at 1.5 s and 2.5 s; 33 kB fits all but not all plus
        // the first file's successor sidecars... so the first file goes.
        let mut r =
            Rotating::new(config(&dir, 33_000), dir.clone(), [(1, Interface { name: "lo".into(), link: 1 })].into());
        for ts in [1_500_000_000, 2_500_000_000] {
            assert!(r.packet(1, ts, 1500, Direction::Inbound, &[0u8; 1500]).is_ok());
            assert!(r.close().is_ok());
        }
        // 40 kB of sidecars plus 3.2 kB of captures > 33 kB: the file of
        // 1.5 s goes; the one of 2.5 s is named by k8s-2000, so k8s-1000
        // goes; what is left (30 kB + 1.6 kB) fits.
        assert_eq!(names(&dir), [".k8s-4000.jsonl.tmp", "k8s-2000.json", "k8s-3000.jsonl", "node-a-2500000000.pcapng"]);
        assert_eq!(r.deleted, (1, 1));
        assert_eq!(r.written, [dir.join("node-a-2500000000.pcapng")]);
        // Over the limit with one capture file left: it stays, and so does
        // the sidecar in force at its start.
        let mut r = Rotating::new(config(&dir, 1), dir.clone(), [(1, Interface { name: "lo".into(), link: 1 })].into());
        assert!(r.packet(1, 3_500_000_000, 1500, Direction::Inbound, &[0u8; 1500]).is_ok());
        assert!(r.close().is_ok());
        assert_eq!(names(&dir), [".k8s-4000.jsonl.tmp", "k8s-3000.jsonl", "node-a-3500000000.pcapng"]);
        assert_eq!(r.deleted, (1, 1));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

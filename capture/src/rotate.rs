//! A node's files in the archive, rotated and pruned: the open file is
//! written under a temporary dot-name (`.NODE-STARTNS.pcapng.tmp`, which
//! every reader skips) and renamed when complete, so no partial file
//! ever looks complete. Retention deletes the oldest complete files
//! while the node's files exceed the limit; the newest is always kept.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use crate::pcapng::{Direction, IfCounts, PcapNg};
use crate::{Config, Error, io};

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
    names: BTreeMap<u32, String>,
    current: Option<Open>,
    /// Complete files of this node, oldest first (earlier runs' too).
    kept: Vec<PathBuf>,
    /// Files this run completed.
    pub written: Vec<PathBuf>,
    /// Counts since the open file started (or since the last file closed).
    counts: BTreeMap<u32, IfCounts>,
    /// Counts over the whole run.
    pub totals: IfCounts,
}

impl Rotating {
    /// `names`: the interfaces by index; each file describes all of them.
    pub fn new(cfg: Config, dir: PathBuf, names: BTreeMap<u32, String>) -> Rotating {
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
        Rotating { cfg, dir, names, current: None, kept, written: Vec::new(), counts: BTreeMap::new(), totals: IfCounts::default() }
    }

    fn open(&mut self, ts_ns: u64) -> Result<(), Error> {
        let name = format!("{}-{ts_ns}.pcapng", self.cfg.node);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let file = PcapNg::create(&tmp, self.cfg.snaplen, &self.names)?;
        self.current = Some(Open { file, name, opened: Instant::now(), start_ns: ts_ns });
        Ok(())
    }

    fn due(&self) -> bool {
        self.current
            .as_ref()
            .is_some_and(|o| self.cfg.rotate_size.is_some_and(|max| o.file.written >= max) || self.cfg.rotate_time.is_some_and(|t| o.opened.elapsed() >= t))
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
            let size = |p: &PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
            let mut total: u64 = self.kept.iter().map(size).sum();
            while total > keep && self.kept.len() > 1 {
                let oldest = self.kept.remove(0);
                total -= size(&oldest);
                match std::fs::remove_file(&oldest) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io(&oldest)(e)),
                }
                self.written.retain(|p| p != &oldest);
            }
        }
        Ok(())
    }
}

//! A node's archive folder as a [`Feed`]: the complete capture files
//! (the capture agent writes under a dot-name and renames when a file is
//! complete), oldest name first, and with `--follow` the files that
//! appear later.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use trawl_analyze::Feed;

use crate::Error;

/// The complete capture files of `dir` with names after `after`, sorted.
pub fn complete_captures(dir: &Path, after: Option<&str>) -> Result<Vec<PathBuf>, Error> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::Config(format!("{}: {e}", dir.display())))?;
    let mut out: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            !name.starts_with('.')
                && !name.ends_with(".tmp")
                && p.is_file()
                && trawl_analyze::is_capture_name(p)
                && after.is_none_or(|a| name.as_str() > a)
        })
        .collect();
    out.sort();
    Ok(out)
}

pub(crate) struct ArchiveFeed {
    dir: PathBuf,
    /// Files read again to rebuild open connections, then new ones.
    queue: VecDeque<PathBuf>,
    replay_left: usize,
    current_is_replay: bool,
    last_name: Option<String>,
    follow: bool,
    poll: Duration,
    stop: Arc<AtomicBool>,
    /// Sidecar files given on the command line, and the archive's own
    /// with their sizes and times when last read.
    extra_sidecars: Vec<PathBuf>,
    seen_sidecars: Vec<(PathBuf, Option<(u64, std::time::SystemTime)>)>,
}

impl ArchiveFeed {
    pub fn new(
        dir: &Path,
        replay: Vec<PathBuf>,
        last_name: Option<String>,
        follow: bool,
        poll: Duration,
        stop: Arc<AtomicBool>,
    ) -> Result<ArchiveFeed, Error> {
        let replay_left = replay.len();
        let mut queue: VecDeque<PathBuf> = replay.into();
        queue.extend(complete_captures(dir, last_name.as_deref())?);
        let last_name = queue.back().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().to_string()).or(last_name);
        let mut feed = ArchiveFeed {
            dir: dir.to_path_buf(),
            queue,
            replay_left,
            current_is_replay: false,
            last_name,
            follow,
            poll,
            stop,
            extra_sidecars: Vec::new(),
            seen_sidecars: Vec::new(),
        };
        feed.seen_sidecars = feed.archive_sidecars();
        Ok(feed)
    }

    /// Sidecars besides the archive's own (`--k8s`), read with them.
    pub fn with_extra_sidecars(mut self, extra: Vec<PathBuf>) -> ArchiveFeed {
        let own: Vec<PathBuf> = self.seen_sidecars.iter().map(|s| s.0.clone()).collect();
        self.extra_sidecars = extra.into_iter().filter(|p| !own.contains(p)).collect();
        self
    }

    fn archive_sidecars(&self) -> Vec<(PathBuf, Option<(u64, std::time::SystemTime)>)> {
        trawl_analyze::kube::sidecars_near(&[self.dir.join("capture.pcap")])
            .into_iter()
            .map(|p| {
                let m = std::fs::metadata(&p).ok().and_then(|m| Some((m.len(), m.modified().ok()?)));
                (p, m)
            })
            .collect()
    }

    /// New complete files since the last look.
    fn rescan(&mut self) {
        if let Ok(found) = complete_captures(&self.dir, self.last_name.as_deref()) {
            if let Some(n) = found.last().and_then(|p| p.file_name()) {
                self.last_name = Some(n.to_string_lossy().to_string());
            }
            self.queue.extend(found);
        }
    }
}

impl Feed for ArchiveFeed {
    fn next_file(&mut self) -> Option<PathBuf> {
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return None;
            }
            if let Some(p) = self.queue.pop_front() {
                self.current_is_replay = self.replay_left > 0;
                self.replay_left = self.replay_left.saturating_sub(1);
                return Some(p);
            }
            if !self.follow {
                return None;
            }
            std::thread::sleep(self.poll);
            self.rescan();
        }
    }

    fn closes_after_current(&self) -> bool {
        !self.follow && self.queue.is_empty() && !self.current_is_replay
    }

    fn sidecars(&mut self) -> Option<Vec<PathBuf>> {
        let now = self.archive_sidecars();
        if now == self.seen_sidecars {
            return None;
        }
        self.seen_sidecars = now;
        let mut all = self.extra_sidecars.clone();
        all.extend(self.seen_sidecars.iter().map(|s| s.0.clone()));
        Some(all)
    }

    fn closes_at_end(&self) -> bool {
        !self.follow && self.current_is_replay && !self.stop.load(Ordering::Relaxed)
    }
}

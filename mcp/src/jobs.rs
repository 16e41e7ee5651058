//! Dissection jobs: snapshots indexed in the background
//! (`start_snapshot_dissection`), one job per snapshot at a time.
//!
//! A job runs on a thread of its own (indexing is CPU work on rayon, not
//! async work), so it outlives the tool call that started it, and the
//! call that started it can still watch it and send progress. The state
//! of a snapshot nobody is indexing comes from disk: a manifest means
//! completed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Value, json};
use trawl_analyze::Progress;

/// The file in a snapshot folder that says a dissection began there
/// (`{"pid", "started_unix_ms"}`) or failed (`{"failed": "..."}`); removed
/// when one completes.
pub const MARKER: &str = ".dissection.json";

fn write_marker(snap: &Path, v: &Value) {
    let _ = std::fs::write(snap.join(MARKER), v.to_string());
}

/// What a job is doing.
#[derive(Debug, Clone)]
enum State {
    Running,
    Completed(Value),
    Failed(String),
}

struct Job {
    progress: Arc<Progress>,
    state: Arc<Mutex<State>>,
    started: Instant,
    elapsed_s: Arc<Mutex<Option<f64>>>,
}

/// The jobs of this server.
#[derive(Default, Clone)]
pub struct Jobs {
    jobs: Arc<Mutex<HashMap<String, Job>>>,
}

/// Why a job could not start.
#[derive(Debug)]
pub enum StartError {
    AlreadyRunning,
    AlreadyIndexed,
}

impl Jobs {
    /// Starts indexing `snap` (named `name`) unless a job already runs on
    /// it, or it is indexed and `force` is not set.
    pub fn start(&self, name: &str, snap: &Path, force: bool, threads: Option<usize>) -> Result<(), StartError> {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(j) = jobs.get(name)
            && matches!(*j.state.lock().unwrap_or_else(|p| p.into_inner()), State::Running)
        {
            return Err(StartError::AlreadyRunning);
        }
        if snap.join(trawl_analyze::MANIFEST).is_file() && !force {
            return Err(StartError::AlreadyIndexed);
        }
        let progress = Arc::new(Progress::default());
        let state = Arc::new(Mutex::new(State::Running));
        let elapsed_s = Arc::new(Mutex::new(None));
        let started = Instant::now();
        let job = Job { progress: progress.clone(), state: state.clone(), started, elapsed_s: elapsed_s.clone() };
        jobs.insert(name.to_string(), job);
        let snap: PathBuf = snap.to_path_buf();
        let since =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        write_marker(&snap, &json!({"pid": std::process::id(), "started_unix_ms": since}));
        std::thread::spawn(move || {
            let r = trawl_snapshot::create::index(&snap, threads, force, &progress);
            progress.done.store(true, Ordering::Relaxed);
            let s = match r {
                Ok(m) => {
                    let _ = std::fs::remove_file(snap.join(MARKER));
                    State::Completed(json!(m.counters))
                }
                Err(e) => {
                    write_marker(&snap, &json!({"failed": e.to_string()}));
                    State::Failed(e.to_string())
                }
            };
            *elapsed_s.lock().unwrap_or_else(|p| p.into_inner()) = Some(started.elapsed().as_secs_f64());
            *state.lock().unwrap_or_else(|p| p.into_inner()) = s;
        });
        Ok(())
    }

    /// True while a job indexes the snapshot.
    pub fn running(&self, name: &str) -> bool {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.get(name).is_some_and(|j| matches!(*j.state.lock().unwrap_or_else(|p| p.into_inner()), State::Running))
    }

    /// Forgets a snapshot's finished job (after it is deleted).
    pub fn forget(&self, name: &str) {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).remove(name);
    }

    /// Progress of a running job: percent done (0-100) from the bytes read.
    pub fn percent(&self, name: &str) -> Option<f64> {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        let j = jobs.get(name)?;
        Some(percent(&j.progress))
    }

    /// The status object of `get_snapshot_dissection_status`.
    pub fn status(&self, name: &str, snap: &Path) -> Value {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        let indexed = snap.join(trawl_analyze::MANIFEST).is_file();
        let Some(j) = jobs.get(name) else {
            let marker: Option<Value> =
                std::fs::read(snap.join(MARKER)).ok().and_then(|b| serde_json::from_slice(&b).ok());
            return match (indexed, marker) {
                (true, _) => {
                    let counters = manifest_counters(snap);
                    json!({"snapshot": name, "status": "completed", "progress": 100, "stats": stats_of(&counters, None)})
                }
                (false, Some(m)) if m.get("failed").is_some() => {
                    json!({"snapshot": name, "status": "failed", "progress": 0, "errors": [m["failed"]], "next": "start_snapshot_dissection to try again"})
                }
                // Begun by a server that is gone (this one holds no job for it).
                (false, Some(_)) => json!({
                    "snapshot": name, "status": "interrupted", "progress": 0,
                    "detail": "a dissection began but the server stopped before it completed; nothing of it was kept",
                    "next": "start_snapshot_dissection to run it again",
                }),
                (false, None) => {
                    json!({"snapshot": name, "status": "not_started", "progress": 0, "next": "start_snapshot_dissection"})
                }
            };
        };
        let state = j.state.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let elapsed =
            j.elapsed_s.lock().unwrap_or_else(|p| p.into_inner()).unwrap_or_else(|| j.started.elapsed().as_secs_f64());
        let read = j.progress.read.bytes.load(Ordering::Relaxed);
        let total = j.progress.total_bytes.load(Ordering::Relaxed);
        let frames = j.progress.frames.load(Ordering::Relaxed);
        let live = json!({"pcap_bytes": total, "bytes_read": read, "packets_processed": frames});
        match state {
            State::Running => {
                json!({"snapshot": name, "status": "running", "progress": (percent(&j.progress) * 10.0).round() / 10.0, "elapsed_s": round3(elapsed), "stats": live})
            }
            State::Completed(counters) => {
                json!({"snapshot": name, "status": "completed", "progress": 100, "elapsed_s": round3(elapsed), "stats": stats_of(&counters, Some(total))})
            }
            State::Failed(e) => {
                json!({"snapshot": name, "status": "failed", "progress": percent(&j.progress).round(), "elapsed_s": round3(elapsed), "errors": [e]})
            }
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn percent(p: &Progress) -> f64 {
    if p.done.load(Ordering::Relaxed) {
        return 100.0;
    }
    let total = p.total_bytes.load(Ordering::Relaxed);
    let read = p.read.bytes.load(Ordering::Relaxed);
    if total == 0 { 0.0 } else { (read as f64 * 100.0 / total as f64).min(99.9) }
}

/// The `counters` of a snapshot's manifest (Null when it has none).
pub(crate) fn manifest_counters(snap: &Path) -> Value {
    std::fs::read(snap.join(trawl_analyze::MANIFEST))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|m| m.get("counters").cloned())
        .unwrap_or(Value::Null)
}

/// Kubeshark's dissection stats from an analysis' counters.
fn stats_of(c: &Value, pcap_bytes: Option<u64>) -> Value {
    let n = |k: &str| c.get(k).and_then(Value::as_u64).unwrap_or(0);
    let mut v = json!({
        "packets_processed": n("frames"),
        "entries_created": n("api_calls"),
        "flows": n("flows"),
        "tcp_flows": n("tcp_flows"),
        "udp_flows": n("udp_flows"),
        "parse_issues": n("parse_issues"),
        "capture_dropped_packets": n("capture_dropped"),
    });
    if let Some(b) = pcap_bytes {
        v["pcap_bytes"] = json!(b);
    }
    v
}

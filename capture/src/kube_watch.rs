//! Kubernetes metadata next to the captures: the capture agent's
//! timeline sidecar (docs/kubernetes.md, form (b)).
//!
//! With a service account (inside a cluster) or a kubeconfig, a watcher
//! (kube-runtime: list, then watch from the list's resourceVersion,
//! re-listing when the watch expires) follows pods, services, endpoint
//! slices, nodes, replica sets and jobs. Once every kind is listed, the
//! node folder gets `k8s-<unix ms>.jsonl`: a `snapshot` record of all of
//! them, then one `ADDED`/`MODIFIED`/`DELETED` record per change, each
//! with the time it was seen. A re-list is compared with what was held,
//! and the differences are written as changes. A new file (starting with
//! a fresh snapshot) begins every `rotate` so that each stands on its
//! own; like the captures, a file is written under a temporary dot-name
//! and renamed when complete.
//!
//! Without a cluster, [`record_list`] copies a kubectl List (`kubectl get
//! pods,services,endpointslices,nodes -A -o json`) into the node folder
//! as `k8s-<unix ms>.json`, again whenever the file changes.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher;
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::rotate::now_ns;
use crate::{Error, io};

/// Where the cluster is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeSource {
    /// The pod's service account (KUBERNETES_SERVICE_HOST and the mounted
    /// token).
    InCluster,
    /// A kubeconfig file (its current context).
    Kubeconfig(PathBuf),
}

/// The kinds watched, as the timeline names them.
pub const KINDS: [&str; 6] = ["Pod", "Service", "EndpointSlice", "Node", "ReplicaSet", "Job"];

/// True when this process runs in a pod with a service account.
pub fn in_cluster() -> bool {
    std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
        && Path::new("/var/run/secrets/kubernetes.io/serviceaccount/token").exists()
}

type Key = (String, String, String);

fn key(kind: &str, v: &Value) -> Key {
    let m = &v["metadata"];
    (
        kind.to_string(),
        m["namespace"].as_str().unwrap_or_default().to_string(),
        m["name"].as_str().unwrap_or_default().to_string(),
    )
}

/// An object as the timeline keeps it: with its kind and API version
/// (list items come without them), without `managedFields` (bulk that
/// names no address).
fn tidy(kind: &str, api_version: &str, mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.insert("kind".into(), json!(kind));
        o.entry("apiVersion").or_insert(json!(api_version));
        if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("managedFields");
        }
    }
    v
}

/// One change seen by a watcher, already as JSON.
#[derive(Debug)]
enum Change {
    Apply(&'static str, Value),
    Delete(&'static str, Value),
    Init(&'static str),
    InitApply(&'static str, Value),
    InitDone(&'static str),
}

/// The timeline being written: what is held, and the open file.
pub struct Timeline {
    dir: PathBuf,
    rotate: Duration,
    held: BTreeMap<Key, Value>,
    /// Objects of a kind being (re-)listed.
    listing: BTreeMap<&'static str, BTreeMap<Key, Value>>,
    /// Kinds listed at least once.
    listed: BTreeSet<&'static str>,
    open: Option<(BufWriter<File>, PathBuf, PathBuf, Instant)>,
    /// Complete sidecar files written.
    pub files: Vec<PathBuf>,
    /// Change records written (snapshots not counted).
    pub changes: u64,
}

impl Timeline {
    pub fn new(dir: PathBuf, rotate: Duration) -> Timeline {
        Timeline {
            dir,
            rotate,
            held: BTreeMap::new(),
            listing: BTreeMap::new(),
            listed: BTreeSet::new(),
            open: None,
            files: Vec::new(),
            changes: 0,
        }
    }

    fn ready(&self) -> bool {
        self.listed.len() == KINDS.len()
    }

    fn write(&mut self, record: &Value) -> Result<(), Error> {
        if let Some((out, tmp, ..)) = self.open.as_mut() {
            let mut line = serde_json::to_vec(record).map_err(|e| Error::Kube(format!("writing the timeline: {e}")))?;
            line.push(b'\n');
            out.write_all(&line).map_err(io(tmp))?;
            out.flush().map_err(io(tmp))?;
        }
        Ok(())
    }

    /// Starts a new file with a snapshot of everything held.
    fn start_file(&mut self) -> Result<(), Error> {
        self.finish()?;
        let now = now_ns();
        let name = format!("k8s-{}.jsonl", now / 1_000_000);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let out = BufWriter::new(File::create(&tmp).map_err(io(&tmp))?);
        self.open = Some((out, tmp, self.dir.join(name), Instant::now()));
        let objects: Vec<&Value> = self.held.values().collect();
        let snapshot =
            json!({"time": trawl_schemas::time::rfc3339(now as i64), "type": "snapshot", "objects": objects});
        self.write(&snapshot)
    }

    /// Completes the open file (synced, renamed).
    pub fn finish(&mut self) -> Result<(), Error> {
        if let Some((out, tmp, path, _)) = self.open.take() {
            let f = out.into_inner().map_err(|e| io(&tmp)(e.into_error()))?;
            f.sync_all().map_err(io(&tmp))?;
            std::fs::rename(&tmp, &path).map_err(io(&path))?;
            self.files.push(path);
        }
        Ok(())
    }

    /// Starts the timeline with the kinds listed so far, when some kind
    /// cannot be listed (say, the role lacks it): better a timeline of
    /// pods and services than none. A kind listed later comes in as
    /// changes.
    pub fn start_without_all(&mut self) -> Result<Vec<&'static str>, Error> {
        let missing: Vec<&'static str> = KINDS.iter().copied().filter(|k| !self.listed.contains(k)).collect();
        if self.open.is_none() {
            self.listed.extend(missing.iter().copied());
            self.start_file()?;
        }
        Ok(missing)
    }

    /// Rotates when the open file's time is up.
    pub fn tick(&mut self) -> Result<(), Error> {
        if self.open.as_ref().is_some_and(|o| o.3.elapsed() >= self.rotate) { self.start_file() } else { Ok(()) }
    }

    fn change(&mut self, kind: &str, v: Value) -> Result<(), Error> {
        let k = key(kind, &v);
        let kind_of = if self.held.contains_key(&k) { "MODIFIED" } else { "ADDED" };
        // The same object at a later resourceVersion (a re-list) is no
        // change.
        let same = |a: &Value, b: &Value| {
            let strip = |x: &Value| {
                let mut x = x.clone();
                if let Some(m) = x.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("resourceVersion");
                }
                x
            };
            strip(a) == strip(b)
        };
        if self.held.get(&k).is_some_and(|old| same(old, &v)) {
            return Ok(());
        }
        self.held.insert(k, v.clone());
        if self.open.is_some() {
            self.changes += 1;
            let r = json!({"time": trawl_schemas::time::rfc3339(now_ns() as i64), "type": kind_of, "object": v});
            self.write(&r)?;
        }
        Ok(())
    }

    fn delete(&mut self, k: Key) -> Result<(), Error> {
        if let Some(v) = self.held.remove(&k)
            && self.open.is_some()
        {
            self.changes += 1;
            let r = json!({"time": trawl_schemas::time::rfc3339(now_ns() as i64), "type": "DELETED", "object": v});
            self.write(&r)?;
        }
        Ok(())
    }

    fn apply(&mut self, c: Change) -> Result<(), Error> {
        match c {
            Change::Apply(kind, v) => {
                // Before a kind is listed, its changes are part of the list.
                if self.listed.contains(kind) {
                    self.change(kind, v)?;
                } else {
                    let k = key(kind, &v);
                    self.listing.entry(kind).or_default().insert(k, v);
                }
            }
            Change::Delete(kind, v) => {
                let k = key(kind, &v);
                if let Some(l) = self.listing.get_mut(kind) {
                    l.remove(&k);
                }
                self.delete(k)?;
            }
            Change::Init(kind) => {
                self.listing.insert(kind, BTreeMap::new());
            }
            Change::InitApply(kind, v) => {
                let k = key(kind, &v);
                self.listing.entry(kind).or_default().insert(k, v);
            }
            Change::InitDone(kind) => {
                let listed = self.listing.remove(kind).unwrap_or_default();
                // What a (re-)list no longer holds is gone; the rest is
                // new or changed.
                let gone: Vec<Key> =
                    self.held.keys().filter(|k| k.0 == kind && !listed.contains_key(*k)).cloned().collect();
                for k in gone {
                    self.delete(k)?;
                }
                for (_, v) in listed {
                    self.change(kind, v)?;
                }
                let was_ready = self.ready();
                self.listed.insert(kind);
                if !was_ready && self.ready() {
                    self.start_file()?;
                }
            }
        }
        Ok(())
    }
}

/// Checks that a kubeconfig file reads and names a current context, so
/// that a bad one stops the capture before it starts.
pub fn check_kubeconfig(path: &Path) -> Result<(), Error> {
    // The YAML error's first line (the rest draws the spot).
    let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| {
        Error::Config(format!("--kubeconfig {}: {}", path.display(), e.to_string().lines().next().unwrap_or_default()))
    })?;
    if kc.current_context.is_none() && kc.contexts.len() != 1 {
        return Err(Error::Config(format!(
            "--kubeconfig {}: expected a current-context (or a single context)",
            path.display()
        )));
    }
    Ok(())
}

/// Builds the client for a source.
async fn client(source: &KubeSource) -> Result<Client, Error> {
    let config = match source {
        KubeSource::InCluster => {
            kube::Config::incluster().map_err(|e| Error::Kube(format!("in-cluster configuration: {e}")))?
        }
        KubeSource::Kubeconfig(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| Error::Kube(format!("--kubeconfig {}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| Error::Kube(format!("--kubeconfig {}: {e}", path.display())))?
        }
    };
    Client::try_from(config).map_err(|e| Error::Kube(format!("Kubernetes client: {e}")))
}

/// A watcher of one kind, its events as [`Change`]s.
fn watch<K>(client: &Client, kind: &'static str) -> futures::stream::BoxStream<'static, Result<Change, Error>>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + serde::Serialize
        + Send
        + 'static,
{
    let api: Api<K> = Api::all(client.clone());
    let api_version = K::api_version(&()).to_string();
    let to_json = move |o: &K| tidy(kind, &api_version, serde_json::to_value(o).unwrap_or(Value::Null));
    watcher(api, watcher::Config::default())
        .map(move |e| {
            e.map(|e| match e {
                watcher::Event::Apply(o) => Change::Apply(kind, to_json(&o)),
                watcher::Event::Delete(o) => Change::Delete(kind, to_json(&o)),
                watcher::Event::Init => Change::Init(kind),
                watcher::Event::InitApply(o) => Change::InitApply(kind, to_json(&o)),
                watcher::Event::InitDone => Change::InitDone(kind),
            })
            .map_err(|e| Error::Kube(format!("watching {kind}s: {e}")))
        })
        .boxed()
}

/// How long the timeline waits for every kind's first list before it
/// starts without the missing ones.
const LIST_PATIENCE: Duration = Duration::from_secs(30);

/// What the watcher did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeReport {
    pub files: Vec<PathBuf>,
    pub objects: usize,
    pub changes: u64,
    /// Watch errors seen (each retried); the last one's text.
    pub errors: u64,
    pub last_error: Option<String>,
}

/// Watches the cluster and writes the timeline into `dir` until `stop`
/// is set. Watch errors are retried with backoff (the API server may be
/// away for a while); an unusable configuration is an error at once.
pub fn run(source: &KubeSource, dir: &Path, rotate: Duration, stop: Arc<AtomicBool>) -> Result<KubeReport, Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Kube(format!("async runtime: {e}")))?;
    rt.block_on(async {
        let client = client(source).await?;
        let mut events = futures::stream::select_all([
            watch::<Pod>(&client, "Pod"),
            watch::<Service>(&client, "Service"),
            watch::<EndpointSlice>(&client, "EndpointSlice"),
            watch::<Node>(&client, "Node"),
            watch::<ReplicaSet>(&client, "ReplicaSet"),
            watch::<Job>(&client, "Job"),
        ]);
        let mut timeline = Timeline::new(dir.to_path_buf(), rotate);
        let mut report = KubeReport::default();
        let mut backoff = Duration::from_millis(200);
        let started = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            if !timeline.ready() && started.elapsed() >= LIST_PATIENCE {
                let missing = timeline.start_without_all()?;
                report.last_error = Some(format!(
                    "not listed after {} s, the timeline goes on without: {}",
                    LIST_PATIENCE.as_secs(),
                    missing.join(", ")
                ));
            }
            match tokio::time::timeout(Duration::from_millis(100), events.next()).await {
                Ok(Some(Ok(change))) => {
                    backoff = Duration::from_millis(200);
                    timeline.apply(change)?;
                }
                Ok(Some(Err(e))) => {
                    report.errors += 1;
                    report.last_error = Some(e.to_string());
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
                Ok(None) => break,
                Err(_) => {}
            }
            timeline.tick()?;
        }
        timeline.finish()?;
        report.files = std::mem::take(&mut timeline.files);
        report.objects = timeline.held.len();
        report.changes = timeline.changes;
        Ok(report)
    })
}

/// Checks that a file is a kubectl List (or a single list of one kind)
/// and copies it into `dir` as `k8s-<unix ms>.json` (under a temporary
/// name, then renamed). Returns the path written.
pub fn record_list(from: &Path, dir: &Path) -> Result<PathBuf, Error> {
    let bytes = std::fs::read(from).map_err(|e| Error::Config(format!("--k8s-from {}: {e}", from.display())))?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
        Error::Config(format!(
            "--k8s-from {}: not JSON ({e}); expected the output of `kubectl get pods,services,endpointslices,nodes -A -o json`",
            from.display()
        ))
    })?;
    let kind = v["kind"].as_str().unwrap_or_default();
    if !(kind == "List" || kind.ends_with("List")) || !v["items"].is_array() {
        return Err(Error::Config(format!(
            "--k8s-from {}: expected a kubectl List (`kind: List` with `items`), got kind `{kind}`; make it with `kubectl get pods,services,endpointslices,nodes -A -o json`",
            from.display()
        )));
    }
    let name = format!("k8s-{}.json", now_ns() / 1_000_000);
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, &bytes).map_err(io(&tmp))?;
    let path = dir.join(name);
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ip: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "shop", "managedFields": [{"manager": "kubelet"}]}, "status": {"podIP": ip}})
    }

    /// Nothing is written until every kind is listed; then a snapshot;
    /// then changes; a re-list's differences become changes.
    #[test]
    fn timeline_snapshot_then_changes_then_a_relist() {
        let dir = std::env::temp_dir().join(format!("trawl-timeline-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::create_dir_all(&dir);
        let mut t = Timeline::new(dir.clone(), Duration::from_secs(3600));
        let p = |n, ip| tidy("Pod", "v1", pod(n, ip));
        for c in [Change::Init("Pod"), Change::InitApply("Pod", p("a", "10.0.0.1")), Change::InitDone("Pod")] {
            assert!(t.apply(c).is_ok());
        }
        for kind in &KINDS[1..] {
            assert!(t.open.is_none(), "no file before every kind is listed");
            assert!(t.apply(Change::Init(kind)).is_ok());
            assert!(t.apply(Change::InitDone(kind)).is_ok());
        }
        assert!(t.open.is_some());
        assert!(t.apply(Change::Apply("Pod", p("b", "10.0.0.2"))).is_ok());
        assert!(t.apply(Change::Apply("Pod", p("b", "10.0.0.2"))).is_ok(), "an unchanged object writes nothing");
        // A re-list that no longer holds `a` and moved `b`.
        for c in [Change::Init("Pod"), Change::InitApply("Pod", p("b", "10.0.0.3")), Change::InitDone("Pod")] {
            assert!(t.apply(c).is_ok());
        }
        assert!(t.finish().is_ok());
        assert_eq!(t.files.len(), 1);
        let text = std::fs::read_to_string(&t.files[0]).unwrap_or_default();
        let recs: Vec<Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        let kinds: Vec<&str> = recs.iter().map(|r| r["type"].as_str().unwrap_or_default()).collect();
        assert_eq!(kinds, ["snapshot", "ADDED", "DELETED", "MODIFIED"]);
        assert_eq!(recs[0]["objects"][0]["kind"], "Pod");
        assert!(recs[0]["objects"][0]["metadata"].get("managedFields").is_none());
        assert_eq!(recs[2]["object"]["metadata"]["name"], "a");
        assert_eq!(recs[3]["object"]["status"]["podIP"], "10.0.0.3");
        assert_eq!(t.changes, 3);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A kind that never lists (no permission) does not hold the
    /// timeline back for ever; when it lists later, it comes as changes.
    #[test]
    fn a_kind_that_cannot_be_listed_does_not_stop_the_timeline() {
        let dir = std::env::temp_dir().join(format!("trawl-timeline-missing-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::create_dir_all(&dir);
        let mut t = Timeline::new(dir.clone(), Duration::from_secs(3600));
        for kind in &KINDS[..5] {
            assert!(t.apply(Change::Init(kind)).is_ok());
            assert!(t.apply(Change::InitApply(kind, tidy(kind, "v1", pod(kind, "10.0.0.1")))).is_ok());
            assert!(t.apply(Change::InitDone(kind)).is_ok());
        }
        assert!(t.open.is_none());
        assert_eq!(t.start_without_all().ok(), Some(vec!["Job"]));
        assert!(t.apply(Change::InitApply("Job", tidy("Job", "batch/v1", pod("nightly", "")))).is_ok());
        assert!(t.apply(Change::InitDone("Job")).is_ok());
        assert!(t.finish().is_ok());
        let text = std::fs::read_to_string(&t.files[0]).unwrap_or_default();
        let recs: Vec<Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0]["objects"].as_array().map(Vec::len), Some(5));
        assert_eq!((recs[1]["type"].as_str(), recs[1]["object"]["kind"].as_str()), (Some("ADDED"), Some("Job")));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn record_list_refuses_what_is_not_a_list() {
        let dir = std::env::temp_dir().join(format!("trawl-k8s-from-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let bad = dir.join("pod.json");
        let _ = std::fs::write(&bad, br#"{"kind":"Pod","metadata":{"name":"x"}}"#);
        let e = record_list(&bad, &dir).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("expected a kubectl List") && e.contains("got kind `Pod`"), "{e}");
        let good = dir.join("list.json");
        let _ = std::fs::write(&good, br#"{"apiVersion":"v1","kind":"List","items":[]}"#);
        let p = record_list(&good, &dir).unwrap_or_default();
        assert!(p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("k8s-")), "{p:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

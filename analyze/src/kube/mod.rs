//! Kubernetes context: which pod, service or node an address was at a
//! moment of the capture (docs/kubernetes.md).
//!
//! Sidecar files ([`load`]) become timed observations per source (the
//! folder a file lies in: one capture agent's view). Replaying each
//! source's observations in time order gives every object *versions*,
//! each valid over `[from, until)`; an address then names the versions
//! that hold it at a time. A pod deleted at 12:00 whose address a new pod
//! takes at 12:01 therefore names the old pod before and the new one
//! after. Before a source's first observation, what it first saw applies
//! (a capture may begin before its first sidecar), except that a pod is
//! never named before its creation time.

pub mod list;
pub mod load;
pub mod peers;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use load::{Change, Loaded};
pub use load::{Entity, FileReport, Key, NodeInfo, PodInfo, ServiceInfo, SliceInfo};

/// What names the sides of rows, shared (read-only) by the workers.
#[derive(Debug, Default)]
pub struct Context {
    pub cluster: Cluster,
    /// The node each input was captured on (empty when unknown).
    pub input_nodes: Vec<String>,
    /// The node of inputs not in `input_nodes` (a fed run's files).
    pub node: Option<String>,
}

/// What the Kubernetes context of an analysis came from
/// (`manifest.json`'s `kubernetes`; DNS answers are in its `counters`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub sidecars: Vec<FileReport>,
    /// Distinct pods, services and nodes the sidecars name over time.
    pub pods: u64,
    pub services: u64,
    pub nodes: u64,
}

impl Context {
    /// The node input `file_index` was captured on.
    pub fn node_of(&self, file_index: u32) -> Option<&str> {
        self.input_nodes.get(file_index as usize).or(self.node.as_ref()).map(String::as_str).filter(|n| !n.is_empty())
    }

    pub fn summary(&self) -> Summary {
        let mut keys: Vec<Key> = self.cluster.versions.iter().map(|v| v.entity.key()).collect();
        keys.dedup();
        let count = |kind: &str| keys.iter().filter(|k| k.0 == kind).count() as u64;
        Summary {
            sidecars: self.cluster.reports(),
            pods: count("pod"),
            services: count("service"),
            nodes: count("node"),
        }
    }
}

/// The sidecar files next to captures: `k8s-*.json` and `k8s-*.jsonl` in
/// the folders of `inputs`, in name order.
pub fn sidecars_near(inputs: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = inputs
        .iter()
        .filter_map(|p| p.parent().map(|d| if d.as_os_str().is_empty() { PathBuf::from(".") } else { d.to_path_buf() }))
        .collect();
    dirs.sort();
    dirs.dedup();
    let mut out = Vec::new();
    for d in dirs {
        // A folder that cannot be listed has no sidecars to offer.
        out.extend(
            files_in(&d, |f| f.file_name().is_some_and(|n| trawl_schemas::k8s::is_sidecar_name(&n.to_string_lossy())))
                .unwrap_or_default(),
        );
    }
    out
}

/// The files of folder `dir` that `keep` accepts, in name order.
fn files_in(dir: &Path, keep: impl Fn(&Path) -> bool) -> std::io::Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> =
        std::fs::read_dir(dir)?.filter_map(|e| e.ok().map(|e| e.path())).filter(|f| f.is_file() && keep(f)).collect();
    found.sort();
    Ok(found)
}

/// The sidecar files the user named (with `option`, e.g. `--k8s`, for
/// errors): files as they are, folders for the `.json` and `.jsonl` files
/// in them.
pub fn expand_sidecars(option: &str, paths: &[PathBuf]) -> Result<Vec<PathBuf>, crate::Error> {
    let mut out = Vec::new();
    let named =
        |p: &PathBuf| if option.is_empty() { p.display().to_string() } else { format!("{option} {}", p.display()) };
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| crate::Error::Config(format!("{}: {e}", named(p))))?;
        if meta.is_dir() {
            let found = files_in(p, |f| f.extension().is_some_and(|x| x == "json" || x == "jsonl"))
                .map_err(|e| crate::Error::Config(format!("{}: {e}", named(p))))?;
            if found.is_empty() {
                return Err(crate::Error::Config(format!(
                    "{}: no .json or .jsonl sidecar files in this folder",
                    named(p)
                )));
            }
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// One version of an object, valid over `[from, until)` (ns).
#[derive(Debug)]
pub struct Version {
    pub from: i64,
    pub until: i64,
    /// The sidecar file it came from.
    pub file: usize,
    pub entity: Arc<Entity>,
}

impl Version {
    fn valid_at(&self, t: i64) -> bool {
        self.from <= t && t < self.until
    }
}

/// How a side was named, or why not (the `*_resolution` columns).
pub mod resolution {
    pub const POD: &str = "pod";
    pub const SERVICE: &str = "service";
    pub const NODE: &str = "node";
    pub const NOT_FOUND: &str = "not_found";
    pub const NOT_AT_TIME: &str = "not_at_time";
    pub const NO_METADATA: &str = "no_metadata";
}

/// What one side of a flow or call was (borrowed from the [`Cluster`]:
/// naming a side copies nothing and touches no shared counter).
#[derive(Debug, Clone, Copy, Default)]
pub struct Side<'a> {
    pub pod: Option<&'a PodInfo>,
    /// (namespace, name) of the service.
    pub service: Option<(&'a str, &'a str)>,
    pub node: Option<&'a str>,
    /// `internal` or `public`: the namespace of an address without one.
    pub scope: &'static str,
    pub resolution: &'static str,
    /// The sidecar file that named the side.
    pub file: Option<usize>,
}

impl<'a> Side<'a> {
    pub fn pod(&self) -> Option<&'a PodInfo> {
        self.pod
    }

    /// The pod's namespace, else the service's, else the address's scope.
    pub fn namespace(&self) -> &'a str {
        self.pod.map(|p| &*p.namespace).or(self.service.map(|s| s.0)).unwrap_or(self.scope)
    }
}

/// The Kubernetes metadata of a capture, indexed by address and time.
#[derive(Debug, Default)]
pub struct Cluster {
    versions: Vec<Version>,
    by_ip: HashMap<IpAddr, Vec<u32>>,
    services_by_ns: HashMap<Arc<str>, Vec<u32>>,
    nodes_by_name: HashMap<Arc<str>, Vec<u32>>,
    reports: Vec<FileReport>,
    hits: Vec<AtomicU64>,
}

impl Cluster {
    /// Reads sidecar files; problems are in [`Cluster::reports`].
    pub fn load(paths: &[PathBuf]) -> Cluster {
        build(load::load(paths))
    }

    /// Indexes one sidecar held in memory (`name`: its file name).
    pub fn from_bytes(name: &str, bytes: &[u8]) -> Cluster {
        build(load::load_bytes(name, bytes))
    }

    /// True when no sidecar gave any object.
    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }

    pub fn versions(&self) -> &[Version] {
        &self.versions
    }

    /// Sidecar files read (readable or not).
    pub fn file_count(&self) -> usize {
        self.reports.len()
    }

    /// Adds per-file counts of sides named ([`Side::file`]), kept by each
    /// worker on its own and added once.
    pub fn add_matches(&self, counts: &[u64]) {
        for (h, n) in self.hits.iter().zip(counts) {
            h.fetch_add(*n, Ordering::Relaxed);
        }
    }

    /// Per file: what it held, its problems, and how many sides it named.
    pub fn reports(&self) -> Vec<FileReport> {
        self.reports
            .iter()
            .zip(&self.hits)
            .map(|(r, h)| FileReport { matched: h.load(Ordering::Relaxed), ..r.clone() })
            .collect()
    }

    fn valid<'a>(&'a self, ids: Option<&'a Vec<u32>>, t: i64) -> impl Iterator<Item = &'a Version> + 'a {
        ids.into_iter().flatten().map(|i| &self.versions[*i as usize]).filter(move |v| v.valid_at(t))
    }

    /// Every object holding `ip` at `t`.
    pub fn holders(&self, ip: IpAddr, t: i64) -> impl Iterator<Item = &Entity> + '_ {
        self.valid(self.by_ip.get(&ip), t).map(|v| &*v.entity)
    }

    /// Names `ip` (with `port`, which tells hostNetwork pods apart) at `t`.
    pub fn resolve(&self, ip: IpAddr, port: u16, t: i64) -> Side<'_> {
        let mut side = Side { scope: scope(ip), resolution: resolution::NOT_FOUND, ..Side::default() };
        if self.versions.is_empty() {
            side.resolution = resolution::NO_METADATA;
            return side;
        }
        let Some(ids) = self.by_ip.get(&ip) else { return side };
        let mut pod: Option<(u8, i64, &Version)> = None;
        let mut service: Option<&Version> = None;
        let mut node: Option<&Version> = None;
        // The slice naming the side: one listing the port first.
        let mut slice: Option<&SliceInfo> = None;
        // A hostNetwork pod on another port: its node's address.
        let mut host: Option<(&str, usize)> = None;
        let mut any = false;
        for v in self.valid(Some(ids), t) {
            any = true;
            match &*v.entity {
                Entity::Pod(p) => {
                    // A running pod's own address first; a hostNetwork pod
                    // only on one of its ports; a finished pod last.
                    let rank = match (p.host_network, p.finished) {
                        (false, false) => 0,
                        (true, _) if p.ports.contains(&port) => 1,
                        (true, _) => {
                            host = host.or(p.node.as_deref().map(|n| (n, v.file)));
                            continue;
                        }
                        (false, true) => 2,
                    };
                    if pod.is_none_or(|(r, f, _)| (rank, std::cmp::Reverse(v.from)) < (r, std::cmp::Reverse(f))) {
                        pod = Some((rank, v.from, v));
                    }
                }
                Entity::Service(_) => service = service.or(Some(v)),
                Entity::Node(_) => node = node.or(Some(v)),
                Entity::Slice(s) => {
                    if slice.is_none_or(|b| slice_rank(s, port) < slice_rank(b, port)) {
                        slice = Some(s);
                    }
                }
            }
        }
        if !any {
            side.resolution = resolution::NOT_AT_TIME;
            return side;
        }
        fn named(s: &SliceInfo) -> (&str, &str) {
            (&s.namespace, &s.service)
        }
        if let Some((_, _, v)) = pod {
            side.file = Some(v.file);
            side.resolution = resolution::POD;
            if let Entity::Pod(p) = &*v.entity {
                side.pod = Some(p);
                side.node = p.node.as_deref();
                side.service = slice.map(named).or_else(|| self.selected_by(p, t));
            }
        } else if let Some(v) = service {
            side.file = Some(v.file);
            side.resolution = resolution::SERVICE;
            if let Entity::Service(s) = &*v.entity {
                side.service = Some((&s.namespace, &s.name));
            }
        } else if let Some((name, file)) = node
            .and_then(|v| match &*v.entity {
                Entity::Node(n) => Some((&*n.name, v.file)),
                _ => None,
            })
            .or(host)
        {
            side.file = Some(file);
            side.resolution = resolution::NODE;
            side.node = Some(name);
            // A service of hostNetwork pods lists the node's address: it
            // names the side only on one of its ports.
            side.service = slice.filter(|s| s.ports.contains(&port)).map(named);
        } else if let Some(s) = slice {
            side.resolution = resolution::SERVICE;
            side.service = Some(named(s));
        } else {
            side.resolution = resolution::NOT_AT_TIME;
        }
        side
    }

    /// The service of a pod no endpoint slice names: one of its namespace
    /// whose selector its labels satisfy (the first by name).
    fn selected_by(&self, p: &PodInfo, t: i64) -> Option<(&str, &str)> {
        self.valid(self.services_by_ns.get(&p.namespace), t)
            .filter_map(|v| match &*v.entity {
                Entity::Service(s)
                    if !s.selector.is_empty() && s.selector.iter().all(|(k, val)| p.labels.get(k) == Some(val)) =>
                {
                    Some(s)
                }
                _ => None,
            })
            .min_by(|a, b| a.name.cmp(&b.name))
            .map(|s| (&*s.namespace, &*s.name))
    }

    /// The first address of node `name` at `t`.
    pub fn node_ip(&self, name: &str, t: i64) -> Option<IpAddr> {
        self.valid(self.nodes_by_name.get(name), t).find_map(|v| v.entity.ips().first().copied())
    }
}

/// Order of slices naming a side: one listing the port first, then by
/// namespace and service name.
fn slice_rank(s: &SliceInfo, port: u16) -> (bool, &str, &str) {
    (!s.ports.contains(&port), &s.namespace, &s.service)
}

/// `internal` for private, loopback, link-local, multicast, shared
/// (CGNAT) and unique-local addresses; `public` otherwise.
pub fn scope(ip: IpAddr) -> &'static str {
    let internal = match ip {
        IpAddr::V4(v) => {
            let o = v.octets();
            v.is_private()
                || v.is_loopback()
                || v.is_link_local()
                || v.is_unspecified()
                || v.is_broadcast()
                || v.is_multicast()
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(v) => {
            let s = v.segments()[0];
            v.is_loopback()
                || v.is_unspecified()
                || v.is_multicast()
                || (s & 0xfe00) == 0xfc00
                || (s & 0xffc0) == 0xfe80
                || v.to_ipv4_mapped().is_some_and(|m| scope(IpAddr::V4(m)) == "internal")
        }
    };
    if internal { "internal" } else { "public" }
}

/// The workload that owns a pod, `Kind/name`: a ReplicaSet's Deployment
/// (from the ReplicaSet objects if given, else by its name less the
/// pod-template-hash), a Job's CronJob if the Job is given.
fn workload(owners: &BTreeMap<(String, String, String), (String, String)>, p: &PodInfo) -> Option<Arc<str>> {
    let (kind, name) = p.owner.as_ref()?;
    let up = owners.get(&(p.namespace.to_string(), kind.clone(), name.clone()));
    let (k, n) = match (kind.as_str(), up) {
        (_, Some((k, n))) => (k.clone(), n.clone()),
        ("ReplicaSet", None) => match p
            .labels
            .get("pod-template-hash")
            .and_then(|h| name.strip_suffix(h.as_str()))
            .and_then(|n| n.strip_suffix('-'))
        {
            Some(d) => ("Deployment".to_string(), d.to_string()),
            None => (kind.clone(), name.clone()),
        },
        _ => (kind.clone(), name.clone()),
    };
    Some(Arc::from(format!("{k}/{n}")))
}

/// An object as the replay of a source currently knows it.
struct Open {
    entity: Arc<Entity>,
    from: i64,
    file: usize,
}

/// Replays the observations of one source, in time order, into versions.
struct Replay<'a> {
    versions: &'a mut Vec<Version>,
    state: HashMap<Key, Open>,
    /// Time of the source's previous observation (`i64::MIN`: none yet).
    prev: i64,
}

impl Replay<'_> {
    fn close(&mut self, key: &Key, t: i64) {
        if let Some(o) = self.state.remove(key) {
            self.versions.push(Version { from: o.from, until: t.max(o.from), file: o.file, entity: o.entity });
        }
    }

    fn close_all(&mut self, t: i64) {
        let keys: Vec<Key> = self.state.keys().cloned().collect();
        for k in keys {
            self.close(&k, t);
        }
    }

    /// `e` is there at `t`: unchanged, changed (a new version from `t`), or
    /// new (from its creation, but not before the source's previous look;
    /// what the source's first look shows holds from the start of time).
    fn upsert(&mut self, e: Entity, t: i64, file: usize) {
        let key = e.key();
        let changed = match self.state.get(&key) {
            Some(cur) if *cur.entity == e => return,
            Some(_) => true,
            None => false,
        };
        if changed {
            self.close(&key, t);
        }
        let created = match &e {
            Entity::Pod(p) => p.created,
            _ => None,
        };
        let from = match created {
            _ if changed => t,
            Some(c) => c.max(self.prev),
            None if self.prev == i64::MIN => i64::MIN,
            None => t,
        };
        self.state.insert(key, Open { entity: Arc::new(e), from, file });
    }

    fn apply(&mut self, o: load::Observation) {
        let t = o.time;
        match o.change {
            Change::Full { entities: ents, whole } => {
                let keep: std::collections::HashSet<Key> = ents.iter().map(Entity::key).collect();
                let kinds: std::collections::HashSet<&str> = keep.iter().map(|k| k.0).collect();
                let gone: Vec<Key> = self
                    .state
                    .keys()
                    .filter(|k| !keep.contains(*k) && (whole || kinds.contains(k.0)))
                    .cloned()
                    .collect();
                for k in gone {
                    self.close(&k, t);
                }
                for e in ents {
                    self.upsert(e, t, o.file);
                }
            }
            Change::Upsert(e) => self.upsert(e, t, o.file),
            Change::Delete(k) => self.close(&k, t),
        }
        // A timeless List counts as a look at the start of time.
        self.prev = t.max(i64::MIN + 1);
    }
}

/// Folds `o` into `p` when both are full looks at the same time; else
/// gives `o` back.
fn merge_into(p: &mut load::Observation, o: load::Observation) -> Option<load::Observation> {
    if p.time != o.time {
        return Some(o);
    }
    match (&mut p.change, o.change) {
        (Change::Full { entities, whole }, Change::Full { entities: more, whole: w }) => {
            entities.extend(more);
            *whole |= w;
            None
        }
        (_, change) => Some(load::Observation { time: o.time, file: o.file, change }),
    }
}

fn build(mut l: Loaded) -> Cluster {
    // Workloads, now that every owner is known.
    for o in &mut l.observations {
        let ents: Vec<&mut Entity> = match &mut o.change {
            Change::Full { entities, .. } => entities.iter_mut().collect(),
            Change::Upsert(e) => vec![e],
            Change::Delete(_) => Vec::new(),
        };
        for e in ents {
            if let Entity::Pod(p) = e {
                p.workload = workload(&l.owners, p);
            }
        }
    }
    // Each source in turn, its observations in time order.
    let mut observations: Vec<(usize, load::Observation)> = l.observations.into_iter().enumerate().collect();
    observations.sort_by(|(ia, a), (ib, b)| {
        (&l.sources[a.file], a.time, a.file, ia).cmp(&(&l.sources[b.file], b.time, b.file, ib))
    });
    let mut versions: Vec<Version> = Vec::new();
    let mut source: Option<PathBuf> = None;
    let mut replay = Replay { versions: &mut versions, state: HashMap::new(), prev: i64::MIN };
    let mut pending: Option<load::Observation> = None;
    for (_, o) in observations {
        let src = &l.sources[o.file];
        // Full observations of one source at one time are one look (a
        // folder of `kubectl get pods` and `kubectl get services` output).
        let o = match &mut pending {
            Some(p) if &l.sources[p.file] == src => match merge_into(p, o) {
                Some(o) => o,
                None => continue,
            },
            _ => o,
        };
        if let Some(p) = pending.take() {
            replay.apply(p);
        }
        if source.as_ref() != Some(src) {
            replay.close_all(i64::MAX);
            replay.prev = i64::MIN;
            source = Some(src.clone());
        }
        pending = Some(o);
    }
    if let Some(p) = pending.take() {
        replay.apply(p);
    }
    replay.close_all(i64::MAX);
    // Deterministic order whatever the hash map did.
    versions.sort_by(|a, b| (a.entity.key(), a.from, a.file).cmp(&(b.entity.key(), b.from, b.file)));
    let mut c = Cluster {
        hits: l.reports.iter().map(|_| AtomicU64::new(0)).collect(),
        reports: l.reports,
        ..Cluster::default()
    };
    for (i, v) in versions.iter().enumerate() {
        for ip in v.entity.ips() {
            c.by_ip.entry(*ip).or_default().push(i as u32);
        }
        match &*v.entity {
            Entity::Service(s) => c.services_by_ns.entry(s.namespace.clone()).or_default().push(i as u32),
            Entity::Node(n) => c.nodes_by_name.entry(n.name.clone()).or_default().push(i as u32),
            _ => {}
        }
    }
    c.versions = versions;
    c
}

#[cfg(test)]
mod tests;

//! Reading sidecar files into timed observations of normalized objects.
//!
//! Every problem is reported with the file and the JSON path (or line)
//! and skips only the object it concerns: the rest of the file is used.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use trawl_schemas::k8s::{
    self, KubeEndpointSlice, KubeNode, KubeOwner, KubePod, KubeService, ObjectMeta, RecordType, Sidecar, TimelineRecord,
};
use trawl_schemas::time::parse_rfc3339;

/// Problems kept per file; more are counted.
const MAX_PROBLEMS: usize = 20;
/// Annotation values longer than this are cut.
const MAX_ANNOTATION_BYTES: usize = 1024;
/// Annotations kept per pod.
const MAX_ANNOTATIONS: usize = 64;
/// An annotation that repeats the whole object: never kept.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What a sidecar file held, and what was wrong with it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FileReport {
    pub path: String,
    /// `kubectl-list`, `timeline`, `compact`, or `unreadable`.
    pub format: &'static str,
    /// Full observations and events read.
    pub observations: u64,
    pub pods: u64,
    pub services: u64,
    pub endpoint_slices: u64,
    pub nodes: u64,
    /// Objects of kinds trawl does not read, by kind.
    pub skipped_kinds: BTreeMap<String, u64>,
    /// One line each: where (`line N`, `$.items[3].status.podIP`) and what.
    pub problems: Vec<String>,
    /// Problems beyond those listed.
    pub more_problems: u64,
    /// Addresses of the capture this file named (flows and calls sides).
    pub matched: u64,
}

impl FileReport {
    fn problem(&mut self, p: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        } else {
            self.more_problems += 1;
        }
    }
}

/// Identity of an object: (kind, namespace, name).
pub type Key = (&'static str, Arc<str>, Arc<str>);

/// A pod, as resolution needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct PodInfo {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    pub ips: Vec<IpAddr>,
    pub node: Option<Arc<str>>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// `Kind/name`, once owners are known.
    pub workload: Option<Arc<str>>,
    /// The controlling owner as the pod names it (kind, name).
    pub owner: Option<(String, String)>,
    pub host_network: bool,
    pub ports: Vec<u16>,
    /// Succeeded or Failed: its address may already be another pod's.
    pub finished: bool,
    /// Creation time (ns), when known.
    pub created: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceInfo {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    pub ips: Vec<IpAddr>,
    pub selector: BTreeMap<String, String>,
}

/// Endpoints of a service (an EndpointSlice, or a compact service's list).
#[derive(Debug, Clone, PartialEq)]
pub struct SliceInfo {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    pub service: Arc<str>,
    pub ips: Vec<IpAddr>,
    pub ports: Vec<u16>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    pub name: Arc<str>,
    pub ips: Vec<IpAddr>,
}

/// A normalized object.
#[derive(Debug, Clone, PartialEq)]
pub enum Entity {
    Pod(PodInfo),
    Service(ServiceInfo),
    Slice(SliceInfo),
    Node(NodeInfo),
}

impl Entity {
    pub fn key(&self) -> Key {
        match self {
            Entity::Pod(p) => ("pod", p.namespace.clone(), p.name.clone()),
            Entity::Service(s) => ("service", s.namespace.clone(), s.name.clone()),
            Entity::Slice(s) => ("endpointslice", s.namespace.clone(), s.name.clone()),
            Entity::Node(n) => ("node", Arc::from(""), n.name.clone()),
        }
    }

    pub fn ips(&self) -> &[IpAddr] {
        match self {
            Entity::Pod(p) => &p.ips,
            Entity::Service(s) => &s.ips,
            Entity::Slice(s) => &s.ips,
            Entity::Node(n) => &n.ips,
        }
    }
}

/// What one observation says.
#[derive(Debug)]
pub enum Change {
    /// The cluster as seen by this source: everything (`whole`: a timeline
    /// snapshot, a compact sidecar), or, for a kubectl List, the kinds it
    /// holds (`kubectl get pods` says nothing about services).
    Full {
        entities: Vec<Entity>,
        whole: bool,
    },
    Upsert(Entity),
    Delete(Key),
}

/// One timed observation of a source.
#[derive(Debug)]
pub struct Observation {
    /// ns; `i64::MIN` for a kubectl List without a time.
    pub time: i64,
    pub file: usize,
    pub change: Change,
}

/// Everything read from the sidecar files.
#[derive(Debug, Default)]
pub struct Loaded {
    pub reports: Vec<FileReport>,
    /// Per file: its source (the folder it lies in; one agent's view).
    pub sources: Vec<PathBuf>,
    pub observations: Vec<Observation>,
    /// (namespace, kind, name) of a ReplicaSet or Job to its controlling
    /// owner (kind, name).
    pub owners: BTreeMap<(String, String, String), (String, String)>,
}

/// Reads sidecar files. Never fails: what cannot be read is reported.
pub fn load(paths: &[PathBuf]) -> Loaded {
    let mut out = Loaded::default();
    for (i, path) in paths.iter().enumerate() {
        let mut report = FileReport { path: path.display().to_string(), ..FileReport::default() };
        match std::fs::read(path) {
            Ok(bytes) => read_file(path, &bytes, i, &mut report, &mut out),
            Err(e) => {
                report.format = "unreadable";
                report.problem(format!("cannot read: {e}"));
            }
        }
        out.reports.push(report);
        out.sources.push(path.parent().map(Path::to_path_buf).unwrap_or_default());
    }
    out
}

/// Reads one sidecar from memory (`name` as its file name: it may carry
/// the time); the fuzz target's entry point.
pub fn load_bytes(name: &str, bytes: &[u8]) -> Loaded {
    let mut out = Loaded::default();
    let mut report = FileReport { path: name.to_string(), ..FileReport::default() };
    read_file(Path::new(name), bytes, 0, &mut report, &mut out);
    out.reports.push(report);
    out.sources.push(PathBuf::new());
    out
}

fn read_file(path: &Path, bytes: &[u8], file: usize, report: &mut FileReport, out: &mut Loaded) {
    let name_time = path.file_name().and_then(|n| k8s::time_from_name(&n.to_string_lossy()));
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) if v.get("items").is_some() => {
            report.format = "kubectl-list";
            let time = name_time.unwrap_or(i64::MIN);
            let Some(items) = v.get("items").and_then(Value::as_array) else {
                report.problem("$.items: expected an array of Kubernetes objects".into());
                return;
            };
            let mut ents = Vec::new();
            for (i, item) in items.iter().enumerate() {
                if let Some(e) = object(item.clone(), &format!("$.items[{i}]"), report, out) {
                    ents.push(e);
                }
            }
            report.observations += 1;
            out.observations.push(Observation { time, file, change: Change::Full { entities: ents, whole: false } });
        }
        Ok(v) if v.get("type").is_some() => {
            report.format = "timeline";
            record(v, "$", file, report, out);
        }
        Ok(v) if v.get("time").is_some() => {
            report.format = "compact";
            compact(v, file, report, out);
        }
        Ok(v) if v.get("kind").is_some() => {
            report.format = "kubectl-list";
            let ents = object(v, "$", report, out).into_iter().collect();
            report.observations += 1;
            out.observations.push(Observation { time: name_time.unwrap_or(i64::MIN), file, change: Change::Full { entities: ents, whole: false } });
        }
        Ok(_) => report.problem(
            "$: expected a kubectl List (`items`), a timeline record (`time`, `type`) or a compact sidecar (`time`, `pods`, `services`); see docs/kubernetes.md"
                .into(),
        ),
        Err(e) if e.to_string().starts_with("trailing characters") || path.extension().is_some_and(|x| x == "jsonl") => {
            // JSON Lines: a timeline.
            report.format = "timeline";
            for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match serde_json::from_slice::<Value>(line) {
                    Ok(v) => record(v, &format!("line {}: $", n + 1), file, report, out),
                    Err(e) => report.problem(format!("line {}: not JSON: {e}", n + 1)),
                }
            }
        }
        Err(e) => report.problem(format!("not JSON: {e}")),
    }
}

/// Reads one timeline record.
fn record(v: Value, at: &str, file: usize, report: &mut FileReport, out: &mut Loaded) {
    let r: TimelineRecord = match serde_path_to_error::deserialize(v) {
        Ok(r) => r,
        Err(e) => return report.problem(format!("{}: {}", join_path(at, &e.path().to_string()), e.inner())),
    };
    let Some(time) = parse_rfc3339(&r.time) else {
        return report.problem(format!("{at}.time: expected an RFC 3339 time, got `{}`", r.time));
    };
    let change = match r.kind {
        RecordType::Snapshot => {
            let ents = r
                .objects
                .into_iter()
                .enumerate()
                .filter_map(|(i, o)| object(o, &format!("{at}.objects[{i}]"), report, out))
                .collect();
            Change::Full { entities: ents, whole: true }
        }
        kind => {
            let Some(o) = r.object else {
                return report
                    .problem(format!("{at}.object: missing; a `{}` record carries the object", type_name(kind)));
            };
            let path = format!("{at}.object");
            if kind == RecordType::Deleted {
                match deleted_key(&o) {
                    Some(k) => Change::Delete(k),
                    None => {
                        return report
                            .problem(format!("{path}: expected `kind` and `metadata.name` of the deleted object"));
                    }
                }
            } else {
                match object(o, &path, report, out) {
                    Some(e) => Change::Upsert(e),
                    None => return,
                }
            }
        }
    };
    report.observations += 1;
    out.observations.push(Observation { time, file, change });
}

fn type_name(t: RecordType) -> &'static str {
    match t {
        RecordType::Snapshot => "snapshot",
        RecordType::Added => "added",
        RecordType::Modified => "modified",
        RecordType::Deleted => "deleted",
    }
}

fn deleted_key(o: &Value) -> Option<Key> {
    let kind = match o.get("kind")?.as_str()? {
        "Pod" => "pod",
        "Service" => "service",
        "EndpointSlice" => "endpointslice",
        "Node" => "node",
        _ => return None,
    };
    let meta = o.get("metadata")?;
    let name = meta.get("name")?.as_str()?;
    let ns = if kind == "node" { "" } else { meta.get("namespace").and_then(Value::as_str).unwrap_or("") };
    Some((kind, Arc::from(ns), Arc::from(name)))
}

fn join_path(at: &str, inner: &str) -> String {
    if inner == "." || inner.is_empty() { at.to_string() } else { format!("{at}.{inner}") }
}

/// Reads one Kubernetes object; `None` (reported or counted) if it is
/// malformed or of a kind trawl does not read.
fn object(v: Value, at: &str, report: &mut FileReport, out: &mut Loaded) -> Option<Entity> {
    let kind = match v.get("kind").and_then(Value::as_str) {
        Some(k) => k.to_string(),
        None => {
            report.problem(format!("{at}.kind: missing; expected one of {}", k8s::OBJECT_KINDS.join(", ")));
            return None;
        }
    };
    fn de<T: serde::de::DeserializeOwned>(v: Value, at: &str, report: &mut FileReport) -> Option<T> {
        match serde_path_to_error::deserialize(v) {
            Ok(t) => Some(t),
            Err(e) => {
                report.problem(format!("{}: {}", join_path(at, &e.path().to_string()), e.inner()));
                None
            }
        }
    }
    match kind.as_str() {
        "Pod" => {
            let p: KubePod = de(v, at, report)?;
            report.pods += 1;
            pod(p, at, report)
        }
        "Service" => {
            let s: KubeService = de(v, at, report)?;
            report.services += 1;
            let mut ips = Vec::new();
            let spec = &s.spec;
            let cluster =
                spec.cluster_ip.iter().chain(&spec.cluster_ips).filter(|ip| ip.as_str() != "None" && !ip.is_empty());
            for (i, ip) in cluster.chain(&spec.external_ips).enumerate() {
                push_ip(&mut ips, ip, &format!("{at}.spec (address {i})"), report);
            }
            for (i, ing) in s.status.load_balancer.ingress.iter().enumerate() {
                if let Some(ip) = &ing.ip {
                    push_ip(&mut ips, ip, &format!("{at}.status.loadBalancer.ingress[{i}].ip"), report);
                }
            }
            Some(Entity::Service(ServiceInfo {
                namespace: ns(&s.metadata),
                name: s.metadata.name.as_str().into(),
                ips,
                selector: s.spec.selector,
            }))
        }
        "EndpointSlice" => {
            let s: KubeEndpointSlice = de(v, at, report)?;
            report.endpoint_slices += 1;
            let Some(service) = s.metadata.labels.get("kubernetes.io/service-name") else {
                report.problem(format!(
                    "{at}.metadata.labels: no `kubernetes.io/service-name`: the slice names no service"
                ));
                return None;
            };
            let mut ips = Vec::new();
            for (i, e) in s.endpoints.iter().enumerate() {
                for (j, a) in e.addresses.iter().enumerate() {
                    push_ip(&mut ips, a, &format!("{at}.endpoints[{i}].addresses[{j}]"), report);
                }
            }
            Some(Entity::Slice(SliceInfo {
                namespace: ns(&s.metadata),
                name: s.metadata.name.as_str().into(),
                service: service.as_str().into(),
                ips,
                ports: s.ports.iter().filter_map(|p| p.port).collect(),
            }))
        }
        "Node" => {
            let n: KubeNode = de(v, at, report)?;
            report.nodes += 1;
            let mut ips = Vec::new();
            for (i, a) in n.status.addresses.iter().enumerate() {
                if a.kind.ends_with("IP") {
                    push_ip(&mut ips, &a.address, &format!("{at}.status.addresses[{i}].address"), report);
                }
            }
            Some(Entity::Node(NodeInfo { name: n.metadata.name.as_str().into(), ips }))
        }
        "ReplicaSet" | "Job" => {
            let o: KubeOwner = de(v, at, report)?;
            if let Some(owner) = controller(&o.metadata) {
                out.owners.insert((o.metadata.namespace.clone(), kind, o.metadata.name.clone()), owner);
            }
            None
        }
        other => {
            *report.skipped_kinds.entry(other.to_string()).or_default() += 1;
            None
        }
    }
}

fn ns(m: &ObjectMeta) -> Arc<str> {
    if m.namespace.is_empty() { Arc::from("default") } else { Arc::from(m.namespace.as_str()) }
}

fn controller(m: &ObjectMeta) -> Option<(String, String)> {
    let o = m.owner_references.iter().find(|o| o.controller == Some(true)).or_else(|| m.owner_references.first())?;
    Some((o.kind.clone(), o.name.clone()))
}

fn push_ip(ips: &mut Vec<IpAddr>, s: &str, at: &str, report: &mut FileReport) {
    match s.parse::<IpAddr>() {
        Ok(ip) if !ips.contains(&ip) => ips.push(ip),
        Ok(_) => {}
        Err(_) => report.problem(format!("{at}: `{s}` is not an IP address")),
    }
}

fn pod(p: KubePod, at: &str, report: &mut FileReport) -> Option<Entity> {
    let mut ips = Vec::new();
    if let Some(ip) = &p.status.pod_ip {
        push_ip(&mut ips, ip, &format!("{at}.status.podIP"), report);
    }
    for (i, ip) in p.status.pod_ips.iter().enumerate() {
        push_ip(&mut ips, &ip.ip, &format!("{at}.status.podIPs[{i}].ip"), report);
    }
    let created = match &p.metadata.creation_timestamp {
        Some(t) => match parse_rfc3339(t) {
            Some(ns) => Some(ns),
            None => {
                report.problem(format!("{at}.metadata.creationTimestamp: expected an RFC 3339 time, got `{t}`"));
                None
            }
        },
        None => None,
    };
    let mut ports: Vec<u16> = p
        .spec
        .containers
        .iter()
        .flat_map(|c| c.ports.iter())
        .flat_map(|cp| std::iter::once(cp.container_port).chain(cp.host_port))
        .collect();
    ports.sort_unstable();
    ports.dedup();
    let finished = matches!(p.status.phase.as_deref(), Some("Succeeded" | "Failed"));
    Some(Entity::Pod(PodInfo {
        namespace: ns(&p.metadata),
        name: p.metadata.name.as_str().into(),
        ips,
        node: p.spec.node_name.as_deref().map(Arc::from),
        owner: controller(&p.metadata),
        labels: p.metadata.labels,
        annotations: annotations(p.metadata.annotations),
        workload: None,
        host_network: p.spec.host_network,
        ports,
        finished,
        created,
    }))
}

/// Drops the copy of the whole object kubectl keeps, and cuts the rest.
fn annotations(mut a: BTreeMap<String, String>) -> BTreeMap<String, String> {
    a.remove(LAST_APPLIED);
    a.into_iter()
        .take(MAX_ANNOTATIONS)
        .map(|(k, mut v)| {
            if v.len() > MAX_ANNOTATION_BYTES {
                let mut cut = MAX_ANNOTATION_BYTES;
                while !v.is_char_boundary(cut) {
                    cut -= 1;
                }
                v.truncate(cut);
            }
            (k, v)
        })
        .collect()
}

fn compact(v: Value, file: usize, report: &mut FileReport, out: &mut Loaded) {
    let car: Sidecar = match serde_path_to_error::deserialize(v) {
        Ok(c) => c,
        Err(e) => return report.problem(format!("{}: {}", join_path("$", &e.path().to_string()), e.inner())),
    };
    let Some(time) = parse_rfc3339(&car.time) else {
        return report.problem(format!("$.time: expected an RFC 3339 time, got `{}`", car.time));
    };
    let mut ents = Vec::new();
    for (i, p) in car.pods.into_iter().enumerate() {
        let at = format!("$.pods[{i}]");
        let mut ips = Vec::new();
        for (j, ip) in p.ips.iter().enumerate() {
            push_ip(&mut ips, ip, &format!("{at}.ips[{j}]"), report);
        }
        let owner = match p.workload.as_deref().map(|w| w.split_once('/')) {
            Some(Some((k, n))) => Some((k.to_string(), n.to_string())),
            Some(None) => {
                report.problem(format!("{at}.workload: expected `Kind/name`, e.g. `Deployment/checkout`"));
                None
            }
            None => None,
        };
        report.pods += 1;
        ents.push(Entity::Pod(PodInfo {
            namespace: p.namespace.as_str().into(),
            name: p.name.as_str().into(),
            ips,
            node: p.node.as_deref().map(Arc::from),
            labels: p.labels,
            annotations: annotations(p.annotations),
            workload: None,
            owner,
            host_network: p.host_network,
            ports: p.ports,
            finished: false,
            created: None,
        }));
    }
    for (i, s) in car.services.into_iter().enumerate() {
        let at = format!("$.services[{i}]");
        let mut ips = Vec::new();
        for (j, ip) in s.ips.iter().enumerate() {
            push_ip(&mut ips, ip, &format!("{at}.ips[{j}]"), report);
        }
        let mut eps = Vec::new();
        for (j, ip) in s.endpoints.iter().enumerate() {
            push_ip(&mut eps, ip, &format!("{at}.endpoints[{j}]"), report);
        }
        report.services += 1;
        let (namespace, name): (Arc<str>, Arc<str>) = (s.namespace.as_str().into(), s.name.as_str().into());
        if !eps.is_empty() {
            ents.push(Entity::Slice(SliceInfo {
                namespace: namespace.clone(),
                name: name.clone(),
                service: name.clone(),
                ips: eps,
                ports: Vec::new(),
            }));
        }
        ents.push(Entity::Service(ServiceInfo { namespace, name, ips, selector: s.selector }));
    }
    for (i, n) in car.nodes.into_iter().enumerate() {
        let mut ips = Vec::new();
        for (j, ip) in n.ips.iter().enumerate() {
            push_ip(&mut ips, ip, &format!("$.nodes[{i}].ips[{j}]"), report);
        }
        report.nodes += 1;
        ents.push(Entity::Node(NodeInfo { name: n.name.as_str().into(), ips }));
    }
    report.observations += 1;
    out.observations.push(Observation { time, file, change: Change::Full { entities: ents, whole: true } });
}

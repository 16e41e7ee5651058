//! What the metadata names, over time: the pods, services and nodes
//! (`trawl workloads`, MCP `list_workloads`) and the addresses
//! (`trawl ips`, MCP `list_ips`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use regex::Regex;
use serde_json::{Value, json};

use super::{Cluster, Entity, Version};

/// Which objects to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// `pod`, `service` or `node`; all when `None`.
    pub kind: Option<String>,
    /// Exact name.
    pub name: Option<String>,
    /// Any of these namespaces (all when empty).
    pub namespaces: Vec<String>,
    pub name_regex: Option<Regex>,
    /// Every one of these labels (a service: selector entries).
    pub labels: BTreeMap<String, String>,
    /// Only as things were at this time (ns).
    pub at: Option<i64>,
    /// Only objects holding this address.
    pub ip: Option<IpAddr>,
}

/// A span of time, ns; `None` is an open end (before the first sidecar,
/// after the last).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub from: Option<i64>,
    pub until: Option<i64>,
}

impl Span {
    fn of(v: &Version) -> Span {
        Span { from: (v.from != i64::MIN).then_some(v.from), until: (v.until != i64::MAX).then_some(v.until) }
    }

    fn widen(&mut self, o: Span) {
        self.from = self.from.and_then(|a| o.from.map(|b| a.min(b)));
        self.until = self.until.and_then(|a| o.until.map(|b| a.max(b)));
    }
}

/// A pod, service or node, over the versions the filter kept.
#[derive(Debug, Clone)]
pub struct Workload {
    pub kind: &'static str,
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    pub workload: Option<Arc<str>>,
    pub node: Option<Arc<str>>,
    /// Pod labels, service selector (latest version).
    pub labels: BTreeMap<String, String>,
    pub host_network: bool,
    /// Each address it held and when.
    pub ips: Vec<(IpAddr, Span)>,
    pub span: Span,
}

/// An address and what held it when.
#[derive(Debug, Clone)]
pub struct Address {
    pub ip: IpAddr,
    pub holders: Vec<Holder>,
}

#[derive(Debug, Clone)]
pub struct Holder {
    pub kind: &'static str,
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    pub workload: Option<Arc<str>>,
    pub span: Span,
}

struct View<'a> {
    kind: &'static str,
    namespace: &'a Arc<str>,
    name: &'a Arc<str>,
    labels: Option<&'a BTreeMap<String, String>>,
    workload: Option<&'a Arc<str>>,
    node: Option<&'a Arc<str>>,
    host_network: bool,
}

fn view(e: &Entity) -> Option<View<'_>> {
    static NONE: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
    Some(match e {
        Entity::Pod(p) => View {
            kind: "pod",
            namespace: &p.namespace,
            name: &p.name,
            labels: Some(&p.labels),
            workload: p.workload.as_ref(),
            node: p.node.as_ref(),
            host_network: p.host_network,
        },
        Entity::Service(s) => View {
            kind: "service",
            namespace: &s.namespace,
            name: &s.name,
            labels: Some(&s.selector),
            workload: None,
            node: None,
            host_network: false,
        },
        Entity::Node(n) => View {
            kind: "node",
            namespace: NONE.get_or_init(|| Arc::from("")),
            name: &n.name,
            labels: None,
            workload: None,
            node: Some(&n.name),
            host_network: false,
        },
        Entity::Slice(_) => return None,
    })
}

impl Filter {
    fn keeps(&self, v: &Version, o: &View) -> bool {
        let empty = BTreeMap::new();
        let labels = o.labels.unwrap_or(&empty);
        self.kind.as_deref().is_none_or(|k| k == o.kind)
            && self.name.as_deref().is_none_or(|n| n == &**o.name)
            && (self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == &**o.namespace))
            && self.name_regex.as_ref().is_none_or(|r| r.is_match(o.name))
            && self.labels.iter().all(|(k, val)| labels.get(k) == Some(val))
            && self.at.is_none_or(|t| v.valid_at(t))
            && self.ip.is_none_or(|ip| v.entity.ips().contains(&ip))
    }
}

/// The objects the filter keeps, by namespace, kind and name.
pub fn workloads(c: &Cluster, f: &Filter) -> Vec<Workload> {
    let mut found: BTreeMap<(Arc<str>, &'static str, Arc<str>), Workload> = BTreeMap::new();
    for v in c.versions() {
        let Some(o) = view(&v.entity) else { continue };
        if !f.keeps(v, &o) {
            continue;
        }
        let span = Span::of(v);
        let w = found.entry((o.namespace.clone(), o.kind, o.name.clone())).or_insert_with(|| Workload {
            kind: o.kind,
            namespace: o.namespace.clone(),
            name: o.name.clone(),
            workload: None,
            node: None,
            labels: BTreeMap::new(),
            host_network: false,
            ips: Vec::new(),
            span,
        });
        // Versions come in time order: the latest names the rest.
        w.span.widen(span);
        w.workload = o.workload.cloned().or(w.workload.take());
        w.node = o.node.cloned().or(w.node.take());
        w.labels = o.labels.cloned().unwrap_or_default();
        w.host_network = o.host_network;
        for ip in v.entity.ips() {
            match w.ips.iter_mut().find(|(i, _)| i == ip) {
                Some((_, s)) => s.widen(span),
                None => w.ips.push((*ip, span)),
            }
        }
    }
    found.into_values().collect()
}

/// The addresses held by the objects the filter keeps, in address order.
pub fn addresses(c: &Cluster, f: &Filter) -> Vec<Address> {
    let mut found: BTreeMap<IpAddr, Vec<Holder>> = BTreeMap::new();
    for v in c.versions() {
        let Some(o) = view(&v.entity) else { continue };
        if !f.keeps(v, &o) {
            continue;
        }
        let span = Span::of(v);
        for ip in v.entity.ips() {
            if f.ip.is_some_and(|w| w != *ip) {
                continue;
            }
            let holders = found.entry(*ip).or_default();
            match holders.iter_mut().find(|h| h.kind == o.kind && h.namespace == *o.namespace && h.name == *o.name) {
                Some(h) => h.span.widen(span),
                None => holders.push(Holder {
                    kind: o.kind,
                    namespace: o.namespace.clone(),
                    name: o.name.clone(),
                    workload: o.workload.cloned(),
                    span,
                }),
            }
        }
    }
    found
        .into_iter()
        .map(|(ip, mut holders)| {
            holders.sort_by_key(|h| (h.span.from.unwrap_or(i64::MIN), h.kind));
            Address { ip, holders }
        })
        .collect()
}

impl Span {
    /// `from`/`until` (RFC 3339) and `from_ts`/`until_ts` (Unix ms) into
    /// `v`; an open end is left out.
    fn put(self, v: &mut Value) {
        if let Some(f) = self.from {
            v["from"] = json!(crate::time::rfc3339(f));
            v["from_ts"] = json!(f.div_euclid(1_000_000));
        }
        if let Some(u) = self.until {
            v["until"] = json!(crate::time::rfc3339(u));
            v["until_ts"] = json!(u.div_euclid(1_000_000));
        }
    }
}

impl Workload {
    /// The JSON of `trawl workloads --json` and MCP `list_workloads`.
    pub fn json(&self) -> Value {
        let ips: Vec<Value> = self
            .ips
            .iter()
            .map(|(ip, s)| {
                let mut v = json!({"ip": ip.to_string()});
                s.put(&mut v);
                v
            })
            .collect();
        let mut v = json!({"kind": self.kind, "name": &*self.name, "labels": self.labels, "ips": ips});
        if !self.namespace.is_empty() {
            v["namespace"] = json!(&*self.namespace);
        }
        if let Some(n) = &self.node {
            v["node"] = json!(&**n);
        }
        if let Some(o) = &self.workload {
            v["workload"] = json!(&**o);
        }
        if self.host_network {
            v["host_network"] = json!(true);
        }
        self.span.put(&mut v);
        v
    }
}

impl Address {
    /// The JSON of `trawl ips --json` and MCP `list_ips`.
    pub fn json(&self) -> Value {
        let records: Vec<Value> = self
            .holders
            .iter()
            .map(|h| {
                let mut v = json!({"kind": h.kind, "name": &*h.name});
                if !h.namespace.is_empty() {
                    v["namespace"] = json!(&*h.namespace);
                }
                if let Some(w) = &h.workload {
                    v["workload"] = json!(&**w);
                }
                h.span.put(&mut v);
                v
            })
            .collect();
        json!({"ip": self.ip.to_string(), "records": records})
    }
}

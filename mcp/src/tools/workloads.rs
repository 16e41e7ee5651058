//! Pods, services and IP addresses from the Kubernetes sidecars.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use regex::Regex;
use rmcp::schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use trawl_schemas::k8s::Sidecar;
use trawl_snapshot::resolve::Timeline;

use super::{TimeArg, blocking, bounded};
use crate::error::{ToolError, ToolResult};
use crate::rows::unix_ms;
use crate::server::Inner;

/// Pod or service.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Pod,
    Service,
}

/// list_workloads' parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct ListWorkloads {
    /// Read the sidecars a snapshot carries (default: the whole archive's).
    #[serde(alias = "snapshot")]
    pub snapshot_id: Option<String>,
    /// Exact name.
    pub name: Option<String>,
    /// Exact namespace.
    pub namespace: Option<String>,
    /// Any of these namespaces.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Name matches this regular expression.
    pub name_regex: Option<String>,
    /// Every one of these labels (pods) or selector entries (services).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `pod` or `service` (default both).
    #[serde(rename = "type")]
    pub kind: Option<Kind>,
    /// As the cluster was at this time (Unix ms or RFC 3339; default: all times).
    pub timestamp: Option<TimeArg>,
    /// Entries to return, 1-1000 (default 100).
    pub limit: Option<usize>,
}

/// list_ips' parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct ListIps {
    /// Read the sidecars a snapshot carries (default: the whole archive's).
    #[serde(alias = "snapshot")]
    pub snapshot_id: Option<String>,
    /// Exact address.
    pub ip: Option<String>,
    /// Owners in any of these namespaces.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Owner name matches this regular expression.
    pub name_regex: Option<String>,
    /// Owners with every one of these labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// As the cluster was at this time (default: all times).
    pub timestamp: Option<TimeArg>,
    /// Addresses to return, 1-1000 (default 100).
    pub limit: Option<usize>,
}

/// One pod or service as a sidecar lists it.
struct Owner<'a> {
    kind: Kind,
    namespace: &'a str,
    name: &'a str,
    labels: &'a BTreeMap<String, String>,
    ips: &'a [String],
    node: Option<&'a str>,
    workload: Option<&'a str>,
}

fn owners(car: &Sidecar) -> impl Iterator<Item = Owner<'_>> {
    let pods = car.pods.iter().map(|p| Owner {
        kind: Kind::Pod,
        namespace: &p.namespace,
        name: &p.name,
        labels: &p.labels,
        ips: &p.ips,
        node: p.node.as_deref(),
        workload: p.workload.as_deref(),
    });
    let services = car.services.iter().map(|s| Owner {
        kind: Kind::Service,
        namespace: &s.namespace,
        name: &s.name,
        labels: &s.selector,
        ips: &s.ips,
        node: None,
        workload: None,
    });
    pods.chain(services)
}

/// The sidecars to read, oldest first, as (time ns, node index, sidecar):
/// all of them, or those in force at `at`.
fn sidecars(inner: &Inner, snapshot: Option<&str>, at: Option<i64>) -> ToolResult<Vec<(i64, Sidecar)>> {
    let files: Vec<(usize, i64, PathBuf)> = match snapshot {
        Some(name) => {
            let snap = inner.config.data.snapshot(name)?;
            trawl_snapshot::resolve::snapshot_sidecars(&snap)?.1.into_iter().map(|(n, f)| (n, f.time_ns, f.path)).collect()
        }
        None => {
            let a = &inner.config.data.archive;
            if !a.is_dir() {
                return Err(ToolError::new(format!("no capture archive at {}; pass snapshot_id to read a snapshot's sidecars", a.display())));
            }
            let archive = trawl_snapshot::archive::Archive::open(a)?;
            archive.nodes.iter().enumerate().flat_map(|(i, n)| n.sidecars.iter().map(move |s| (i, s.time_ns, s.path.clone()))).collect()
        }
    };
    // At a time: each node's sidecar in force then, by the same rule as
    // the workload filter and the export annotations (resolve::Timeline).
    let chosen: Vec<usize> = match at {
        None => (0..files.len()).collect(),
        Some(t) => {
            let nodes = files.iter().map(|f| f.0 + 1).max().unwrap_or(0);
            let events = files.iter().enumerate().map(|(i, f)| (f.1, f.0, i)).collect();
            let timeline = Timeline::build(events, nodes, |v: &[&usize]| v.iter().map(|i| **i).collect::<Vec<usize>>());
            timeline.at(t).cloned().unwrap_or_default()
        }
    };
    let mut out = Vec::new();
    for i in chosen {
        let (_, t, p) = &files[i];
        out.push((*t, trawl_snapshot::archive::read_sidecar(p)?));
    }
    out.sort_by_key(|(t, _)| *t);
    Ok(out)
}

fn regex(param: &str, r: Option<&str>) -> ToolResult<Option<Regex>> {
    r.map(|r| Regex::new(r).map_err(|e| ToolError::new(format!("{param}: not a valid regular expression: {e}")))).transpose()
}

impl Owner<'_> {
    /// In one of `namespaces` (any when empty), named to match `re`, with
    /// every one of `labels`.
    fn matches(&self, namespaces: &[String], re: Option<&Regex>, labels: &BTreeMap<String, String>) -> bool {
        (namespaces.is_empty() || namespaces.iter().any(|n| n == self.namespace))
            && re.is_none_or(|r| r.is_match(self.name))
            && labels.iter().all(|(k, v)| self.labels.get(k) == Some(v))
    }
}

pub async fn list_workloads(inner: &Arc<Inner>, p: ListWorkloads) -> ToolResult {
    let limit = bounded("limit", p.limit, 100, 1000)?;
    let at = p.timestamp.as_ref().map(|t| t.ns("timestamp")).transpose()?;
    let re = regex("name_regex", p.name_regex.as_deref())?;
    let inner = inner.clone();
    blocking(move || {
        let cars = sidecars(&inner, p.snapshot_id.as_deref(), at)?;
        let mut found: BTreeMap<(String, String, &'static str), Value> = BTreeMap::new();
        for (t, car) in &cars {
            for o in owners(car) {
                let keep = p.kind.is_none_or(|k| k == o.kind)
                    && p.name.as_deref().is_none_or(|n| n == o.name)
                    && p.namespace.as_deref().is_none_or(|n| n == o.namespace)
                    && o.matches(&p.namespaces, re.as_ref(), &p.labels);
                if !keep {
                    continue;
                }
                let kind = if o.kind == Kind::Pod { "pod" } else { "service" };
                let e = found.entry((o.namespace.to_string(), o.name.to_string(), kind)).or_insert_with(|| {
                    let mut v = json!({"name": o.name, "namespace": o.namespace, "kind": kind, "labels": o.labels, "ips": [], "first_seen_ts": unix_ms(*t)});
                    if let Some(n) = o.node {
                        v["node"] = json!(n);
                    }
                    if let Some(w) = o.workload {
                        v["workload"] = json!(w);
                    }
                    v
                });
                e["last_seen_ts"] = json!(unix_ms(*t));
                if let Some(ips) = e["ips"].as_array_mut() {
                    for ip in o.ips {
                        if !ips.iter().any(|x| x["ip"] == json!(ip)) {
                            ips.push(json!({"ip": ip, "timestamp": unix_ms(*t)}));
                        }
                    }
                }
            }
        }
        let total = found.len();
        let workloads: Vec<Value> = found.into_values().take(limit).collect();
        let mut v = json!({"workloads": workloads, "total": total, "truncated": total > limit, "sidecars_read": cars.len()});
        if cars.is_empty() {
            v["note"] = json!("no Kubernetes sidecars (k8s-<unix ms>.json) found: capture agents write them next to the captures");
        }
        Ok(v)
    })
    .await
}

pub async fn list_ips(inner: &Arc<Inner>, p: ListIps) -> ToolResult {
    let limit = bounded("limit", p.limit, 100, 1000)?;
    let at = p.timestamp.as_ref().map(|t| t.ns("timestamp")).transpose()?;
    let re = regex("name_regex", p.name_regex.as_deref())?;
    let want_ip: Option<std::net::IpAddr> =
        p.ip.as_deref().map(|s| s.parse().map_err(|_| ToolError::new(format!("ip: expected an IPv4 or IPv6 address, got `{s}`")))).transpose()?;
    let inner = inner.clone();
    blocking(move || {
        let cars = sidecars(&inner, p.snapshot_id.as_deref(), at)?;
        let mut found: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for (t, car) in &cars {
            for o in owners(car) {
                if !o.matches(&p.namespaces, re.as_ref(), &p.labels) {
                    continue;
                }
                let kind = if o.kind == Kind::Pod { "pod" } else { "service" };
                for ip in o.ips {
                    if want_ip.is_some_and(|w| ip.parse::<std::net::IpAddr>().ok() != Some(w)) {
                        continue;
                    }
                    let recs = found.entry(ip.clone()).or_default();
                    if !recs.iter().any(|r| r["name"] == json!(o.name) && r["namespace"] == json!(o.namespace) && r["kind"] == json!(kind)) {
                        recs.push(json!({"name": o.name, "namespace": o.namespace, "kind": kind, "timestamp": unix_ms(*t)}));
                    }
                }
            }
        }
        let total = found.len();
        let ips: Vec<Value> = found.into_iter().take(limit).map(|(ip, records)| json!({"ip": ip, "records": records})).collect();
        Ok(json!({"ips": ips, "total": total, "truncated": total > limit, "sidecars_read": cars.len()}))
    })
    .await
}

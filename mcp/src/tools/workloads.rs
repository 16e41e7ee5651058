//! Pods, services, nodes and IP addresses over time, from the Kubernetes
//! sidecars (the same listing as `trawl workloads` / `trawl ips`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use regex::Regex;
use rmcp::schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use trawl_analyze::kube::Cluster;
use trawl_analyze::kube::list::{self, Filter};

use super::{TimeArg, blocking, bounded};
use crate::error::{ToolError, ToolResult};
use crate::state::Inner;

/// Pod, service or node.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Pod,
    Service,
    Node,
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
    /// `pod`, `service` or `node` (default all).
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

/// The sidecar files to read: a snapshot's, else the archive's.
fn sidecar_files(inner: &Inner, snapshot: Option<&str>) -> ToolResult<Vec<PathBuf>> {
    match snapshot {
        Some(name) => {
            let snap = inner.config.data.snapshot(name)?;
            Ok(trawl_snapshot::resolve::snapshot_sidecars(&snap)?.1.into_iter().map(|(_, f)| f.path).collect())
        }
        None => {
            let a = &inner.config.data.archive;
            if !a.is_dir() {
                return Err(ToolError::new(format!(
                    "no capture archive at {}; pass snapshot_id to read a snapshot's sidecars",
                    a.display()
                )));
            }
            let archive = trawl_snapshot::archive::Archive::open(a)?;
            Ok(archive.nodes.iter().flat_map(|n| n.sidecars.iter().map(|s| s.path.clone())).collect())
        }
    }
}

fn regex(param: &str, r: Option<&str>) -> ToolResult<Option<Regex>> {
    r.map(|r| Regex::new(r).map_err(|e| ToolError::new(format!("{param}: not a valid regular expression: {e}"))))
        .transpose()
}

/// Sidecar problems, so that an agent sees why a name is missing.
fn problems(cluster: &Cluster) -> Vec<String> {
    cluster.reports().iter().flat_map(|r| r.problems.iter().map(move |p| format!("{}: {p}", r.path))).take(20).collect()
}

fn envelope(key: &str, items: Vec<Value>, total: usize, limit: usize, files: usize, cluster: &Cluster) -> Value {
    let mut v = json!({key: items, "total": total, "truncated": total > limit, "sidecars_read": files});
    let p = problems(cluster);
    if !p.is_empty() {
        v["sidecar_problems"] = json!(p);
    }
    if files == 0 {
        v["note"] = json!(
            "no Kubernetes sidecars found: capture agents write k8s-<unix ms>.json[l] next to the captures (docs/kubernetes.md)"
        );
    }
    v
}

pub async fn list_workloads(inner: &Arc<Inner>, p: ListWorkloads) -> ToolResult {
    let limit = bounded("limit", p.limit, 100, 1000)?;
    let at = p.timestamp.as_ref().map(|t| t.ns("timestamp")).transpose()?;
    let name_regex = regex("name_regex", p.name_regex.as_deref())?;
    let inner = inner.clone();
    blocking(move || {
        let files = sidecar_files(&inner, p.snapshot_id.as_deref())?;
        let cluster = Cluster::load(&files);
        let mut namespaces = p.namespaces.clone();
        namespaces.extend(p.namespace.clone());
        let kind = p.kind.map(|k| match k {
            Kind::Pod => "pod",
            Kind::Service => "service",
            Kind::Node => "node",
        });
        let f = Filter {
            kind: kind.map(String::from),
            name: p.name.clone(),
            namespaces,
            name_regex,
            labels: p.labels.clone(),
            at,
            ip: None,
        };
        let found = list::workloads(&cluster, &f);
        let total = found.len();
        let items = found.iter().take(limit).map(list::Workload::json).collect();
        Ok(envelope("workloads", items, total, limit, files.len(), &cluster))
    })
    .await
}

pub async fn list_ips(inner: &Arc<Inner>, p: ListIps) -> ToolResult {
    let limit = bounded("limit", p.limit, 100, 1000)?;
    let at = p.timestamp.as_ref().map(|t| t.ns("timestamp")).transpose()?;
    let name_regex = regex("name_regex", p.name_regex.as_deref())?;
    let ip: Option<IpAddr> =
        p.ip.as_deref()
            .map(|s| s.parse().map_err(|_| ToolError::new(format!("ip: expected an IPv4 or IPv6 address, got `{s}`"))))
            .transpose()?;
    let inner = inner.clone();
    blocking(move || {
        let files = sidecar_files(&inner, p.snapshot_id.as_deref())?;
        let cluster = Cluster::load(&files);
        let f = Filter {
            namespaces: p.namespaces.clone(),
            name_regex,
            labels: p.labels.clone(),
            at,
            ip,
            ..Filter::default()
        };
        let found = list::addresses(&cluster, &f);
        let total = found.len();
        let items = found.iter().take(limit).map(list::Address::json).collect();
        Ok(envelope("ips", items, total, limit, files.len(), &cluster))
    })
    .await
}

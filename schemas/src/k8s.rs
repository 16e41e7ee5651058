//! Kubernetes metadata sidecars: what the capture agent writes next to
//! its PCAPs, one JSON file per observation (`k8s-<unix ms>.json`).
//!
//! A sidecar describes the pods and services as they were at `time`; it
//! stays valid until the next sidecar of the same node. See
//! docs/archive.md for the layout around it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One observation of the cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sidecar {
    /// When the observation was made (RFC 3339, UTC).
    pub time: String,
    /// The node whose agent wrote it.
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default)]
    pub pods: Vec<Pod>,
    #[serde(default)]
    pub services: Vec<Service>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    /// Pod IPs (IPv4 and IPv6).
    #[serde(default)]
    pub ips: Vec<String>,
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Owning workload, e.g. `Deployment/checkout`.
    #[serde(default)]
    pub workload: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    pub namespace: String,
    pub name: String,
    /// Cluster IPs.
    #[serde(default)]
    pub ips: Vec<String>,
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
}

/// File names of sidecars: `k8s-<anything>.json`.
pub fn is_sidecar_name(name: &str) -> bool {
    name.starts_with("k8s-") && name.ends_with(".json")
}

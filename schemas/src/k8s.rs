//! Kubernetes metadata sidecars: the files that name the pods, services
//! and nodes behind the addresses of a capture (docs/kubernetes.md).
//!
//! Three forms are read, all JSON:
//!
//! 1. **kubectl List**: the plain output of
//!    `kubectl get pods,services,endpointslices,nodes -A -o json`. It has
//!    no time of its own: a file named `k8s-<unix ms>.json` is the cluster
//!    at that time, any other name is the cluster at every time.
//! 2. **Timeline** (JSON Lines): one [`TimelineRecord`] per line, either a
//!    full `snapshot` of the cluster's objects or a watch event (`added`,
//!    `modified`, `deleted`) of one object, each with its time. The
//!    capture agent writes these, so that an address reused by another pod
//!    later resolves to the right pod at each moment.
//! 3. **Compact** ([`Sidecar`]): trawl's own hand-writable summary, one
//!    observation of pods, services and nodes at a time.
//!
//! The object types below are the subset of the Kubernetes API that trawl
//! reads, with the API's field names; everything else in an object is
//! ignored. [`json_schema`] renders them as the JSON Schema in
//! docs/kubernetes.schema.json.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One observation of the cluster in the compact form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
    #[serde(default)]
    pub nodes: Vec<NodeSummary>,
}

/// A pod in the compact form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Owning workload, `Kind/name`, e.g. `Deployment/checkout`.
    #[serde(default)]
    pub workload: Option<String>,
    /// The pod shares its node's addresses; only `ports` tell it apart.
    #[serde(default)]
    pub host_network: bool,
    /// Ports the pod listens on (what names a hostNetwork pod).
    #[serde(default)]
    pub ports: Vec<u16>,
}

/// A service in the compact form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Service {
    pub namespace: String,
    pub name: String,
    /// Cluster IPs (and external or load-balancer IPs).
    #[serde(default)]
    pub ips: Vec<String>,
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
    /// Addresses of the pods behind it (its endpoints).
    #[serde(default)]
    pub endpoints: Vec<String>,
}

/// A node in the compact form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NodeSummary {
    pub name: String,
    #[serde(default)]
    pub ips: Vec<String>,
}

/// File names of sidecars: `k8s-<anything>.json` or `.jsonl`.
pub fn is_sidecar_name(name: &str) -> bool {
    name.starts_with("k8s-") && (name.ends_with(".json") || name.ends_with(".jsonl"))
}

/// The time a sidecar's name gives (`k8s-<unix ms>.json[l]`), in ns.
pub fn time_from_name(name: &str) -> Option<i64> {
    let stem = name.strip_prefix("k8s-")?;
    let stem = stem.strip_suffix(".jsonl").or_else(|| stem.strip_suffix(".json"))?;
    stem.parse::<i64>().ok().map(|ms| ms.saturating_mul(1_000_000))
}

// ---- The Kubernetes objects trawl reads (kubectl List items, timeline objects).

/// `metadata` of any object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    pub name: String,
    /// Empty for cluster-scoped objects (nodes).
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub owner_references: Vec<OwnerReference>,
    /// RFC 3339; a pod did not hold its address before it.
    #[serde(default)]
    pub creation_timestamp: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OwnerReference {
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub controller: Option<bool>,
}

/// `kind: Pod`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubePod {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: PodSpec,
    #[serde(default)]
    pub status: PodStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    #[serde(default)]
    pub node_name: Option<String>,
    #[serde(default)]
    pub host_network: bool,
    #[serde(default)]
    pub containers: Vec<Container>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    #[serde(default)]
    pub ports: Vec<ContainerPort>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPort {
    pub container_port: u16,
    #[serde(default)]
    pub host_port: Option<u16>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    /// `Pending`, `Running`, `Succeeded`, `Failed`: a finished pod's
    /// address may already belong to another pod.
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default, rename = "podIP")]
    pub pod_ip: Option<String>,
    #[serde(default, rename = "podIPs")]
    pub pod_ips: Vec<PodIp>,
    #[serde(default, rename = "hostIP")]
    pub host_ip: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PodIp {
    pub ip: String,
}

/// `kind: Service`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubeService {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ServiceSpec,
    #[serde(default)]
    pub status: ServiceStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// `None` for headless services.
    #[serde(default, rename = "clusterIP")]
    pub cluster_ip: Option<String>,
    #[serde(default, rename = "clusterIPs")]
    pub cluster_ips: Vec<String>,
    #[serde(default, rename = "externalIPs")]
    pub external_ips: Vec<String>,
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    #[serde(default)]
    pub load_balancer: LoadBalancerStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LoadBalancerStatus {
    #[serde(default)]
    pub ingress: Vec<LoadBalancerIngress>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LoadBalancerIngress {
    #[serde(default)]
    pub ip: Option<String>,
}

/// `kind: EndpointSlice` (discovery.k8s.io/v1): the addresses behind a
/// service, named by its `kubernetes.io/service-name` label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubeEndpointSlice {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    #[serde(default)]
    pub ports: Vec<EndpointPort>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    #[serde(default)]
    pub addresses: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EndpointPort {
    #[serde(default)]
    pub port: Option<u16>,
}

/// `kind: Node`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubeNode {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub status: NodeStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NodeStatus {
    #[serde(default)]
    pub addresses: Vec<NodeAddress>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NodeAddress {
    /// `InternalIP`, `ExternalIP`, `Hostname`, ...: the IPs name the node.
    #[serde(rename = "type")]
    pub kind: String,
    pub address: String,
}

/// `kind: ReplicaSet` or `kind: Job`: read for their owners only
/// (a Deployment, a CronJob), which become the pods' workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct KubeOwner {
    pub metadata: ObjectMeta,
}

/// One object of a kubectl List or a timeline, by its `kind`.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    Pod(KubePod),
    Service(KubeService),
    EndpointSlice(KubeEndpointSlice),
    Node(KubeNode),
    /// A ReplicaSet or Job: (kind, object).
    Owner(String, KubeOwner),
}

/// The kinds [`Object`] reads; others are counted and skipped.
pub const OBJECT_KINDS: &[&str] = &["Pod", "Service", "EndpointSlice", "Node", "ReplicaSet", "Job"];

/// The documented shape of a kubectl List (for the JSON Schema).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubeList {
    /// `v1`.
    pub api_version: String,
    /// `List` (or `PodList`, `ServiceList`, ...).
    pub kind: String,
    /// Objects, each with its `kind`; the kinds trawl reads are Pod,
    /// Service, EndpointSlice, Node, ReplicaSet and Job.
    pub items: Vec<ListItem>,
}

/// An item of a kubectl List, as far as the schema says.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ListItem {
    Pod(KubePod),
    Service(KubeService),
    EndpointSlice(KubeEndpointSlice),
    Node(KubeNode),
    Owner(KubeOwner),
}

/// What a timeline record does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RecordType {
    /// `objects` is the whole cluster now: what is not in it is gone.
    #[serde(alias = "SNAPSHOT")]
    Snapshot,
    /// `object` appeared (a Kubernetes watch `ADDED`).
    #[serde(alias = "ADDED")]
    Added,
    /// `object` changed (`MODIFIED`): its new state replaces the old.
    #[serde(alias = "MODIFIED")]
    Modified,
    /// `object` is gone (`DELETED`).
    #[serde(alias = "DELETED")]
    Deleted,
}

/// One line of a timeline file.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TimelineRecord {
    /// When it happened (RFC 3339, UTC).
    pub time: String,
    #[serde(rename = "type")]
    pub kind: RecordType,
    /// For `snapshot`: every object (Kubernetes objects with `kind`).
    #[serde(default)]
    pub objects: Vec<serde_json::Value>,
    /// For events: the object (for `deleted`, its kind and metadata suffice).
    #[serde(default)]
    pub object: Option<serde_json::Value>,
}

/// The JSON Schema of the three sidecar forms (docs/kubernetes.schema.json).
pub fn json_schema() -> serde_json::Value {
    let list = schemars::schema_for!(KubeList);
    let line = schemars::schema_for!(TimelineRecord);
    let compact = schemars::schema_for!(Sidecar);
    let pod = schemars::schema_for!(KubePod);
    let service = schemars::schema_for!(KubeService);
    let slice = schemars::schema_for!(KubeEndpointSlice);
    let node = schemars::schema_for!(KubeNode);
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "trawl Kubernetes sidecars",
        "description": "Generated from schemas/src/k8s.rs by `trawl schema --kubernetes`. The three forms of a sidecar file; see docs/kubernetes.md.",
        "$defs": {
            "kubectl_list": list,
            "timeline_record": line,
            "compact": compact,
            "Pod": pod,
            "Service": service,
            "EndpointSlice": slice,
            "Node": node,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_give_times() {
        assert!(is_sidecar_name("k8s-1.json") && is_sidecar_name("k8s-x.jsonl") && !is_sidecar_name("pods.json"));
        assert_eq!(time_from_name("k8s-1270661340000.json"), Some(1_270_661_340_000_000_000));
        assert_eq!(time_from_name("k8s-5.jsonl"), Some(5_000_000));
        assert_eq!(time_from_name("k8s-cluster.json"), None);
    }

    #[test]
    fn schema_doc_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/kubernetes.schema.json");
        // A file that cannot be read says why, rather than reading as stale.
        let on_disk = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let now = serde_json::to_string_pretty(&json_schema()).unwrap_or_default() + "\n";
        assert!(
            on_disk == now,
            "docs/kubernetes.schema.json is stale: run `trawl schema --kubernetes > docs/kubernetes.schema.json`"
        );
    }
}

//! What the Kubernetes sidecars say over time: pod and service names of
//! IP addresses (`--annotate`), and the shared [`Timeline`] that the
//! workload filter of `snapshot create` uses too.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use crate::Error;
use crate::archive::{SidecarFile, read_sidecar, sidecar_time};

/// Values over time, one point per sidecar time: at each point, the
/// latest sidecar of every node, combined. Before the first point the
/// first applies (a capture may start before its first sidecar).
#[derive(Debug)]
pub struct Timeline<T> {
    points: Vec<(i64, T)>,
}

impl<T> Timeline<T> {
    /// `events` are (time, node index, what that node's sidecar says);
    /// `combine` merges the nodes' latest values, in node order.
    pub fn build<V>(mut events: Vec<(i64, usize, V)>, nodes: usize, combine: impl Fn(&[&V]) -> T) -> Timeline<T> {
        events.sort_by_key(|e| (e.0, e.1));
        let mut latest: Vec<Option<V>> = (0..nodes).map(|_| None).collect();
        let mut points: Vec<(i64, T)> = Vec::new();
        for (t, node, v) in events {
            if let Some(slot) = latest.get_mut(node) {
                *slot = Some(v);
            }
            let now: Vec<&V> = latest.iter().flatten().collect();
            let value = combine(&now);
            match points.last_mut() {
                Some((lt, old)) if *lt == t => *old = value,
                _ => points.push((t, value)),
            }
        }
        Timeline { points }
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The value in force at `ts`.
    pub fn at(&self, ts: i64) -> Option<&T> {
        let i = self.points.partition_point(|(t, _)| *t <= ts).saturating_sub(1);
        self.points.get(i).map(|(_, v)| v)
    }
}

/// IP to `pod ns/name` or `service ns/name`, over time.
#[derive(Debug)]
pub struct Names {
    timeline: Timeline<HashMap<IpAddr, String>>,
}

impl Names {
    /// Reads every sidecar of a snapshot (`k8s/<node>/k8s-*.json`); none
    /// is not an error.
    pub fn load(snap: &Path) -> Result<Names, Error> {
        let (nodes, files) = snapshot_sidecars(snap)?;
        let mut events = Vec::new();
        for (ni, f) in &files {
            let car = read_sidecar(&f.path)?;
            let mut names: HashMap<IpAddr, String> = HashMap::new();
            for s in &car.services {
                for ip in s.ips.iter().filter_map(|i| i.parse().ok()) {
                    names.insert(ip, format!("service {}/{}", s.namespace, s.name));
                }
            }
            // A pod's own name wins over a service sharing its address.
            for pod in &car.pods {
                for ip in pod.ips.iter().filter_map(|i| i.parse().ok()) {
                    names.insert(ip, format!("pod {}/{}", pod.namespace, pod.name));
                }
            }
            events.push((f.time_ns, *ni, names));
        }
        let timeline = Timeline::build(events, nodes.len(), |maps: &[&HashMap<IpAddr, String>]| {
            let mut all = HashMap::new();
            for m in maps {
                all.extend(m.iter().map(|(k, v)| (*k, v.clone())));
            }
            all
        });
        Ok(Names { timeline })
    }

    /// The name of `ip` at time `ts`, if known.
    pub fn name(&self, ts: i64, ip: IpAddr) -> Option<&str> {
        self.timeline.at(ts).and_then(|m| m.get(&ip)).map(String::as_str)
    }
}

/// Node names, and each sidecar file with its node's index.
pub type SnapshotSidecars = (Vec<String>, Vec<(usize, SidecarFile)>);

/// The sidecars a snapshot carries (`k8s/<node>/k8s-*.json`): the node
/// names in order, and each file with its node's index and its time.
pub fn snapshot_sidecars(snap: &Path) -> Result<SnapshotSidecars, Error> {
    let root = snap.join("k8s");
    let mut node_dirs = Vec::new();
    if root.is_dir() {
        for node in std::fs::read_dir(&root).map_err(|e| Error::io(&root, e))? {
            let node = node.map_err(|e| Error::io(&root, e))?.path();
            if node.is_dir() {
                node_dirs.push(node);
            }
        }
    }
    node_dirs.sort();
    let mut files = Vec::new();
    for (ni, node) in node_dirs.iter().enumerate() {
        for f in std::fs::read_dir(node).map_err(|e| Error::io(node, e))? {
            let path = f.map_err(|e| Error::io(node, e))?.path();
            if path.file_name().is_some_and(|n| trawl_schemas::k8s::is_sidecar_name(&n.to_string_lossy())) {
                files.push((ni, SidecarFile { time_ns: sidecar_time(&path)?, path }));
            }
        }
    }
    files.sort_by_key(|(ni, f)| (f.time_ns, *ni));
    let names = node_dirs.iter().map(|d| d.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default()).collect();
    Ok((names, files))
}

#[cfg(test)]
mod tests {
    use super::Timeline;

    #[test]
    fn a_nodes_later_sidecar_replaces_its_earlier_one() {
        // Node 0 sees pod A, then (at 20) no longer; node 1 sees pod B from 10.
        let events = vec![(0, 0, vec!["A"]), (20, 0, vec![]), (10, 1, vec!["B"])];
        let t = Timeline::build(events, 2, |v: &[&Vec<&str>]| v.iter().flat_map(|x| x.iter().copied()).collect::<Vec<_>>());
        assert_eq!(t.at(-5), Some(&vec!["A"]), "before the first sidecar, the first applies");
        assert_eq!(t.at(15), Some(&vec!["A", "B"]));
        assert_eq!(t.at(25), Some(&vec!["B"]));
        assert!(Timeline::build(Vec::<(i64, usize, u8)>::new(), 1, |_: &[&u8]| 0u8).is_empty());
    }
}

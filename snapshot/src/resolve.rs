//! Pod and service names of IP addresses over time, from the Kubernetes
//! sidecars a snapshot carries (`k8s/<node>/k8s-*.json`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use crate::Error;
use crate::archive::{read_sidecar, sidecar_time};

/// IP to `pod ns/name` or `service ns/name`, per sidecar time.
#[derive(Debug, Default)]
pub struct Names {
    /// (from time, names); before the first, the first applies.
    timeline: Vec<(i64, HashMap<IpAddr, String>)>,
}

impl Names {
    /// Reads every sidecar of a snapshot; none is not an error.
    pub fn load(snap: &Path) -> Result<Names, Error> {
        let root = snap.join("k8s");
        let mut cars = Vec::new();
        if root.is_dir() {
            for node in std::fs::read_dir(&root).map_err(|e| Error::io(&root, e))? {
                let node = node.map_err(|e| Error::io(&root, e))?.path();
                if !node.is_dir() {
                    continue;
                }
                for f in std::fs::read_dir(&node).map_err(|e| Error::io(&node, e))? {
                    let p = f.map_err(|e| Error::io(&node, e))?.path();
                    if p.file_name().is_some_and(|n| trawl_schemas::k8s::is_sidecar_name(&n.to_string_lossy())) {
                        cars.push((sidecar_time(&p)?, p));
                    }
                }
            }
        }
        cars.sort();
        let mut timeline: Vec<(i64, HashMap<IpAddr, String>)> = Vec::new();
        let mut current: HashMap<IpAddr, String> = HashMap::new();
        for (t, p) in cars {
            let car = read_sidecar(&p)?;
            for s in &car.services {
                for ip in s.ips.iter().filter_map(|i| i.parse().ok()) {
                    current.insert(ip, format!("service {}/{}", s.namespace, s.name));
                }
            }
            for pod in &car.pods {
                for ip in pod.ips.iter().filter_map(|i| i.parse().ok()) {
                    current.insert(ip, format!("pod {}/{}", pod.namespace, pod.name));
                }
            }
            match timeline.last_mut() {
                Some((lt, m)) if *lt == t => *m = current.clone(),
                _ => timeline.push((t, current.clone())),
            }
        }
        Ok(Names { timeline })
    }

    /// The name of `ip` at time `ts`, if known.
    pub fn name(&self, ts: i64, ip: IpAddr) -> Option<&str> {
        let i = self.timeline.partition_point(|(t, _)| *t <= ts).saturating_sub(1);
        self.timeline.get(i).and_then(|(_, m)| m.get(&ip)).map(String::as_str)
    }
}

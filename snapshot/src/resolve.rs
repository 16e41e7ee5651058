//! The Kubernetes sidecars of snapshots and archives, read through the
//! analyzer's time-aware index ([`trawl_analyze::kube::Cluster`]): pod and
//! service names of addresses for `export-pcap --annotate`, and the
//! sidecar files `trawl workloads` / `trawl ips` and MCP read.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use trawl_analyze::kube::{Cluster, resolution};

use crate::Error;
use crate::archive::{Archive, SidecarFile, sidecar_time};

/// Address to `pod ns/name` or `service ns/name`, over time.
#[derive(Debug)]
pub struct Names {
    cluster: Cluster,
}

impl Names {
    /// Reads every sidecar of a snapshot (`k8s/<node>/k8s-*.json`); none
    /// is not an error.
    pub fn load(snap: &Path) -> Result<Names, Error> {
        let files: Vec<PathBuf> = snapshot_sidecars(snap)?.1.into_iter().map(|(_, f)| f.path).collect();
        Ok(Names { cluster: Cluster::load(&files) })
    }

    /// The name of `ip` at time `ts`, if known.
    pub fn name(&self, ts: i64, ip: IpAddr) -> Option<String> {
        let side = self.cluster.resolve(ip, 0, ts);
        match (side.pod(), side.service, side.resolution) {
            (Some(p), _, _) => Some(format!("pod {}/{}", p.namespace, p.name)),
            (None, Some((ns, name)), _) => Some(format!("service {ns}/{name}")),
            (None, None, resolution::NODE) => side.node.map(|n| format!("node {n}")),
            _ => None,
        }
    }
}

/// Node names, and each sidecar file with its node's index.
pub type SnapshotSidecars = (Vec<String>, Vec<(usize, SidecarFile)>);

/// The sidecars a snapshot carries (`k8s/<node>/k8s-*.json[l]`, or any
/// `.json`/`.jsonl` that `trawl analyze` copied there): the node names in
/// order, and each file with its node's index and its time.
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
            if path.extension().is_some_and(|x| x == "json" || x == "jsonl") {
                files.push((ni, SidecarFile { time_ns: sidecar_time(&path)?, path }));
            }
        }
    }
    files.sort_by(|(na, a), (nb, b)| (a.time_ns, *na, &a.path).cmp(&(b.time_ns, *nb, &b.path)));
    let names =
        node_dirs.iter().map(|d| d.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default()).collect();
    Ok((names, files))
}

/// The sidecar files that describe `path`: a snapshot's (`k8s/`), an
/// archive's (every node's), or sidecar files and folders themselves.
pub fn sidecars_of(path: &Path) -> Result<Vec<PathBuf>, Error> {
    if path.join("k8s").is_dir()
        || path.join(trawl_analyze::MANIFEST).is_file()
        || path.join(crate::SNAPSHOT_FILE).is_file()
    {
        return Ok(snapshot_sidecars(path)?.1.into_iter().map(|(_, f)| f.path).collect());
    }
    if path.is_dir()
        && let Ok(a) = Archive::open(path)
        && a.nodes.iter().any(|n| !n.sidecars.is_empty())
    {
        return Ok(a.nodes.iter().flat_map(|n| n.sidecars.iter().map(|s| s.path.clone())).collect());
    }
    Ok(trawl_analyze::kube::expand_sidecars("", &[path.to_path_buf()])?)
}

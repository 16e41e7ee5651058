//! Any bytes as a Kubernetes sidecar (kubectl List, timeline, compact),
//! indexed and queried: loading reports problems, it must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_analyze::kube::{Cluster, list};

fuzz_target!(|data: &[u8]| {
    for name in ["k8s-1000.json", "k8s-1000.jsonl", "cluster.json"] {
        let c = Cluster::from_bytes(name, data);
        for ip in ["10.244.3.30", "192.168.49.2", "::1"] {
            let ip = ip.parse().unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
            for t in [i64::MIN, 0, 1_000_000_000, i64::MAX] {
                let _ = c.resolve(ip, 8080, t);
            }
        }
        let _ = list::workloads(&c, &list::Filter::default());
        let _ = list::addresses(&c, &list::Filter::default());
        let _ = c.reports();
    }
});

use std::path::PathBuf;

use super::*;

fn write(dir: &std::path::Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("trawl-kube-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const LIST: &str = r#"{"apiVersion":"v1","kind":"List","items":[
 {"apiVersion":"v1","kind":"Pod","metadata":{"name":"checkout-7d9f8-x2x","namespace":"shop","labels":{"app":"checkout","pod-template-hash":"7d9f8"},
  "annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{...}","team":"payments"},
  "ownerReferences":[{"kind":"ReplicaSet","name":"checkout-7d9f8","controller":true}],"creationTimestamp":"2026-11-22T10:00:00Z"},
  "spec":{"nodeName":"node-1","containers":[{"ports":[{"containerPort":8080}]}]},"status":{"phase":"Running","podIP":"10.244.1.5","podIPs":[{"ip":"10.244.1.5"}]}},
 {"apiVersion":"v1","kind":"Pod","metadata":{"name":"node-exporter-abc","namespace":"monitoring","ownerReferences":[{"kind":"DaemonSet","name":"node-exporter","controller":true}]},
  "spec":{"nodeName":"node-1","hostNetwork":true,"containers":[{"ports":[{"containerPort":9100,"hostPort":9100}]}]},"status":{"phase":"Running","podIP":"192.168.49.2"}},
 {"apiVersion":"v1","kind":"Pod","metadata":{"name":"report-1-zz","namespace":"batch","ownerReferences":[{"kind":"Job","name":"report-1","controller":true}]},
  "spec":{"nodeName":"node-1"},"status":{"phase":"Succeeded","podIP":"10.244.1.9"}},
 {"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"report-1","namespace":"batch","ownerReferences":[{"kind":"CronJob","name":"report","controller":true}]}},
 {"apiVersion":"v1","kind":"Service","metadata":{"name":"checkout","namespace":"shop"},"spec":{"clusterIP":"10.96.0.20","clusterIPs":["10.96.0.20"],"selector":{"app":"checkout"}}},
 {"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"checkout-abcde","namespace":"shop","labels":{"kubernetes.io/service-name":"checkout"}},
  "endpoints":[{"addresses":["10.244.1.5"]}],"ports":[{"port":8080}]},
 {"apiVersion":"v1","kind":"Node","metadata":{"name":"node-1"},"status":{"addresses":[{"type":"InternalIP","address":"192.168.49.2"},{"type":"Hostname","address":"node-1"}]}},
 {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"shop"}}
]}"#;

#[test]
fn a_kubectl_list_names_pods_services_nodes_and_workloads() {
    let d = tmp("list");
    let c = Cluster::load(&[write(&d, "cluster.json", LIST)]);
    let t = crate::time::parse_rfc3339("2026-11-22T11:00:00Z").unwrap();
    let s = c.resolve(ip("10.244.1.5"), 8080, t);
    let p = s.pod().expect("a pod");
    assert_eq!((&*p.namespace, &*p.name, s.resolution), ("shop", "checkout-7d9f8-x2x", resolution::POD));
    assert_eq!(p.workload.as_deref(), Some("Deployment/checkout"), "through the ReplicaSet, by its pod-template-hash");
    assert_eq!(s.service, Some(("shop", "checkout")));
    assert_eq!(s.node, Some("node-1"));
    assert_eq!(p.annotations.keys().collect::<Vec<_>>(), ["team"], "the last-applied copy is dropped");
    // Before its creation the address was not this pod's; the endpoint
    // slice has no time of its own and still names the service.
    let before = c.resolve(ip("10.244.1.5"), 8080, t - 2 * 3_600_000_000_000);
    assert_eq!((before.pod.is_none(), before.resolution, before.namespace()), (true, resolution::SERVICE, "shop"));
    // ClusterIP: the service alone.
    let v = c.resolve(ip("10.96.0.20"), 80, t);
    assert_eq!((v.resolution, v.namespace(), v.pod.is_none()), (resolution::SERVICE, "shop", true));
    // The node's address: the hostNetwork pod on its port, else the node.
    let h = c.resolve(ip("192.168.49.2"), 9100, t);
    assert_eq!(
        h.pod().map(|p| (&*p.name, p.workload.as_deref())),
        Some(("node-exporter-abc", Some("DaemonSet/node-exporter")))
    );
    let n = c.resolve(ip("192.168.49.2"), 22, t);
    assert_eq!((n.resolution, n.node, n.pod.is_none()), (resolution::NODE, Some("node-1"), true));
    assert_eq!(c.node_ip("node-1", t), Some(ip("192.168.49.2")));
    // A finished Job's pod, owned through its CronJob.
    let j = c.resolve(ip("10.244.1.9"), 1234, t);
    assert_eq!(j.pod().and_then(|p| p.workload.as_deref()), Some("CronJob/report"));
    // Unknown addresses: internal or public.
    let u = c.resolve(ip("8.8.8.8"), 53, t);
    assert_eq!((u.resolution, u.namespace()), (resolution::NOT_FOUND, "public"));
    let r = &c.reports()[0];
    assert_eq!((r.format, r.pods, r.services, r.endpoint_slices, r.nodes), ("kubectl-list", 3, 1, 1, 1));
    assert_eq!(r.skipped_kinds.get("ConfigMap"), Some(&1));
    assert!(r.problems.is_empty(), "{:?}", r.problems);
}

#[test]
fn a_timeline_gives_a_reused_address_to_the_right_pod() {
    let d = tmp("timeline");
    let pod = |name: &str, app: &str, created: &str| {
        format!(
            r#"{{"kind":"Pod","metadata":{{"name":"{name}","namespace":"ns","labels":{{"app":"{app}"}},"creationTimestamp":"{created}"}},"status":{{"phase":"Running","podIP":"10.244.3.30"}}}}"#
        )
    };
    let text = [
        format!(
            r#"{{"time":"2026-11-22T10:00:00Z","type":"snapshot","objects":[{}]}}"#,
            pod("old", "report", "2026-11-22T09:00:00Z")
        ),
        format!(
            r#"{{"time":"2026-11-22T10:30:00Z","type":"DELETED","object":{}}}"#,
            pod("old", "report", "2026-11-22T09:00:00Z")
        ),
        format!(
            r#"{{"time":"2026-11-22T10:30:05Z","type":"added","object":{}}}"#,
            pod("new", "ledger", "2026-11-22T10:29:00Z")
        ),
    ]
    .join("\n");
    let c = Cluster::load(&[write(&d, "k8s-1763805600000.jsonl", &text)]);
    let at = |s: &str| crate::time::parse_rfc3339(s).unwrap();
    let name = |t: &str| c.resolve(ip("10.244.3.30"), 80, at(t)).pod().map(|p| p.name.to_string());
    assert_eq!(name("2026-11-22T09:30:00Z").as_deref(), Some("old"), "created before the first snapshot");
    assert_eq!(name("2026-11-22T10:29:59Z").as_deref(), Some("old"));
    assert_eq!(
        name("2026-11-22T10:30:00Z").as_deref(),
        Some("new"),
        "created at 10:29, but not before the deletion was seen"
    );
    assert_eq!(c.reports()[0].observations, 3);
}

#[test]
fn bad_sidecars_are_reported_with_file_and_path() {
    let d = tmp("bad");
    let bad_ip = r#"{"apiVersion":"v1","kind":"List","items":[
      {"kind":"Pod","metadata":{"name":"a","namespace":"x"},"status":{"podIP":"10.0.0.999"}},
      {"kind":"Pod","metadata":{"namespace":"x"}},
      {"kind":"Pod","metadata":{"name":"ok","namespace":"x"},"status":{"podIP":"10.0.0.7"}}]}"#;
    let lines = "{\"time\":\"2026-11-22T10:00:00Z\",\"type\":\"snapshot\",\"objects\":[]}\n{not json\n{\"time\":\"yesterday\",\"type\":\"added\",\"object\":{}}\n";
    let files = [
        write(&d, "a.json", bad_ip),
        write(&d, "k8s-1.jsonl", lines),
        write(&d, "c.json", "[1,2]"),
        d.join("missing.json"),
    ];
    let c = Cluster::load(&files);
    let r = c.reports();
    assert_eq!(
        r[0].problems,
        ["$.items[0].status.podIP: `10.0.0.999` is not an IP address", "$.items[1].metadata: missing field `name`"]
    );
    assert_eq!(
        c.resolve(ip("10.0.0.7"), 1, 0).pod().map(|p| &*p.name),
        Some("ok"),
        "the good object of a bad file is used"
    );
    assert_eq!(r[1].problems.len(), 2);
    assert!(r[1].problems[0].starts_with("line 2: not JSON"), "{:?}", r[1].problems);
    assert_eq!(r[1].problems[1], "line 3: $.time: expected an RFC 3339 time, got `yesterday`");
    assert!(r[2].problems[0].starts_with("$: expected a kubectl List"), "{:?}", r[2].problems);
    assert_eq!(r[3].format, "unreadable");
}

#[test]
fn compact_sidecars_of_one_folder_replace_each_other() {
    let d = tmp("compact");
    let a = r#"{"time":"2026-11-22T10:00:00Z","pods":[{"namespace":"shop","name":"a","ips":["10.0.0.1"],"workload":"StatefulSet/a"}],
      "services":[{"namespace":"shop","name":"svc","ips":["10.96.0.1"],"endpoints":["10.0.0.1"]}],"nodes":[{"name":"n1","ips":["192.168.0.1"]}]}"#;
    let b = r#"{"time":"2026-11-22T11:00:00Z","pods":[{"namespace":"shop","name":"b","ips":["10.0.0.1"]}]}"#;
    let c = Cluster::load(&[write(&d, "k8s-1.json", a), write(&d, "k8s-2.json", b)]);
    let at = |s: &str| crate::time::parse_rfc3339(s).unwrap();
    let early = c.resolve(ip("10.0.0.1"), 80, at("2026-11-22T09:00:00Z"));
    assert_eq!(
        early.pod().map(|p| (&*p.name, p.workload.as_deref())),
        Some(("a", Some("StatefulSet/a"))),
        "before the first sidecar, the first applies"
    );
    assert_eq!(early.service.map(|s| s.1), Some("svc"));
    assert_eq!(c.resolve(ip("10.0.0.1"), 80, at("2026-11-22T11:00:00Z")).pod().map(|p| &*p.name), Some("b"));
    assert_eq!(
        c.resolve(ip("192.168.0.1"), 80, at("2026-11-22T11:30:00Z")).resolution,
        resolution::NOT_AT_TIME,
        "the node left with the first sidecar"
    );
    let w = list::workloads(&c, &list::Filter::default());
    assert_eq!(
        w.iter().map(|w| (w.kind, &*w.name)).collect::<Vec<_>>(),
        [("node", "n1"), ("pod", "a"), ("pod", "b"), ("service", "svc")]
    );
    let ips = list::addresses(&c, &list::Filter { ip: Some(ip("10.0.0.1")), ..Default::default() });
    assert_eq!(ips[0].holders.iter().map(|h| &*h.name).collect::<Vec<_>>(), ["a", "b"]);
}

#[test]
fn scopes() {
    for (a, s) in [
        ("10.1.2.3", "internal"),
        ("172.20.0.1", "internal"),
        ("100.64.1.1", "internal"),
        ("169.254.169.254", "internal"),
        ("203.0.113.10", "public"),
        ("fd00::1", "internal"),
        ("2001:db8::1", "public"),
        ("::ffff:192.168.1.1", "internal"),
    ] {
        assert_eq!(scope(ip(a)), s, "{a}");
    }
}

#[test]
fn lists_of_one_kind_each_in_one_folder_add_up() {
    // `kubectl get pods -o json > pods.json; kubectl get services -o json > services.json`.
    let d = tmp("split");
    let pods = r#"{"apiVersion":"v1","kind":"List","items":[{"kind":"Pod","metadata":{"name":"a","namespace":"x","labels":{"app":"a"}},"status":{"podIP":"10.0.0.1"}}]}"#;
    let svcs = r#"{"apiVersion":"v1","kind":"List","items":[{"kind":"Service","metadata":{"name":"a","namespace":"x"},"spec":{"clusterIP":"10.96.0.1","selector":{"app":"a"}}}]}"#;
    let c = Cluster::load(&[write(&d, "pods.json", pods), write(&d, "services.json", svcs)]);
    let s = c.resolve(ip("10.0.0.1"), 80, 0);
    assert_eq!(
        (s.pod().map(|p| &*p.name), s.service),
        (Some("a"), Some(("x", "a"))),
        "the second List does not end the first's pods"
    );
    // A later List of pods replaces the pods only.
    let later = r#"{"apiVersion":"v1","kind":"List","items":[{"kind":"Pod","metadata":{"name":"b","namespace":"x"},"status":{"podIP":"10.0.0.2"}}]}"#;
    let c = Cluster::load(&[
        write(&d, "pods.json", pods),
        write(&d, "services.json", svcs),
        write(&d, "k8s-1000.json", later),
    ]);
    assert_eq!(c.resolve(ip("10.0.0.1"), 80, 2_000_000_000).resolution, resolution::NOT_AT_TIME);
    assert_eq!(c.resolve(ip("10.96.0.1"), 80, 2_000_000_000).resolution, resolution::SERVICE);
}

#[test]
fn a_host_network_pod_names_its_node_when_no_node_object_does() {
    let d = tmp("hostnet");
    let list = r#"{"apiVersion":"v1","kind":"List","items":[{"kind":"Pod","metadata":{"name":"exporter","namespace":"mon"},
      "spec":{"nodeName":"node-7","hostNetwork":true,"containers":[{"ports":[{"containerPort":9100}]}]},"status":{"podIP":"192.168.1.7"}}]}"#;
    let c = Cluster::load(&[write(&d, "cluster.json", list)]);
    let on_port = c.resolve(ip("192.168.1.7"), 9100, 0);
    assert_eq!((on_port.resolution, on_port.pod().map(|p| &*p.name)), (resolution::POD, Some("exporter")));
    let other = c.resolve(ip("192.168.1.7"), 22, 0);
    assert_eq!((other.resolution, other.node, other.pod.is_none()), (resolution::NODE, Some("node-7"), true));
}

#[test]
fn cut_or_garbled_sidecars_never_panic() {
    // The scenario's real sidecars, cut at many points and with bytes
    // flipped: every result is a report, never a panic.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/scenarios/k8s");
    let d = tmp("garbled");
    for sub in ["kubectl", "timeline"] {
        for f in std::fs::read_dir(root.join(sub)).unwrap().flatten() {
            let bytes = std::fs::read(f.path()).unwrap();
            let name = f.file_name().to_string_lossy().to_string();
            for cut in (0..bytes.len()).step_by(211) {
                let p = d.join(&name);
                std::fs::write(&p, &bytes[..cut]).unwrap();
                let c = Cluster::load(std::slice::from_ref(&p));
                let _ = c.resolve(ip("10.244.3.30"), 8080, 0);
                let mut flipped = bytes.clone();
                flipped[cut] ^= 0x5a;
                std::fs::write(&p, &flipped).unwrap();
                let c = Cluster::load(&[p]);
                let _ = list::workloads(&c, &list::Filter::default());
            }
        }
    }
}

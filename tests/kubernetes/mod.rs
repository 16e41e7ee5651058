//! Kubernetes context end to end, on testdata/scenarios/k8s: real HTTP
//! servers and clients in network namespaces playing pods of several
//! namespaces and services, recorded with tcpdump, with the matching
//! sidecars in kubectl List form (two Lists) and in timeline form (a
//! snapshot, then the deletion of a Job pod and the addition of a pod of
//! another workload that takes its address). See
//! testdata/scenarios/make_k8s_cluster.sh.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use arrow_array::{Array, StringArray};

use super::{read_table, scratch, stderr, stdout, testdata, trawl};

/// (src pod, src namespace, src workload, src service, src resolution)
/// and the same of dst, plus dst node and dst DNS name.
type Sides = [Option<&'static str>; 12];

const FRONTEND: [Option<&str>; 5] =
    [Some("frontend-6f7d9c8b5-k2x4p"), Some("shop"), Some("Deployment/frontend"), Some("frontend"), Some("pod")];
const CHECKOUT: [Option<&str>; 5] =
    [Some("checkout-5b8d4f7c6-q9w2e"), Some("shop"), Some("Deployment/checkout"), Some("checkout"), Some("pod")];
const PAYMENTS_0: [Option<&str>; 5] =
    [Some("payments-0"), Some("payments"), Some("StatefulSet/payments"), Some("payments"), Some("pod")];
const REPORT: [Option<&str>; 5] =
    [Some("report-29385120-7xk2p"), Some("batch"), Some("CronJob/report"), None, Some("pod")];
const LEDGER: [Option<&str>; 5] =
    [Some("ledger-7c6b5d9f8-m4n8r"), Some("payments"), Some("Deployment/ledger"), Some("ledger"), Some("pod")];
const PROMETHEUS: [Option<&str>; 5] =
    [Some("prometheus-0"), Some("monitoring"), Some("StatefulSet/prometheus"), Some("prometheus"), Some("pod")];
const NODE_EXPORTER: [Option<&str>; 5] = [
    Some("node-exporter-x7k9d"),
    Some("monitoring"),
    Some("DaemonSet/node-exporter"),
    Some("node-exporter"),
    Some("pod"),
];
/// The payments ClusterIP, as seen before kube-proxy's DNAT: the service alone.
const PAYMENTS_SVC: [Option<&str>; 5] = [None, Some("payments"), None, Some("payments"), Some("service")];
const KUBE_DNS_SVC: [Option<&str>; 5] = [None, Some("kube-system"), None, Some("kube-dns"), Some("service")];
/// The node's own address (the kubelet port: no hostNetwork pod there).
const NODE: [Option<&str>; 5] = [None, Some("internal"), None, None, Some("node")];
/// api.partner.example: outside the cluster, named by the DNS answer.
const PARTNER: [Option<&str>; 5] = [None, Some("public"), None, None, Some("not_found")];

const fn sides(
    src: [Option<&'static str>; 5],
    dst: [Option<&'static str>; 5],
    node: Option<&'static str>,
    dns: Option<&'static str>,
) -> Sides {
    [src[0], src[1], src[2], src[3], src[4], dst[0], dst[1], dst[2], dst[3], dst[4], node, dns]
}

/// Every call of the scenario, in capture order: method, path, sides.
fn expected_calls() -> Vec<(&'static str, &'static str, Sides)> {
    let n = Some("node-1");
    vec![
        ("GET", "/api/cart", sides(FRONTEND, CHECKOUT, n, None)),
        ("POST", "/api/checkout", sides(FRONTEND, CHECKOUT, n, None)),
        ("POST", "/charge", sides(CHECKOUT, PAYMENTS_SVC, None, None)),
        // Before the address 10.244.3.30 changed hands: the Job's pod.
        ("GET", "/api/orders/export", sides(REPORT, CHECKOUT, n, None)),
        // hostNetwork pod on the node's address, by its port.
        ("GET", "/metrics", sides(PROMETHEUS, NODE_EXPORTER, n, None)),
        ("GET", "/healthz", sides(CHECKOUT, NODE, n, None)),
        // The lookups (A, then AAAA) go to the kube-dns service.
        ("QUERY", "api.partner.example", sides(PAYMENTS_0, KUBE_DNS_SVC, None, None)),
        ("QUERY", "api.partner.example", sides(PAYMENTS_0, KUBE_DNS_SVC, None, None)),
        ("GET", "/v1/fx", sides(PAYMENTS_0, PARTNER, None, Some("api.partner.example"))),
        // After: the same address is the new pod of another workload.
        ("GET", "/ledger/balance", sides(LEDGER, PAYMENTS_0, n, None)),
        ("GET", "/api/cart", sides(FRONTEND, CHECKOUT, n, None)),
    ]
}

const SIDE_COLUMNS: [&str; 12] = [
    "src_pod_name",
    "src_namespace",
    "src_workload",
    "src_service_name",
    "src_resolution",
    "dst_pod_name",
    "dst_namespace",
    "dst_workload",
    "dst_service_name",
    "dst_resolution",
    "dst_node_name",
    "dst_dns",
];

fn strings(b: &arrow_array::RecordBatch, name: &str) -> Vec<Option<String>> {
    let a = b
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .unwrap_or_else(|| panic!("column {name}"));
    (0..a.len()).map(|i| (!a.is_null(i)).then(|| a.value(i).to_string())).collect()
}

/// Some text cells of a row.
type Cells = Vec<Option<String>>;

/// Rows of a table as (key columns, side columns), ordered by `order`.
fn rows(snap: &Path, table: &str, keys: &[&str], order: &str) -> Vec<(Cells, Cells)> {
    let mut out = Vec::new();
    for b in read_table(&snap.join(format!("{table}.parquet"))) {
        let ts = b.column_by_name(order).map(|c| {
            arrow_array::cast::as_primitive_array::<arrow_array::types::TimestampNanosecondType>(c).values().to_vec()
        });
        let k: Vec<Vec<Option<String>>> = keys.iter().map(|c| strings(&b, c)).collect();
        let s: Vec<Vec<Option<String>>> = SIDE_COLUMNS.iter().map(|c| strings(&b, c)).collect();
        for i in 0..b.num_rows() {
            let t = ts.as_ref().map_or(0, |t| t[i]);
            out.push((t, (k.iter().map(|c| c[i].clone()).collect(), s.iter().map(|c| c[i].clone()).collect())));
        }
    }
    out.sort_by_key(|(t, _)| *t);
    out.into_iter().map(|(_, r)| r).collect()
}

fn owned(s: &Sides) -> Vec<Option<String>> {
    s.iter().map(|x| x.map(String::from)).collect()
}

fn analyze(snap: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["analyze", "--force", "-o", snap.to_str().unwrap_or_default()];
    args.extend_from_slice(extra);
    let o = trawl(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    o
}

fn check_attribution(snap: &Path) {
    let calls = rows(snap, "api_calls", &["method", "path"], "timestamp");
    let want = expected_calls();
    assert_eq!(calls.len(), want.len());
    for ((k, s), (m, p, w)) in calls.iter().zip(&want) {
        assert_eq!(k, &[Some(m.to_string()), Some(p.to_string())]);
        assert_eq!(s, &owned(w), "{m} {p}:\n  columns {SIDE_COLUMNS:?}");
    }
    // Every TCP flow carries the sides of its calls; the DNS lookup goes to
    // the kube-dns service (its ClusterIP).
    let flows = rows(snap, "flows", &["protocol"], "timestamp");
    let ip_flows: Vec<_> = flows.iter().filter(|(k, _)| matches!(k[0].as_deref(), Some("tcp" | "udp"))).collect();
    // (The two lookups share one UDP flow.)
    let mut want_flows: Vec<Vec<Option<String>>> =
        want.iter().filter(|(m, _, _)| *m != "QUERY").map(|(_, _, s)| owned(s)).collect();
    want_flows.insert(6, owned(&sides(PAYMENTS_0, KUBE_DNS_SVC, None, None)));
    assert_eq!(ip_flows.iter().map(|(_, s)| s.clone()).collect::<Vec<_>>(), want_flows);
    // The capture node and its address, on every row.
    for b in read_table(&snap.join("flows.parquet")) {
        assert!(strings(&b, "node_name").iter().all(|n| n.as_deref() == Some("node-1")));
        assert!(strings(&b, "node_ip").iter().all(|n| n.as_deref() == Some("192.168.49.2")));
    }
}

/// The scenario's capture (as `pcap_name`) and the sidecars of one form
/// side by side in `dir`, as a capture agent leaves them.
fn copy_scenario(dir: &Path, pcap_name: &str, form: &str) {
    fs::copy(testdata("scenarios/k8s/cluster.pcap"), dir.join(pcap_name)).unwrap_or_else(|e| panic!("{e}"));
    for f in fs::read_dir(testdata(&format!("scenarios/k8s/{form}")))
        .map(|r| r.flatten().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        fs::copy(f.path(), dir.join(f.file_name())).unwrap_or_else(|e| panic!("{e}"));
    }
}

fn kfl(snap: &Path, filter: &str) -> Vec<String> {
    let o =
        trawl(&["query", snap.to_str().unwrap_or_default(), "--kfl", filter, "--format", "ndjson", "--limit", "100"]);
    assert!(o.status.success(), "{filter}: {}", stderr(&o));
    let mut out: Vec<(String, String)> = stdout(&o)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_default();
            (
                v["timestamp"].as_str().unwrap_or_default().to_string(),
                format!("{} {}", v["method"].as_str().unwrap_or("?"), v["path"].as_str().unwrap_or("?")),
            )
        })
        .collect();
    out.sort();
    out.into_iter().map(|(_, c)| c).collect()
}

#[test]
fn every_call_and_flow_is_attributed_at_its_time_in_both_sidecar_forms() {
    let dir = scratch("k8s-forms");
    let pcap = testdata("scenarios/k8s/cluster.pcap");
    for form in ["kubectl", "timeline"] {
        let snap = dir.join(format!("{form}.snap"));
        let o = analyze(&snap, &[&pcap, "--k8s", &testdata(&format!("scenarios/k8s/{form}")), "--node", "node-1"]);
        // Over time: the Job pod and the ledger pod are two of the 8 pods.
        assert!(stdout(&o).contains("8 pods, 7 services, 1 node over time; "), "{}", stdout(&o));
        assert!(!stderr(&o).contains("warning"), "{form}: {}", stderr(&o));
        check_attribution(&snap);
        // The sidecars travel inside the snapshot.
        assert!(snap.join("k8s").join(form).is_dir());
    }

    let snap = dir.join("timeline.snap");
    let s = |f: &str| kfl(&snap, f);
    // Cross-namespace calls: an absent service reads as "" (KFL's default).
    assert_eq!(
        s("src.service.namespace != dst.service.namespace"),
        [
            "POST /charge",
            "GET /api/orders/export",
            "GET /healthz",
            "QUERY api.partner.example",
            "QUERY api.partner.example",
            "GET /v1/fx"
        ]
    );
    assert_eq!(s(r#"http && map_get(local_labels, "app", "") == "payments""#), ["GET /v1/fx"]);
    assert_eq!(s(r#"dns && "api.partner.example" in dns_questions && dst.service.name == "kube-dns""#).len(), 2);
    // One address, two pods, each at its time.
    assert_eq!(s(r#"src.ip == "10.244.3.30""#), ["GET /api/orders/export", "GET /ledger/balance"]);
    assert_eq!(s(r#"src.pod.name == "report-29385120-7xk2p""#), ["GET /api/orders/export"]);
    assert_eq!(s(r#"src.workload == "Deployment/ledger" && src.namespace == "payments""#), ["GET /ledger/balance"]);
    assert_eq!(s(r#""monitoring" in namespaces"#), ["GET /metrics"]);
    assert_eq!(s(r#"src.name == "prometheus-0" && dst.name == "node-exporter-x7k9d""#), ["GET /metrics"]);
    assert_eq!(s(r#"dst.service.name == "payments""#), ["POST /charge", "GET /ledger/balance"]);
    assert_eq!(s(r#"dst.pod.name == "payments""#), ["POST /charge"], "a pod field falls back to the service");
    assert_eq!(
        s(r#"dst.dns == "api.partner.example" && "edge.partner-cdn.example" in dns_resolutions"#),
        ["GET /v1/fx"]
    );
    assert_eq!(s(r#"dst.namespace == "public""#), ["GET /v1/fx"]);
    assert_eq!(s(r#"remote_resolution_status != """#), ["GET /v1/fx"]);
    // Every pod runs on node-1; the service and the partner have no node.
    assert_eq!(s(r#"node_name == "node-1" && local_node_name == remote_node_name"#).len(), 7);
    assert_eq!(s(r#""checkout-5b8d4f7c6-q9w2e" in pods && "shop" in namespaces"#).len(), 6);
}

/// The scenario again, live: the same servers and clients recorded now
/// (new times, new sidecars) must be attributed the same way. Needs root
/// and network namespaces (`unshare -n`), tcpdump, curl and python3; where
/// they are missing the test says so and checks the recording above only.
#[test]
fn a_fresh_recording_of_the_scenario_is_attributed_the_same() {
    if !super::can_record(&["tcpdump", "curl", "python3", "ip"]) {
        eprintln!("skipped: recording the scenario needs root, unshare -n, tcpdump, curl, python3 and iproute2");
        return;
    }
    let dir = scratch("k8s-live");
    let rec = dir.join("rec");
    let o = std::process::Command::new(testdata("scenarios/make_k8s_cluster.sh"))
        .arg(&rec)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(o.status.success(), "recording failed: {}", stderr(&o));
    for form in ["kubectl", "timeline"] {
        let snap = dir.join(format!("{form}.snap"));
        let pcap = rec.join("cluster.pcap");
        analyze(
            &snap,
            &[
                pcap.to_str().unwrap_or_default(),
                "--k8s",
                rec.join(form).to_str().unwrap_or_default(),
                "--node",
                "node-1",
            ],
        );
        check_attribution(&snap);
    }
}

#[test]
fn sidecars_next_to_the_capture_are_found_and_listed_over_time() {
    let dir = scratch("k8s-near");
    let d = dir.join("incident");
    fs::create_dir_all(&d).ok();
    copy_scenario(&d, "cluster.pcap", "timeline");
    let snap = dir.join("near.snap");
    analyze(&snap, &[d.join("cluster.pcap").to_str().unwrap_or_default()]);
    let calls = rows(&snap, "api_calls", &["path"], "timestamp");
    assert_eq!(calls[3].1[0].as_deref(), Some("report-29385120-7xk2p"));
    assert_eq!(calls[9].1[0].as_deref(), Some("ledger-7c6b5d9f8-m4n8r"));

    // trawl ips: the address and its two holders, in time order.
    let o = trawl(&["ips", snap.to_str().unwrap_or_default(), "--ip", "10.244.3.30", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap_or_default();
    let holders: Vec<(&str, &str)> = v["records"]
        .as_array()
        .map(|r| r.iter().map(|h| (h["name"].as_str().unwrap_or(""), h["workload"].as_str().unwrap_or(""))).collect())
        .unwrap_or_default();
    assert_eq!(holders, [("report-29385120-7xk2p", "CronJob/report"), ("ledger-7c6b5d9f8-m4n8r", "Deployment/ledger")]);
    let (until, from) =
        (v["records"][0]["until_ts"].as_i64().unwrap_or(0), v["records"][1]["from_ts"].as_i64().unwrap_or(0));
    assert!(until > 0 && until < from, "the Job pod left before the ledger pod came: {v}");

    // trawl workloads at a time: the pods of payments then.
    let at = |t: i64| {
        let o = trawl(&[
            "workloads",
            snap.to_str().unwrap_or_default(),
            "--at",
            &t.to_string(),
            "-n",
            "payments",
            "-n",
            "batch",
            "--kind",
            "pod",
            "--json",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap_or_default()["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(at(until - 1), ["report-29385120-7xk2p", "payments-0"]);
    assert_eq!(at(from + 1), ["ledger-7c6b5d9f8-m4n8r", "payments-0"]);
}

/// The CI recipe (docs/ci.md): a folder of captures with kubectl Lists
/// next to them is an archive; a snapshot cut from it carries the Lists
/// and its index names every call.
#[test]
fn an_archive_snapshot_carries_its_lists_and_names_calls_when_indexed() {
    let dir = scratch("k8s-archive");
    let cap = dir.join("capture");
    fs::create_dir_all(&cap).ok();
    copy_scenario(&cap, "test-1.pcap", "kubectl");
    let snap = dir.join("t.snap");
    let o = trawl(&[
        "snapshot",
        "create",
        cap.to_str().unwrap_or_default(),
        "--index",
        "-o",
        snap.to_str().unwrap_or_default(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("2 sidecar(s)"), "{}", stdout(&o));
    let calls = rows(&snap, "api_calls", &["method", "path"], "timestamp");
    let want = expected_calls();
    assert_eq!(calls.len(), want.len());
    for ((_, got), (m, p, w)) in calls.iter().zip(&want) {
        assert_eq!(got, &owned(w), "{m} {p}");
    }
    // The capture node is the archive's node: the folder's name.
    for b in read_table(&snap.join("flows.parquet")) {
        assert!(strings(&b, "node_name").iter().all(|n| n.as_deref() == Some("capture")));
    }
    // Four HTTP calls and the two DNS lookups (payments to kube-system).
    assert_eq!(kfl(&snap, "src.service.namespace != dst.service.namespace").len(), 6);
}

#[test]
fn bad_or_missing_sidecars_are_reported_and_analysis_goes_on() {
    let dir = scratch("k8s-bad");
    let bad = dir.join("pods.json");
    fs::write(
        &bad,
        r#"{"apiVersion":"v1","kind":"List","items":[{"kind":"Pod","metadata":{"name":"x","namespace":"shop"},"status":{"podIP":"10.244.1.999"}}]}"#,
    )
    .ok();
    let snap = dir.join("bad.snap");
    let pcap = testdata("scenarios/k8s/cluster.pcap");
    let o = analyze(&snap, &[&pcap, "--k8s", bad.to_str().unwrap_or_default()]);
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "{}: $.items[0].status.podIP: `10.244.1.999` is not an IP address (skipped)",
            bad.display()
        )),
        "{err}"
    );
    assert!(err.contains("names no address of this capture"), "{err}");
    let m: serde_json::Value =
        serde_json::from_slice(&fs::read(snap.join("manifest.json")).unwrap_or_default()).unwrap_or_default();
    assert_eq!(m["kubernetes"]["sidecars"][0]["problems"].as_array().map(Vec::len), Some(1));
    // Nothing named, nothing lost: every call is there, unresolved (the
    // metadata exists, but its one pod lost its only address).
    let calls = rows(&snap, "api_calls", &["path"], "timestamp");
    assert_eq!(calls.len(), 11);
    assert!(calls.iter().all(|(_, s)| s[4].as_deref() == Some("not_found")));

    // A missing --k8s file is a one-line error naming it.
    let o = trawl(&[
        "analyze",
        &pcap,
        "-o",
        dir.join("x.snap").to_str().unwrap_or_default(),
        "--k8s",
        "/nonexistent/k8s.json",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--k8s /nonexistent/k8s.json"), "{}", stderr(&o));

    // workloads / ips: a path without sidecars, a bad option value.
    let none = dir.join("none.snap");
    for (args, says) in [
        (vec!["workloads", "/nonexistent/snap"], "/nonexistent/snap: No such file"),
        (vec!["ips", snap.to_str().unwrap_or_default(), "--ip", "banana"], "--ip: expected an IPv4 or IPv6 address"),
        (vec!["workloads", snap.to_str().unwrap_or_default(), "--at", "yesterday"], "--at: expected an RFC 3339 time"),
    ] {
        let o = trawl(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says) && stderr(&o).lines().count() == 1, "{args:?}: {}", stderr(&o));
    }

    // Without sidecars: addresses only say internal or public.
    let snap = dir.join("none.snap");
    analyze(&snap, &[&pcap, "--no-k8s-discovery"]);
    let calls = rows(&snap, "api_calls", &["path"], "timestamp");
    assert!(calls.iter().all(|(_, s)| s[4].as_deref() == Some("no_metadata")));
    let ns: BTreeMap<String, usize> = calls.iter().fold(BTreeMap::new(), |mut m, (_, s)| {
        *m.entry(s[6].clone().unwrap_or_default()).or_default() += 1;
        m
    });
    assert_eq!(ns, BTreeMap::from([("internal".to_string(), 10), ("public".to_string(), 1)]));
    let o = trawl(&["workloads", none.to_str().unwrap_or_default()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("holds no Kubernetes sidecars"), "{}", stderr(&o));
}

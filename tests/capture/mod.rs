//! `trawl capture` against tcpdump on the same interface: real HTTP
//! traffic (python3's http.server and curl) across a veth pair between
//! two private network namespaces (testdata/scenarios/capture_veth.sh).
//! trawl's archive must hold the same packets as tcpdump's file.
//!
//! One file: the capture tests share one harness (network namespaces,
//! tcpdump beside trawl) and run in the crate's one integration-test
//! binary.

use std::path::Path;
use std::process::Command;

use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::{Block, PcapNgReader};
use sha2::Digest;

use super::{can_record, scratch, stderr, testdata};

/// The packets of a capture: each one's length on the wire and the
/// sha256 of its bytes.
fn packets(path: &Path) -> Vec<(u32, [u8; 32])> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    if path.extension().is_some_and(|x| x == "pcapng") {
        let mut r = PcapNgReader::new(file).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        while let Some(b) = r.next_block() {
            if let Block::EnhancedPacket(p) = b.unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
                out.push((p.original_len, sha2::Sha256::digest(&p.data).into()));
            }
        }
    } else {
        let mut r = PcapReader::new(file).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        while let Some(p) = r.next_packet() {
            let p = p.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.push((p.orig_len, sha2::Sha256::digest(&p.data).into()));
        }
    }
    out
}

/// Runs capture_veth.sh into a scratch folder (with `trawl capture`
/// arguments); the folder and trawl's console output, or None (said why)
/// where this machine cannot capture.
fn capture_veth(name: &str, args: &[&str]) -> Option<(std::path::PathBuf, String)> {
    capture_veth_filtered(name, args, "")
}

/// As `capture_veth`, tcpdump filtering with `tcpdump_filter`.
fn capture_veth_filtered(name: &str, args: &[&str], tcpdump_filter: &str) -> Option<(std::path::PathBuf, String)> {
    if !can_record(&["tcpdump", "ip", "curl", "python3", "sysctl"]) {
        eprintln!("skipping {name}: needs root, network namespaces, tcpdump, ip, curl, python3");
        return None;
    }
    let dir = scratch(name);
    let o = Command::new(testdata("scenarios/capture_veth.sh"))
        .arg(env!("CARGO_BIN_EXE_trawl"))
        .arg(&dir)
        .args(args)
        .env("TCPDUMP_FILTER", tcpdump_filter)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let log = std::fs::read_to_string(dir.join("trawl.log")).unwrap_or_default();
    if log.contains("BPF_PROG_LOAD")
        && (log.contains("Operation not permitted") || log.contains("Permission denied (os error 1)"))
    {
        eprintln!("skipping {name}: this kernel forbids loading BPF programs here: {log}");
        return None;
    }
    assert!(o.status.success(), "capture_veth.sh: {}\n{log}", stderr(&o));
    Some((dir, log))
}

#[test]
fn capture_holds_the_packets_tcpdump_sees() {
    let Some((dir, log)) = capture_veth("capture-veth", &[]) else { return };
    let files: Vec<_> = std::fs::read_dir(dir.join("archive/veth"))
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert_eq!(files.len(), 1, "one complete file and no temporary one left: {files:?}");
    assert!(files[0].extension().is_some_and(|x| x == "pcapng"), "{files:?}");
    let (mut ours, mut theirs) = (packets(&files[0]), packets(&dir.join("tcpdump.pcap")));
    assert!(theirs.len() > 100, "five 300 kB downloads: {} packets", theirs.len());
    let bytes = |p: &[(u32, [u8; 32])]| p.iter().map(|x| u64::from(x.0)).sum::<u64>();
    assert_eq!(
        (ours.len(), bytes(&ours)),
        (theirs.len(), bytes(&theirs)),
        "same packet count and bytes as tcpdump\n{log}"
    );
    // The same packets, byte for byte (the two taps may order the
    // directions differently within an instant).
    ours.sort();
    theirs.sort();
    assert!(ours == theirs, "the same packets as tcpdump, byte for byte");
    assert!(log.contains("dropped 0"), "{log}");
    // The archive is one trawl reads: its node, and the five downloads.
    let archive = dir.join("archive").display().to_string();
    let o = super::trawl(&["archive", "boundaries", &archive]);
    let out = super::stdout(&o);
    // One file, and its statistics block counts no drop.
    assert!(
        out.lines().any(|l| l.starts_with("veth ")
            && l.split_whitespace().nth(3) == Some("1")
            && l.split_whitespace().last() == Some("0")),
        "{out}"
    );
    let snap = dir.join("veth.snap").display().to_string();
    let o = super::trawl(&["analyze", &files[0].display().to_string(), "-o", &snap, "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = super::trawl(&["query", &snap, "--kfl", "http && path == \"/blob.bin\" && status_code == 200", "--count"]);
    assert_eq!(super::stdout(&o).trim(), "5");
}

#[test]
fn rotation_and_retention_leave_only_complete_files() {
    let list = testdata("scenarios/k8s/kubectl/k8s-1795345959328.json");
    let Some((dir, log)) =
        capture_veth("capture-rotation", &["--rotate-size", "200KB", "--keep", "700KB", "--k8s-from", &list])
    else {
        return;
    };
    let mut all: Vec<_> = std::fs::read_dir(dir.join("archive/veth"))
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    all.sort();
    let total: u64 = all.iter().map(|f| std::fs::metadata(f).map_or(0, |m| m.len())).sum();
    assert!(total <= 700_000, "retention keeps {total} bytes, the sidecar included, at most 700 kB");
    // The sidecar recorded at the start is the one in force for every kept
    // file: retention keeps it.
    let (sidecars, files): (Vec<_>, Vec<_>) = all.into_iter().partition(|f| f.extension().is_some_and(|x| x == "json"));
    assert_eq!(sidecars.len(), 1, "{sidecars:?}");
    assert!(
        files.len() >= 2 && files.iter().all(|f| f.extension().is_some_and(|x| x == "pcapng")),
        "rotated, no temporary file left: {files:?}"
    );
    assert!(
        log.contains("retention (--keep): deleted the ")
            && log.contains(" oldest capture files and 0 Kubernetes sidecars"),
        "{log}"
    );
    // Every file reads to its end (a rotated-away file was completed before
    // it was renamed), and every packet kept is one tcpdump saw.
    let theirs: std::collections::HashSet<(u32, [u8; 32])> = packets(&dir.join("tcpdump.pcap")).into_iter().collect();
    let mut kept = 0;
    for f in &files {
        let p = packets(f);
        assert!(!p.is_empty(), "{}", f.display());
        assert!(p.iter().all(|x| theirs.contains(x)), "{}", f.display());
        kept += p.len();
    }
    assert!(kept < theirs.len(), "the oldest files were deleted: {kept} of {} packets kept", theirs.len());
    let o =
        super::trawl(&["capture", "--iface", "lo", "--out", dir.to_str().unwrap_or_default(), "--rotate-size", "lots"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("expected a size such as 256MB or 1GiB, got `lots`"), "{}", stderr(&o));
}

/// The node's files of a capture_veth run, and all their packets.
fn archived(dir: &Path) -> (Vec<std::path::PathBuf>, Vec<(u32, [u8; 32])>) {
    archived_in(dir, "veth")
}

/// The files of one node of a run's archive, and all their packets.
fn archived_in(dir: &Path, node: &str) -> (Vec<std::path::PathBuf>, Vec<(u32, [u8; 32])>) {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("archive").join(node))
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    let all = files.iter().flat_map(|f| packets(f)).collect();
    (files, all)
}

/// The same packets as tcpdump's file (sorted: the two taps may order
/// the directions differently within an instant).
fn assert_same_packets(dir: &Path, log: &str, mut ours: Vec<(u32, [u8; 32])>) -> usize {
    let mut theirs = packets(&dir.join("tcpdump.pcap"));
    ours.sort();
    theirs.sort();
    assert_eq!(ours.len(), theirs.len(), "same packet count as tcpdump\n{log}");
    assert!(ours == theirs, "the same packets as tcpdump, byte for byte\n{log}");
    theirs.len()
}

/// The AF_PACKET backend (TPACKET_V3 ring) with a filter the kernel
/// applies: the same packets as tcpdump with the same filter; the UDP
/// datagrams and ICMP answers are turned away by both.
#[test]
fn af_packet_backend_with_a_filter_keeps_what_tcpdump_keeps() {
    let filter = "tcp port 8000";
    let Some((dir, log)) =
        capture_veth_filtered("capture-afpacket", &["--backend", "af-packet", "--bpf", filter], filter)
    else {
        return;
    };
    assert!(log.contains("capturing on") && log.contains("(backend: af_packet)"), "{log}");
    let (files, ours) = archived(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let n = assert_same_packets(&dir, &log, ours);
    assert!(n > 50, "five 300 kB downloads: {n} packets");
    assert!(log.contains("dropped 0"), "{log}");
}

/// The eBPF backend filters in user space: the same packets as tcpdump
/// with the filter, and the console counts what the filter turned away
/// (all the TCP of the downloads, and ARP).
#[test]
fn ebpf_backend_with_a_filter_keeps_what_tcpdump_keeps() {
    let filter = "udp or icmp";
    let Some((dir, log)) =
        capture_veth_filtered("capture-ebpf-filter", &["--backend", "ebpf", "--bpf", filter], filter)
    else {
        return;
    };
    assert!(log.contains("(backend: ebpf)"), "{log}");
    let (_, ours) = archived(&dir);
    let n = assert_same_packets(&dir, &log, ours);
    assert!(n >= 20, "the 20 datagrams (and ICMP answers): {n}");
    let filtered: u64 =
        log.split(" filtered out").next().and_then(|x| x.rsplit(' ').next()).and_then(|x| x.parse().ok()).unwrap_or(0);
    assert!(filtered > 100, "the downloads' TCP was filtered out: {log}");
}

/// Where eBPF is not allowed (root of a user namespace has no CAP_BPF),
/// trawl falls back to AF_PACKET by itself and says why; the archive
/// holds the packets dumpcap saw on the same interface.
#[test]
fn capture_falls_back_to_af_packet_where_ebpf_is_not_allowed() {
    if !can_record(&["unshare", "dumpcap", "ip", "python3", "sysctl"]) {
        eprintln!("skipping: needs root, user and network namespaces, dumpcap, ip, python3");
        return;
    }
    let dir = scratch("capture-userns");
    let o = Command::new(testdata("scenarios/capture_userns.sh"))
        .arg(env!("CARGO_BIN_EXE_trawl"))
        .arg(&dir)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let log = std::fs::read_to_string(dir.join("trawl.log")).unwrap_or_default();
    if stderr(&o).contains("unshare: ") {
        eprintln!("skipping: user namespaces are not allowed here: {}", stderr(&o));
        return;
    }
    assert!(o.status.success(), "capture_userns.sh: {}\n{log}", stderr(&o));
    assert!(log.contains("trawl: eBPF capture is not available here (eBPF: loading the capture program:"), "{log}");
    assert!(log.contains("Operation not permitted"), "the reason is the kernel's: {log}");
    assert!(log.contains("(backend: af_packet)"), "{log}");
    let files: Vec<_> = std::fs::read_dir(dir.join("archive/userns"))
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert_eq!(files.len(), 1, "{files:?}");
    let (mut ours, mut theirs) = (packets(&files[0]), packets(&dir.join("dumpcap.pcapng")));
    ours.sort();
    theirs.sort();
    assert_eq!(theirs.len(), 30, "dumpcap saw the 30 datagrams");
    assert!(ours == theirs, "the same 30 packets as dumpcap, byte for byte\n{log}");
    // 1..30 bytes of payload in 42-byte Ethernet/IPv4/UDP frames, padded
    // to the 60-byte minimum on the wire only where the NIC pads: veth
    // does not, so the lengths are 43..72.
    let lens: Vec<u32> = {
        let mut l: Vec<u32> = ours.iter().map(|p| p.0).collect();
        l.sort();
        l
    };
    assert_eq!(lens, (43..=72).collect::<Vec<u32>>());
}

/// The watcher against the API server stand-in serving the recorded
/// scenario cluster (no API server runs here; docs/capture.md): it lists
/// the six kinds, watches from the lists' resourceVersion, takes the
/// recorded changes, is told 410 Gone and lists again; the timeline
/// sidecar holds a snapshot then exactly the two changes (the re-list
/// changed nothing), and trawl's own loader reads it: the Job pod until
/// its deletion, then the new pod on the same address.
#[test]
fn kubeconfig_watch_writes_the_timeline_sidecar() {
    if !can_record(&["python3", "ip"]) {
        eprintln!("skipping: needs root, network namespaces, python3, ip");
        return;
    }
    let dir = scratch("capture-k8s-watch");
    let o = Command::new(testdata("scenarios/capture_k8s_watch.sh"))
        .arg(env!("CARGO_BIN_EXE_trawl"))
        .arg(&dir)
        .arg("4")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let log = std::fs::read_to_string(dir.join("trawl.log")).unwrap_or_default();
    if log.contains("BPF_PROG_LOAD") && log.contains("Operation not permitted") {
        eprintln!("skipping: this kernel forbids BPF here: {log}");
        return;
    }
    assert!(o.status.success(), "{}\n{log}", stderr(&o));
    assert!(log.contains("kubernetes: 24 objects, 2 changes recorded into"), "{log}");
    let api = std::fs::read_to_string(dir.join("api.log")).unwrap_or_default();
    let pods: Vec<&str> = api.lines().filter(|l| l.starts_with("GET /api/v1/pods?")).collect();
    assert_eq!(pods.len(), 4, "list, watch, 410 Gone, list again, watch: {api}");
    assert!(pods[1].contains("watch=true") && pods[1].contains("resourceVersion=100"), "{api}");
    assert!(pods[3].contains("resourceVersion=200"), "{api}");
    for path in [
        "/api/v1/services?",
        "/api/v1/nodes?",
        "/apis/discovery.k8s.io/v1/endpointslices?",
        "/apis/apps/v1/replicasets?",
        "/apis/batch/v1/jobs?",
    ] {
        assert_eq!(api.lines().filter(|l| l.contains(path)).count(), 2, "{path}: a list and a watch\n{api}");
    }
    let node = dir.join("archive/kube");
    let sidecars: Vec<_> = std::fs::read_dir(&node)
        .map(|r| r.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "jsonl")).collect())
        .unwrap_or_default();
    assert_eq!(sidecars.len(), 1, "one complete timeline, no temporary file: {sidecars:?}");
    let text = std::fs::read_to_string(&sidecars[0]).unwrap_or_default();
    let recs: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    let types: Vec<&str> = recs.iter().map(|r| r["type"].as_str().unwrap_or_default()).collect();
    assert_eq!(types, ["snapshot", "DELETED", "ADDED"]);
    // The recorded cluster: 7 pods, 7 services, 7 slices, 1 node, 1
    // replica set, 1 job (its Namespace is not watched).
    assert_eq!(recs[0]["objects"].as_array().map(Vec::len), Some(24));
    assert_eq!(recs[1]["object"]["metadata"]["name"], "report-29385120-7xk2p");
    assert_eq!(recs[2]["object"]["metadata"]["name"], "ledger-7c6b5d9f8-m4n8r");
    let o = super::trawl(&["workloads", &dir.join("archive").display().to_string(), "--kind", "pod", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = super::stdout(&o);
    let rows: Vec<serde_json::Value> = out.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let named = |n: &str| rows.iter().find(|r| r["name"] == n).cloned().unwrap_or_default();
    let (report, ledger) = (named("report-29385120-7xk2p"), named("ledger-7c6b5d9f8-m4n8r"));
    assert_eq!(
        (report["ips"][0]["ip"].as_str(), ledger["ips"][0]["ip"].as_str()),
        (Some("10.244.3.30"), Some("10.244.3.30")),
        "{out}"
    );
    // The Job pod holds the address until the watcher saw it deleted;
    // the new pod from when it was seen added, a moment later.
    let (until, from) = (report["until_ts"].as_i64().unwrap_or(0), ledger["from_ts"].as_i64().unwrap_or(0));
    assert!(until > 0 && from >= until && from - until < 2000, "{report} {ledger}");
}

/// `--k8s-from` records a kubectl List next to the captures; what is not
/// a List is refused at once with a one-line error naming the flag.
#[test]
fn k8s_from_records_a_kubectl_list() {
    let dir = scratch("capture-k8s-from");
    let list = testdata("scenarios/k8s/kubectl/k8s-1795345959328.json");
    let bad = testdata("scenarios/k8s/timeline/k8s-1795345959328.jsonl");
    let o = super::trawl(&[
        "capture",
        "--iface",
        "lo",
        "--out",
        &dir.display().to_string(),
        "--k8s-from",
        &bad,
        "--duration",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--k8s-from") && stderr(&o).contains("not JSON"), "{}", stderr(&o));
    if !can_record(&[]) {
        return;
    }
    let o = super::trawl(&[
        "capture",
        "--iface",
        "lo",
        "--out",
        &dir.display().to_string(),
        "--node",
        "n",
        "--k8s-from",
        &list,
        "--duration",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let copies: Vec<_> = std::fs::read_dir(dir.join("n"))
        .map(|r| r.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "json")).collect())
        .unwrap_or_default();
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert_eq!(std::fs::read(&copies[0]).ok(), std::fs::read(&list).ok(), "the List, byte for byte");
}

#[test]
fn a_bad_kubeconfig_stops_the_capture_before_it_starts() {
    let dir = scratch("capture-bad-kubeconfig");
    let kc = dir.join("kubeconfig");
    std::fs::write(&kc, "this: [is not a kubeconfig").unwrap_or_else(|e| panic!("{e}"));
    let o = super::trawl(&[
        "capture",
        "--iface",
        "lo",
        "--out",
        &dir.display().to_string(),
        "--kubeconfig",
        &kc.display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with(&format!("trawl: --kubeconfig {}:", kc.display())) && stderr(&o).lines().count() == 1,
        "{}",
        stderr(&o)
    );
}

/// The DaemonSet runs `trawl capture` with flags trawl accepts (run here
/// on lo in a private network namespace, for a second), and the Helm
/// chart passes the same flags.
#[test]
fn the_daemonset_command_line_is_one_trawl_runs() {
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/daemonset.yaml"))
        .unwrap_or_default();
    let chart = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/helm/trawl/templates/daemonset.yaml"),
    )
    .unwrap_or_default();
    let args: Vec<String> = manifest
        .lines()
        .skip_while(|l| l.trim() != "args:")
        .skip(1)
        .map_while(|l| l.trim().strip_prefix("- ").map(str::to_string))
        .collect();
    assert_eq!(args.first().map(String::as_str), Some("capture"), "{args:?}");
    for a in &args[1..] {
        let flag = a.split('=').next().unwrap_or_default();
        let with_value = if a.contains('=') { format!("- {flag}=") } else { format!("- {flag}") };
        assert!(chart.contains(&with_value), "the chart lacks {flag}");
    }
    for cap in ["BPF", "NET_ADMIN", "PERFMON"] {
        assert!(manifest.contains(&format!("\"{cap}\"")) && chart.contains(&format!("- {cap}")), "{cap}");
    }
    assert!(manifest.contains("hostNetwork: true") && manifest.contains("hostPath:"));
    if !can_record(&["ip"]) {
        eprintln!("skipping the run: needs root and network namespaces");
        return;
    }
    let dir = scratch("capture-daemonset");
    let line: Vec<String> = args
        .iter()
        .map(|a| match a.split_once('=') {
            Some(("--iface", _)) => "--iface=lo".to_string(),
            Some(("--out", _)) => format!("--out={}", dir.display()),
            Some(("--index-to", _)) => format!("--index-to={}", dir.join("dataset").display()),
            _ => a.replace("$(NODE_NAME)", "node-1"),
        })
        .collect();
    let o = Command::new("unshare")
        .args(["-n", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\" --duration 1", env!("CARGO_BIN_EXE_trawl")])
        .args(&line)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(o.status.success(), "{line:?}: {}", stderr(&o));
    assert!(stderr(&o).contains("capturing on lo"), "{}", stderr(&o));
    if args.iter().any(|a| a.starts_with("--index-to=")) {
        assert!(dir.join("dataset/_trawl").is_dir() && dir.join("dataset/api_calls/_delta_log").is_dir());
    }
}

/// A capture file that says its tool dropped packets (dumpcap's
/// statistics block: 75,613 dropped, as its console said when it was
/// recorded, testdata/README.md) is analysed as usual; `trawl analyze`
/// counts the loss, per file and in total, and warns that TCP gaps may be
/// capture loss. A file whose tool dropped nothing counts 0 without a
/// warning; a pcap file, which cannot say, carries no count.
#[test]
fn analyze_reports_the_drops_a_capture_file_records() {
    let dir = scratch("analyze-capture-drops");
    let run = |input: &str, name: &str| {
        let snap = dir.join(name).display().to_string();
        let o = super::trawl(&["analyze", &testdata(input), "-o", &snap, "--json", "--force"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_str(&super::stdout(&o)).unwrap_or_else(|e| panic!("{e}"));
        (v["manifest"].clone(), stderr(&o))
    };
    let (m, err) = run("scenarios/dumpcap-drops.pcapng", "drops.snap");
    assert_eq!(m["inputs"][0]["capture_dropped"], 75613, "{m}");
    assert_eq!((m["counters"]["capture_dropped"].as_u64(), m["counters"]["frames"].as_u64()), (Some(75613), Some(200)));
    assert!(
        err.contains("dumpcap-drops.pcapng: the capturing tool dropped 75613 packets")
            && err.contains("capture loss, not network loss"),
        "{err}"
    );
    let (m, err) = run("scenarios/dumpcap-statistics.pcapng", "none.snap");
    assert_eq!(
        (m["inputs"][0]["capture_dropped"].as_u64(), m["counters"]["capture_dropped"].as_u64()),
        (Some(0), Some(0))
    );
    assert!(!err.contains("dropped"), "{err}");
    let (m, _) = run("corpus/zeek_http_methods.pcap", "pcap.snap");
    assert!(m["inputs"][0].get("capture_dropped").is_none(), "{m}");
}

/// A capture that falls behind drops what its buffer cannot hold, and
/// counts every drop: trawl is stopped while 60,000 datagrams of 1,400
/// bytes cross the interface (more than its 64 MiB buffer holds), then
/// resumes. Each datagram is in the files or counted as dropped, on the
/// console, in the files' statistics blocks, in the archive's boundaries
/// and in the analysis: for both backends.
#[test]
fn a_stalled_capture_counts_every_packet_it_drops() {
    if !can_record(&["ip", "python3", "sysctl"]) {
        eprintln!("skipping: needs root, network namespaces, ip, python3");
        return;
    }
    for backend in ["ebpf", "af-packet"] {
        let dir = scratch(&format!("capture-stalled-{backend}"));
        let o = Command::new(testdata("scenarios/capture_stalled.sh"))
            .args([env!("CARGO_BIN_EXE_trawl"), &dir.display().to_string(), "60000", "--backend", backend])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let log = std::fs::read_to_string(dir.join("trawl.log")).unwrap_or_default();
        if backend == "ebpf" && log.contains("BPF_PROG_LOAD") {
            eprintln!("skipping the eBPF backend: this kernel forbids loading BPF programs here: {log}");
            continue;
        }
        assert!(o.status.success(), "capture_stalled.sh: {}\n{log}", stderr(&o));
        assert_eq!(super::stdout(&o).trim(), "sent 60000");
        let said = |before: &str, after: &str| -> u64 {
            log.split(before)
                .nth(1)
                .and_then(|r| r.split(after).next())
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or_else(|| panic!("{before}: {log}"))
        };
        let (captured, seen, dropped) =
            (said("captured ", " packets"), said("kernel saw ", ","), said("dropped ", ")"));
        assert!(
            dropped > 5_000 && captured > 20_000,
            "{backend}: the buffer overflowed, and held what it could\n{log}"
        );
        assert_eq!(
            (seen, captured + dropped),
            (60_000, 60_000),
            "{backend}: every datagram is captured or counted as dropped\n{log}"
        );
        let (files, packets) = archived_in(&dir, "stalled");
        assert_eq!(packets.len() as u64, captured, "{backend}: {files:?}");
        assert!(packets.iter().all(|p| p.0 == 1442), "{backend}: only the datagrams");
        // The archive's boundaries and the analysis read the drops from
        // the files' statistics blocks.
        let o = super::trawl(&["archive", "boundaries", &dir.join("archive").display().to_string(), "--json"]);
        let b: serde_json::Value =
            serde_json::from_str(&super::stdout(&o)).unwrap_or_else(|e| panic!("{e}: {}", stderr(&o)));
        assert_eq!(b["nodes"][0]["dropped"].as_u64(), Some(dropped), "{b}");
        let snap = dir.join("s.snap").display().to_string();
        let o = super::trawl(&["analyze", &files[0].display().to_string(), "-o", &snap, "--json"]);
        let v: serde_json::Value =
            serde_json::from_str(&super::stdout(&o)).unwrap_or_else(|e| panic!("{e}: {}", stderr(&o)));
        assert_eq!(v["manifest"]["counters"]["capture_dropped"].as_u64(), Some(dropped), "{backend}");
        assert!(stderr(&o).contains(&format!("the capturing tool dropped {dropped} packets")), "{}", stderr(&o));
    }
}

/// A raw-IP interface (a tun device, as WireGuard and IP tunnels are) has
/// no link header: its packets start at the IP header, and the files say
/// so (LINKTYPE_RAW), for both backends, with the same packets as tcpdump
/// (which writes raw IP too). A filter is compiled for raw IP. The
/// analysis reads the datagrams and pings.
#[test]
fn a_raw_ip_interface_is_captured_as_raw_ip() {
    if !can_record(&["tcpdump", "ip", "python3", "sysctl"]) {
        eprintln!("skipping: needs root, network namespaces, /dev/net/tun, tcpdump, ip, python3");
        return;
    }
    for (backend, filter, want) in [("ebpf", "", 46), ("af-packet", "icmp", 6), ("ebpf", "udp", 40)] {
        let dir = scratch(&format!("capture-tun-{backend}-{filter}"));
        let mut args = vec![
            env!("CARGO_BIN_EXE_trawl").to_string(),
            dir.display().to_string(),
            "--backend".into(),
            backend.into(),
        ];
        if !filter.is_empty() {
            args.extend(["--bpf".into(), filter.into()]);
        }
        let o = Command::new(testdata("scenarios/capture_tun.sh"))
            .args(&args)
            .env("TCPDUMP_FILTER", filter)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let log = std::fs::read_to_string(dir.join("trawl.log")).unwrap_or_default();
        if backend == "ebpf" && log.contains("BPF_PROG_LOAD") {
            eprintln!("skipping the eBPF backend: this kernel forbids loading BPF programs here: {log}");
            continue;
        }
        assert!(o.status.success(), "capture_tun.sh: {}\n{log}", stderr(&o));
        let (files, mut ours) = archived_in(&dir, "tun");
        assert_eq!(files.len(), 1, "{files:?}");
        let mut links = Vec::new();
        let file = std::fs::File::open(&files[0]).unwrap_or_else(|e| panic!("{e}"));
        let mut r = PcapNgReader::new(file).unwrap_or_else(|e| panic!("{e}"));
        while let Some(Ok(b)) = r.next_block() {
            if let Block::InterfaceDescription(i) = b {
                links.push(u32::from(i.linktype));
            }
        }
        assert_eq!(links, [101], "{backend}: one raw-IP interface");
        let mut theirs = packets(&dir.join("tcpdump.pcap"));
        assert_eq!(theirs.len(), want, "{backend} {filter}: tcpdump");
        ours.sort();
        theirs.sort();
        assert!(ours == theirs, "{backend} {filter}: the same packets as tcpdump, byte for byte\n{log}");
        if filter.is_empty() {
            let snap = dir.join("tun.snap").display().to_string();
            let o = super::trawl(&["analyze", &files[0].display().to_string(), "-o", &snap, "--json"]);
            let v: serde_json::Value =
                serde_json::from_str(&super::stdout(&o)).unwrap_or_else(|e| panic!("{e}: {}", stderr(&o)));
            let c = &v["manifest"]["counters"];
            assert_eq!(
                (c["udp_packets"].as_u64(), c["icmp_packets"].as_u64(), c["malformed_frames"].as_u64()),
                (Some(40), Some(6), Some(0)),
                "{c}"
            );
            // Export's --bpf compiles for raw IP too (libpcap calls it DLT_RAW).
            let out = dir.join("pings.pcapng");
            let o = super::trawl(&["export-pcap", &snap, "--bpf", "icmp", "-o", &out.display().to_string()]);
            assert!(o.status.success(), "{}", stderr(&o));
            assert_eq!(packets(&out).len(), 6);
        }
    }
}

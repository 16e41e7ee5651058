//! Archives, snapshots and exports against tshark and tcpdump.
//!
//! The expected packets are in testdata/golden/archive_vs_tshark.tsv, made
//! by make_archive_vs_tshark.py from tshark 4.0 (`frame.time` windows,
//! `tcp.stream in {...}`) and tcpdump (BPF): a count and a sha256 over
//! (capture time, captured bytes) of every packet, in order.
//!
//! One file: the crate's one integration-test binary, whose tests share the
//! archive fixtures built once.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use trawl_analyze::input::{CaptureReader, ReadProgress};
use trawl_snapshot::archive::Archive;
use trawl_snapshot::create::{CutSpec, create, index, read_meta};
use trawl_snapshot::export::{ExportSpec, export};
use trawl_snapshot::window::{Window, parse_time};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn corpus(name: &str) -> PathBuf {
    root().join("testdata/corpus").join(name)
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("trawl-snapshot-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{e}"));
    d
}

/// (case, node, file) -> (packets, sha256).
fn golden() -> Vec<(String, String, String, u64, String)> {
    let text =
        std::fs::read_to_string(root().join("testdata/golden/archive_vs_tshark.tsv")).unwrap_or_else(|e| panic!("{e}"));
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_string(), f[1].to_string(), f[2].to_string(), f[4].parse().unwrap_or(u64::MAX), f[5].to_string())
        })
        .collect()
}

/// Count and digest of a capture's packets, as the golden file has them.
fn digest(path: &Path) -> (u64, String) {
    let mut r = CaptureReader::open(path, Arc::new(ReadProgress::default()), 1 << 20).unwrap_or_else(|e| panic!("{e}"));
    let mut h = Sha256::new();
    let mut n = 0;
    while let Some(c) = r.next_chunk() {
        for f in &c.frames {
            h.update(f.ts_ns.to_le_bytes());
            h.update(&c.data[f.start as usize..(f.start + f.len) as usize]);
            n += 1;
        }
    }
    assert!(r.finish().damage.is_none(), "{} is damaged", path.display());
    (n, trawl_analyze::input::hex(&h.finalize()))
}

/// Writes a pcap's records into files of `per` records, as `tcpdump -C`
/// or `editcap -c` would rotate them.
fn rotate_pcap(src: &Path, dir: &Path, per: usize) {
    let data = std::fs::read(src).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(&data[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "little-endian µs pcap expected");
    let (head, mut pos) = (&data[..24], 24);
    let mut part = 0;
    while pos < data.len() {
        let mut out = head.to_vec();
        for _ in 0..per {
            if pos + 16 > data.len() {
                break;
            }
            let incl = u32::from_le_bytes([data[pos + 8], data[pos + 9], data[pos + 10], data[pos + 11]]) as usize;
            out.extend_from_slice(&data[pos..pos + 16 + incl]);
            pos += 16 + incl;
        }
        std::fs::write(dir.join(format!("cap.pcap{part}")), out).unwrap_or_else(|e| panic!("{e}"));
        part += 1;
    }
}

/// node-a: zeek_http_methods.pcap rotated into 200-packet files;
/// node-b: sanders_http_espn.pcapng.
fn two_node_archive(dir: &Path) -> PathBuf {
    let a = dir.join("archive");
    std::fs::create_dir_all(a.join("node-a")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(a.join("node-b")).unwrap_or_else(|e| panic!("{e}"));
    rotate_pcap(&corpus("zeek_http_methods.pcap"), &a.join("node-a"), 200);
    std::fs::copy(corpus("sanders_http_espn.pcapng"), a.join("node-b/espn.pcapng")).unwrap_or_else(|e| panic!("{e}"));
    a
}

#[test]
fn boundaries_read_first_and_last_packets_and_are_cached() {
    let dir = scratch("bounds");
    let a = two_node_archive(&dir);
    let arch = Archive::open(&a).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(arch.cached_files, 0);
    let b = arch.boundaries();
    let names: Vec<&str> = b.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["node-a", "node-b"]);
    // capinfos -a -e: zeek_http_methods 02:27:50.172701 .. 02:28:52.816670,
    // sanders_http_espn 17:29:29.782934 .. 17:29:31.830416.
    assert_eq!(b.nodes[0].oldest.as_deref(), Some("2012-12-01T02:27:50.172701000Z"));
    assert_eq!(b.nodes[0].newest.as_deref(), Some("2012-12-01T02:28:52.816670000Z"));
    assert_eq!(b.nodes[0].files, 4);
    assert_eq!(b.nodes[1].oldest.as_deref(), Some("2010-04-07T17:29:29.782934000Z"));
    assert_eq!(b.nodes[1].newest.as_deref(), Some("2010-04-07T17:29:31.830416000Z"));
    assert_eq!(b.oldest, b.nodes[1].oldest);
    assert_eq!(b.newest, b.nodes[0].newest);
    // The files' ends were found without a scan, and agree with one.
    for n in &arch.nodes {
        for f in &n.files {
            let p = a.join(&f.rel);
            let mut r =
                CaptureReader::open(&p, Arc::new(ReadProgress::default()), 1 << 20).unwrap_or_else(|e| panic!("{e}"));
            while r.next_chunk().is_some() {}
            let info = r.finish();
            assert_eq!((f.first_ns, f.last_ns), (info.first_ts_ns, info.last_ts_ns), "{}", f.rel);
        }
    }
    let again = Archive::open(&a).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.cached_files, 5);
    assert_eq!(again.boundaries().newest, b.newest);
    // A file still being written (cut mid-record) is read up to its last
    // whole record and reported; a `.tmp` file is not read at all.
    let last = a.join("node-a/cap.pcap3");
    let bytes = std::fs::read(&last).unwrap_or_default();
    std::fs::write(&last, &bytes[..bytes.len() - 7]).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(a.join("node-a/cap.pcap4.tmp"), b"half").unwrap_or_else(|e| panic!("{e}"));
    let cut = Archive::open(&a).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cut.cached_files, 4, "the changed file is read again");
    let nb = &cut.boundaries().nodes[0];
    assert_eq!(nb.damaged_files, ["node-a/cap.pcap3"]);
    assert_eq!(nb.files, 4);
    // tshark: frame 654 of zeek_http_methods.pcap is at 02:28:52.796782.
    assert_eq!(nb.newest.as_deref(), Some("2012-12-01T02:28:52.796782000Z"));
    // A file that is no capture at all is listed as unreadable, not fatal;
    // cuts skip it.
    std::fs::write(a.join("node-b/notes.pcap"), b"these are notes, not packets").unwrap_or_else(|e| panic!("{e}"));
    let odd = Archive::open(&a).unwrap_or_else(|e| panic!("{e}"));
    let nb = &odd.boundaries().nodes[1];
    assert_eq!(nb.unreadable_files.len(), 1);
    assert!(nb.unreadable_files[0].contains("notes.pcap: not a capture file"), "{:?}", nb.unreadable_files);
    assert_eq!(nb.newest.as_deref(), Some("2010-04-07T17:29:31.830416000Z"));
    let snap = dir.join("odd.snap");
    let meta = create(
        &odd,
        &CutSpec {
            window: Window::everything(),
            nodes: vec!["node-b".into()],
            namespaces: Vec::new(),
            pod_regex: None,
        },
        &snap,
        &Default::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(meta.nodes[0].packets, 956);
    // A plain folder of rotated captures is a one-node archive named after it.
    let plain = Archive::open(&a.join("node-a")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plain.nodes.len(), 1);
    assert_eq!(plain.nodes[0].name, "node-a");
    assert_eq!(plain.nodes[0].files.len(), 4);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn snapshot_windows_hold_exactly_the_packets_tshark_selects() {
    let dir = scratch("windows");
    let a = two_node_archive(&dir);
    let arch = Archive::open(&a).unwrap_or_else(|e| panic!("{e}"));
    let rows = golden();
    let mut checked = 0;
    for case in ["window-a", "window-b"] {
        let (name, ..) = rows.iter().find(|r| r.0.starts_with(case)).unwrap_or_else(|| panic!("{case} missing"));
        let (start, end) =
            name.split_once(':').and_then(|(_, w)| w.split_once('/')).unwrap_or_else(|| panic!("{name}"));
        let window =
            Window { start_ns: parse_time("start", start).unwrap_or(0), end_ns: parse_time("end", end).unwrap_or(0) };
        let snap = dir.join(format!("{case}.snap"));
        let spec = CutSpec { window, nodes: Vec::new(), namespaces: Vec::new(), pod_regex: None };
        let progress = trawl_analyze::Progress::default();
        let meta = create(&arch, &spec, &snap, &progress).unwrap_or_else(|e| panic!("{e}"));
        // Progress: every byte of the files the window meets, the packets kept.
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(load(&progress.read.bytes), load(&progress.total_bytes));
        assert!(load(&progress.total_bytes) > 0);
        assert_eq!(load(&progress.frames), meta.nodes.iter().map(|n| n.packets).sum::<u64>());
        for (_, node, _, packets, sha) in rows.iter().filter(|r| r.0 == *name) {
            let cut = meta.nodes.iter().find(|n| n.name == *node).unwrap_or_else(|| panic!("{node}"));
            assert_eq!(cut.packets, *packets, "{case} {node}");
            assert_eq!(digest(&snap.join(&cut.file)), (*packets, sha.clone()), "{case} {node}");
            checked += 1;
        }
        // Not indexed yet, it exports by node from its raw captures (no
        // index needed, as in Kubeshark); choosing flows needs the index.
        for (_, node, _, packets, sha) in rows.iter().filter(|r| r.0 == *name) {
            let out = dir.join("raw-export.pcapng");
            let sum = export(&snap, &ExportSpec { nodes: vec![node.clone()], ..Default::default() }, &out)
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(sum.packets, *packets);
            assert_eq!(digest(&out), (*packets, sha.clone()), "raw export {case} {node}");
        }
        let e = export(
            &snap,
            &ExportSpec { flow_ids: Some(HashSet::from([1])), ..Default::default() },
            &dir.join("x.pcapng"),
        )
        .err();
        assert!(e.map(|e| e.to_string()).unwrap_or_default().contains("not indexed yet"));
        // The cut reads back; indexing it analyses exactly its packets.
        assert_eq!(read_meta(&snap).ok().map(|m| m.window.start_ns), Some(window.start_ns));
        let m = index(&snap, Some(2), false, &Default::default()).unwrap_or_else(|e| panic!("{e}"));
        let total: u64 = meta.nodes.iter().map(|n| n.packets).sum();
        assert_eq!(m.counters.frames, total);
        assert_eq!(
            m.inputs.iter().map(|i| i.node.clone().unwrap_or_default()).collect::<Vec<_>>(),
            ["node-a", "node-b"]
        );
        assert!(m.inputs.iter().all(|i| i.path.starts_with("raw/")), "paths inside the snapshot are relative");
        // Indexed once: a second index is refused.
        assert!(index(&snap, Some(2), false, &Default::default()).is_err());
    }
    assert_eq!(checked, 4);
    // One node only.
    let snap = dir.join("only-b.snap");
    let spec =
        CutSpec { window: Window::everything(), nodes: vec!["node-b".into()], namespaces: Vec::new(), pod_regex: None };
    let meta = create(&arch, &spec, &snap, &Default::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(meta.nodes.len(), 1);
    assert_eq!(meta.nodes[0].packets, 956);
    let spec =
        CutSpec { window: Window::everything(), nodes: vec!["node-z".into()], namespaces: Vec::new(), pod_regex: None };
    let e =
        create(&arch, &spec, &dir.join("z.snap"), &Default::default()).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("no node `node-z`") && e.contains("node-a, node-b"), "{e}");
    assert!(!dir.join("z.snap").exists());
    std::fs::remove_dir_all(&dir).ok();
}

/// Kubernetes sidecars: two servers of the sanders_http_espn capture as
/// pods of two namespaces.
#[test]
fn workload_filter_keeps_packets_with_a_matching_peer() {
    let dir = scratch("workload");
    let a = two_node_archive(&dir);
    let car = r#"{"time":"2010-04-07T17:29:00Z","node":"node-b","pods":[
        {"namespace":"shop","name":"checkout-7d9f","ips":["63.85.36.72"]},
        {"namespace":"infra","name":"proxy-1","ips":["205.234.218.129"]}],
        "services":[{"namespace":"cdn","name":"edge","ips":["63.85.36.72"]}]}"#;
    std::fs::write(a.join("node-b/k8s-1270661340000.json"), car).unwrap_or_else(|e| panic!("{e}"));
    let arch = Archive::open(&a).unwrap_or_else(|e| panic!("{e}"));
    let spec = CutSpec {
        window: Window::everything(),
        nodes: vec!["node-b".into()],
        namespaces: vec!["shop".into()],
        pod_regex: Some("^checkout-".into()),
    };
    let snap = dir.join("shop.snap");
    let meta = create(&arch, &spec, &snap, &Default::default()).unwrap_or_else(|e| panic!("{e}"));
    // Exactly the packets with 63.85.36.72 as a peer (tshark:
    // `ip.addr == 63.85.36.72` selects 119 of the 956).
    assert_eq!(meta.nodes[0].packets, 119);
    assert_eq!(meta.nodes[0].sidecars, ["k8s/node-b/k8s-1270661340000.json"]);
    let mut r = CaptureReader::open(&snap.join("raw/node-b.pcapng"), Arc::new(ReadProgress::default()), 1 << 20)
        .unwrap_or_else(|e| panic!("{e}"));
    let ip: std::net::IpAddr = "63.85.36.72".parse().unwrap_or_else(|e| panic!("{e}"));
    while let Some(c) = r.next_chunk() {
        for f in &c.frames {
            match trawl_analyze::decode::decode(f.link, &c.data[f.start as usize..(f.start + f.len) as usize]) {
                trawl_analyze::decode::Decoded::Ip(p) => assert!(p.src == ip || p.dst == ip),
                _ => panic!("a packet without the pod's address was kept"),
            }
        }
    }
    // Indexed, its export names the pods in packet comments.
    index(&snap, Some(2), false, &Default::default()).unwrap_or_else(|e| panic!("{e}"));
    let out = dir.join("annotated.pcapng");
    let sum =
        export(&snap, &ExportSpec { annotate: true, ..Default::default() }, &out).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sum.packets, 119);
    let bytes = std::fs::read(&out).unwrap_or_default();
    let named = |what: &[u8]| bytes.windows(what.len()).filter(|w| *w == what).count();
    assert_eq!(named(b"pod shop/checkout-7d9f"), 119, "every packet has the pod as a peer");
    assert_eq!(named(b"trawl flow "), 119);
    // Namespace alone: the other server (tshark `ip.addr == 205.234.218.129`: 588).
    let spec2 = CutSpec { namespaces: vec!["infra".into()], pod_regex: None, ..spec.clone() };
    let meta = create(&arch, &spec2, &dir.join("infra.snap"), &Default::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(meta.nodes[0].packets, 588);
    // A namespace takes its services' cluster IPs too (63.85.36.72 as a
    // service of `cdn`: the same 119 packets); a pod regex does not.
    let spec4 = CutSpec { namespaces: vec!["cdn".into()], pod_regex: None, ..spec.clone() };
    let meta = create(&arch, &spec4, &dir.join("cdn.snap"), &Default::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(meta.nodes[0].packets, 119);
    let spec5 = CutSpec { namespaces: vec!["cdn".into()], pod_regex: Some(".".into()), ..spec.clone() };
    let meta = create(&arch, &spec5, &dir.join("cdn-pods.snap"), &Default::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(meta.nodes[0].packets, 0);
    // No such namespace: nothing.
    let spec3 = CutSpec { namespaces: vec!["nope".into()], pod_regex: None, ..spec };
    let meta = create(&arch, &spec3, &dir.join("none.snap"), &Default::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(meta.nodes[0].packets, 0);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bpf_export_matches_tcpdump() {
    let dir = scratch("bpf");
    for (case, _, file, packets, sha) in golden().into_iter().filter(|r| r.0.starts_with("bpf:")) {
        let snap = dir.join(format!("{file}.snap"));
        if !snap.exists() {
            let opts = trawl_analyze::Options { inputs: vec![corpus(&file)], threads: 2, ..Default::default() };
            trawl_analyze::analyze_to_snapshot(&opts, &snap, false, &Default::default())
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let out = dir.join("out.pcapng");
        let spec = ExportSpec { bpf: Some(case.trim_start_matches("bpf:").to_string()), ..Default::default() };
        let sum = export(&snap, &spec, &out).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sum.packets, packets, "{case}");
        assert_eq!(digest(&out), (packets, sha), "{case}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn export_by_flow_and_window_reads_through_the_packet_index() {
    let dir = scratch("export");
    let snap = dir.join("m.snap");
    let opts =
        trawl_analyze::Options { inputs: vec![corpus("zeek_http_methods.pcap")], threads: 2, ..Default::default() };
    let res =
        trawl_analyze::analyze_to_snapshot(&opts, &snap, false, &Default::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(res.manifest.tables["packets"].rows, 655);
    // Everything: the capture itself.
    let out = dir.join("all.pcapng");
    let sum = export(&snap, &ExportSpec::default(), &out).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(digest(&out), digest(&corpus("zeek_http_methods.pcap")));
    assert_eq!((sum.packets, sum.indexed_packets), (655, 655));
    // A window equals the tshark window of the golden file.
    let (name, _, _, packets, sha) = golden()
        .into_iter()
        .find(|r| r.0.starts_with("window-a") && r.1 == "node-a")
        .unwrap_or_else(|| panic!("golden"));
    let (start, end) = name.split_once(':').and_then(|(_, w)| w.split_once('/')).unwrap_or_else(|| panic!("{name}"));
    let w = Window { start_ns: parse_time("s", start).unwrap_or(0), end_ns: parse_time("e", end).unwrap_or(0) };
    export(&snap, &ExportSpec { window: Some(w), ..Default::default() }, &out).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(digest(&out), (packets, sha));
    // One flow: its packets only, annotated.
    let spec = ExportSpec { flow_ids: Some(HashSet::from([1])), annotate: true, ..Default::default() };
    let sum = export(&snap, &spec, &out).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((sum.packets, sum.flows), (10, 1));
    let bytes = std::fs::read(&out).unwrap_or_default();
    assert_eq!(bytes.windows(12).filter(|w| w == b"trawl flow 1").count(), 10);
    // A gzip-compressed capture is read through the same index (offsets in
    // the decompressed stream).
    let gz = dir.join("m.pcap.gz");
    let raw = std::fs::read(corpus("zeek_http_methods.pcap")).unwrap_or_default();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &raw).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&gz, enc.finish().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}"));
    let gz_snap = dir.join("gz.snap");
    let opts = trawl_analyze::Options { inputs: vec![gz.clone()], threads: 2, ..Default::default() };
    trawl_analyze::analyze_to_snapshot(&opts, &gz_snap, false, &Default::default()).unwrap_or_else(|e| panic!("{e}"));
    export(&gz_snap, &ExportSpec { window: Some(w), ..Default::default() }, &out).unwrap_or_else(|e| panic!("{e}"));
    let (_, _, _, packets, sha) = golden()
        .into_iter()
        .find(|r| r.0.starts_with("window-a") && r.1 == "node-a")
        .unwrap_or_else(|| panic!("golden"));
    assert_eq!(digest(&out), (packets, sha));
    // A capture that changed since analysis is refused.
    std::fs::write(&gz, b"short").unwrap_or_else(|e| panic!("{e}"));
    let e = export(&gz_snap, &ExportSpec::default(), &out).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("when it was analysed: analyse it again"), "{e}");
    // Unknown node and a capture that changed are clear errors.
    let e = export(&snap, &ExportSpec { nodes: vec!["x".into()], ..Default::default() }, &out)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.starts_with("--node: no node `x`"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn pack_then_unpack_is_byte_identical_and_checked() {
    let dir = scratch("pack");
    let a = two_node_archive(&dir);
    let arch = Archive::open(&a).unwrap_or_else(|e| panic!("{e}"));
    let snap = dir.join("s.snap");
    create(
        &arch,
        &CutSpec { window: Window::everything(), nodes: Vec::new(), namespaces: Vec::new(), pod_regex: None },
        &snap,
        &Default::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    index(&snap, Some(2), false, &Default::default()).unwrap_or_else(|e| panic!("{e}"));
    let packed = dir.join("s.tar.zst");
    let n = trawl_snapshot::pack::pack(&snap, &packed, 3).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(n, 8, "snapshot.json, manifest.json, 4 tables and 2 raw captures");
    let back = dir.join("back.snap");
    trawl_snapshot::pack::unpack(&packed, &back).unwrap_or_else(|e| panic!("{e}"));
    let files = |d: &Path| {
        let mut v = Vec::new();
        let mut stack = vec![d.to_path_buf()];
        while let Some(p) = stack.pop() {
            for e in std::fs::read_dir(&p).unwrap_or_else(|e| panic!("{e}")).flatten() {
                if e.path().is_dir() {
                    stack.push(e.path());
                } else {
                    v.push((
                        e.path().strip_prefix(d).map(Path::to_path_buf).unwrap_or_default(),
                        std::fs::read(e.path()).unwrap_or_default(),
                    ));
                }
            }
        }
        v.sort();
        v
    };
    assert_eq!(files(&snap), files(&back));
    // Packing is deterministic.
    let again = dir.join("again.tar.zst");
    trawl_snapshot::pack::pack(&back, &again, 3).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(std::fs::read(&packed).ok(), std::fs::read(&again).ok());
    // A flipped byte inside is caught by a checksum (zstd's or ours).
    let mut bytes = std::fs::read(&packed).unwrap_or_default();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    let bad = dir.join("bad.tar.zst");
    std::fs::write(&bad, &bytes).unwrap_or_else(|e| panic!("{e}"));
    let e = trawl_snapshot::pack::unpack(&bad, &dir.join("bad.snap")).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("bad.tar.zst"), "{e}");
    assert!(!dir.join("bad.snap").exists(), "a failed unpack leaves nothing");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn interrupted_index_leaves_no_complete_looking_snapshot() {
    let dir = scratch("interrupt");
    let a = two_node_archive(&dir);
    let arch = Archive::open(&a).unwrap_or_else(|e| panic!("{e}"));
    let snap = dir.join("s.snap");
    create(
        &arch,
        &CutSpec { window: Window::everything(), nodes: Vec::new(), namespaces: Vec::new(), pod_regex: None },
        &snap,
        &Default::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // A raw file that is cut short: indexing stops at the damage but
    // still completes; a raw file that is not a capture fails the index
    // and leaves the snapshot unindexed.
    let raw = snap.join("raw/node-b.pcapng");
    let mut perms = std::fs::metadata(&raw).map(|m| m.permissions()).unwrap_or_else(|e| panic!("{e}"));
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&raw, perms).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&raw, b"not a capture").unwrap_or_else(|e| panic!("{e}"));
    assert!(index(&snap, Some(2), false, &Default::default()).is_err());
    assert!(!snap.join("manifest.json").exists());
    let names: Vec<String> = std::fs::read_dir(&snap)
        .map(|r| r.flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect())
        .unwrap_or_default();
    assert!(!names.iter().any(|n| n.starts_with(".index")), "{names:?}");
    std::fs::remove_dir_all(&dir).ok();
}

/// xorshift64*: a small deterministic generator for the mutation test.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

#[test]
fn mutated_captures_and_packs_never_panic() {
    // The boundaries reader trusts nothing at the end of a file, and
    // unpack nothing in a pack: flipped bytes (mostly in the tail, where
    // the last record is looked for) and cut files give a result or a
    // typed error, never a panic, and a failed unpack leaves nothing.
    let dir = scratch("mutate");
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut runs = 0;
    for f in [
        "zeek_http_methods.pcap",
        "sanders_http_espn.pcapng",
        "gopacket_pcapng_be_test202.pcapng",
        "tcpdump_tcp-handshake-nano.pcap",
    ] {
        let original = std::fs::read(corpus(f)).unwrap_or_default();
        for round in 0..40 {
            let mut data = original.clone();
            let tail = data.len().min(4096);
            for _ in 0..1 + next(&mut state) % 16 {
                let i = data.len() - 1 - (next(&mut state) as usize) % tail;
                data[i] ^= (next(&mut state) & 0xff) as u8;
            }
            if round % 3 == 0 {
                let cut = (next(&mut state) as usize) % data.len();
                data.truncate(cut.max(1));
            }
            let path = dir.join(format!("m{round}-{f}"));
            std::fs::write(&path, &data).unwrap_or_else(|e| panic!("{e}"));
            // Any outcome but a panic will do: the bytes are garbage.
            let _ = trawl_snapshot::archive::file_bounds(&path);
            runs += 1;
        }
    }
    // Packs.
    let a = two_node_archive(&dir);
    let arch = Archive::open(&a).unwrap_or_else(|e| panic!("{e}"));
    let snap = dir.join("s.snap");
    create(
        &arch,
        &CutSpec {
            window: Window::everything(),
            nodes: vec!["node-b".into()],
            namespaces: Vec::new(),
            pod_regex: None,
        },
        &snap,
        &Default::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let packed = dir.join("s.tar.zst");
    trawl_snapshot::pack::pack(&snap, &packed, 1).unwrap_or_else(|e| panic!("{e}"));
    let original = std::fs::read(&packed).unwrap_or_default();
    let mut failed = 0;
    for round in 0..40 {
        let mut data = original.clone();
        for _ in 0..1 + next(&mut state) % 8 {
            let i = (next(&mut state) as usize) % data.len();
            data[i] ^= (next(&mut state) & 0xff) as u8;
        }
        if round % 4 == 0 {
            let cut = (next(&mut state) as usize) % data.len();
            data.truncate(cut.max(1));
        }
        let bad = dir.join("bad.tar.zst");
        std::fs::write(&bad, &data).unwrap_or_else(|e| panic!("{e}"));
        let out = dir.join(format!("u{round}.snap"));
        match trawl_snapshot::pack::unpack(&bad, &out) {
            Ok(_) => assert_eq!(
                std::fs::read(out.join("raw/node-b.pcapng")).ok(),
                std::fs::read(snap.join("raw/node-b.pcapng")).ok()
            ),
            Err(_) => {
                failed += 1;
                assert!(!out.exists());
            }
        }
        runs += 1;
    }
    assert_eq!(runs, 200);
    assert!(failed > 30, "only {failed} of 40 damaged packs were refused");
    std::fs::remove_dir_all(&dir).ok();
}

/// Drops come from the files' pcapng interface statistics blocks: those
/// trawl capture writes (per interface, per file), and dumpcap's (its
/// real file: 20 packets on lo, `isb_ifdrop` 0). A pcap carries none.
#[test]
fn statistics_blocks_give_each_nodes_drops() {
    use std::collections::BTreeMap;
    use trawl_capture::pcapng::{Direction, IfCounts, PcapNg};
    let dir = scratch("drops");
    std::fs::create_dir_all(dir.join("agent")).unwrap_or_else(|e| panic!("{e}"));
    let iface = |name: &str| trawl_capture::Interface { name: name.into(), link: trawl_capture::LINKTYPE_ETHERNET };
    let names: BTreeMap<u32, trawl_capture::Interface> = [(2, iface("eth0")), (3, iface("eth1"))].into();
    for (i, drops) in [(0u64, [3u64, 4]), (1, [0, 5])] {
        let path = dir.join(format!("agent/agent-{i}.pcapng"));
        let mut f = PcapNg::create(&path, 65535, &names).unwrap_or_else(|e| panic!("{e}"));
        let ts = 1_763_820_000_000_000_000 + i * 1_000_000_000;
        f.packet(2, ts, 60, Direction::Inbound, &[0u8; 60]).unwrap_or_else(|e| panic!("{e}"));
        f.packet(3, ts + 500, 60, Direction::Outbound, &[1u8; 60]).unwrap_or_else(|e| panic!("{e}"));
        let counts: BTreeMap<u32, IfCounts> = [
            (2, IfCounts { received: 10, dropped: drops[0], accepted: 1 }),
            (3, IfCounts { received: 10, dropped: drops[1], accepted: 1 }),
        ]
        .into();
        f.finish(ts, ts + 1000, &counts).unwrap_or_else(|e| panic!("{e}"));
    }
    std::fs::create_dir_all(dir.join("dumpcap")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(root().join("testdata/scenarios/dumpcap-statistics.pcapng"), dir.join("dumpcap/lo.pcapng"))
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(dir.join("tcpdump")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(corpus("zeek_http_methods.pcap"), dir.join("tcpdump/x.pcap")).unwrap_or_else(|e| panic!("{e}"));
    let b = Archive::open(&dir).unwrap_or_else(|e| panic!("{e}")).boundaries();
    let by = |n: &str| b.nodes.iter().find(|x| x.name == n).unwrap_or_else(|| panic!("{n}"));
    assert_eq!(by("agent").dropped, Some(12));
    assert_eq!(by("agent").files_with_drops, ["agent/agent-0.pcapng", "agent/agent-1.pcapng"]);
    assert_eq!(
        by("agent").newest_ns,
        Some(1_763_820_001_000_000_500),
        "the last packet is found behind the statistics blocks"
    );
    assert_eq!((by("dumpcap").dropped, by("dumpcap").files_with_drops.len()), (Some(0), 0));
    assert_eq!(by("tcpdump").dropped, None);
    // A cut carries its source files' drops, in its snapshot.json and in
    // a statistics block of its own, which the analysis reads.
    let snap = dir.join("drops.snap");
    let spec = CutSpec {
        window: Window::everything(),
        nodes: vec!["agent".into(), "tcpdump".into()],
        namespaces: Vec::new(),
        pod_regex: None,
    };
    let meta = create(&Archive::open(&dir).unwrap_or_else(|e| panic!("{e}")), &spec, &snap, &Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        meta.nodes.iter().map(|n| (n.name.as_str(), n.packets, n.capture_dropped)).collect::<Vec<_>>(),
        [("agent", 4, Some(12)), ("tcpdump", 655, None)]
    );
    let dropped_in = |rel: &str| {
        let mut r = CaptureReader::open(&snap.join(rel), Arc::new(ReadProgress::default()), 1 << 16)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut frames = 0;
        while let Some(c) = r.next_chunk() {
            frames += c.frames.len();
        }
        let info = r.finish();
        (frames, info.capture_dropped, info.damage.is_none())
    };
    assert_eq!(dropped_in("raw/agent.pcapng"), (4, Some(12), true));
    assert_eq!(dropped_in("raw/tcpdump.pcapng"), (655, None, true));
    // The statistics block is one Wireshark reads: tshark passes over it.
    if let Ok(o) = std::process::Command::new("tshark").args(["-r"]).arg(snap.join("raw/agent.pcapng")).output() {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 4);
    }
}

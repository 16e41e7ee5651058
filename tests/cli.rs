//! The `trawl` command end to end: real captures in, snapshots read back
//! with the Parquet reader, exit codes and messages for bad input.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow_array::{Array, Int32Array, RecordBatch, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sha2::Digest;

mod capture;
#[cfg(feature = "cluster")]
mod cluster;
mod dataset;
mod investigations;
mod kubernetes;
mod l7;
mod mcp;
mod tcp_insights;

fn trawl(args: &[&str]) -> Output {
    match Command::new(env!("CARGO_BIN_EXE_trawl")).args(args).output() {
        Ok(o) => o,
        Err(e) => panic!("running trawl: {e}"),
    }
}

fn testdata(p: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(p).display().to_string()
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("trawl-cli-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).ok();
    d
}

fn read_table(path: &Path) -> Vec<RecordBatch> {
    let file = fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    reader.map(|b| b.unwrap_or_else(|e| panic!("{e}"))).collect()
}

fn column<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> &'a T {
    b.column_by_name(name).and_then(|c| c.as_any().downcast_ref::<T>()).unwrap_or_else(|| panic!("column {name}"))
}

/// Whether this machine can record scenarios: root with network
/// namespaces (`unshare -n -m`) and every program in `tools`.
fn can_record(tools: &[&str]) -> bool {
    Command::new("unshare").args(["-n", "-m", "true"]).status().is_ok_and(|s| s.success())
        && tools.iter().all(|t| {
            Command::new("sh").args(["-c", &format!("command -v {t}")]).output().is_ok_and(|o| o.status.success())
        })
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// What `tshark -r PCAP ARGS...` prints. tshark must succeed, or read a
/// damaged capture up to the damage (as trawl does, with exit status 3).
fn tshark(pcap: &Path, args: &[&str]) -> String {
    let o = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("tshark is needed for this test (.ci/run installs it): {e}"));
    let damaged = ["cut short in the middle of a packet", "appears to be damaged or corrupt"];
    assert!(o.status.success() || damaged.iter().any(|d| stderr(&o).contains(d)), "tshark: {}", stderr(&o));
    stdout(&o)
}

#[test]
fn analyze_demo_writes_a_readable_snapshot() {
    let dir = scratch("demo");
    let snap = dir.join("checkout.snap");
    let o = trawl(&["analyze", &testdata("demo/checkout.pcap"), "-o", &snap.display().to_string()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("api_calls") && out.contains("18"), "{out}");
    let mut names: Vec<String> = fs::read_dir(&snap)
        .map(|r| r.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().to_string())).collect())
        .unwrap_or_default();
    names.sort();
    assert_eq!(
        names,
        ["api_calls.parquet", "flows.parquet", "manifest.json", "packets.parquet", "parse_issues.parquet"]
    );

    // The manifest: schema version, input facts, row counts.
    let m: serde_json::Value =
        serde_json::from_slice(&fs::read(snap.join("manifest.json")).unwrap_or_default()).unwrap_or_default();
    let pcap = fs::read(testdata("demo/checkout.pcap")).unwrap_or_default();
    assert_eq!(m["schema_version"], trawl_schemas::SCHEMA_VERSION);
    assert_eq!(m["inputs"][0]["sha256"], trawl_hex(&sha2::Sha256::digest(&pcap)));
    assert_eq!(m["inputs"][0]["size"], pcap.len() as u64);
    assert_eq!(m["inputs"][0]["link_types"][0], "ethernet");
    assert_eq!(m["tables"]["api_calls"]["rows"], 18);
    assert_eq!(m["tables"]["flows"]["rows"], 13);
    // The packet index: one row per frame.
    assert_eq!(m["tables"]["packets"]["rows"], 144);

    // api_calls read back: 18 rows, three 502s on POST /api/checkout.
    let calls = read_table(&snap.join("api_calls.parquet"));
    let rows: usize = calls.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 18);
    let mut failed = 0;
    for b in &calls {
        let status = column::<Int32Array>(b, "status_code");
        let path = column::<StringArray>(b, "path");
        let method = column::<StringArray>(b, "method");
        for i in 0..b.num_rows() {
            if status.is_valid(i) && status.value(i) == 502 {
                assert_eq!((method.value(i), path.value(i)), ("POST", "/api/checkout"));
                failed += 1;
            }
        }
    }
    assert_eq!(failed, 3);
    let file = fs::File::open(snap.join("api_calls.parquet")).unwrap_or_else(|e| panic!("{e}"));
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        builder.schema().metadata().get("trawl.schema_version").map(String::as_str),
        Some(trawl_schemas::SCHEMA_VERSION.to_string().as_str())
    );
    fs::remove_dir_all(&dir).ok();
}

fn trawl_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn snapshot_files_are_identical_at_any_thread_count() {
    let dir = scratch("threads");
    let input = testdata("corpus/sanders_http_espn.pcapng");
    for j in ["1", "4"] {
        let o = trawl(&["analyze", &input, "-q", "-j", j, "-o", &dir.join(j).display().to_string()]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    for f in ["flows.parquet", "api_calls.parquet", "parse_issues.parquet", "packets.parquet", "manifest.json"] {
        let a = fs::read(dir.join("1").join(f)).unwrap_or_default();
        let b = fs::read(dir.join("4").join(f)).unwrap_or_default();
        assert!(!a.is_empty() && a == b, "{f} differs between 1 and 4 threads");
    }
    fs::remove_dir_all(&dir).ok();
}

/// Writes the small hostile-traffic suite (benches/hostile/) into `dir`.
fn hostile_captures(dir: &Path, only: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/hostile/make_hostile.py");
    let mut args = vec![script, dir.to_str().unwrap_or_default(), "--small"];
    if !only.is_empty() {
        args.push("--only");
        args.extend(only);
    }
    let o =
        Command::new("python3").args(&args).output().unwrap_or_else(|e| panic!("python3 (needed for this test): {e}"));
    assert!(o.status.success(), "make_hostile.py: {}", stderr(&o));
}

/// Flows evicted under a full flow-state budget are the same at any
/// thread count: budgets are per virtual shard, not per worker.
#[test]
fn a_flood_past_the_flow_budget_gives_identical_snapshots_at_any_thread_count() {
    let dir = scratch("flood-threads");
    hostile_captures(&dir, &["syn_flood"]);
    let input = dir.join("syn_flood.pcap").display().to_string();
    for j in ["1", "3"] {
        let out = dir.join(j).display().to_string();
        let o = trawl(&["analyze", &input, "-q", "-j", j, "--flow-memory", "1MiB", "-o", &out]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let manifest = fs::read_to_string(dir.join("1/manifest.json")).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&manifest).unwrap_or_default();
    // 20,000 SYNs, about 1,200 of which fit in 1 MiB.
    let evicted = v["counters"]["flow_table_evictions"].as_u64().unwrap_or(0);
    assert!((18_000..19_500).contains(&evicted), "{evicted}");
    assert_eq!(v["counters"]["flows"].as_u64(), Some(20_000));
    assert_eq!(v["counters"]["flow_table_evictions_answered"].as_u64(), Some(0));
    for f in ["flows.parquet", "packets.parquet", "manifest.json"] {
        let a = fs::read(dir.join("1").join(f)).unwrap_or_default();
        let b = fs::read(dir.join("3").join(f)).unwrap_or_default();
        assert!(!a.is_empty() && a == b, "{f} differs between 1 and 3 threads");
    }
    fs::remove_dir_all(&dir).ok();
}

/// CI's run of the hostile-traffic suite (docs/security.md), at its small
/// size: every attack analysed without failing, within the memory budget,
/// each firing the caps it must. (Throughput is the benchmark's to say:
/// this is a debug build.)
#[test]
fn the_hostile_traffic_suite_holds() {
    let dir = scratch("hostile");
    hostile_captures(&dir, &[]);
    let runner = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/hostile/run.py");
    let out = dir.join("out").display().to_string();
    let o = Command::new("python3")
        .args([runner, env!("CARGO_BIN_EXE_trawl"), dir.to_str().unwrap_or_default(), &out, "--no-speed"])
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    let table = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{table}\n{}", stderr(&o));
    // Every case ran and said so.
    assert_eq!(table.lines().filter(|l| l.ends_with("| ok |")).count(), 21, "{table}");
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn not_a_capture_is_one_line_and_exit_2() {
    let dir = scratch("notcap");
    let f = dir.join("notes.pcap");
    fs::write(&f, "hello, this is text\n").ok();
    let o = trawl(&["analyze", &f.display().to_string(), "-o", &dir.join("x.snap").display().to_string()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("notes.pcap")
            && err.contains("not a capture file")
            && err.contains("expected a pcap, pcapng or gzip"),
        "{err}"
    );
    // Nothing half-written is left behind.
    assert!(!dir.join("x.snap").exists());
    let leftovers: Vec<_> = fs::read_dir(&dir)
        .map(|r| r.filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().contains(".tmp")).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty());
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn missing_input_and_bad_options_exit_2() {
    let o = trawl(&["analyze", "/nonexistent/capture.pcap"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/nonexistent/capture.pcap"), "{}", stderr(&o));
    let o = trawl(&["analyze", &testdata("demo/checkout.pcap"), "--udp-timeout", "-5"]);
    assert_eq!(o.status.code(), Some(2));
    let o = trawl(&["analyze", &testdata("demo/checkout.pcap"), "--threads", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--threads"), "{}", stderr(&o));
}

#[test]
fn existing_output_needs_force() {
    let dir = scratch("force");
    let snap = dir.join("s.snap").display().to_string();
    let demo = testdata("demo/checkout.pcap");
    assert!(trawl(&["analyze", &demo, "-q", "-o", &snap]).status.success());
    let o = trawl(&["analyze", &demo, "-q", "-o", &snap]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    let o = trawl(&["analyze", &demo, "-q", "--force", "-o", &snap]);
    assert!(o.status.success(), "{}", stderr(&o));
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn damaged_capture_is_analysed_and_exits_3() {
    let dir = scratch("damaged");
    let snap = dir.join("d.snap");
    let o = trawl(&[
        "analyze",
        &testdata("corpus/suricata_http-mime-truncated.pcap"),
        "--json",
        "-o",
        &snap.display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("damaged at byte") && stderr(&o).contains("after 2696 frames"), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    assert_eq!(v["manifest"]["counters"]["http_requests"], 8);
    assert_eq!(v["manifest"]["inputs"][0]["damage"]["frames_before"], 2696);
    assert!(snap.join("api_calls.parquet").exists());
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_directory_of_captures_is_merged() {
    let dir = scratch("dir");
    let caps = dir.join("caps");
    fs::create_dir_all(&caps).ok();
    for f in ["zeek_http-vlan-0.pcap", "zeek_http_basic-auth-with-colon.pcap"] {
        fs::copy(testdata(&format!("corpus/{f}")), caps.join(f)).ok();
    }
    fs::write(caps.join("README.txt"), "not a capture, skipped by extension").ok();
    let o = trawl(&["analyze", &caps.display().to_string(), "--json", "-o", &dir.join("s.snap").display().to_string()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    assert_eq!(v["manifest"]["inputs"].as_array().map(Vec::len), Some(2));
    // One exchange in each: VLAN-tagged Ethernet and raw IPv4.
    assert_eq!(v["manifest"]["counters"]["http_requests"], 2);
    assert_eq!(v["manifest"]["inputs"][1]["link_types"][0], "ipv4");
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn debug_streams_prints_tshark_comparable_digests() {
    let o = trawl(&["debug", "streams", "--json", &testdata("corpus/zeek_http_206_example_b.pcap")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&o.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    // tshark -q -z follow,tcp,raw,0 on the same file.
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["node0"], "192.168.72.14:3254");
    assert_eq!(lines[0]["node1_bytes"], 1_023_578);
    assert_eq!(lines[0]["node1_sha256"], "9a8b033dde6f90aad3ac3a8c43f7c27da9da2f40e37faa96f1b2d5b4ef4ea471");
}

#[test]
fn help_teaches_the_commands() {
    let o = trawl(&["--help"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("analyze") && out.contains("Examples"), "{out}");
    let o = trawl(&["analyze", "--help"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("--body-cap") && out.contains("mergecap"), "{out}");
}

/// The demo snapshot, written once per test binary run.
fn demo_snapshot() -> String {
    static SNAP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SNAP.get_or_init(|| {
        let out = scratch("query-demo").join("checkout.snap");
        let o = trawl(&["analyze", &testdata("demo/checkout.pcap"), "-o", out.to_str().unwrap_or_default(), "-q"]);
        assert!(o.status.success(), "{}", stderr(&o));
        out.display().to_string()
    })
    .clone()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// The HTTP calls of a capture as (client port, method, path, status),
/// by trawl and by tshark.
fn calls_by_trawl_and_tshark(pcap: &str, dir: &Path) -> (Vec<String>, Vec<String>) {
    let snap = dir.join("out.snap");
    let o = trawl(&["analyze", pcap, "-o", snap.to_str().unwrap_or_default(), "--force", "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = trawl(&[
        "query",
        snap.to_str().unwrap_or_default(),
        "--kfl",
        "http",
        "--format",
        "csv",
        "--columns",
        "src_port,method,path,status_code",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut ours: Vec<String> = stdout(&o).lines().skip(1).map(str::to_string).collect();
    let out = tshark(
        Path::new(pcap),
        &[
            "-Y",
            "http.response",
            "-T",
            "fields",
            "-E",
            "separator=,",
            "-e",
            "tcp.dstport",
            "-e",
            "http.request.method",
            "-e",
            "http.response_for.uri",
            "-e",
            "http.response.code",
        ],
    );
    // tshark names the request by its full URI and its method on the request only.
    let host = "http://127.0.0.1:8000";
    let mut theirs: Vec<String> = out
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            format!("{},GET,{},{}", f[0], f.get(2).unwrap_or(&"").trim_start_matches(host), f.get(3).unwrap_or(&""))
        })
        .collect();
    ours.sort();
    theirs.sort();
    (ours, theirs)
}

/// Linux NFLOG captures (link type 239: `iptables -j NFLOG` and `tcpdump
/// -i nflog:N`) are analysed like any other: testdata/scenarios/nflog.pcap
/// (recorded by make_nflog.sh: Python's http.server, curl), and a fresh
/// recording where this machine can make one, give the calls tshark finds.
#[test]
fn an_nflog_capture_gives_the_calls_tshark_finds() {
    let dir = scratch("nflog");
    let (ours, theirs) = calls_by_trawl_and_tshark(&testdata("scenarios/nflog.pcap"), &dir);
    assert_eq!(ours, ["58320,GET,/order.json,200", "58322,GET,/missing,404"]);
    assert_eq!(ours, theirs);
    if !can_record(&["tcpdump", "iptables", "python3", "curl", "ss"]) {
        eprintln!("skipping the live NFLOG recording: needs root, unshare, iptables, tcpdump, python3, curl and ss");
        return;
    }
    let pcap = dir.join("live.pcap");
    let o = Command::new(testdata("scenarios/make_nflog.sh")).arg(&pcap).output().unwrap_or_else(|e| panic!("{e}"));
    assert!(o.status.success(), "make_nflog.sh: {}", stderr(&o));
    let (ours, theirs) = calls_by_trawl_and_tshark(pcap.to_str().unwrap_or_default(), &dir);
    assert_eq!(ours.len(), 2, "{ours:?}");
    assert_eq!(ours, theirs);
}

/// Files and folders under `dir` (at any depth) named as a writer's
/// temporary (`.NAME.tmp-PID...`).
fn temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().contains(".tmp-") {
                found.push(e.path());
            } else if e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(e.path());
            }
        }
    }
    found
}

/// Runs `trawl ARGS` to completion once to time it, then twenty times
/// killed (SIGKILL) at moments spread over the first two thirds of that
/// time: after each kill, `check` sees `out` (which, if present, must be
/// complete) and may remove it. Then one more run to completion must
/// leave no temporary under `dir`. Returns how many runs were killed
/// before they finished.
fn killed_twenty_times(dir: &Path, args: &[&str], out: &Path, check: &dyn Fn(u32)) -> u32 {
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_trawl"))
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("running trawl: {e}"))
    };
    let started = std::time::Instant::now();
    let full = run().wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert!(full.status.success(), "{args:?}");
    let took = started.elapsed();
    remove(out);
    let mut killed = 0;
    for i in 0..20u32 {
        let mut child = run();
        std::thread::sleep(took * i / 30);
        let finished = child.try_wait().ok().flatten().is_some();
        let _ = child.kill();
        let _ = child.wait();
        killed += !finished as u32;
        check(i);
        remove(out);
    }
    let done = run().wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert!(done.status.success(), "{args:?}");
    assert_eq!(temporaries(dir), Vec::<PathBuf>::new(), "{args:?}: the next run removes what killed runs left");
    killed
}

fn remove(p: &Path) {
    if p.is_dir() {
        fs::remove_dir_all(p).ok();
    } else {
        fs::remove_file(p).ok();
    }
}

/// Every command that writes (`analyze`, `snapshot create`, `snapshot
/// index`, `snapshot pack`, `snapshot unpack`, `export-pcap`) killed
/// (SIGKILL) at twenty moments never leaves a partial output under the
/// final name, and the next run removes the temporaries the killed ones
/// left.
#[test]
fn writers_killed_at_any_moment_leave_nothing_partial() {
    let dir = scratch("killed");
    let archive = dir.join("archive");
    let node = archive.join("node-a");
    fs::create_dir_all(&node).ok();
    // A long enough run of real traffic: the demo capture 300 times over,
    // one rotated file after another.
    let demo = fs::read(testdata("demo/checkout.pcap")).unwrap_or_default();
    for i in 0..300i64 {
        fs::write(node.join(format!("part-{i:03}.pcap")), shifted_pcap(&demo, i * 60)).ok();
    }
    let p = |p: &Path| p.display().to_string();
    let count = |snap: &Path| stdout(&trawl(&["query", &p(snap), "--count"]));
    let (full, cut, packed, unpacked, pcap) = (
        dir.join("full.snap"),
        dir.join("cut.snap"),
        dir.join("cut.tar.zst"),
        dir.join("unpacked.snap"),
        dir.join("errors.pcapng"),
    );

    // analyze: a finished snapshot or none.
    let out = dir.join("out.snap");
    let killed = killed_twenty_times(&dir, &["analyze", &p(&node), "-o", &p(&out), "-q"], &out, &|i| {
        if out.exists() {
            let o = trawl(&["query", &p(&out), "--count"]);
            assert!(o.status.success() && out.join("manifest.json").exists(), "analyze kill {i}: {}", stderr(&o));
        }
    });
    assert!(killed >= 16, "analyze: only {killed} of 20 runs were killed before they finished");
    let o = trawl(&["analyze", &p(&node), "-o", &p(&full), "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(count(&out), count(&full));

    // snapshot create: a complete cut (its manifest says so) or none.
    let killed = killed_twenty_times(&dir, &["snapshot", "create", &p(&archive), "-o", &p(&cut)], &cut, &|i| {
        if cut.exists() {
            let o = trawl(&["snapshot", "show", &p(&cut)]);
            assert!(o.status.success(), "create kill {i}: {}", stderr(&o));
        }
    });
    assert!(killed >= 10, "snapshot create: only {killed} of 20 killed");
    let shown = |snap: &Path| -> serde_json::Value {
        serde_json::from_slice(&trawl(&["snapshot", "show", &p(snap)]).stdout).unwrap_or_default()
    };
    assert_eq!(shown(&cut)["state"], "raw");

    // snapshot index: the cut stays raw, or becomes indexed with every
    // table; never tables of a killed run.
    let before = shown(&cut);
    let args = ["snapshot", "index", &p(&cut), "--force", "-q"];
    let check_index = |i: u32| {
        let s = shown(&cut);
        match s["state"].as_str() {
            Some("raw") => assert_eq!(s["tables"], before["tables"], "index kill {i}"),
            Some("indexed") => assert_eq!(count(&cut), count(&full), "index kill {i}"),
            other => panic!("index kill {i}: state {other:?}"),
        }
    };
    // The snapshot itself is the output here: it must not be removed.
    let killed = killed_twenty_times(&dir, &args, &dir.join("nothing"), &check_index);
    assert!(killed >= 10, "snapshot index: only {killed} of 20 killed");
    assert_eq!(count(&cut), count(&full));

    // snapshot pack: a whole archive (it unpacks, checksums verified) or none.
    let check_pack = |i: u32| {
        if packed.exists() {
            let o = trawl(&["snapshot", "unpack", &p(&packed), "-o", &p(&dir.join("check.snap"))]);
            assert!(o.status.success(), "pack kill {i}: {}", stderr(&o));
            remove(&dir.join("check.snap"));
        }
    };
    let killed = killed_twenty_times(&dir, &["snapshot", "pack", &p(&cut), "-o", &p(&packed)], &packed, &check_pack);
    assert!(killed >= 5, "snapshot pack: only {killed} of 20 killed");

    // snapshot unpack: a whole snapshot or none.
    let check_unpack = |i: u32| {
        if unpacked.exists() {
            assert_eq!(count(&unpacked), count(&full), "unpack kill {i}");
        }
    };
    let args = ["snapshot", "unpack", &p(&packed), "-o", &p(&unpacked)];
    let killed = killed_twenty_times(&dir, &args, &unpacked, &check_unpack);
    assert!(killed >= 5, "snapshot unpack: only {killed} of 20 killed");

    // export-pcap: the whole export or none.
    let o = trawl(&["export-pcap", &p(&full), "--kfl", "http", "-o", &p(&pcap)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let whole = packet_digest(&pcap);
    let check_export = |i: u32| {
        if pcap.exists() {
            assert_eq!(packet_digest(&pcap), whole, "export kill {i}");
        }
    };
    let args = ["export-pcap", &p(&full), "--kfl", "http", "-o", &p(&pcap)];
    let killed = killed_twenty_times(&dir, &args, &pcap, &check_export);
    assert!(killed >= 5, "export-pcap: only {killed} of 20 killed");
    fs::remove_dir_all(&dir).ok();
}

/// A full disk (a small tmpfs, mounted in a mount namespace of the test's
/// own) gives `analyze`, `export-pcap` and `snapshot pack` one clear error
/// line naming the path, a non-zero exit, and nothing half-written: no
/// output under its final name, no temporary left.
#[test]
fn a_full_disk_is_one_clear_error_and_nothing_half_written() {
    if !can_record(&["mount"]) {
        eprintln!("skipping the full-disk test: needs root and unshare (a mount namespace)");
        return;
    }
    let dir = scratch("full-disk");
    let disk = dir.join("disk");
    fs::create_dir_all(&disk).ok();
    let bin = env!("CARGO_BIN_EXE_trawl");
    let snap = demo_snapshot();
    let demo = testdata("demo/checkout.pcap");
    let d = disk.display();
    // 8 KiB: less than the demo snapshot, its export or its pack need.
    let script = format!(
        "mount -t tmpfs -o size=8k tmpfs {d} || exit 99
        {bin} analyze {demo} -o {d}/x.snap -q; echo \"analyze $?\"
        {bin} export-pcap {snap} -o {d}/x.pcapng > /dev/null; echo \"export $?\"
        {bin} snapshot pack {snap} -o {d}/x.tar.zst; echo \"pack $?\"
        ls -A {d}; df -k {d} | tail -1"
    );
    let o = Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c", &script]).output();
    let o = o.unwrap_or_else(|e| panic!("unshare: {e}"));
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(o.status.success(), "{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    // Each command failed, and said why in one line naming its output.
    for (i, (cmd, path)) in [("analyze", "x.snap"), ("export", "x.pcapng"), ("pack", "x.tar.zst")].iter().enumerate() {
        let code = lines.get(i).and_then(|l| l.strip_prefix(&format!("{cmd} "))).unwrap_or("?");
        assert!(code != "0" && code != "?", "{cmd} exited {code}\n{out}\n{err}");
        let said: Vec<&str> = err.lines().filter(|l| l.contains(path)).collect();
        assert_eq!(said.len(), 1, "{cmd}: {err}");
        assert!(said[0].starts_with("trawl: ") && said[0].contains("No space left on device"), "{}", said[0]);
    }
    assert_eq!(err.lines().count(), 3, "{err}");
    // Nothing is left on the disk, and its space is free again.
    assert_eq!(lines.get(3).map(|l| l.split_whitespace().nth(2)), Some(Some("0")), "left behind:\n{out}");
    fs::remove_dir_all(&dir).ok();
}

/// A pcap (microsecond, as the demo capture) with every timestamp moved
/// `secs` later: rotated files of one archive.
fn shifted_pcap(pcap: &[u8], secs: i64) -> Vec<u8> {
    let mut out = pcap.to_vec();
    let mut at = 24;
    while at + 16 <= out.len() {
        let ts = u32::from_le_bytes([out[at], out[at + 1], out[at + 2], out[at + 3]]) as i64 + secs;
        out[at..at + 4].copy_from_slice(&(ts as u32).to_le_bytes());
        let len = u32::from_le_bytes([out[at + 8], out[at + 9], out[at + 10], out[at + 11]]) as usize;
        at += 16 + len;
    }
    out
}

#[test]
fn query_filters_calls_with_kfl() {
    let snap = demo_snapshot();
    let o = trawl(&[
        "query",
        &snap,
        "--kfl",
        "http && status_code >= 500",
        "--format",
        "ndjson",
        "--columns",
        "id,path,status_code",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "{\"id\":8,\"path\":\"/api/checkout\",\"status_code\":502}\n{\"id\":10,\"path\":\"/api/checkout\",\"status_code\":502}\n{\"id\":11,\"path\":\"/api/checkout\",\"status_code\":502}\n"
    );
    // The table format: a header, a rule, one line per row; the count on stderr.
    let o = trawl(&["query", &snap, "--kfl", r#"method == "POST""#]);
    assert!(o.status.success());
    let text = stdout(&o);
    assert!(text.starts_with("id  timestamp"), "{text}");
    assert_eq!(text.lines().count(), 2 + 5, "{text}");
    assert!(stderr(&o).starts_with("5 rows in "), "{}", stderr(&o));
    let o = trawl(&["query", &snap, "--count", "--kfl", "response.status == 404"]);
    assert_eq!(stdout(&o), "1\n");
    assert!(stderr(&o).contains("note: legacy field `response.status` rewritten to `status_code`"), "{}", stderr(&o));
    let o = trawl(&[
        "query",
        &snap,
        "--table",
        "flows",
        "--format",
        "csv",
        "--columns",
        "flow_id,zeek_state",
        "--limit",
        "2",
    ]);
    assert_eq!(stdout(&o), "flow_id,zeek_state\n1,SF\n11,SF\n");
    let o = trawl(&["query", &snap, "--format", "json", "--kfl", "status_code == 418"]);
    assert_eq!(stdout(&o), "[]\n");
}

#[test]
fn query_errors_exit_2_with_a_caret() {
    let snap = demo_snapshot();
    let o = trawl(&["query", &snap, "--kfl", "http && status_cod >= 500"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "trawl: invalid KFL filter: unknown field `status_cod`\n  http && status_cod >= 500\n          ^^^^^^^^^^\n  hint: did you mean `status_code`?\n"
    );
    let o = trawl(&["query", &snap, "--kfl", "ldap"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("trawl does not decode LDAP yet"), "{}", stderr(&o));
    let o = trawl(&["query", &testdata("demo/checkout.pcap"), "--kfl", "http"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("expected a snapshot directory"), "{}", stderr(&o));
    let o = trawl(&["query", &snap, "--format", "yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("expected table, json, ndjson or csv"), "{}", stderr(&o));
    let o = trawl(&["query", &snap, "--columns", "id,nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("`nope` is not a column of calls"), "{}", stderr(&o));
}

#[test]
fn sql_runs_scripts_and_refuses_writes() {
    let snap = demo_snapshot();
    let o = trawl(&[
        "sql",
        &snap,
        "--format",
        "csv",
        "-c",
        "SELECT endpoint, count(*) AS n FROM calls GROUP BY endpoint ORDER BY n DESC, endpoint; SELECT count(*) AS flows FROM tcp",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "endpoint,n\nGET /api/products/{id},9\nGET /api/health,3\nPOST /api/cart,2\nPOST /api/checkout,3\nGET /api/catalog.json,1\nflows\n13\n"
            .replace("GET /api/health,3\nPOST /api/cart,2\nPOST /api/checkout,3", "GET /api/health,3\nPOST /api/checkout,3\nPOST /api/cart,2")
    );
    let dir = scratch("sql-file");
    let script = dir.join("q.sql");
    fs::write(
        &script,
        "-- the failing checkouts\nSELECT id, status_code\n  FROM http\n WHERE status_code >= 500\n ORDER BY id;\n",
    )
    .ok();
    let o = trawl(&["sql", &snap, "--format", "csv", "-f", script.to_str().unwrap_or_default()]);
    assert_eq!(stdout(&o), "id,status_code\n8,502\n10,502\n11,502\n", "{}", stderr(&o));
    let o = trawl(&["sql", &snap, "-c", "DROP TABLE calls"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).starts_with("trawl: trawl sql is read-only: `DROP TABLE`"), "{}", stderr(&o));
    let o = trawl(&["sql", &snap, "-c", "SELECT nope FROM calls"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("nope"), "{}", stderr(&o));
    // Without -c or -f and with no terminal, statements come from standard input.
    let mut child = Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args(["sql", &snap, "--format", "csv"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        stdin.write_all(b"\\d calls\nSELECT count(*) AS n FROM calls;\n").ok();
    }
    let o = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    let text = stdout(&o);
    assert!(text.starts_with("calls (view)\n  snapshot "), "{text}");
    assert!(text.contains("  endpoint "), "{text}");
    assert!(text.ends_with("n\n18\n"), "{text}");
}

/// The interactive shell on a pseudo-terminal: a statement over several
/// lines, `\d`, `\kfl`, a refused write, an error that does not end the
/// session, and the history file.
#[test]
fn sql_shell_is_interactive_on_a_terminal() {
    let snap = demo_snapshot();
    let home = scratch("sql-home");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sql_shell_pty.py");
    let o = Command::new("python3")
        .arg(&script)
        .args([
            env!("CARGO_BIN_EXE_trawl"),
            &snap,
            "SELECT count(*) AS n",
            "FROM calls",
            ";",
            "\\d calls",
            "\\kfl http && status_code >= 500",
            "DROP TABLE calls;",
            "SELECT nope FROM calls;",
            "SELECT 41 + 1 AS answer;",
            "\\q",
        ])
        .env("TRAWL_TEST_HOME", &home)
        .output()
        .unwrap_or_else(|e| panic!("python3 (needed for this test): {e}"));
    let text = stdout(&o);
    assert!(text.contains("trawl sql on checkout.snap (read-only)"), "{text}");
    assert!(text.contains("n\r\n--\r\n18\r\n"), "{text}");
    assert!(text.contains("calls (view)"), "{text}");
    assert!(
        text.contains("SELECT * FROM calls WHERE protocol IN ([Utf8(\"http\"), Utf8(\"grpc\"), Utf8(\"graphql\")])"),
        "{text}"
    );
    assert!(text.contains("error: trawl sql is read-only: `DROP TABLE`"), "{text}");
    assert!(text.contains("error: No field named nope"), "{text}");
    assert!(text.contains("answer\r\n------\r\n42\r\n"), "{text}");
    let history = fs::read_to_string(home.join(".trawl_sql_history")).unwrap_or_default();
    assert!(history.contains("SELECT 41 + 1 AS answer;"), "{history}");
}

/// Count and sha256 over (capture time ns LE, captured bytes) of every
/// packet, as testdata/golden/archive_vs_tshark.tsv has them.
fn packet_digest(path: &Path) -> (u64, String) {
    let mut r =
        trawl_analyze::input::CaptureReader::open(path, Default::default(), 1 << 20).unwrap_or_else(|e| panic!("{e}"));
    let mut h = sha2::Sha256::new();
    let mut n = 0;
    while let Some(c) = r.next_chunk() {
        for f in &c.frames {
            h.update(f.ts_ns.to_le_bytes());
            h.update(&c.data[f.start as usize..(f.start + f.len) as usize]);
            n += 1;
        }
    }
    (n, trawl_hex(&h.finalize()))
}

fn golden_export(case: &str) -> (String, u64, String) {
    let text = fs::read_to_string(testdata("golden/archive_vs_tshark.tsv")).unwrap_or_default();
    let row =
        text.lines().find(|l| l.starts_with(case)).unwrap_or_else(|| panic!("{case} not in archive_vs_tshark.tsv"));
    let f: Vec<&str> = row.split('\t').collect();
    (f[2].to_string(), f[4].parse().unwrap_or(u64::MAX), f[5].to_string())
}

#[test]
fn export_pcap_kfl_gives_exactly_the_connections_tshark_finds() {
    let dir = scratch("export");
    // The last case is a UDP flow whose datagrams were fragmented: its
    // export holds every fragment (tshark's `udp.stream == 0` holds only
    // the 6 frames with a UDP header; the reference is `ip.proto == 17`).
    for (case, table, kfl) in [
        ("kfl:http && status_code >= 400", "calls", "http && status_code >= 400"),
        ("kfl:http && status_code >= 500", "calls", "http && status_code >= 500"),
        ("flows:udp", "flows", "udp"),
    ] {
        let (file, packets, sha) = golden_export(case);
        let input = match file.as_str() {
            "checkout.pcap" => testdata("demo/checkout.pcap"),
            "udp-fragments.pcap" => testdata("scenarios/udp-fragments.pcap"),
            _ => testdata(&format!("corpus/{file}")),
        };
        let snap = dir.join(format!("{file}.snap"));
        let o = trawl(&["analyze", &input, "--json", "-o", &snap.display().to_string()]);
        assert!(o.status.success(), "{}", stderr(&o));
        if file == "udp-fragments.pcap" {
            // tshark: 20 frames are fragments (`ip.flags.mf == 1 ||
            // ip.frag_offset > 0`), 4 complete a datagram (`ip.fragments`).
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
            assert_eq!(
                (
                    v["manifest"]["counters"]["ip_fragments"].as_u64(),
                    v["manifest"]["counters"]["ip_reassembled"].as_u64()
                ),
                (Some(20), Some(4))
            );
        }
        let out = dir.join("out.pcapng");
        let o = trawl(&[
            "export-pcap",
            &snap.display().to_string(),
            "--table",
            table,
            "--kfl",
            kfl,
            "-o",
            &out.display().to_string(),
            "--annotate",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).starts_with(&format!("exported {packets} packets")), "{}", stdout(&o));
        // tshark: `tcp.stream in {streams of http.response.code >= N}`.
        assert_eq!(packet_digest(&out), (packets, sha), "{case}");
    }
    // A KFL error is one line with exit 2; nothing is written.
    let snap = dir.join("checkout.pcap.snap");
    let out = dir.join("bad.pcapng");
    let o = trawl(&[
        "export-pcap",
        &snap.display().to_string(),
        "--kfl",
        "status_code >=",
        "-o",
        &out.display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!out.exists());
    let o =
        trawl(&["export-pcap", &snap.display().to_string(), "--bpf", "port banana", "-o", &out.display().to_string()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).starts_with("trawl: --bpf: `port banana` is not a valid filter"), "{}", stderr(&o));
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn snapshots_live_in_a_workspace_and_travel_as_one_file() {
    let dir = scratch("workspace");
    let ws = dir.join("ws");
    let archive = dir.join("archive");
    fs::create_dir_all(archive.join("node-a")).ok();
    fs::copy(testdata("demo/checkout.pcap"), archive.join("node-a/checkout.pcap")).ok();
    let w = ws.display().to_string();
    let a = archive.display().to_string();
    let o = trawl(&["archive", "boundaries", &a, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let b: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    assert_eq!(b["nodes"][0]["name"], "node-a");
    assert_eq!(b["oldest"], "2026-11-22T02:14:11.461671000Z");
    // --last counts back from the newest packet: the last 100 ms.
    let o = trawl(&["snapshot", "create", &a, "--last", "100ms", "--name", "incident-1", "--workspace", &w, "--index"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = trawl(&["snapshot", "create", &a, "--last", "100ms", "--name", "incident-1", "--workspace", &w]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("already exists; a snapshot is immutable"), "{}", stderr(&o));
    let o = trawl(&["snapshot", "list", "--workspace", &w, "--json"]);
    let l: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    assert_eq!(l[0]["name"], "incident-1");
    assert_eq!(l[0]["state"], "indexed");
    let o = trawl(&["snapshot", "show", "incident-1", "--workspace", &w]);
    let show: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    assert_eq!(show["state"], "indexed");
    assert_eq!(show["cut"]["nodes"][0]["name"], "node-a");
    assert_eq!(show["tables"]["packets"]["rows"], show["cut"]["nodes"][0]["packets"]);
    // Names are resolved in the workspace by query and export too.
    let q = Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args(["query", "incident-1", "--kfl", "http", "--count"])
        .env("TRAWL_WORKSPACE", &ws)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(q.status.success(), "{}", stderr(&q));
    let in_window: u64 = stdout(&q).trim().parse().unwrap_or(u64::MAX);
    assert!(in_window > 0 && in_window < 18, "{in_window}: the last 100 ms hold some of the 18 calls");
    // What a killed index left inside the snapshot, and a killed export
    // beside its output (named after a process that no longer runs), is
    // removed by the next index and export.
    let stale_index = ws.join("incident-1/.index.tmp-999999999");
    fs::create_dir_all(&stale_index).ok();
    let o = trawl(&["snapshot", "index", "incident-1", "--workspace", &w, "--force", "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stale_index.exists(), "a killed index's temporary is left");
    let stale_export = dir.join(".w.pcapng.tmp-999999999");
    fs::write(&stale_export, b"partial").ok();
    // Export by name: the packets of the window, on an interface named
    // after the node (what Wireshark shows as frame.interface_name).
    let pcap = dir.join("w.pcapng");
    let e = Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args(["export-pcap", "incident-1", "--kfl", "http", "-o", &pcap.display().to_string(), "--json"])
        .env("TRAWL_WORKSPACE", &ws)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(e.status.success(), "{}", stderr(&e));
    let summary: serde_json::Value = serde_json::from_slice(&e.stdout).unwrap_or_default();
    assert!(summary["summary"]["packets"].as_u64().unwrap_or(0) > 0, "{summary}");
    let bytes = fs::read(&pcap).unwrap_or_default();
    assert!(bytes.windows(6).any(|w| w == b"node-a"), "no interface named node-a");
    assert!(!stale_export.exists(), "a killed export's temporary is left");
    // A name cannot leave the workspace.
    for bad in ["../escape", "/tmp/x", ".."] {
        let o = trawl(&["snapshot", "create", &a, "--name", bad, "--workspace", &w]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(stderr(&o).contains("stays inside the workspace"), "{}", stderr(&o));
    }
    // pack, unpack under a new name: byte-identical; delete.
    let packed = dir.join("s.tar.zst");
    let o = trawl(&["snapshot", "pack", "incident-1", "--workspace", &w, "-o", &packed.display().to_string()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = trawl(&["snapshot", "unpack", &packed.display().to_string(), "--name", "copy", "--workspace", &w]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["manifest.json", "snapshot.json", "api_calls.parquet", "packets.parquet", "raw/node-a.pcapng"] {
        assert_eq!(fs::read(ws.join("incident-1").join(f)).ok(), fs::read(ws.join("copy").join(f)).ok(), "{f}");
    }
    let o = trawl(&["snapshot", "delete", "copy", "--workspace", &w]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!ws.join("copy").exists());
    let o = trawl(&["snapshot", "delete", "copy", "--workspace", &w]);
    assert_eq!(o.status.code(), Some(2));
    // A window outside the archive is empty but valid; a bad time is exit 2.
    let o = trawl(&["snapshot", "create", &a, "--start", "yesterday", "-o", &dir.join("x.snap").display().to_string()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).starts_with("trawl: --start: expected an RFC 3339 time"), "{}", stderr(&o));
    fs::remove_dir_all(&dir).ok();
}

//! `trawl index` end to end: a node's archive of rotated captures into a
//! dataset, read back by every query surface, and by another engine.
//!
//! The rotated files are cut from the story recordings (real servers and
//! clients, testdata/scenarios/stories) so that connections and calls
//! span file boundaries. The reference is always `trawl analyze` of the
//! same files: the dataset must hold the same rows, with ids that are
//! only renumbered (`node_number << 40`, unique across nodes).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pcap_file::pcap::{PcapReader, PcapWriter};
use serde_json::Value;

use super::{scratch, stderr, stdout, testdata};

thread_local! {
    /// Environment of the trawl processes this test thread starts (the
    /// S3 server's endpoint and credentials).
    static ENV: std::cell::RefCell<Vec<(String, String)>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_trawl"));
    ENV.with(|e| {
        for (k, v) in e.borrow().iter() {
            c.env(k, v);
        }
    });
    c
}

fn trawl(args: &[&str]) -> std::process::Output {
    command().args(args).output().unwrap_or_else(|e| panic!("running trawl: {e}"))
}

/// Ids of a node (`layout::NODE_SHIFT`): node 1's start at 2^40.
const NODE_BASE: u64 = 1 << 40;

/// Cuts `pcap` into files of `frames` frames named as the capture agent
/// names rotated files (`NODE-STARTNS.pcap`, so names sort by time), in
/// `dir`; returns them in order with their frame counts.
pub(super) fn rotate(pcap: &str, dir: &Path, node: &str, frames: usize) -> Vec<(PathBuf, u64)> {
    rotate_earlier(pcap, dir, node, frames, Duration::ZERO)
}

/// [`rotate`], with every capture time moved `earlier`.
fn rotate_earlier(pcap: &str, dir: &Path, node: &str, frames: usize, earlier: Duration) -> Vec<(PathBuf, u64)> {
    fs::create_dir_all(dir).ok();
    let file = fs::File::open(pcap).unwrap_or_else(|e| panic!("{pcap}: {e}"));
    let mut r = PcapReader::new(file).unwrap_or_else(|e| panic!("{pcap}: {e}"));
    let header = r.header();
    let mut out: Vec<(PathBuf, u64)> = Vec::new();
    let mut writer: Option<PcapWriter<fs::File>> = None;
    let mut n = 0;
    while let Some(p) = r.next_packet() {
        let mut p = p.unwrap_or_else(|e| panic!("{pcap}: {e}"));
        p.timestamp = p.timestamp.saturating_sub(earlier);
        if n % frames == 0 {
            let path = dir.join(format!("{node}-{:020}.pcap", p.timestamp.as_nanos()));
            let f = fs::File::create(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            writer = Some(PcapWriter::with_header(f, header).unwrap_or_else(|e| panic!("{e}")));
            out.push((path, 0));
        }
        if let Some(w) = writer.as_mut() {
            w.write_packet(&p).unwrap_or_else(|e| panic!("{e}"));
        }
        if let Some(last) = out.last_mut() {
            last.1 += 1;
        }
        n += 1;
    }
    out
}

/// Rotated capture files and their frame counts.
type Rotated = Vec<(PathBuf, u64)>;

/// The archive of node-a in `dir`: the baseline shop `hours_back` hours
/// before the broken shop, both cut every `frames` frames; returns the
/// archive and the old and new files.
fn old_hour_then_broken(dir: &Path, frames: usize, hours_back: u64) -> (PathBuf, Rotated, Rotated) {
    let archive = dir.join("node-a");
    let earlier = Duration::from_secs(hours_back * 3600);
    let old =
        rotate_earlier(&testdata("scenarios/stories/baseline.pcap"), &dir.join("rot-old"), "node-a", frames, earlier);
    let new = rotate(&testdata("scenarios/stories/broken.pcap"), &dir.join("rot-new"), "node-a", frames);
    deliver(&old, &archive);
    deliver(&new, &archive);
    (archive, old, new)
}

/// Puts rotated files into the archive `to` one by one, as the capture
/// agent does (written under a dot-name, then renamed).
fn deliver(files: &[(PathBuf, u64)], to: &Path) {
    fs::create_dir_all(to).ok();
    for (f, _) in files {
        let name = f.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let tmp = to.join(format!(".{name}.tmp"));
        fs::copy(f, &tmp).unwrap_or_else(|e| panic!("{e}"));
        fs::rename(&tmp, to.join(&name)).unwrap_or_else(|e| panic!("{e}"));
    }
}

pub(super) fn s(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

/// Every row of a table (`calls` or `flows`) of one node as JSON, without
/// the columns that name the run rather than the traffic (`snapshot`,
/// `id`), flow ids less `base`, sorted.
fn rows(data: &str, table: &str, node: Option<&str>, base: u64) -> Vec<String> {
    let kfl = node.map(|n| format!("node_name == \"{n}\"")).unwrap_or_default();
    let o = trawl(&[
        "query",
        data,
        "--table",
        table,
        "--kfl",
        &kfl,
        "--format",
        "ndjson",
        "--limit",
        "0",
        "--columns",
        "all",
    ]);
    assert!(o.status.success(), "{data}: {}", stderr(&o));
    let mut out: Vec<String> = stdout(&o)
        .lines()
        .map(|l| {
            let mut v: BTreeMap<String, Value> = serde_json::from_str(l).unwrap_or_default();
            v.remove("snapshot");
            v.remove("id");
            if let Some(f) = v.get("flow_id").and_then(Value::as_u64) {
                v.insert("flow_id".into(), (f - base).into());
            }
            for x in v.values_mut() {
                if let Some(t) = x.as_str().and_then(to_microseconds) {
                    *x = Value::String(t);
                }
            }
            serde_json::to_string(&v).unwrap_or_default()
        })
        .collect();
    out.sort();
    out
}

/// A capture time as RFC 3339 with exactly six fractional digits, or `None`
/// for any other text. A dataset keeps capture times to the microsecond
/// (Delta's timestamp), so a pcapng's nanoseconds are compared to there;
/// and the JSON writer prints as few digits as the value needs (`.135Z`
/// for `.135000`), so both sides are written out in full.
fn to_microseconds(t: &str) -> Option<String> {
    let (secs, frac) = t.strip_suffix('Z')?.split_once('.')?;
    let timestamp = secs.len() == 19 && secs.as_bytes()[10] == b'T';
    if !timestamp || frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(format!("{secs}.{:0<6.6}Z", frac))
}

#[test]
fn capture_times_compare_to_the_microsecond() {
    let us = Some("2026-12-07T04:02:44.135000Z".to_string());
    assert_eq!(to_microseconds("2026-12-07T04:02:44.135Z"), us);
    assert_eq!(to_microseconds("2026-12-07T04:02:44.135000987Z"), us);
    assert_eq!(to_microseconds("2026-12-07T04:02:44.135000Z"), us);
    assert_eq!(to_microseconds("GET /a.b"), None);
}

fn sql(data: &str, q: &str) -> Vec<BTreeMap<String, Value>> {
    let o = trawl(&["sql", data, "--format", "ndjson", "-c", q]);
    assert!(o.status.success(), "{data}: {q}: {}", stderr(&o));
    stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap_or_default()).collect()
}

fn count(data: &str, q: &str) -> u64 {
    sql(data, q).first().and_then(|r| r.values().next().and_then(Value::as_u64)).unwrap_or(u64::MAX)
}

/// `trawl analyze` of a node's archive, as that node's snapshot.
fn analyze(archive: &Path, node: &str) -> PathBuf {
    let snap = archive.with_extension("snap");
    let o = trawl(&["analyze", s(archive), "--node", node, "-o", s(&snap), "--force", "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    snap
}

/// The dataset holds, for `node`, the rows `trawl analyze` finds in the
/// same files: the same calls and flows (every column), flow ids shifted
/// by the node's base, call ids unique and dense, a packet row per frame.
fn assert_same_as_analyze(dataset: &str, archive: &Path, node: &str, base: u64) {
    let snap = analyze(archive, node);
    for table in ["calls", "flows"] {
        let want = rows(s(&snap), table, None, 0);
        let got = rows(dataset, table, Some(node), base);
        assert!(!want.is_empty(), "{table}: the story has rows");
        assert_eq!(got.len(), want.len(), "{table}: rows");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g, w, "{table}");
        }
    }
    let n = count(s(&snap), "SELECT count(*) FROM calls");
    let ids = sql(
        dataset,
        &format!("SELECT count(DISTINCT id) n, min(id) lo, max(id) hi FROM calls WHERE snapshot = '{node}'"),
    );
    assert_eq!(ids[0]["n"], n, "call ids are unique");
    assert_eq!(ids[0]["lo"], base + 1);
    assert_eq!(ids[0]["hi"], base + n, "call ids are dense");
    assert_eq!(
        count(dataset, &format!("SELECT count(*) FROM packets WHERE snapshot = '{node}'")),
        count(s(&snap), "SELECT count(*) FROM packets"),
        "one packet row per frame"
    );
}

/// Every data file of `table` that the Delta log adds carries the
/// statistics readers prune by: its row count (they add up to `rows`)
/// and its capture-time range, to the millisecond, within the table's.
fn assert_file_statistics(ds: &Path, table: &str, rows: u64) {
    let (lo, hi) = {
        let r = &sql(s(ds), &format!("SELECT min(timestamp) lo, max(timestamp) hi FROM {table}"))[0];
        let ms = |v: &Value| v.as_str().and_then(|t| t.get(..23)).map(String::from).unwrap_or_default();
        (ms(&r["lo"]), ms(&r["hi"]))
    };
    let mut total = 0;
    let mut files = 0;
    let log = ds.join(table).join("_delta_log");
    for entry in std::fs::read_dir(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display())) {
        let path = entry.map(|e| e.path()).unwrap_or_default();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap_or_default().lines() {
            let action: Value = serde_json::from_str(line).unwrap_or_default();
            let Some(add) = action.get("add").filter(|a| a["dataChange"] == true) else { continue };
            let stats: Value = serde_json::from_str(add["stats"].as_str().unwrap_or_default()).unwrap_or_default();
            let (min, max) = (stats["minValues"]["timestamp"].as_str(), stats["maxValues"]["timestamp"].as_str());
            let (Some(min), Some(max)) = (min.and_then(|t| t.get(..23)), max.and_then(|t| t.get(..23))) else {
                panic!("{}: no time range: {stats}", path.display())
            };
            assert!(lo.as_str() <= min && min <= max && max <= hi.as_str(), "{min}..{max} outside {lo}..{hi}");
            assert_eq!(stats["nullCount"]["timestamp"], 0);
            let file = ds.join(table).join(add["path"].as_str().unwrap_or_default());
            assert_eq!(add["size"].as_u64(), fs::metadata(&file).ok().map(|m| m.len()), "{}", file.display());
            total += stats["numRecords"].as_u64().unwrap_or_default();
            files += 1;
        }
    }
    assert!(files > 0);
    assert_eq!(total, rows, "{table}: rows in the files' statistics");
}

/// The last file sequence number of `node` a reader sees (`None` before
/// the first commit).
fn committed(ds: &str, node: &str) -> Option<u64> {
    if !Path::new(ds).join("_trawl").is_dir() {
        return None;
    }
    let q = format!("SELECT max(file_index) m FROM packets WHERE snapshot = '{node}'");
    let o = trawl(&["sql", ds, "--format", "ndjson", "-c", &q]);
    if !o.status.success() {
        return None;
    }
    let v: Value = stdout(&o).lines().next().and_then(|l| serde_json::from_str(l).ok()).unwrap_or_default();
    v["m"].as_u64()
}

fn wait_for(mut ok: impl FnMut() -> bool, limit: Duration) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn signal(child: &Child, sig: &str) {
    let _ = Command::new("kill").args([sig, &child.id().to_string()]).status();
}

fn index_child(archive: &Path, ds: &str, extra: &[&str]) -> Child {
    command()
        .args(["index", s(archive), "--to", ds, "--json"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn index_in_two_runs_equals_analyze_of_the_same_files() {
    let dir = scratch("dataset-two-runs");
    let files = rotate(&testdata("scenarios/stories/broken.pcap"), &dir.join("rotated"), "node-a", 40);
    assert!(files.len() >= 8, "{} files", files.len());
    let archive = dir.join("node-a");
    let ds = dir.join("ds");
    // The first half, as an agent that is still capturing: --follow,
    // stopped by SIGTERM once its files are committed.
    deliver(&files[..4], &archive);
    let child = index_child(&archive, s(&ds), &["--follow", "--poll", "0.1"]);
    wait_for(|| committed(s(&ds), "node-a") == Some(3), Duration::from_secs(60));
    signal(&child, "-TERM");
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(report["files"].as_array().map(Vec::len), Some(4), "{report}");
    assert_eq!(report["node_number"], 1);

    // The rest, by a second run: it reads back the files whose connections
    // were still open, and goes on.
    deliver(&files[4..], &archive);
    let o = trawl(&["index", s(&archive), "--to", s(&ds), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap_or_default();
    assert_eq!(report["files"].as_array().map(Vec::len), Some(files.len() - 4));
    assert!(report["replayed"].as_u64().is_some_and(|r| r >= 1), "{report}");
    assert_same_as_analyze(s(&ds), &archive, "node-a", NODE_BASE);

    // Nothing new: a third run commits nothing and changes nothing.
    let o = trawl(&["index", s(&archive), "--to", s(&ds), "--json"]);
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap_or_default();
    assert_eq!(report["files"].as_array().map(Vec::len), Some(0), "{report}");
    assert_same_as_analyze(s(&ds), &archive, "node-a", NODE_BASE);

    assert_file_statistics(&ds, "api_calls", count(s(&ds), "SELECT count(*) FROM calls"));

    // KFL's now() is the newest data: the story's last five minutes are
    // all of it.
    let kfl = "http && status_code >= 500 && timestamp > now() - duration(\"5m\")";
    let o = trawl(&["query", s(&ds), "--kfl", kfl, "--format", "ndjson", "--limit", "0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let snap = archive.with_extension("snap");
    assert_eq!(
        stdout(&o).lines().count() as u64,
        count(s(&snap), "SELECT count(*) FROM http WHERE status_code >= 500")
    );

    // PCAP export: captures were not uploaded, so the error names the node
    // and file; with the archive at hand, the same packets as the
    // snapshot's export.
    let out = dir.join("ds.pcapng");
    let o = trawl(&["export-pcap", s(&ds), "--kfl", "http && status_code >= 500", "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("of node node-a") && stderr(&o).contains("--upload-captures"), "{}", stderr(&o));
    assert!(!out.exists(), "nothing half-written");
    let o = trawl(&["export-pcap", s(&ds), "--kfl", "http && status_code >= 500", "-o", s(&out), "--archive", s(&dir)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let want = dir.join("snap.pcapng");
    let o = trawl(&["export-pcap", s(&snap), "--kfl", "http && status_code >= 500", "-o", s(&want)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(super::packet_digest(&out), super::packet_digest(&want));
    fs::remove_dir_all(&dir).ok();
}

/// The frames of the first `n` files.
fn frames_of(files: &[(PathBuf, u64)], n: usize) -> u64 {
    files.iter().take(n).map(|f| f.1).sum()
}

#[test]
fn sigkill_at_twenty_moments_loses_nothing_and_doubles_nothing() {
    let dir = scratch("dataset-sigkill");
    let files = rotate(&testdata("scenarios/stories/rush.pcap"), &dir.join("rotated"), "node-a", 20);
    assert!(files.len() >= 15, "{} files", files.len());
    let archive = dir.join("node-a");
    let ds = dir.join("ds");
    deliver(&files, &archive);
    // How long a whole run takes here, to spread the kills over it.
    let probe = dir.join("probe");
    let start = Instant::now();
    let o = trawl(&["index", s(&archive), "--to", s(&probe), "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let run_ms = start.elapsed().as_millis().max(200) as u64;
    // Twenty moments from a fixed pseudo-random sequence (a failure repeats).
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut kills = 0;
    let mut runs = 0;
    let mut committed_before = 0;
    while kills < 20 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // Within what is left of a run (the earlier runs' files are done).
        let left = (files.len() - committed_before).max(1) as u64;
        let at = Duration::from_millis(30 + seed % (run_ms * left / files.len() as u64).max(1));
        runs += 1;
        assert!(runs < 60, "only {kills} of {runs} runs were killed before they finished");
        let child = index_child(&archive, s(&ds), &["-q"]);
        std::thread::sleep(at);
        signal(&child, "-KILL");
        let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
        if out.status.success() {
            // Finished before the kill: start over in a fresh dataset so
            // that every kill lands in a run that has work to do.
            fs::remove_dir_all(&ds).ok();
            committed_before = 0;
            continue;
        }
        kills += 1;
        // A reader sees whole files only: the packet rows of exactly the
        // files committed, and never fewer than before the kill.
        if let Some(seq) = committed(s(&ds), "node-a") {
            let n = seq as usize + 1;
            let packets = count(s(&ds), "SELECT count(*) FROM packets");
            assert_eq!(packets, frames_of(&files, n), "kill {kills} at {at:?}: files 0..={seq}");
            assert!(n >= committed_before, "kill {kills}: a commit was lost");
            committed_before = n;
        }
    }
    let o = trawl(&["index", s(&archive), "--to", s(&ds), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same_as_analyze(s(&ds), &archive, "node-a", NODE_BASE);
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn two_nodes_commit_at_once_and_a_reader_sees_whole_commits() {
    let dir = scratch("dataset-two-nodes");
    let a = rotate(&testdata("scenarios/stories/broken.pcap"), &dir.join("rot-a"), "node-a", 25);
    let b = rotate(&testdata("scenarios/stories/baseline.pcap"), &dir.join("rot-b"), "node-b", 25);
    let (arch_a, arch_b) = (dir.join("node-a"), dir.join("node-b"));
    deliver(&a, &arch_a);
    deliver(&b, &arch_b);
    let ds = dir.join("ds");
    // The dataset exists before the readers start (either node creates it).
    let ca = index_child(&arch_a, s(&ds), &[]);
    let cb = index_child(&arch_b, s(&ds), &[]);
    // Read throughout: each node's packet rows are always those of a whole
    // number of its files, never a part of a commit.
    let mut seen = 0;
    let start = Instant::now();
    let mut done = (None, None);
    let (mut ca, mut cb) = (Some(ca), Some(cb));
    while done.0.is_none() || done.1.is_none() {
        assert!(start.elapsed() < Duration::from_secs(120), "indexers did not finish");
        for (child, slot) in [(&mut ca, &mut done.0), (&mut cb, &mut done.1)] {
            if let Some(c) = child.as_mut()
                && let Ok(Some(_)) = c.try_wait()
            {
                *slot = child.take().map(|c| c.wait_with_output());
            }
        }
        if !ds.join("_trawl").is_dir() {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        let o = trawl(&[
            "sql",
            s(&ds),
            "--format",
            "ndjson",
            "-c",
            "SELECT snapshot, count(*) n, max(file_index) m FROM packets GROUP BY snapshot",
        ]);
        if !o.status.success() {
            // The tables may not all exist yet at the very start.
            assert!(stderr(&o).contains("not a trawl dataset"), "{}", stderr(&o));
            continue;
        }
        for l in stdout(&o).lines() {
            let v: Value = serde_json::from_str(l).unwrap_or_default();
            let files = if v["snapshot"] == "node-a" { &a } else { &b };
            let n = v["m"].as_u64().map_or(0, |m| m as usize + 1);
            assert_eq!(v["n"].as_u64(), Some(frames_of(files, n)), "{v}: a part of a commit is visible");
            seen += 1;
        }
    }
    assert!(seen >= 3, "the reader saw the dataset {seen} times while it grew");
    let mut numbers = Vec::new();
    for out in [done.0, done.1].into_iter().flatten() {
        let out = out.unwrap_or_else(|e| panic!("{e}"));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let r: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        numbers.push((r["node"].as_str().unwrap_or_default().to_string(), r["node_number"].as_u64().unwrap_or(0)));
    }
    numbers.sort();
    let mut nums: Vec<u64> = numbers.iter().map(|n| n.1).collect();
    nums.sort();
    assert_eq!(nums, [1, 2], "each node has its own number: {numbers:?}");
    for (node, number) in &numbers {
        let archive = if node == "node-a" { &arch_a } else { &arch_b };
        assert_same_as_analyze(s(&ds), archive, node, number << 40);
    }
    // Ids are unique across the nodes: a call id names one call.
    let all = sql(s(&ds), "SELECT count(*) n, count(DISTINCT id) d, count(DISTINCT flow_id) f FROM calls");
    assert_eq!(all[0]["n"], all[0]["d"]);
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_dataset_on_an_s3_server_reads_like_a_local_one() {
    let dir = scratch("dataset-s3");
    let s3 = trawl_dataset::test_server::S3TestServer::start("traffic");
    ENV.with(|e| *e.borrow_mut() = s3.env());
    let files = rotate(&testdata("scenarios/stories/broken.pcap"), &dir.join("rotated"), "node-a", 50);
    let archive = dir.join("node-a");
    deliver(&files, &archive);
    let ds = "s3://traffic/cluster-1";
    let o = trawl(&["index", s(&archive), "--to", ds, "--upload-captures", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap_or_default();
    assert_eq!(report["files"].as_array().map(Vec::len), Some(files.len()));
    assert_eq!(
        report["files"][0]["upload"],
        format!(
            "captures/node=node-a/{}",
            files[0].0.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default()
        )
    );
    assert_same_as_analyze(ds, &archive, "node-a", NODE_BASE);
    // Another engine reads the same rows: the deltalake package (delta-rs's
    // Python binding) and polars, over the same S3 server.
    let script = format!(
        r#"
import json, hashlib, boto3, deltalake, polars as pl
opts = {{"AWS_ENDPOINT_URL": "{ep}", "AWS_ACCESS_KEY_ID": "trawl-test", "AWS_SECRET_ACCESS_KEY": "trawl-test",
        "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true", "AWS_CONDITIONAL_PUT": "etag"}}
out = {{}}
for t in ["api_calls", "flows", "packets"]:
    dt = deltalake.DeltaTable("{ds}/" + t, storage_options=opts)
    df = pl.read_delta("{ds}/" + t, storage_options=opts)
    out[t] = {{"rows": df.height, "partitions": dt.metadata().partition_columns}}
calls = pl.read_delta("{ds}/api_calls", storage_options=opts)
out["ids"] = sorted(calls["id"].to_list())
out["errors"] = calls.filter(pl.col("status_code") >= 500).height
s3 = boto3.client("s3", endpoint_url="{ep}", aws_access_key_id="trawl-test", aws_secret_access_key="trawl-test",
                  region_name="us-east-1")
body = s3.get_object(Bucket="traffic", Key="cluster-1/{first}")["Body"].read()
out["upload_sha256"] = hashlib.sha256(body).hexdigest()
print(json.dumps(out))
"#,
        ep = s3.endpoint,
        first = report["files"][0]["upload"].as_str().unwrap_or_default(),
    );
    let py = Command::new("python3").args(["-c", &script]).output().unwrap_or_else(|e| panic!("{e}"));
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    let v: Value = serde_json::from_slice(&py.stdout).unwrap_or_default();
    let ids = sql(ds, "SELECT id FROM calls ORDER BY id");
    let ids: Vec<Value> = ids.into_iter().map(|r| r["id"].clone()).collect();
    assert_eq!(v["ids"], Value::Array(ids), "the same call ids");
    assert_eq!(v["api_calls"]["partitions"], serde_json::json!(["node", "hour"]));
    assert_eq!(v["packets"]["rows"], count(ds, "SELECT count(*) FROM packets"));
    assert_eq!(v["flows"]["rows"], count(ds, "SELECT count(*) FROM flows"));
    assert_eq!(v["errors"], count(ds, "SELECT count(*) FROM calls WHERE status_code >= 500"));
    // The uploaded capture is the archive's file, byte for byte.
    let want = super::trawl_hex(&<sha2::Sha256 as sha2::Digest>::digest(fs::read(&files[0].0).unwrap_or_default()));
    assert_eq!(v["upload_sha256"], want);
    // PCAP export works from object storage alone (the uploaded captures):
    // the same packets as the snapshot's export.
    let kfl = "http && status_code >= 500";
    let (from_ds, from_snap) = (dir.join("ds.pcapng"), dir.join("snap.pcapng"));
    let o = trawl(&["export-pcap", ds, "--kfl", kfl, "-o", s(&from_ds)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let snap = archive.with_extension("snap");
    let o = trawl(&["export-pcap", s(&snap), "--kfl", kfl, "-o", s(&from_snap)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let want = super::packet_digest(&from_snap);
    assert!(want.0 > 0);
    assert_eq!(super::packet_digest(&from_ds), want);
    ENV.with(|e| e.borrow_mut().clear());
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn follow_mode_makes_each_rotated_file_queryable_and_serves_an_agent() {
    let dir = scratch("dataset-follow");
    let files = rotate(&testdata("scenarios/stories/broken.pcap"), &dir.join("rotated"), "node-a", 40);
    let archive = dir.join("node-a");
    fs::create_dir_all(&archive).ok();
    let ds = dir.join("ds");
    let child = index_child(&archive, s(&ds), &["--follow", "--poll", "0.2"]);
    // Files appear over time, each written under a dot-name and renamed:
    // each one's rows are queryable soon after (benches/dataset.sh
    // measures the lag; this bound only catches a file left behind).
    let mut lags = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let renamed = Instant::now();
        deliver(std::slice::from_ref(f), &archive);
        wait_for(|| committed(s(&ds), "node-a") == Some(i as u64), Duration::from_secs(60));
        lags.push(renamed.elapsed());
    }
    // An agent on the live dataset (the indexer still following).
    let o = Command::new("python3")
        .args([
            &format!("{}/tests/mcp/dataset_session.py", env!("CARGO_MANIFEST_DIR")),
            "--trawl",
            env!("CARGO_BIN_EXE_trawl"),
            "--data",
            s(&ds),
        ])
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    assert!(o.status.success(), "the dataset agent session failed (needs `pip install mcp==2.3.0`):\n{}", stderr(&o));
    let found: Value = serde_json::from_str(stdout(&o).trim()).unwrap_or_default();
    signal(&child, "-TERM");
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // What the agent saw: every 503 of the story (its run is shorter than
    // five minutes), openable and traceable by id.
    let snap = analyze(&archive, "node-a");
    let failed = count(s(&snap), "SELECT count(*) FROM http WHERE status_code >= 500");
    assert_eq!(found["failed_total"], failed, "{found}");
    let first = found["ids"][0].as_str().unwrap_or_default().to_string();
    assert_eq!(found["details"]["id"], first);
    assert_eq!(found["details"]["status"], 503);
    assert_eq!(found["trace_root"], first);
    assert_eq!(found["bare_id"], first);
    // Stopped, then finished by a batch run: the same rows as analyze.
    let o = trawl(&["index", s(&archive), "--to", s(&ds), "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same_as_analyze(s(&ds), &archive, "node-a", NODE_BASE);
    let worst = lags.iter().max().copied().unwrap_or_default();
    assert!(worst < Duration::from_secs(30), "a file took {worst:?} to become queryable");
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn retain_drops_old_hours_and_their_captures() {
    let dir = scratch("dataset-retain");
    let (archive, old, new) = old_hour_then_broken(&dir, 50, 3);
    let ds = dir.join("ds");
    let o = trawl(&["index", s(&archive), "--to", s(&ds), "--upload-captures", "--retain", "1h", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap_or_default();
    assert_eq!(report["dropped"]["captures"], old.len() as u64, "{report}");
    assert!(report["dropped"]["files"].as_u64().is_some_and(|f| f > 0), "{report}");
    // What is left is the broken shop's hour: its packets, its calls.
    let recent = dir.join("recent");
    deliver(&new, &recent);
    let snap = analyze(&recent, "node-a");
    assert_eq!(count(s(&ds), "SELECT count(*) FROM packets"), frames_of(&new, new.len()));
    assert_eq!(count(s(&ds), "SELECT count(*) FROM calls"), count(s(&snap), "SELECT count(*) FROM calls"));
    assert_eq!(
        count(s(&ds), "SELECT count(*) FROM calls WHERE status_code >= 500"),
        count(s(&snap), "SELECT count(*) FROM calls WHERE status_code >= 500")
    );
    // The old captures are gone from the dataset, the new ones are there.
    let kept: Vec<String> = fs::read_dir(ds.join("captures/node=node-a"))
        .map(|r| r.flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect())
        .unwrap_or_default();
    assert_eq!(kept.len(), new.len(), "{kept:?}");
    assert!(kept.iter().all(|k| new.iter().any(|(p, _)| p.ends_with(k))), "{kept:?}");
    // Another engine sees the same: the dropped files left the Delta log.
    let py = Command::new("python3")
        .args(["-c", &format!("import polars as pl; print(pl.read_delta('{}/packets').height)", s(&ds))])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(String::from_utf8_lossy(&py.stdout).trim(), frames_of(&new, new.len()).to_string());
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn capture_indexes_its_own_rotated_files_with_index_to() {
    let dir = scratch("dataset-capture");
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0);
    let mut server = Command::new("python3")
        .args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1", "--directory", s(&dir)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("python3 -m http.server: {e}"));
    let (out, ds) = (dir.join("archive"), dir.join("ds"));
    let capture = command()
        .args(["capture", "--iface", "lo", "--out", s(&out), "--node", "n1", "--duration", "7", "--rotate-time", "2s"])
        .args(["--no-kubernetes", "--backend", "af-packet", "--bpf", &format!("tcp port {port}"), "--index-to", s(&ds)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    std::thread::sleep(Duration::from_millis(1500));
    for i in 0..20 {
        let url = format!("http://127.0.0.1:{port}/?request={i}");
        let ok = Command::new("curl").args(["-sf", "-o", "/dev/null", &url]).status().is_ok_and(|s| s.success());
        assert!(ok, "curl {url}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let o = capture.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    let _ = server.kill();
    let _ = server.wait();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Several rotated files, every request in the dataset as one call,
    // the same rows as `trawl analyze` of the capture's files.
    let files = fs::read_dir(out.join("n1"))
        .map(|r| r.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".pcapng")).count())
        .unwrap_or(0);
    assert!(files >= 2, "{files} files");
    assert_eq!(
        count(s(&ds), "SELECT count(*) FROM calls WHERE method = 'GET' AND status_code = 200 AND node_name = 'n1'"),
        20
    );
    assert_same_as_analyze(s(&ds), &out.join("n1"), "n1", NODE_BASE);
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_finished_hour_is_compacted_into_one_file_per_table() {
    let dir = scratch("dataset-compact");
    let (archive, old, new) = old_hour_then_broken(&dir, 40, 2);
    assert!(old.len() >= 6, "{} files", old.len());
    let ds = dir.join("ds");
    let o = trawl(&["index", s(&archive), "--to", s(&ds), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap_or_default();
    // The old hour of packets, parse issues (none), flows and calls.
    assert!(report["compacted"]["hours"].as_u64().is_some_and(|h| h >= 2), "{report}");
    // Each table's old hour is one file now, for another engine too; the
    // rows are those of the batch analysis.
    let script = format!(
        r#"
import json, deltalake
out = {{}}
for t in ["packets", "api_calls"]:
    uris = deltalake.DeltaTable("{ds}/" + t).file_uris()
    hours = {{}}
    for u in uris:
        h = [p for p in u.split("/") if p.startswith("hour=")][0]
        hours[h] = hours.get(h, 0) + 1
    out[t] = sorted(hours.values())
print(json.dumps(out))
"#,
        ds = s(&ds)
    );
    let py = Command::new("python3").args(["-c", &script]).output().unwrap_or_else(|e| panic!("{e}"));
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    let files: Value = serde_json::from_slice(&py.stdout).unwrap_or_default();
    // The finished hour holds one file; the current one, one per capture file.
    assert_eq!(files["packets"], serde_json::json!([1, new.len()]), "{files}");
    assert_eq!(files["api_calls"][0], 1, "{files}");
    assert_same_as_analyze(s(&ds), &archive, "node-a", NODE_BASE);
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn sidecars_that_appear_while_following_name_the_later_rows() {
    let dir = scratch("dataset-sidecars");
    let files = rotate(&testdata("scenarios/k8s/cluster.pcap"), &dir.join("rotated"), "node-a", 20);
    assert!(files.len() >= 8, "{} files", files.len());
    let archive = dir.join("node-a");
    fs::create_dir_all(&archive).ok();
    let ds = dir.join("ds");
    let child = index_child(&archive, s(&ds), &["--follow", "--poll", "0.1"]);
    // The first files come before the capture agent has written its
    // Kubernetes timeline; then the timeline, then the rest.
    deliver(&files[..3], &archive);
    wait_for(|| committed(s(&ds), "node-a") == Some(2), Duration::from_secs(60));
    let timeline = fs::read_dir(testdata("scenarios/k8s/timeline"))
        .ok()
        .and_then(|mut r| r.next())
        .and_then(Result::ok)
        .map(|e| e.path())
        .unwrap_or_default();
    fs::copy(&timeline, archive.join(timeline.file_name().unwrap_or_default())).unwrap_or_else(|e| panic!("{e}"));
    for (i, f) in files.iter().enumerate().skip(3) {
        deliver(std::slice::from_ref(f), &archive);
        wait_for(|| committed(s(&ds), "node-a") == Some(i as u64), Duration::from_secs(60));
    }
    signal(&child, "-TERM");
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The batch analysis with the timeline names every call's pod.
    let snap = analyze(&archive, "node-a");
    let named = |data: &str, from: usize| {
        let q = format!(
            "SELECT count(*) FILTER (WHERE src_pod_name IS NOT NULL) n, count(*) c FROM calls WHERE file_index >= {from}"
        );
        let r = sql(data, &q);
        (r[0]["n"].as_u64().unwrap_or(0), r[0]["c"].as_u64().unwrap_or(0))
    };
    let (all_named, all) = named(s(&snap), 0);
    assert_eq!(all_named, all, "the batch analysis names every call");
    // Calls completed after the timeline was read (from the file after the
    // one during which it appeared) are named; the first files' are not.
    let (n, c) = named(s(&ds), 5);
    assert!(c > 0);
    assert_eq!(n, c, "calls after the timeline appeared are named");
    let early = sql(s(&ds), "SELECT count(*) FILTER (WHERE src_pod_name IS NULL) n FROM calls WHERE file_index <= 2");
    assert!(early[0]["n"].as_u64().is_some_and(|n| n > 0), "the first files' calls had no timeline: {early:?}");
    fs::remove_dir_all(&dir).ok();
}

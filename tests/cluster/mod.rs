//! `trawl cluster`: a scheduler and two executors, each a separate `trawl
//! cluster` process on 127.0.0.1, answering trawl's SQL, KFL and MCP
//! queries over a dataset (on a local folder and on a local S3 server)
//! and over a snapshot. The reference is always the same query run by
//! this machine alone: the cluster's answer must be byte for byte the
//! same, and must have been computed by both executors.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::dataset::{rotate, s};
use super::{scratch, stderr, stdout, testdata};

/// A free TCP port on 127.0.0.1 (the OS's choice; released at once).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

/// A scheduler and its executors, killed when dropped. Each process's
/// standard error goes to a log file in `dir`.
struct Cluster {
    url: String,
    dir: PathBuf,
    env: Vec<(String, String)>,
    scheduler: Child,
    executors: Vec<Child>,
}

impl Cluster {
    /// Starts a scheduler (executors count as lost after `timeout`
    /// seconds without a heartbeat) and `n` executors of one slot each,
    /// and waits until every executor has registered.
    fn start(dir: &Path, env: &[(String, String)], n: usize, timeout: u64) -> Cluster {
        fs::create_dir_all(dir).ok();
        let port = free_port();
        let url = format!("df://127.0.0.1:{port}");
        let mut c =
            Cluster { url, dir: dir.to_path_buf(), env: env.to_vec(), scheduler: dummy(), executors: Vec::new() };
        c.scheduler = c.spawn(
            "scheduler",
            &[
                "cluster",
                "scheduler",
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--executor-timeout",
                &timeout.to_string(),
            ],
        );
        for i in 0..n {
            let (data, tasks) = (free_port(), free_port());
            let child = c.spawn(
                &format!("executor-{i}"),
                &[
                    "cluster",
                    "executor",
                    "--scheduler",
                    &c.url.clone(),
                    "--bind",
                    &format!("127.0.0.1:{data}"),
                    "--grpc-port",
                    &tasks.to_string(),
                    "--slots",
                    "1",
                    "--heartbeat",
                    "1",
                ],
            );
            c.executors.push(child);
        }
        for i in 0..n {
            let log = c.log(&format!("executor-{i}"));
            wait_for(|| fs::read_to_string(&log).unwrap_or_default().contains("Executor registration succeed"), 60);
        }
        c
    }

    fn log(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.log"))
    }

    fn spawn(&self, name: &str, args: &[&str]) -> Child {
        let log = fs::File::create(self.log(name)).unwrap_or_else(|e| panic!("{e}"));
        self.command().args(args).stdout(Stdio::null()).stderr(log).spawn().unwrap_or_else(|e| panic!("{e}"))
    }

    fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_trawl"));
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    /// `trawl ARGS`, on this machine alone.
    fn local(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap_or_else(|e| panic!("{e}"))
    }

    /// `trawl ARGS --cluster URL`.
    fn remote(&self, args: &[&str]) -> Output {
        self.command().args(args).args(["--cluster", &self.url]).output().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Tasks each executor has run so far (from its log).
    fn tasks_run(&self) -> Vec<usize> {
        (0..self.executors.len())
            .map(|i| {
                let log = fs::read_to_string(self.log(&format!("executor-{i}"))).unwrap_or_default();
                log.matches("Finished task").count()
            })
            .collect()
    }

    /// The same command here and on the cluster: the same output,
    /// successful; returns it.
    fn same(&self, args: &[&str]) -> String {
        let here = self.local(args);
        assert!(here.status.success(), "{args:?}: {}", stderr(&here));
        let there = self.remote(args);
        assert!(there.status.success(), "{args:?} --cluster: {}", stderr(&there));
        assert_eq!(stdout(&there), stdout(&here), "{args:?}: the cluster's answer differs");
        stdout(&here)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in self.executors.iter_mut().chain(std::iter::once(&mut self.scheduler)) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A child that has already ended, to fill a field until the real one starts.
fn dummy() -> Child {
    Command::new("true").spawn().unwrap_or_else(|e| panic!("{e}"))
}

fn wait_for(mut ok: impl FnMut() -> bool, secs: u64) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < Duration::from_secs(secs), "not within {secs} s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Two nodes' archives (the story's baseline shop on node-a, the broken
/// shop on node-b), cut into files of 50 frames, indexed into `ds`.
fn two_node_dataset(dir: &Path, ds: &str, env: &[(String, String)]) {
    for (node, story) in [("node-a", "baseline"), ("node-b", "broken")] {
        let archive = dir.join(node);
        rotate(&testdata(&format!("scenarios/stories/{story}.pcap")), &archive, node, 50);
        let o = Command::new(env!("CARGO_BIN_EXE_trawl"))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .args(["index", s(&archive), "--to", ds, "--node", node, "-q"])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(o.status.success(), "{}", stderr(&o));
    }
}

/// SQL every surface of trawl relies on: counts, group-by with
/// percentiles, trawl's functions, a flows-to-calls join, views.
const QUERIES: &[&str] = &[
    "SELECT count(*) AS calls FROM calls",
    "SELECT snapshot, count(*) AS calls, sum(CASE WHEN status_code >= 500 THEN 1 ELSE 0 END) AS failed \
     FROM calls GROUP BY snapshot ORDER BY snapshot",
    "SELECT endpoint, count(*) AS n, approx_percentile_cont(latency_ms, 0.5) AS p50, \
     approx_percentile_cont(latency_ms, 0.99) AS p99, max(latency_ms) AS worst \
     FROM calls GROUP BY endpoint ORDER BY n DESC, endpoint",
    "SELECT c.snapshot, f.protocol, f.zeek_state, count(*) AS calls, sum(f.client_packets + f.server_packets) AS packets, sum(f.retransmissions) AS retransmissions \
     FROM calls c JOIN flows f ON c.snapshot = f.snapshot AND c.flow_id = f.flow_id \
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    "SELECT cidr_match(dst_ip, '127.0.0.0/8') AS loopback, route, map_get(request_headers, 'host', '-') AS host, \
     count(*) AS n FROM calls GROUP BY 1, 2, 3 ORDER BY 4 DESC, 2, 3",
    "SELECT snapshot, id, endpoint, src_name, dst_name, status_code FROM http ORDER BY snapshot, id LIMIT 20",
    "SELECT protocol, count(*) AS flows, sum(client_bytes + server_bytes) AS bytes, approx_percentile_cont(handshake_rtt_us, 0.9) AS rtt_p90 FROM flows GROUP BY 1 ORDER BY 1",
];

/// KFL filters from docs/kfl.md's examples and tables.
const FILTERS: &[(&str, &str)] = &[
    ("calls", "http && status_code >= 500"),
    ("calls", "redis"),
    ("calls", "dst.port == 8082 && request.method == \"POST\""),
    ("calls", "src.ip.startsWith(\"127.\") && elapsed_time > 1000"),
    ("calls", "path.contains(\"/orders\") || status_code == 404"),
    ("flows", "tcp && dst.port >= 8000 && dst.port <= 9000"),
];

/// Every query of the set, here and on the cluster, over `data`.
fn assert_query_set(cluster: &Cluster, data: &str) {
    for q in QUERIES {
        cluster.same(&["sql", data, "--format", "csv", "-c", q]);
    }
    for (table, kfl) in FILTERS {
        let out = cluster.same(&["query", data, "--table", table, "--kfl", kfl, "--format", "csv", "--limit", "0"]);
        let count = cluster.same(&["query", data, "--table", table, "--kfl", kfl, "--count"]);
        let n: usize = count.trim().parse().unwrap_or(usize::MAX);
        assert_eq!(out.lines().count(), n + 1, "{kfl}: a header and one line per row");
    }
    cluster.same(&["query", data, "--table", "flows", "--kfl", "tcp", "--peers", "--format", "csv"]);
}

#[test]
fn a_cluster_answers_every_query_as_this_machine_does() {
    let dir = scratch("cluster-answers");
    let s3 = trawl_dataset::test_server::S3TestServer::start("traffic");
    let env = s3.env();
    let local_ds = dir.join("dataset");
    two_node_dataset(&dir.join("archive-local"), s(&local_ds), &env);
    let s3_ds = "s3://traffic/cluster-1";
    two_node_dataset(&dir.join("archive-s3"), s3_ds, &env);
    let snap = dir.join("broken.snap");
    let o = super::trawl(&["analyze", &testdata("scenarios/stories/broken.pcap"), "-o", s(&snap), "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));

    let cluster = Cluster::start(&dir.join("cluster"), &env, 2, 30);
    // Real values first: the dataset holds both stories' calls, each
    // node as many as `trawl analyze` finds in its recording.
    let per_node = cluster.same(&["sql", s3_ds, "--format", "csv", "-c", QUERIES[1]]);
    let analyzed = |story: &str| {
        let out = dir.join(format!("{story}.snap"));
        let pcap = testdata(&format!("scenarios/stories/{story}.pcap"));
        let o = super::trawl(&["analyze", &pcap, "-o", s(&out), "-q", "--force"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let q = "SELECT count(*), sum(CASE WHEN status_code >= 500 THEN 1 ELSE 0 END) FROM calls";
        let o = super::trawl(&["sql", s(&out), "--format", "csv", "-c", q]);
        stdout(&o).lines().nth(1).unwrap_or_default().to_string()
    };
    assert_eq!(
        per_node,
        format!("snapshot,calls,failed\nnode-a,{}\nnode-b,{}\n", analyzed("baseline"), analyzed("broken")),
    );
    let before = cluster.tasks_run();
    assert_query_set(&cluster, s3_ds);
    // The same tables from a local folder, and a snapshot's Parquet files
    // (read by DataFusion's listing tables rather than trawl's).
    for data in [s(&local_ds), s(&snap)] {
        for q in &QUERIES[2..4] {
            cluster.same(&["sql", data, "--format", "csv", "-c", q]);
        }
        cluster.same(&["query", data, "--kfl", FILTERS[0].1, "--format", "csv"]);
    }
    let after = cluster.tasks_run();
    assert!(after.iter().zip(&before).all(|(a, b)| a > b), "both executors ran tasks: {before:?} -> {after:?}");

    // An agent pages through the calls over MCP: the same pages.
    let session = |extra: &[&str]| -> Value {
        let o = Command::new("python3")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .arg(format!("{}/tests/mcp/paging_session.py", env!("CARGO_MANIFEST_DIR")))
            .args(["--trawl", env!("CARGO_BIN_EXE_trawl"), "--data", s3_ds])
            .args(extra)
            .output()
            .unwrap_or_else(|e| panic!("python3: {e}"));
        assert!(o.status.success(), "the paging session failed (needs `pip install mcp==2.3.0`):\n{}", stderr(&o));
        serde_json::from_str(stdout(&o).trim()).unwrap_or_default()
    };
    let here = session(&[]);
    let there = session(&["--cluster", &cluster.url]);
    assert_eq!(there, here, "the cluster's pages differ");
    let all = &here["time:"];
    let total = cluster.same(&["sql", s3_ds, "--format", "csv", "-c", QUERIES[0]]);
    assert_eq!(all[0]["total"].to_string(), total.lines().nth(1).unwrap_or_default());
    let paged: usize =
        all.as_array().map(|p| p.iter().map(|p| p["ids"].as_array().map_or(0, Vec::len)).sum()).unwrap_or(0);
    assert_eq!(paged.to_string(), total.lines().nth(1).unwrap_or_default(), "every call on some page");
    drop(cluster);
    fs::remove_dir_all(&dir).ok();
}

/// A query heavy enough to run for seconds on two one-slot executors: each
/// call of the dataset's files repeated 150,000 times through
/// `path_template`, split into one task per file group.
const HEAVY: &str = "SELECT count(*) AS n, sum(length(path_template(concat(path, '/', CAST(x AS VARCHAR))))) AS chars \
                     FROM (SELECT unnest(range(0, 150000)) AS x, path FROM calls)";

/// Runs `trawl sql DATA -c HEAVY --cluster URL -j 2`, kills `victims`
/// executors once the query has run for 2.5 s (checking it still runs),
/// and returns the query's output.
fn heavy_query_losing(cluster: &mut Cluster, data: &str, victims: usize) -> Output {
    let child = cluster
        .command()
        .args(["sql", data, "--format", "csv", "-j", "2", "-c", HEAVY, "--cluster", &cluster.url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut child = child;
    std::thread::sleep(Duration::from_millis(2500));
    assert!(matches!(child.try_wait(), Ok(None)), "the query ended before an executor was killed: make HEAVY heavier");
    for _ in 0..victims {
        if let Some(mut e) = cluster.executors.pop() {
            let _ = e.kill();
            let _ = e.wait();
        }
    }
    child.wait_with_output().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn an_executor_killed_mid_query_has_its_tasks_run_again_and_losing_all_fails_clearly() {
    let dir = scratch("cluster-lost");
    let ds = dir.join("dataset");
    two_node_dataset(&dir.join("archive"), s(&ds), &[]);
    let mut cluster = Cluster::start(&dir.join("cluster"), &[], 2, 3);
    let want = cluster.local(&["sql", s(&ds), "--format", "csv", "-c", HEAVY]);
    assert!(want.status.success(), "{}", stderr(&want));
    let calls = cluster.local(&["sql", s(&ds), "--format", "csv", "-c", "SELECT count(*) FROM calls"]);
    let calls: u64 = stdout(&calls).lines().nth(1).and_then(|l| l.parse().ok()).unwrap_or(0);
    assert!(stdout(&want).starts_with(&format!("n,chars\n{},", calls * 150_000)), "{}", stdout(&want));

    // One executor lost: the scheduler notices (no heartbeat for 3 s),
    // runs its tasks again on the other, and the answer is whole.
    let o = heavy_query_losing(&mut cluster, s(&ds), 1);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), stdout(&want), "the answer after losing an executor");
    let log = fs::read_to_string(cluster.log("scheduler")).unwrap_or_default();
    assert!(log.contains("heartbeat timed out"), "the scheduler saw the executor go:\n{log}");
    assert!(log.contains("on lost Executor"), "its tasks were reset:\n{log}");

    // The last executor lost: the query fails, in one line that says so,
    // with nothing on standard output.
    let o = heavy_query_losing(&mut cluster, s(&ds), 1);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(stdout(&o), "", "no partial answer");
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("all executors were lost"), "{err}");
    // Nor is a cluster with no executor left used: `--cluster` runs a
    // probe first, which nothing takes (Ballista would queue the query
    // until an executor registers).
    let o = cluster.remote(&["sql", s(&ds), "-c", "SELECT count(*) FROM calls"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        stderr(&o).trim(),
        format!(
            "trawl: --cluster {}: the cluster cannot run trawl's queries: no executor ran a probe query within 20 s \
             (are `trawl cluster executor`s registered with it?)",
            cluster.url
        )
    );

    // No scheduler there: one line naming the URL, exit 1; a URL that is
    // not df:// is bad input, exit 2.
    let url = format!("df://127.0.0.1:{}", free_port());
    let o = cluster.local(&["sql", s(&ds), "-c", "SELECT 1", "--cluster", &url]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o).trim(),
        format!(
            "trawl: --cluster {url}: cannot reach the scheduler (Connection refused (os error 111)); is `trawl cluster scheduler` running there?"
        )
    );
    let o = cluster.local(&["query", s(&ds), "--cluster", "http://127.0.0.1:1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("expected df://HOST:PORT"), "{}", stderr(&o));
    drop(cluster);
    fs::remove_dir_all(&dir).ok();
}

/// The command lines of the Helm chart's scheduler and executors
/// (deploy/helm/trawl/templates/cluster.yaml), with its template values
/// filled in and 127.0.0.1 for the pod's address, are ones trawl runs: the
/// executor registers with the scheduler.
#[test]
fn the_helm_charts_cluster_command_lines_are_ones_trawl_runs() {
    let chart =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/helm/trawl/templates/cluster.yaml"))
            .unwrap_or_default();
    let args_of = |name: &str| -> Vec<String> {
        chart
            .lines()
            .skip_while(|l| l.trim() != format!("- name: {name}"))
            .skip_while(|l| l.trim() != "args:")
            .skip(1)
            .map_while(|l| l.trim().strip_prefix("- ").map(str::to_string))
            .collect()
    };
    let (scheduler, executor) = (args_of("scheduler"), args_of("executor"));
    assert_eq!(scheduler[..2], ["cluster".to_string(), "scheduler".to_string()], "{scheduler:?}");
    assert_eq!(executor[..2], ["cluster".to_string(), "executor".to_string()], "{executor:?}");
    let dir = scratch("cluster-helm");
    let (port, data, tasks) = (free_port(), free_port(), free_port());
    let fill = |a: &String| -> String {
        let a = a
            .replace("0.0.0.0:50050", &format!("127.0.0.1:{port}"))
            .replace("0.0.0.0:50051", &format!("127.0.0.1:{data}"))
            .replace("--grpc-port=50052", &format!("--grpc-port={tasks}"))
            .replace("{{ .Values.cluster.executorTimeout }}", "30")
            .replace("{{ .Values.cluster.slots }}", "1")
            .replace("$(POD_IP)", "127.0.0.1")
            .replace("/work", &dir.join("work").display().to_string());
        match a.split_once("df://") {
            Some((flag, _)) => format!("{flag}df://127.0.0.1:{port}"),
            None => a,
        }
    };
    let run = |args: &[String], log: &str| -> Child {
        assert!(args.iter().all(|a| !a.contains("{{")), "a template value left: {args:?}");
        let log = fs::File::create(dir.join(log)).unwrap_or_else(|e| panic!("{e}"));
        Command::new(env!("CARGO_BIN_EXE_trawl")).args(args).stderr(log).spawn().unwrap_or_else(|e| panic!("{e}"))
    };
    let mut s = run(&scheduler.iter().map(fill).collect::<Vec<_>>(), "scheduler.log");
    let mut e = run(&executor.iter().map(fill).collect::<Vec<_>>(), "executor.log");
    let registered =
        || fs::read_to_string(dir.join("executor.log")).unwrap_or_default().contains("registration succeed");
    let start = Instant::now();
    while !registered() && start.elapsed() < Duration::from_secs(60) && matches!(e.try_wait(), Ok(None)) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = fs::read_to_string(dir.join("executor.log")).unwrap_or_default();
    let _ = (e.kill(), s.kill(), e.wait(), s.wait());
    assert!(registered(), "the chart's executor did not register:\n{log}");
    assert!(log.contains(&format!("shuffle data on 127.0.0.1:{data}, tasks on port {tasks}")), "{log}");
    fs::remove_dir_all(&dir).ok();
}

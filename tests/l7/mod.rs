//! HTTP/2, gRPC, GraphQL, WebSocket, Redis and PostgreSQL end to end on
//! real traffic: the scenario captures in testdata/scenarios (recorded by
//! make_grpc.sh, make_http2_graphql.sh, make_websocket.sh, make_redis.sh
//! and make_postgres.sh from real servers and clients: grpcio, nginx,
//! curl, graphql-core, hyper-h2, websockets, redis-server, redis-cli,
//! PostgreSQL, psql and pgbench),
//! checked against what the programs did and against tshark's dissection
//! of the same packets. Where this machine can record (root, network
//! namespaces, the programs), each scenario is also recorded afresh and
//! checked the same way.
//!
//! One file: each protocol's check runs twice (on the committed recording
//! and on a live one) through the same helpers, in the crate's one
//! integration-test binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::{can_record, scratch, stderr, stdout, testdata, trawl, tshark};

/// Every call of a snapshot, every column, as JSON objects in id order.
fn calls(snap: &Path) -> Vec<Value> {
    let o =
        trawl(&["query", snap.to_str().unwrap_or_default(), "--format", "ndjson", "--limit", "0", "--columns", "all"]);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap_or(Value::Null)).collect()
}

/// Calls in the order they were made: each connection's in its own order
/// (`index`), the connections interleaved by time. Sorting by timestamp
/// alone is not that on a live recording: on a loaded machine the
/// capture's clock may stamp a packet later than the next one of its
/// connection.
fn conversation_order(rows: Vec<Value>) -> Vec<Value> {
    let mut flows: Vec<std::collections::VecDeque<Value>> = Vec::new();
    let mut sorted = rows;
    sorted.sort_by_key(|r| (r["flow_id"].as_u64(), r["index"].as_u64()));
    for r in sorted {
        match flows.last_mut() {
            Some(f) if f.back().is_some_and(|b| b["flow_id"] == r["flow_id"]) => f.push_back(r),
            _ => flows.push([r].into()),
        }
    }
    let mut out = Vec::new();
    while let Some(next) = flows
        .iter_mut()
        .filter(|f| !f.is_empty())
        .min_by(|a, b| a[0]["timestamp"].as_str().cmp(&b[0]["timestamp"].as_str()))
    {
        out.extend(next.pop_front());
    }
    out
}

fn analyze(pcap: &Path, snap: &Path, extra: &[&str]) {
    let mut args =
        vec!["analyze", pcap.to_str().unwrap_or_default(), "-o", snap.to_str().unwrap_or_default(), "--force", "-q"];
    args.extend_from_slice(extra);
    let o = trawl(&args);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Records a scenario with its script, if this machine can; the Python
/// modules it needs must import.
fn record(name: &str, script: &str, tools: &[&str], modules: &str, extra: &[&str]) -> Option<PathBuf> {
    let python_ok =
        Command::new("python3").args(["-c", &format!("import {modules}")]).status().is_ok_and(|s| s.success());
    if !can_record(tools) || !python_ok {
        eprintln!("skipping the live {name} recording: needs root, unshare, {tools:?} and python3 with {modules}");
        return None;
    }
    let dir = scratch(&format!("live-{name}"));
    let pcap = dir.join(format!("{name}.pcap"));
    let mut cmd = Command::new(testdata(&format!("scenarios/{script}")));
    cmd.arg(&pcap).args(extra.iter().map(|e| dir.join(e)));
    let o = cmd.output().unwrap_or_else(|e| panic!("{script}: {e}"));
    assert!(o.status.success(), "{script}: {}", stderr(&o));
    Some(pcap)
}

/// A scratch directory for checking one capture: the committed one and
/// a live recording of a scenario are checked at the same time.
fn check_dir(what: &str, pcap: &Path) -> PathBuf {
    let from = pcap.parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    scratch(&format!("{what}-check-{from}"))
}

fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v[k].as_str()
}

// ---- gRPC ----

/// method, status, messages each way, grpc-message, compressed messages.
type GrpcCall<'a> = (&'a str, i64, u64, u64, Option<&'a str>, u64);

/// The calls inventory.py makes, in stream order.
const GRPC_CALLS: &[GrpcCall] = &[
    ("GetItem", 0, 1, 1, None, 0),
    ("ListItems", 0, 1, 3, None, 0),
    ("AddItems", 0, 4, 1, None, 4),
    ("Chat", 0, 2, 2, None, 0),
    ("GetItem", 5, 1, 0, Some("no item missing"), 0),
    ("ListItems", 13, 1, 1, Some("inventory database unavailable"), 0),
];

fn check_grpc(pcap: &Path, desc: &Path) {
    let dir = check_dir("grpc", pcap);
    let snap = dir.join("grpc.snap");
    analyze(pcap, &snap, &[]);
    let rows = calls(&snap);
    let got: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                s(r, "grpc_method").unwrap_or_default(),
                r["grpc_status"].as_i64().unwrap_or(-1),
                r["grpc_request_messages"].as_u64().unwrap_or(0),
                r["grpc_response_messages"].as_u64().unwrap_or(0),
                s(r, "grpc_message"),
                r["grpc_compressed_messages"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(got, GRPC_CALLS, "{}", pcap.display());
    for r in &rows {
        assert_eq!(
            (s(r, "protocol"), s(r, "http_version"), s(r, "grpc_service")),
            (Some("grpc"), Some("HTTP/2"), Some("trawl.demo.Inventory"))
        );
        assert_eq!(r["status_code"], 200, "gRPC answers errors in trailers under HTTP 200");
        assert!(r["error"].is_null(), "{r}");
    }
    // Message counts per stream and direction agree with tshark's gRPC dissector.
    let mut tshark_counts: BTreeMap<(u64, bool), u64> = BTreeMap::new();
    for line in tshark(
        pcap,
        &[
            "-d",
            "tcp.port==50051,http2",
            "-Y",
            "grpc",
            "-T",
            "fields",
            "-e",
            "http2.streamid",
            "-e",
            "tcp.dstport",
            "-e",
            "grpc.message_length",
        ],
    )
    .lines()
    {
        let f: Vec<&str> = line.split('\t').collect();
        let streams: Vec<u64> = f[0].split(',').filter_map(|x| x.parse().ok()).filter(|&s| s > 0).collect();
        let to_server = f.get(1) == Some(&"50051");
        for (i, _) in f.get(2).unwrap_or(&"").split(',').filter(|x| !x.is_empty()).enumerate() {
            // A frame's messages belong to its DATA frames' streams, in order.
            let stream = streams.get(i).or(streams.last()).copied().unwrap_or(0);
            *tshark_counts.entry((stream, to_server)).or_default() += 1;
        }
    }
    let mut ours: BTreeMap<(u64, bool), u64> = BTreeMap::new();
    for r in &rows {
        let id = r["stream_id"].as_u64().unwrap_or(0);
        for (to_server, col) in [(true, "grpc_request_messages"), (false, "grpc_response_messages")] {
            if let Some(n) = r[col].as_u64().filter(|&n| n > 0) {
                ours.insert((id, to_server), n);
            }
        }
    }
    assert_eq!(ours, tshark_counts, "gRPC messages per (stream, to server) vs tshark");
    // Without a schema, protobuf decodes by field number.
    assert_eq!(s(&rows[0], "request_decoded"), Some(r#"[{"1":"A-1"}]"#));
    assert!(s(&rows[0], "response_decoded").is_some_and(|d| d.contains(r#""2":"hammer","3":7"#)), "{}", rows[0]);
    // With the descriptor set, by field name (proto3 JSON), gzip messages inflated.
    let named = dir.join("named.snap");
    analyze(pcap, &named, &["--proto-descriptors", desc.to_str().unwrap_or_default()]);
    let rows = calls(&named);
    assert_eq!(
        s(&rows[0], "response_decoded"),
        Some(r#"[{"name":"hammer","price":12.5,"quantity":7,"sku":"A-1","tags":["tools","steel"]}]"#)
    );
    assert!(
        s(&rows[2], "request_decoded")
            .is_some_and(|d| d.matches(r#""quantity":"#).count() == 4 && d.contains(r#""sku":"B-4""#)),
        "{}",
        rows[2]
    );
    assert_eq!(s(&rows[2], "response_decoded"), Some(r#"[{"added":4,"totalQuantity":100}]"#));
    assert_eq!(s(&rows[4], "response_decoded"), None, "NOT_FOUND came without a message");
}

#[test]
fn grpc_scenario_calls_are_attributed_and_decoded() {
    check_grpc(
        &PathBuf::from(testdata("scenarios/grpc/inventory.pcap")),
        &PathBuf::from(testdata("scenarios/grpc/inventory.desc")),
    );
}

#[test]
fn grpc_scenario_recorded_live() {
    if let Some(pcap) = record("grpc", "make_grpc.sh", &["tcpdump", "python3"], "grpc, grpc_tools", &["inventory.desc"])
    {
        check_grpc(&pcap, &pcap.with_file_name("inventory.desc"));
    }
}

#[test]
fn bad_descriptor_sets_are_refused_by_name() {
    let dir = scratch("bad-desc");
    let bogus = dir.join("bogus.desc");
    std::fs::write(&bogus, b"not a descriptor set").ok();
    let o = trawl(&[
        "analyze",
        &testdata("scenarios/grpc/inventory.pcap"),
        "-o",
        dir.join("x.snap").to_str().unwrap_or_default(),
        "--proto-descriptors",
        bogus.to_str().unwrap_or_default(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("--proto-descriptors") && err.contains("bogus.desc") && err.contains("descriptor set"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!dir.join("x.snap").exists(), "nothing is written on bad input");
}

// ---- GraphQL and HTTP/2 (prior knowledge and h2c Upgrade) ----

fn check_http2_graphql(pcap: &Path) {
    let dir = check_dir("gql", pcap);
    let snap = dir.join("web.snap");
    analyze(pcap, &snap, &[]);
    let rows = calls(&snap);
    let rows = conversation_order(rows);
    let gql: Vec<_> = rows
        .iter()
        .filter(|r| r["protocol"] == "graphql")
        .map(|r| {
            (
                r["dst_port"].as_u64().unwrap_or(0),
                s(r, "http_version"),
                s(r, "gql_operation"),
                s(r, "gql_operation_name"),
                r["gql_errors"].as_u64(),
            )
        })
        .collect();
    assert_eq!(
        gql,
        [
            (8080, Some("HTTP/2"), Some("query"), Some("GetItem"), Some(0)),
            (8001, Some("HTTP/1.1"), Some("query"), Some("GetItem"), Some(0)),
            (8080, Some("HTTP/2"), Some("mutation"), Some("AddBolt"), Some(0)),
            (8001, Some("HTTP/1.1"), Some("mutation"), Some("AddBolt"), Some(0)),
            (8001, Some("HTTP/1.1"), Some("query"), None, Some(0)),
            (8001, Some("HTTP/1.1"), Some("mutation"), None, Some(1)),
            (8001, Some("HTTP/1.1"), Some("query"), None, Some(1)),
        ]
    );
    let failed: Vec<_> = rows.iter().filter_map(|r| s(r, "gql_error_message")).collect();
    assert_eq!(failed, ["quantity of B-2 must not be negative", "Cannot query field 'nosuchfield' on type 'Query'."]);
    // The h2c Upgrade: the 101 exchange, then stream 1 (the upgraded
    // request) and stream 3 over HTTP/2.
    let upgraded: Vec<_> = rows
        .iter()
        .filter(|r| r["dst_port"] == 8002)
        .map(|r| {
            (
                r["stream_id"].as_u64(),
                s(r, "http_version"),
                s(r, "url"),
                r["status_code"].as_u64(),
                s(r, "upgrade"),
                s(r, "response_body"),
            )
        })
        .collect();
    assert_eq!(
        upgraded,
        [
            (None, Some("HTTP/1.1"), Some("/first"), Some(101), Some("h2c"), Some("")),
            (Some(1), Some("HTTP/2"), Some("/first"), Some(200), None, Some(r#"{"path": "/first", "stream": 1}"#)),
            (Some(3), Some("HTTP/2"), Some("/second"), Some(200), None, Some(r#"{"path": "/second", "stream": 3}"#)),
        ]
    );
    // Frame and request counts agree with tshark (which follows the h2c
    // Upgrade by itself and needs telling that 8080 speaks HTTP/2).
    let o = trawl(&[
        "analyze",
        pcap.to_str().unwrap_or_default(),
        "-o",
        dir.join("again.snap").to_str().unwrap_or_default(),
        "--json",
    ]);
    let m: Value = serde_json::from_str(&stdout(&o)).unwrap_or_default();
    let stats = &m["manifest"]["counters"];
    let types = tshark(pcap, &["-d", "tcp.port==8080,http2", "-Y", "http2", "-T", "fields", "-e", "http2.type"]);
    let frames: Vec<&str> = types.lines().flat_map(|l| l.split(',')).collect();
    assert_eq!(stats["http2_frames"].as_u64(), Some(frames.len() as u64), "{stats}");
    assert_eq!(stats["http2_headers_frames"].as_u64(), Some(frames.iter().filter(|t| **t == "1").count() as u64));
    assert_eq!(stats["http2_data_frames"].as_u64(), Some(frames.iter().filter(|t| **t == "0").count() as u64));
    let methods = tshark(
        pcap,
        &["-d", "tcp.port==8080,http2", "-Y", "http2.headers.method", "-T", "fields", "-e", "http2.headers.method"],
    );
    assert_eq!(stats["http2_requests"].as_u64(), Some(methods.lines().flat_map(|l| l.split(',')).count() as u64));
}

#[test]
fn graphql_and_http2_scenario() {
    check_http2_graphql(&PathBuf::from(testdata("scenarios/web/http2-graphql.pcap")));
}

#[test]
fn graphql_and_http2_scenario_recorded_live() {
    if let Some(pcap) =
        record("http2-graphql", "make_http2_graphql.sh", &["tcpdump", "python3", "nginx", "curl"], "graphql, h2", &[])
    {
        check_http2_graphql(&pcap);
    }
}

// ---- WebSocket ----

fn check_websocket(pcap: &Path) {
    let dir = check_dir("ws", pcap);
    let snap = dir.join("ws.snap");
    analyze(pcap, &snap, &[]);
    let mut rows = calls(&snap);
    rows.sort_by_key(|r| (r["flow_id"].as_u64(), r["index"].as_u64()));
    let text = |r: &Value| {
        let body = if r["ws_from_client"] == true { &r["request_body"] } else { &r["response_body"] };
        body.as_str().map(|b| if r["ws_opcode"] == "binary" { format!("{} bytes", b.len()) } else { b.to_string() })
    };
    let msgs: Vec<_> = rows
        .iter()
        .filter(|r| r["protocol"] == "websocket")
        .map(|r| {
            (
                s(r, "url").unwrap_or_default(),
                s(r, "ws_opcode").unwrap_or_default(),
                r["ws_from_client"] == true,
                r["ws_fragments"].as_u64().unwrap_or(0),
                r["ws_close_code"].as_u64(),
            )
        })
        .collect();
    assert_eq!(
        msgs,
        [
            ("/chat", "text", true, 1, None),
            ("/chat", "text", false, 1, None),
            ("/chat", "binary", true, 1, None),
            ("/chat", "text", false, 1, None),
            ("/chat", "ping", true, 1, None),
            ("/chat", "pong", false, 1, None),
            ("/chat", "text", true, 4, None),
            ("/chat", "text", false, 1, None),
            ("/chat", "close", true, 1, Some(1000)),
            ("/chat", "close", false, 1, Some(1000)),
            ("/plain", "text", true, 1, None),
            ("/plain", "text", false, 1, None),
            ("/plain", "close", false, 1, Some(4001)),
            ("/plain", "close", true, 1, Some(4001)),
        ]
    );
    let texts: Vec<_> =
        rows.iter().filter(|r| matches!(s(r, "ws_opcode"), Some("text" | "ping"))).filter_map(text).collect();
    assert_eq!(
        texts,
        [
            "hello",
            "echo: hello",
            "got 256 bytes",
            "are you there",
            "frag-1 frag-2 frag-3",
            "echo: frag-1 frag-2 frag-3",
            "plain",
            "echo: plain"
        ]
    );
    // The compressed binary message inflates to the 256 bytes sent.
    let binary = rows.iter().find(|r| r["ws_opcode"] == "binary").cloned().unwrap_or_default();
    let q = trawl(&[
        "sql",
        snap.to_str().unwrap_or_default(),
        "-c",
        "SELECT encode(request_body, 'hex') AS h FROM api_calls WHERE ws_opcode = 'binary'",
        "--format",
        "csv",
    ]);
    let hex: String = (0..=255u8).map(|b| format!("{b:02x}")).collect();
    assert!(stdout(&q).contains(&hex), "{binary}");
    // One row per message: tshark's final frames (FIN set), opcodes in order.
    let frames = tshark(pcap, &["-Y", "websocket", "-T", "fields", "-e", "websocket.fin", "-e", "websocket.opcode"]);
    let mut opcodes = Vec::new();
    let mut fins = 0;
    for l in frames.lines() {
        let (fin, op) = l.split_once('\t').unwrap_or_default();
        fins += (fin == "1" || fin == "True") as usize;
        if op != "0" {
            opcodes.push(match op {
                "1" => "text",
                "2" => "binary",
                "8" => "close",
                "9" => "ping",
                _ => "pong",
            });
        }
    }
    assert_eq!(fins, msgs.len());
    let mut ours: Vec<_> = rows
        .iter()
        .filter(|r| r["protocol"] == "websocket")
        .map(|r| (r["frame_number"].as_u64(), s(r, "ws_opcode").unwrap_or_default()))
        .collect();
    ours.sort();
    assert_eq!(ours.iter().map(|o| o.1).collect::<Vec<_>>(), opcodes, "opcodes in capture order vs tshark");
}

#[test]
fn websocket_scenario_is_decoded_message_by_message() {
    check_websocket(&PathBuf::from(testdata("scenarios/web/websocket.pcap")));
}

#[test]
fn websocket_scenario_recorded_live() {
    if let Some(pcap) = record("websocket", "make_websocket.sh", &["tcpdump", "python3"], "websockets", &[]) {
        check_websocket(&pcap);
    }
}

// ---- Redis ----

/// (command line, reply type, error text prefix) in capture order: what
/// make_redis.sh has redis-cli send and redis-server answer. redis-cli
/// asks for `COMMAND DOCS` (a 170 KB nested reply) before reading its
/// commands; pub/sub deliveries have no command line.
const REDIS_ROWS: &[(&str, &str, &str)] = &[
    ("PING", "simple", ""),
    ("COMMAND DOCS", "array", ""),
    ("SET session:1 alice", "simple", ""),
    ("GET session:1", "bulk", ""),
    ("GET session:missing", "null", ""),
    ("INCR visits", "integer", ""),
    ("INCR session:1", "error", "ERR value is not an integer or out of range"),
    ("LPUSH session:1 x", "error", "WRONGTYPE Operation against a key holding the wrong kind of "),
    ("RPUSH queue a b", "integer", ""),
    ("LRANGE queue 0 -1", "array", ""),
    ("HSET user:1 name alice", "integer", ""),
    ("HGETALL user:1", "array", ""),
    ("HELLO 3", "map", ""),
    ("HGETALL user:1", "map", ""),
    ("SUBSCRIBE news", "array", ""),
    ("PUBLISH news hello", "integer", ""),
    ("", "array", ""),
    ("PUBLISH news world", "integer", ""),
    ("", "array", ""),
];

fn check_redis(pcap: &Path) {
    let dir = check_dir("redis", pcap);
    let snap = dir.join("redis.snap");
    analyze(pcap, &snap, &[]);
    let rows = calls(&snap);
    let rows = conversation_order(rows);
    let got: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            let err = s(r, "redis_error").unwrap_or_default();
            (
                s(r, "redis_line").unwrap_or_default().to_string(),
                s(r, "redis_reply_type").unwrap_or_default().to_string(),
                err[..err.len().min(60)].to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String, String)> =
        REDIS_ROWS.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect();
    assert_eq!(got, want, "{}", pcap.display());
    // The deliveries: rows of their own, named by the channel, not errors.
    let deliveries: Vec<_> = rows
        .iter()
        .filter(|r| r["redis_command"] == "message")
        .map(|r| (s(r, "redis_key"), r["error"].is_null()))
        .collect();
    assert_eq!(deliveries, [(Some("news"), true), (Some("news"), true)]);
    assert!(rows.iter().all(|r| r["protocol"] == "redis" && r["dst_port"] == 6379));
}

#[test]
fn redis_scenario_commands_replies_and_errors() {
    check_redis(&PathBuf::from(testdata("scenarios/redis/redis.pcap")));
}

#[test]
fn redis_scenario_recorded_live() {
    if let Some(pcap) = record("redis", "make_redis.sh", &["tcpdump", "redis-server", "redis-cli"], "sys", &[]) {
        check_redis(&pcap);
    }
}

// ---- PostgreSQL ----

/// (flow's order, command, query start, command tag, rows, SQLSTATE) in
/// capture order: what make_postgres.sh has psql and pgbench send and
/// the server answer. pgbench opens one connection of its own before
/// each run (a startup, then Terminate).
type PgRow<'a> = (&'a str, &'a str, &'a str, Option<u64>, &'a str);

const PG_ROWS: &[PgRow] = &[
    ("SSLRequest", "", "refused", None, ""),
    ("StartupMessage", "", "", None, ""),
    ("Query", "CREATE TABLE users (id int PRIMARY KEY, name text);", "CREATE TABLE", None, ""),
    ("Query", "INSERT INTO users VALUES (1, 'ada'), (2, 'brian');", "INSERT 0 2", None, ""),
    ("Query", "SELECT id, name FROM users ORDER BY id;", "SELECT 2", Some(2), ""),
    ("Query", "INSERT INTO users VALUES (1, 'again');", "", None, "23505"),
    ("Query", "SELECT * FROM missing_table;", "", None, "42P01"),
    ("Query", "SELECT count(*) FROM users ; SELECT max(id) FROM users;", "SELECT 1", Some(2), ""),
    ("Terminate", "", "", None, ""),
    ("StartupMessage", "", "", None, ""),
    ("Terminate", "", "", None, ""),
    ("StartupMessage", "", "", None, ""),
    ("Parse", "SELECT name FROM users WHERE id = $1;", "", None, ""),
    ("Bind", "SELECT name FROM users WHERE id = $1;", "SELECT 1", Some(1), ""),
    ("Bind", "SELECT name FROM users WHERE id = $1;", "SELECT 1", Some(1), ""),
    ("Bind", "SELECT name FROM users WHERE id = $1;", "SELECT 1", Some(1), ""),
    ("Terminate", "", "", None, ""),
    ("StartupMessage", "", "", None, ""),
    ("Terminate", "", "", None, ""),
    ("StartupMessage", "", "", None, ""),
    ("Parse", "SELECT 1 / (count(*) - 2) FROM users;", "", None, "22012"),
    ("Terminate", "", "", None, ""),
    ("StartupMessage", "", "", None, "3D000"),
];

fn check_postgres(pcap: &Path) {
    let dir = check_dir("postgres", pcap);
    let snap = dir.join("postgres.snap");
    analyze(pcap, &snap, &[]);
    let rows = calls(&snap);
    let rows = conversation_order(rows);
    let got: Vec<PgRow> = rows
        .iter()
        .map(|r| {
            (
                s(r, "db_command").unwrap_or_default(),
                s(r, "db_query").unwrap_or_default(),
                s(r, "db_result").unwrap_or_default(),
                r["db_rows"].as_u64(),
                s(r, "db_error_code").unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(got, PG_ROWS, "{}", pcap.display());
    // Every error is attributed to its statement, and its SQLSTATE and
    // message are the server's, as tshark reads them.
    let errors: Vec<String> = rows
        .iter()
        .filter(|r| r["db_success"] == false)
        .map(|r| {
            format!("{}\t{}", s(r, "db_error_code").unwrap_or_default(), s(r, "db_error_message").unwrap_or_default())
        })
        .collect();
    let tshark_errors: Vec<String> =
        tshark(pcap, &["-Y", "pgsql.type == \"Error\"", "-T", "fields", "-e", "pgsql.code", "-e", "pgsql.message"])
            .lines()
            .map(str::to_string)
            .collect();
    assert_eq!(errors, tshark_errors);
    // The logins: user and database on every row of a connection after
    // its startup (the SSLRequest comes before); the refused one names
    // the database asked for.
    assert!(rows.iter().all(|r| r["protocol"] == "postgresql" && r["dst_port"] == 5432));
    assert!(rows[1..].iter().all(|r| r["db_user"] == "postgres"));
    assert_eq!(rows.iter().filter(|r| r["db_database"] == "shop").count(), PG_ROWS.len() - 2);
    assert_eq!(s(&rows[PG_ROWS.len() - 1], "db_database"), Some("no_such_db"));
    // A KFL filter finds the failing statement by its SQLSTATE.
    let o = trawl(&[
        "query",
        snap.to_str().unwrap_or_default(),
        "--kfl",
        r#"postgresql && postgresql_error_code == "23505""#,
        "--format",
        "ndjson",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let found: Vec<Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap_or(Value::Null)).collect();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["url"], "INSERT INTO users VALUES (1, 'again');");
}

#[test]
fn postgres_scenario_statements_and_errors_are_attributed() {
    check_postgres(&PathBuf::from(testdata("scenarios/postgres/postgres.pcap")));
}

#[test]
fn postgres_scenario_recorded_live() {
    let server = std::fs::read_dir("/usr/lib/postgresql").is_ok();
    if !server {
        eprintln!("skipping the live PostgreSQL recording: needs Debian's postgresql");
        return;
    }
    if let Some(pcap) = record("postgres", "make_postgres.sh", &["tcpdump", "runuser"], "sys", &[]) {
        check_postgres(&pcap);
    }
}

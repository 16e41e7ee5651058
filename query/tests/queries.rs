//! KFL and SQL over snapshots of real captures (testdata/corpus and the
//! demo capture), checked against tshark's display filters.
//!
//! One file: the crate's one integration-test binary; its tests share
//! snapshots of the corpus built once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use trawl_analyze::{Options, Progress, analyze_to_snapshot};
use trawl_query::datafusion::arrow::array::{AsArray, RecordBatch};
use trawl_query::{Catalog, KflQuery, QueryError, Table, block_on};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Snapshot of a capture, analysed once per test run.
fn snapshot(capture: &Path) -> PathBuf {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Arc<OnceLock<PathBuf>>>>> = OnceLock::new();
    let cell = {
        let mut m = CACHE.get_or_init(Default::default).lock().unwrap();
        m.entry(capture.to_path_buf()).or_default().clone()
    };
    cell.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("trawl-query-tests-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let name = capture.file_name().unwrap().to_string_lossy().to_string();
        let out = dir.join(format!("{name}.snap"));
        let opts = Options { inputs: vec![capture.to_path_buf()], threads: 2, ..Options::default() };
        analyze_to_snapshot(&opts, &out, true, &Progress::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        out
    })
    .clone()
}

fn corpus(name: &str) -> PathBuf {
    snapshot(&root().join("testdata/corpus").join(name))
}

fn demo() -> PathBuf {
    snapshot(&root().join("testdata/demo/checkout.pcap"))
}

fn open(snap: &Path) -> Catalog {
    block_on(2, Catalog::open(snap, 2)).unwrap().unwrap()
}

fn count(cat: &Catalog, table: Table, kfl: &str) -> Result<usize, QueryError> {
    block_on(2, cat.kfl_count(table, kfl)).unwrap()
}

fn kfl_error(cat: &Catalog, table: Table, kfl: &str) -> String {
    match count(cat, table, kfl) {
        Ok(n) => panic!("{kfl:?} should be an error, matched {n} rows"),
        Err(e) => e.to_string(),
    }
}

fn sql(cat: &Catalog, q: &str) -> Vec<RecordBatch> {
    block_on(2, cat.sql(q)).unwrap().unwrap_or_else(|e| panic!("{q}: {e}"))
}

/// The single value of a one-row, one-column result, as text.
fn sql_value(cat: &Catalog, q: &str) -> String {
    let b = sql(cat, q);
    let opts = Default::default();
    let f =
        trawl_query::datafusion::arrow::util::display::ArrayFormatter::try_new(b[0].column(0).as_ref(), &opts).unwrap();
    f.value(0).to_string()
}

/// Where trawl's count differs from tshark's on purpose:
/// (file, KFL filter, trawl's count, why).
const DIFFERENCES: &[(&str, &str, usize, &str)] = &[
    (
        "zeek_http_methods.pcap",
        r#"http && method != """#,
        49,
        "tshark does not recognise 22 of the 49 request lines (unknown methods, missing spaces, 'HTTP/1.'); trawl \
         keeps them (see analyze/tests/corpus.rs HTTP_DIFFERENCES)",
    ),
    (
        "zeek_http_methods.pcap",
        r#"http && method != "" && timestamp >= now() - duration("5s")"#,
        4,
        "the same unrecognised request lines: 2 of the last 4 requests have methods tshark does not know",
    ),
    (
        "zeek_http_methods.pcap",
        r#"http && method == "GET""#,
        6,
        "two GET request lines tshark does not parse (a missing space after the method, an 'HTTP/1.' version)",
    ),
    (
        "zeek_http_methods.pcap",
        r#"http && method == "POST""#,
        4,
        "two POST request lines tshark does not parse, as above",
    ),
    (
        "zeek_http_206_example_b.pcap",
        "http && status_code >= 200 && status_code < 300",
        3,
        "the first connection carries two 206 responses (816896 and 206024 body bytes, matching its reassembled \
         bytes); tshark loses the first among 52 malformed frames (see analyze/tests/corpus.rs)",
    ),
    (
        "zeek_http_206_example_b.pcap",
        r#"http && method != "" && status_code == 0"#,
        0,
        "so every request has its response; tshark leaves the one whose response it lost unanswered",
    ),
    (
        "sanders_http_espn.pcapng",
        "http && status_code >= 200 && status_code < 300",
        59,
        "trawl also reads the response after a lost segment (its Content-Length skips the gap), a 200 tshark gives up on",
    ),
    (
        "sanders_http_espn.pcapng",
        r#"http && method != "" && status_code == 0"#,
        0,
        "that same response answers the request tshark leaves unanswered",
    ),
    (
        "suricata_http-pipeline-files-with-gap.pcap",
        "http && status_code >= 200 && status_code < 300",
        3,
        "the gap is inside the second body; its Content-Length lets trawl read the second and third responses, \
         tshark reads one",
    ),
    (
        "suricata_http-pipeline-files-with-gap.pcap",
        r#"http && method != "" && status_code == 0"#,
        0,
        "all three requests are answered (see above)",
    ),
    (
        "suricata_tcp-rst-unacked-stream-10.pcap",
        r#"http && method != "" && status_code == 0"#,
        0,
        "the response follows data tshark treats as unacknowledged after the RST; trawl pairs it with the request",
    ),
    (
        "suricata_tcp-rst-unacked-stream-10.pcap",
        "http && status_code >= 200 && status_code < 300",
        1,
        "the same response, a 200",
    ),
    (
        "suricata_tcp-rst-unacked-stream-10.pcap",
        r#"http && status_code != 0 && response.headers["content-type"].startsWith("text/html")"#,
        1,
        "the same response is text/html",
    ),
];

/// Table-driven: every row of testdata/golden/kfl_vs_tshark.tsv (made by
/// make_kfl_vs_tshark.py with tshark 4.0) runs as KFL on a snapshot of the
/// same capture and must find the same number of messages or connections.
#[test]
fn kfl_counts_match_tshark_display_filters() {
    let tsv = std::fs::read_to_string(root().join("testdata/golden/kfl_vs_tshark.tsv")).unwrap();
    let mut checked = 0;
    let mut differing = 0;
    let mut nonzero = 0;
    let mut failures = Vec::new();
    let mut cats: HashMap<String, Catalog> = HashMap::new();
    for line in tsv.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let (file, table, kfl, dfilter, want): (&str, &str, &str, &str, usize) =
            (f[0], f[1], f[2], f[3], f[4].parse().unwrap());
        let cat = cats.entry(file.to_string()).or_insert_with(|| open(&corpus(file)));
        let table = if table == "flows" { Table::Flows } else { Table::Calls };
        let got = count(cat, table, kfl).unwrap_or_else(|e| panic!("{file}: {kfl}: {e}"));
        let expected = match DIFFERENCES.iter().find(|d| d.0 == file && d.1 == kfl) {
            Some(d) => {
                differing += usize::from(d.2 != want);
                d.2
            }
            None => want,
        };
        if got != expected {
            failures.push(format!("{file}: `{kfl}` found {got}, expected {expected} (tshark `{dfilter}`: {want})"));
        }
        nonzero += usize::from(got > 0);
        checked += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(checked, 288, "rows of kfl_vs_tshark.tsv");
    assert!(nonzero >= 120, "only {nonzero} rows matched something");
    assert_eq!(differing, 13, "deliberate differences from tshark");
}

/// The filters of ../shared/reference/kubeshark.md §2.3, verbatim (a `;`
/// separates alternatives there). Those over what trawl decodes run; the
/// rest are refused with a reason, never an empty result.
const KUBESHARK_EXAMPLES: &str = r#"http && method == "GET" && status_code >= 400
http && status_code >= 500
http && status_code >= 400 && status_code < 500
http && status_code == 429
dst.pod.namespace == "production"
src.service.name == "api-gateway" && dst.service.name == "user-service"
"production" in namespaces
map_get(local_labels, "app", "") == "payments"
local_process_name == "nginx"
node_name == "ip-10-0-25-170.ec2.internal"
src.name == "api-gateway" ; dst.name.contains("payment")
dns && "google.com" in dns_questions
dns && dns_request
dns && dns_response && status_code != 0
dns && "A" in dns_question_types
dns && dns_response && size(dns_answers) > 0
dns && dns_response && size(dns_answers) == 0          // NXDOMAIN-ish
dns && dns_questions.exists(q, q.contains("minexmr"))
http && response_body_size > 10000
http && url.contains("/api") ; http && url.matches(".*/api/v[0-9]+/.*")
http && "authorization" in request.headers
http && request.headers["content-type"] == "application/json"
http && map_get(request.headers, "user-agent", "").contains("Mozilla/4.0")
http && !path.contains("/health")
http && elapsed_time > 5000000                          // > 5 s
grpc && grpc_status != 0 ; grpc && grpc_method == "SayHello" ; grpc && grpc_status == 14
gql && status_code >= 400
tls && http && status_code >= 500                       // decrypted HTTPS via eBPF
tlsx && tlsx_sni.contains("amazonaws.com")
tlsx && tlsx_cipher_suites.exists(s, s.contains("RC4"))
redis && redis_type == "GET" && redis_key.startsWith("session:")
kafka && kafka_api_key_name == "PRODUCE" && kafka_request_summary.contains("orders")
amqp && amqp_method == "basic.publish"
ldap && ldap_type == "bind" ; radius && radius_code_name == "Access-Request"
mongodb && mongodb_command == "find" && mongodb_collection == "users"
mysql && mysql_query.contains("SELECT") && !mysql_success
postgresql && postgresql_query.contains("UNION SELECT")
dst.port == 80 || dst.port == 443 ; dst.port >= 8000 && dst.port <= 9000
src.ip.startsWith("192.168.")
dst.ip == "169.254.169.254"                             // IMDS
dst.dns == "db.example.com" ; "db.example.com" in dns_resolutions
dst.dns != "" && !dst.dns.endsWith(".internal")
src.service.namespace != dst.service.namespace          // cross-namespace
!(src.pod.namespace == "kube-system") ; !http
tcp && tcp_error_type != ""
conn && conn_state == "open" && conn_local_bytes > 1000000
tcp_conn && "HTTP" in conn_l7_detected
flow && flow_local_pps > 1000 ; tcp_flow && flow_local_bps > 5000000
flow && flow_state == "closed" && "TLS" in flow_l7_detected
capture_source == "ebpf_tls"
timestamp > timestamp("2026-03-14T22:00:00Z")
timestamp >= timestamp("2026-03-14T22:00:00Z") && timestamp <= timestamp("2026-03-14T23:00:00Z")
timestamp > now() - duration("5m")
http && status_code >= 500 || (tcp && tcp_error_type != "")
dst.pod.name == "bifrost-0" && http && dst.port == 8000 && path.contains("/v1/chat/completions")"#;

fn examples() -> Vec<String> {
    KUBESHARK_EXAMPLES
        .lines()
        .flat_map(|l| l.split("//").next().unwrap().split(" ; ").map(|s| s.trim().to_string()).collect::<Vec<_>>())
        .filter(|s| !s.is_empty())
        .collect()
}

/// What each example gives on the demo snapshot: rows on calls and on
/// flows, or the kind of error.
fn example_outcome(ex: &str) -> (&'static str, Option<usize>, Option<usize>) {
    // (expected error kind, calls count, flows count)
    match ex {
        r#"http && method == "GET" && status_code >= 400"# => ("", Some(1), None),
        "http && status_code >= 500" => ("", Some(3), None),
        "http && status_code >= 400 && status_code < 500" => ("", Some(1), None),
        "http && status_code == 429" => ("", Some(0), None),
        "http && response_body_size > 10000" => ("", Some(0), None),
        r#"http && url.contains("/api")"# => ("", Some(18), None),
        r#"http && url.matches(".*/api/v[0-9]+/.*")"# => ("", Some(0), None),
        r#"http && "authorization" in request.headers"# => ("", Some(0), None),
        r#"http && request.headers["content-type"] == "application/json""# => ("", Some(4), None),
        r#"http && map_get(request.headers, "user-agent", "").contains("Mozilla/4.0")"# => ("", Some(0), None),
        r#"http && !path.contains("/health")"# => ("", Some(15), None),
        "http && elapsed_time > 5000000" => ("", Some(0), Some(0)),
        "tls && http && status_code >= 500" => ("", Some(0), None),
        "dst.port == 80 || dst.port == 443" => ("", Some(0), Some(0)),
        "dst.port >= 8000 && dst.port <= 9000" => ("", Some(18), Some(13)),
        r#"src.ip.startsWith("192.168.")"# => ("", Some(0), Some(0)),
        r#"dst.ip == "169.254.169.254""# => ("", Some(0), Some(0)),
        "!http" => ("", Some(0), Some(0)),
        r#"conn && conn_state == "open" && conn_local_bytes > 1000000"# => ("", None, Some(0)),
        r#"tcp_conn && "HTTP" in conn_l7_detected"# => ("", None, Some(13)),
        "flow && flow_local_pps > 1000" => ("", None, Some(13)),
        "tcp_flow && flow_local_bps > 5000000" => ("", None, Some(1)),
        r#"flow && flow_state == "closed" && "TLS" in flow_l7_detected"# => ("", None, Some(0)),
        r#"timestamp > timestamp("2026-03-14T22:00:00Z")"# => ("", Some(18), Some(13)),
        r#"timestamp >= timestamp("2026-03-14T22:00:00Z") && timestamp <= timestamp("2026-03-14T23:00:00Z")"# => {
            ("", Some(0), Some(0))
        }
        r#"timestamp > now() - duration("5m")"# => ("", Some(18), Some(13)),
        // gRPC and GraphQL are decoded; the demo has neither (the
        // scenario captures do: l7_fields_filter_grpc_graphql_and_websocket).
        e if ["grpc", "gql", "dns", "tlsx", "redis", "kafka", "amqp", "mongodb", "mysql", "postgresql"]
            .iter()
            .any(|p| e.starts_with(p)) =>
        {
            ("", Some(0), None)
        }
        e if ["ldap", "radius"].iter().any(|p| e.starts_with(p)) => ("does not decode", None, None),
        // On calls `tcp` (and on flows `status_code`) is refused first: a field of the other table.
        "tcp && tcp_error_type != \"\"" => {
            ("per-packet `tcp` entries are not produced|is a field of the flows table", None, None)
        }
        e if e.contains("tcp_error_type") => {
            ("is a field of the calls table|is a field of the flows table", None, None)
        }
        e if e.contains("process_name") => ("eBPF socket hooks", None, None),
        e if e.contains("capture_source") => ("capture agent", None, None),
        // Kubernetes fields run without metadata: loopback addresses are
        // `internal`, nothing is a pod (tests/kubernetes/ has a cluster).
        r#"!(src.pod.namespace == "kube-system")"# => ("", Some(18), Some(13)),
        e if e.contains("path.contains") => ("", Some(0), None),
        _ => ("", Some(0), Some(0)),
    }
}

#[test]
fn kubeshark_examples_run_or_explain() {
    let cat = open(&demo());
    let all = examples();
    assert_eq!(all.len(), 64, "examples in §2.3");
    let mut ran = 0;
    for ex in &all {
        let (err, calls, flows) = example_outcome(ex);
        if err.is_empty() {
            for (table, want) in [(Table::Calls, calls), (Table::Flows, flows)] {
                match want {
                    Some(n) => {
                        assert_eq!(
                            count(&cat, table, ex).unwrap_or_else(|e| panic!("{ex}: {e}")),
                            n,
                            "{ex} on {}",
                            table.name()
                        );
                        ran += 1;
                    }
                    // A field of the other table: refused, naming it.
                    None => assert!(kfl_error(&cat, table, ex).contains("is a field of the"), "{ex}"),
                }
            }
        } else {
            // `A|B`: A on flows, B on calls.
            let (on_flows, on_calls) = err.split_once('|').unwrap_or((err, err));
            for (table, want) in [(Table::Calls, on_calls), (Table::Flows, on_flows)] {
                let e = kfl_error(&cat, table, ex);
                assert!(e.contains(want), "{ex} on {}: {e}", table.name());
            }
        }
    }
    assert_eq!(ran, 79, "example runs (an example may run on both tables)");
}

/// A one-character typo in any name of a working filter is an error:
/// never a silent empty result.
#[test]
fn typos_never_silently_match_nothing() {
    let cat = open(&demo());
    let mut mutated = 0;
    for ex in examples() {
        let (err, calls, flows) = example_outcome(&ex);
        if !err.is_empty() {
            continue;
        }
        let table = if calls.is_some() { Table::Calls } else { Table::Flows };
        // Every identifier (outside string literals) loses its second letter.
        let mut in_str = false;
        let bytes: Vec<char> = ex.chars().collect();
        let mut i = 0;
        while i < bytes.len() {
            let c = bytes[i];
            if c == '"' {
                in_str = !in_str;
            }
            if !in_str
                && (c.is_ascii_alphabetic() || c == '_')
                && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == '_' || bytes[i - 1] == '.'))
            {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == '_' || bytes[i] == '.') {
                    i += 1;
                }
                let word: String = bytes[start..i].iter().collect();
                if word.len() > 2 && !["true", "false", "null", "in"].contains(&word.as_str()) {
                    let typo = format!("{}{}", &word[..1], &word[2..]);
                    let bad = format!(
                        "{}{typo}{}",
                        bytes[..start].iter().collect::<String>(),
                        bytes[i..].iter().collect::<String>()
                    );
                    let e = kfl_error(&cat, table, &bad);
                    assert!(
                        e.contains("unknown") || e.contains("not available") || e.contains("does not decode"),
                        "{bad}: {e}"
                    );
                    mutated += 1;
                }
                continue;
            }
            i += 1;
        }
        let _ = flows;
    }
    assert!(mutated >= 50, "{mutated}");
}

#[test]
fn errors_point_at_the_problem_and_suggest() {
    let cat = open(&demo());
    let e = kfl_error(&cat, Table::Calls, "http && status_cod >= 400");
    assert_eq!(
        e,
        "invalid KFL filter: unknown field `status_cod`\n  http && status_cod >= 400\n          ^^^^^^^^^^\n  hint: did you mean `status_code`?"
    );
    let e = kfl_error(&cat, Table::Calls, r#"status_code == "404""#);
    assert!(
        e.contains("`status_code` (int)") && e.contains("\"404\" (string)") && e.contains("write 404 without quotes"),
        "{e}"
    );
    let e = kfl_error(&cat, Table::Calls, "http && (status_code >= 400");
    assert!(e.contains("expected `)`"), "{e}");
    assert!(e.lines().nth(2).unwrap().ends_with('^'), "{e}");
    let e = kfl_error(&cat, Table::Calls, "srcpod.name == \"x\"");
    assert!(e.contains("did you mean") && e.contains("src.pod.name"), "{e}");
    let e = kfl_error(&cat, Table::Flows, r#"conn_state == "opne""#);
    assert!(e.contains(r#"did you mean "open"?"#), "{e}");
    let e = kfl_error(&cat, Table::Calls, r#"protocol == "LDAP""#);
    assert!(e.contains("does not decode LDAP"), "{e}");
    let e = kfl_error(&cat, Table::Calls, r#"elapsed_time > duration("5s")"#);
    assert!(e.contains("microseconds"), "{e}");
    let e = kfl_error(&cat, Table::Calls, "src.port");
    assert!(e.contains("expected a condition (bool), found `src.port` (int)"), "{e}");
    let e = kfl_error(&cat, Table::Calls, "path.matches(\"(\")");
    assert!(e.contains("invalid regular expression"), "{e}");
    let e = kfl_error(&cat, Table::Calls, "path.containz(\"a\")");
    assert!(e.contains("did you mean `.contains()`?"), "{e}");
    let e = kfl_error(&cat, Table::Calls, "size() > 1");
    assert!(e.contains("`size()` takes 1 argument, found 0"), "{e}");
    let e = kfl_error(&cat, Table::Calls, "path.startsWith()");
    assert!(e.contains("`.startsWith()` takes 1 argument, found 0"), "{e}");
    let e = kfl_error(&cat, Table::Calls, "\"x\" in path");
    assert!(e.contains("path.contains(\"x\")"), "{e}");
}

#[test]
fn kfl_semantics_on_real_traffic() {
    let cat = open(&demo());
    let c = |k: &str| count(&cat, Table::Calls, k).unwrap_or_else(|e| panic!("{k}: {e}"));
    // Legacy forms are rewritten to the same filter.
    assert_eq!(
        c(r#"response.status == 502 and request.path contains "/api""#),
        c(r#"status_code == 502 && path.contains("/api")"#)
    );
    assert_eq!(c(r#"response.status == 502 and request.path contains "/api""#), 3);
    assert_eq!(c(r#"response.status == r"5.*""#), 3);
    assert_eq!(c("elapsedTime >= 0"), 18);
    // Header keys are case-insensitive; a missing key reads as "".
    assert_eq!(c(r#"request.headers["User-Agent"] == "curl/7.88.1""#), 15);
    assert_eq!(c(r#"request.headers["x-missing"] == """#), 18);
    assert_eq!(c(r#""User-Agent" in request.headers"#), 15);
    // Precedence: && binds tighter than ||.
    assert_eq!(c(r#"method == "POST" || method == "GET" && status_code == 404"#), 6);
    assert_eq!(c(r#"(method == "POST" || method == "GET") && status_code == 404"#), 1);
    // Lists, maps, sizes, in, ternaries, arithmetic, conversions.
    assert_eq!(c(r#"dst.port in [8080, 80]"#), 18);
    assert_eq!(c(r#"method in ["PUT", "DELETE"]"#), 0);
    assert_eq!(c("size(request.headers) >= 3"), 15);
    assert_eq!(c("size(request.headers) == 1"), 2);
    assert_eq!(c(r#"(status_code >= 500 ? "bad" : "ok") == "bad""#), 3);
    assert_eq!(c("response_body_size / 2 > 10"), c("response_body_size > 21"));
    assert_eq!(c(r#"string(status_code).startsWith("5")"#), 3);
    assert_eq!(c(r#"request.headers.exists(h, h.startsWith("user"))"#), 15);
    assert_eq!(c(r#"request.headers.all(h, h != "authorization")"#), 18);
    assert_eq!(c(r#"endpoint == "GET /api/products/{id}""#), 9);
    assert_eq!(c(r#"url.matches("^/api/products/[0-9]+$")"#), 9);
    // Bodies are searchable as text.
    assert_eq!(c(r#"response.body.contains("payment gateway unreachable")"#), 3);
    // now() is the last packet of the snapshot, not the wall clock.
    assert_eq!(c(r#"timestamp > now() - duration("1h")"#), 18);
    assert_eq!(c("timestamp > now()"), 0);
    let f = |k: &str| count(&cat, Table::Flows, k).unwrap_or_else(|e| panic!("{k}: {e}"));
    assert_eq!(f(r#"tcp && zeek_state == "SF""#), 13);
    assert_eq!(f("conn_l7_detected.exists(p, p == \"HTTP\")"), 13);
    assert_eq!(f("http"), 13);
    assert_eq!(f("udp || icmp"), 0);
}

#[test]
fn limit_and_order_follow_ids() {
    let cat = open(&demo());
    let q = KflQuery {
        table: Table::Calls,
        filter: "http && status_code == 200".into(),
        limit: Some(3),
        columns: Some(vec!["id".into(), "status_code".into()]),
        ..Default::default()
    };
    let rows = block_on(2, cat.kfl(&q)).unwrap().unwrap();
    let ids: Vec<u64> = rows
        .batches
        .iter()
        .flat_map(|b| {
            b.column(0).as_primitive::<trawl_query::datafusion::arrow::datatypes::UInt64Type>().values().to_vec()
        })
        .collect();
    assert_eq!(ids, vec![1, 2, 3]);
    let q = KflQuery { columns: Some(vec!["nope".into()]), ..q };
    let e = block_on(2, cat.kfl(&q)).unwrap().unwrap_err().to_string();
    assert!(e.contains("`nope` is not a column of calls"), "{e}");
}

/// Pages in time order (a top-k over timestamp and id, then the rows by
/// id) are the rows SQL's ORDER BY timestamp gives, page after page, over
/// one snapshot and over a folder of two (whose rows interleave in time).
#[test]
fn pages_in_time_order_are_sqls_order() {
    use trawl_query::Order;
    use trawl_query::datafusion::arrow::datatypes::UInt64Type;
    let folder = std::env::temp_dir().join(format!("trawl-query-time-order-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).unwrap();
    for name in ["zeek_http_methods.pcap", "sanders_http_espn.pcapng"] {
        let src = corpus(name);
        let to = folder.join(name.split('.').next().unwrap());
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(&src).unwrap().flatten() {
            if e.path().is_file() {
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    }
    for snap in [corpus("sanders_http_espn.pcapng"), folder.clone()] {
        let cat = open(&snap);
        let want: Vec<(String, u64)> =
            sql(&cat, "SELECT snapshot, id FROM calls WHERE protocol = 'http' ORDER BY timestamp, snapshot, id")
                .iter()
                .flat_map(|b| {
                    let s = trawl_query::datafusion::arrow::compute::cast(
                        b.column(0),
                        &trawl_query::datafusion::arrow::datatypes::DataType::Utf8,
                    )
                    .unwrap();
                    let ids = b.column(1).as_primitive::<UInt64Type>().values().to_vec();
                    (0..b.num_rows())
                        .map(move |r| (s.as_string::<i32>().value(r).to_string(), ids[r]))
                        .collect::<Vec<_>>()
                })
                .collect();
        assert!(want.len() > 40, "{}", want.len());
        let mut got = Vec::new();
        for offset in (0..want.len()).step_by(17) {
            let q = KflQuery {
                table: Table::Calls,
                filter: "http".into(),
                limit: Some(17),
                offset,
                order: Order::Time,
                columns: Some(vec!["snapshot".into(), "id".into()]),
                ..Default::default()
            };
            let rows = block_on(2, cat.kfl(&q)).unwrap().unwrap();
            for b in &rows.batches {
                let s = trawl_query::datafusion::arrow::compute::cast(
                    b.column(0),
                    &trawl_query::datafusion::arrow::datatypes::DataType::Utf8,
                )
                .unwrap();
                let ids = b.column(1).as_primitive::<UInt64Type>();
                got.extend((0..b.num_rows()).map(|r| (s.as_string::<i32>().value(r).to_string(), ids.value(r))));
            }
        }
        assert_eq!(got, want, "{}", snap.display());
        // And the order is not id order: the capture overlaps its calls.
        let by_id: Vec<u64> = want.iter().filter(|(s, _)| *s == want[0].0).map(|(_, i)| *i).collect();
        let mut sorted = by_id.clone();
        sorted.sort_unstable();
        assert_ne!(by_id, sorted, "time order differs from id order on {}", snap.display());
    }
    std::fs::remove_dir_all(&folder).ok();
}

/// Protocol scoping, defaults and the pod -> service fallback, on a table
/// with a non-HTTP row and Kubernetes columns (which real snapshots gain
/// with Kubernetes metadata).
#[test]
fn scoping_defaults_and_kubernetes_fallback() {
    use trawl_query::datafusion::arrow::array::{Int32Array, StringArray};
    use trawl_query::datafusion::arrow::datatypes::{DataType, Field, Schema};
    use trawl_query::datafusion::datasource::MemTable;
    let schema = Arc::new(Schema::new(vec![
        Field::new("protocol", DataType::Utf8, false),
        Field::new("status_code", DataType::Int32, true),
        Field::new("dst_pod_namespace", DataType::Utf8, true),
        Field::new("dst_service_namespace", DataType::Utf8, true),
        Field::new("src_pod_namespace", DataType::Utf8, true),
        Field::new("src_service_namespace", DataType::Utf8, true),
        Field::new("src_namespace", DataType::Utf8, false),
        Field::new("dst_namespace", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec!["http", "http", "websocket", "http"])),
            Arc::new(Int32Array::from(vec![Some(200), None, None, Some(503)])),
            Arc::new(StringArray::from(vec![Some("shop"), None, Some(""), None])),
            Arc::new(StringArray::from(vec![Some("x"), Some("payments"), Some("kube-system"), None])),
            Arc::new(StringArray::from(vec![Some("web"), Some("web"), Some("web"), Some("batch")])),
            Arc::new(StringArray::from(vec![None::<&str>, None, None, None])),
            Arc::new(StringArray::from(vec!["web", "web", "web", "batch"])),
            Arc::new(StringArray::from(vec!["shop", "payments", "kube-system", "internal"])),
        ],
    )
    .unwrap();
    let run = |kfl: &str| -> usize {
        block_on(1, async {
            let ctx = trawl_query::datafusion::prelude::SessionContext::new();
            trawl_query::udf::register(&ctx);
            ctx.register_table("t", Arc::new(MemTable::try_new(schema.clone(), vec![vec![batch.clone()]]).unwrap()))
                .unwrap();
            let df = ctx.table("t").await.unwrap();
            let env = trawl_query::kfl::Env { table: Table::Calls, schema: df.schema(), now_ns: None };
            let c = trawl_query::kfl::compile(kfl, &env).unwrap_or_else(|e| panic!("{e}"));
            df.filter(c.expr.unwrap()).unwrap().count().await.unwrap()
        })
        .unwrap()
    };
    // status_code is HTTP's (and DNS's): the WebSocket row never matches,
    // even with default 0.
    assert_eq!(run("status_code == 0"), 1);
    assert_eq!(run("status_code != 200"), 2);
    assert_eq!(run("status_code"), 3);
    assert_eq!(run("!status_code"), 1);
    assert_eq!(run("!(status_code == 200)"), 3);
    // Pod namespace falls back to the service's; empty means unknown.
    assert_eq!(run(r#"dst.pod.namespace == "payments""#), 1);
    assert_eq!(run(r#"dst.pod.namespace == "kube-system""#), 1);
    assert_eq!(run(r#"dst.service.namespace == "x""#), 1);
    assert_eq!(run(r#"dst.pod.namespace == """#), 1);
    assert_eq!(run(r#""web" in namespaces"#), 3);
    assert_eq!(run(r#"src.namespace != dst.namespace"#), 4);
}

#[test]
fn sql_views_functions_and_read_only() {
    let cat = open(&demo());
    assert_eq!(sql_value(&cat, "SELECT count(*) FROM calls"), "18");
    assert_eq!(sql_value(&cat, "SELECT count(*) FROM http WHERE status_code >= 500"), "3");
    assert_eq!(sql_value(&cat, "SELECT count(*) FROM tcp"), "13");
    assert_eq!(sql_value(&cat, "SELECT count(*) FROM udp"), "0");
    assert_eq!(sql_value(&cat, "SELECT count(*) FROM flows WHERE cidr_match(dst_ip, '127.0.0.0/8')"), "13");
    assert_eq!(sql_value(&cat, "SELECT count(*) FROM flows WHERE cidr_match(dst_ip, '10.0.0.0/8')"), "0");
    assert_eq!(sql_value(&cat, "SELECT count(DISTINCT endpoint) FROM calls"), "5");
    assert_eq!(sql_value(&cat, "SELECT path_template('/api/orders/123')"), "/api/orders/{id}");
    assert_eq!(
        sql_value(&cat, "SELECT endpoint('GET', '/api/orders/123/items/0b7e2c4a-9f1d-4c1e-8a2b-3c4d5e6f7a8b')"),
        "GET /api/orders/{id}/items/{uuid}"
    );
    assert_eq!(
        sql_value(&cat, "SELECT map_get(request_headers, 'user-agent', '-') FROM calls WHERE id = 1"),
        "curl/7.88.1"
    );
    assert_eq!(sql_value(&cat, "SELECT map_get(request_headers, 'nope', '-') FROM calls WHERE id = 1"), "-");
    // api_calls, flows, parse_issues, packets and the six views.
    assert_eq!(sql_value(&cat, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"), "10");
    // l4_flows: the flows folded per peer pair (here every flow is TCP to
    // 127.0.0.1's servers).
    assert_eq!(sql_value(&cat, "SELECT sum(connections) FROM l4_flows"), sql_value(&cat, "SELECT count(*) FROM flows"));
    // The packet index: one row per frame (144), each TCP packet in a flow.
    assert_eq!(sql_value(&cat, "SELECT count(*) FROM packets"), "144");
    assert_eq!(sql_value(&cat, "SELECT count(*) FROM packets p JOIN flows f ON p.flow_id = f.flow_id"), "144");
    assert_eq!(sql_value(&cat, "SELECT sum(client_packets + server_packets) FROM flows"), "144");
    // Joins between tables work as expected: every call has its flow.
    assert_eq!(sql_value(&cat, "SELECT count(*) FROM calls c JOIN flows f ON c.flow_id = f.flow_id"), "18");
    for bad in [
        "CREATE TABLE x AS SELECT 1",
        "CREATE VIEW v AS SELECT 1",
        "INSERT INTO api_calls SELECT * FROM api_calls",
        "COPY (SELECT 1) TO '/tmp/x.csv'",
        "DROP TABLE calls",
        "SET datafusion.execution.batch_size = 1",
        "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '/tmp/x'",
    ] {
        let e = block_on(1, cat.sql(bad)).unwrap().unwrap_err();
        assert!(matches!(e, QueryError::ReadOnly(_)), "{bad}: {e}");
        assert!(e.to_string().starts_with("trawl sql is read-only"), "{e}");
    }
    assert!(!Path::new("/tmp/x.csv").exists());
}

#[test]
fn a_folder_of_snapshots_reads_as_one() {
    let dir = std::env::temp_dir().join(format!("trawl-query-folder-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, src) in [("a.snap", demo()), ("b.snap", corpus("zeek_wikipedia.pcap"))] {
        let dst = dir.join(name);
        std::fs::create_dir_all(&dst).unwrap();
        for f in std::fs::read_dir(&src).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, dst.join(f.file_name().unwrap())).unwrap();
        }
    }
    let cat = open(&dir);
    assert_eq!(cat.snapshots.len(), 2);
    // 18 demo calls, 15 HTTP and 26 DNS (mDNS, LLMNR) exchanges of 2012.
    assert_eq!(sql_value(&cat, "SELECT count(*) FROM calls"), "59");
    assert_eq!(sql_value(&cat, "SELECT count(DISTINCT snapshot) FROM flows"), "2");
    assert_eq!(count(&cat, Table::Calls, "status_code == 304").unwrap(), 15);
    // now() is the later snapshot's end: the demo (2026) outlives 2012's capture.
    assert_eq!(count(&cat, Table::Calls, r#"timestamp > now() - duration("1h")"#).unwrap(), 18);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_snapshots_are_named() {
    let e = block_on(1, Catalog::open(Path::new("/nonexistent/x.snap"), 1)).unwrap().err().unwrap().to_string();
    assert_eq!(e, "/nonexistent/x.snap: no such file or directory");
    let capture = root().join("testdata/demo/checkout.pcap");
    let e = block_on(1, Catalog::open(&capture, 1)).unwrap().err().unwrap().to_string();
    assert!(e.ends_with("expected a snapshot directory (made by `trawl analyze -o DIR`), found a file"), "{e}");
    let empty = std::env::temp_dir().join(format!("trawl-query-empty-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let e = block_on(1, Catalog::open(&empty, 1)).unwrap().err().unwrap().to_string();
    assert!(e.contains("not a trawl snapshot"), "{e}");
    std::fs::write(empty.join("manifest.json"), r#"{"schema_version": 99}"#).unwrap();
    let e = block_on(1, Catalog::open(&empty, 1)).unwrap().err().unwrap().to_string();
    assert!(e.contains("schema version 99"), "{e}");
    std::fs::remove_dir_all(&empty).ok();
}

#[test]
fn kfl_doc_is_current() {
    let doc = std::fs::read_to_string(root().join("docs/kfl.md")).unwrap();
    assert!(doc == trawl_query::kfl::markdown(), "docs/kfl.md is stale: run `trawl kfl-doc > docs/kfl.md`");
}

#[test]
fn null_columns_read_as_defaults() {
    // UDP flows have no handshake: a null RTT reads as 0 in KFL, stays null in SQL.
    let file = "zeek_dns_long-connection.pcap";
    let oracle: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("testdata/corpus/oracle.json")).unwrap()).unwrap();
    let udp = oracle.as_array().unwrap().iter().find(|e| e["file"] == file).unwrap()["udp_conversations"]
        .as_u64()
        .unwrap() as usize;
    assert!(udp > 0);
    let cat = open(&corpus(file));
    assert_eq!(count(&cat, Table::Flows, "udp").unwrap(), udp);
    assert_eq!(count(&cat, Table::Flows, "udp && handshake_rtt_us == 0").unwrap(), udp);
    assert_eq!(sql_value(&cat, "SELECT count(*) FROM udp WHERE handshake_rtt_us IS NULL"), udp.to_string());
}

/// The gRPC, GraphQL and WebSocket fields on real traffic: the scenario
/// captures in testdata/scenarios (how they were made: testdata/README.md).
#[test]
fn l7_fields_filter_grpc_graphql_and_websocket() {
    let scenario = |p: &str| open(&snapshot(&root().join("testdata/scenarios").join(p)));
    let grpc = scenario("grpc/inventory.pcap");
    for (kfl, n) in [
        ("grpc", 6),
        ("http", 6),
        ("grpc && grpc_status != 0", 2),
        (r#"grpc && grpc_method == "GetItem""#, 2),
        (r#"grpc && grpc_status == 5 && grpc_message == "no item missing""#, 1),
        ("grpc && grpc_response_messages > 1", 2),
        (r#"http_version == "HTTP/2""#, 6),
        ("gql || ws", 0),
    ] {
        assert_eq!(count(&grpc, Table::Calls, kfl).unwrap_or_else(|e| panic!("{kfl}: {e}")), n, "{kfl}");
    }
    assert_eq!(count(&grpc, Table::Flows, r#"grpc && "HTTP2" in flow_l7_detected"#).unwrap_or_default(), 1);
    let web = scenario("web/http2-graphql.pcap");
    for (kfl, n) in [
        ("gql", 7),
        (r#"gql && gql_operation == "mutation""#, 3),
        ("gqlv2", 2),
        ("gqlv1 && gql_errors > 0", 2),
        (r#"http && http_version == "HTTP/2" && !gql"#, 2),
    ] {
        assert_eq!(count(&web, Table::Calls, kfl).unwrap_or_else(|e| panic!("{kfl}: {e}")), n, "{kfl}");
    }
    let ws = scenario("web/websocket.pcap");
    for (kfl, n) in [
        ("ws", 14),
        (r#"ws && ws_opcode == "close""#, 4),
        (r#"ws && ws_response && ws_opcode == "close" && ws_close_code == 4001"#, 1),
        (r#"ws && ws_request && ws_request_payload_data == "hello""#, 1),
        ("ws && ws_request_payload_length > 200", 1),
        ("http", 2),
    ] {
        assert_eq!(count(&ws, Table::Calls, kfl).unwrap_or_else(|e| panic!("{kfl}: {e}")), n, "{kfl}");
    }
    assert!(
        kfl_error(&ws, Table::Calls, r#"ws_opcode == "txt""#).contains("text"),
        "a value outside the set names the valid ones"
    );
}

/// Kubeshark's database and messaging fields on real traffic: the
/// PostgreSQL scenario (real server, psql, pgbench) and the corpus's
/// MySQL, Kafka and AMQP captures.
#[test]
fn l7_fields_filter_databases_and_messaging() {
    let at = |p: &str| open(&snapshot(&root().join("testdata").join(p)));
    let pg = at("scenarios/postgres/postgres.pcap");
    for (kfl, n) in [
        ("postgresql", 23),
        ("!postgresql_success", 4),
        (r#"postgresql_error_code == "23505""#, 1),
        (r#"postgresql && postgresql_error_code.startsWith("42")"#, 1),
        (r#"postgresql_query.contains("FROM users") && postgresql_rows >= 1"#, 5),
        (r#"postgresql_command == "Bind""#, 3),
        (r#"postgresql_database == "no_such_db""#, 1),
        (r#"postgresql_result.startsWith("INSERT")"#, 1),
        ("postgresql_total_size > 0 && postgresql_user == \"postgres\"", 22),
        ("mysql || redis || http", 0),
    ] {
        assert_eq!(count(&pg, Table::Calls, kfl).unwrap_or_else(|e| panic!("{kfl}: {e}")), n, "{kfl}");
    }
    assert_eq!(count(&pg, Table::Flows, r#"postgresql && "PostgreSQL" in flow_l7_detected"#).unwrap_or_default(), 6);
    let my = at("corpus/zeek_mysql.pcap");
    for (kfl, n) in [
        ("mysql", 18),
        (r#"mysql && mysql_query.contains("select") && mysql_success"#, 4),
        (r#"mysql_command == "COM_QUERY""#, 14),
        (r#"mysql_database == "test""#, 15),
        ("mysql_error_code != 0", 0),
    ] {
        assert_eq!(count(&my, Table::Calls, kfl).unwrap_or_else(|e| panic!("{kfl}: {e}")), n, "{kfl}");
    }
    let kafka = at("corpus/deepflow_kafka_00-produce-v2.pcap");
    for (kfl, n) in [
        (r#"kafka && kafka_api_key_name == "PRODUCE" && kafka_request_summary.contains("topic2")"#, 1),
        (r#"kafka_api_key == 0 && kafka_client_id == "console-producer" && kafka_response"#, 1),
        (r#""topic2" in kafka_topics && kafka_error_code == 0"#, 1),
    ] {
        assert_eq!(count(&kafka, Table::Calls, kfl).unwrap_or_else(|e| panic!("{kfl}: {e}")), n, "{kfl}");
    }
    let amqp = at("corpus/deepflow_amqp-error.pcap");
    for (kfl, n) in [
        ("amqp", 25),
        (r#"amqp && amqp_method == "basic.publish""#, 1),
        ("amqp_reply_code >= 300", 7),
        (r#"amqp_summary == "test_ex""#, 2),
        (r#"amqp_reply_text.startsWith("NOT_ALLOWED")"#, 4),
    ] {
        assert_eq!(count(&amqp, Table::Calls, kfl).unwrap_or_else(|e| panic!("{kfl}: {e}")), n, "{kfl}");
    }
}

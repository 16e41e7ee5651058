//! The analyzer against real captures: the third-party corpus in
//! testdata/corpus with tshark 4.0.17's facts in oracle.json, and trawl's
//! own demo capture. One integration-test binary for the crate.
//!
//! One file: the crate's one integration-test binary, one section per
//! protocol, all over the same corpus and oracle loaders.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde_json::Value;
use trawl_analyze::records::{FlowRow, Keyed, Record};
use trawl_analyze::{Options, analyze_to_memory};
use trawl_proto::exchange::StartLine;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata")
}

fn corpus(file: &str) -> PathBuf {
    testdata().join("corpus").join(file)
}

fn oracle() -> Vec<Value> {
    let text = std::fs::read_to_string(corpus("oracle.json")).unwrap_or_default();
    serde_json::from_str::<Vec<Value>>(&text).unwrap_or_default()
}

fn run(files: &[PathBuf], threads: usize, hash: bool) -> (trawl_analyze::Outcome, Vec<Keyed>) {
    let mut opts = Options { inputs: files.to_vec(), threads, ..Options::default() };
    opts.flow.hash_streams = hash;
    match analyze_to_memory(&opts) {
        Ok(r) => r,
        Err(e) => panic!("{files:?}: {e}"),
    }
}

fn flows(rows: &[Keyed]) -> Vec<&FlowRow> {
    rows.iter()
        .filter_map(|r| match &r.record {
            Record::Flow(f) => Some(f.as_ref()),
            _ => None,
        })
        .collect()
}

fn endpoint(ip: &IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v) => format!("{v}:{port}"),
        IpAddr::V6(v) => format!("[{v}]:{port}"),
    }
}

fn u(v: &Value, path: &[&str]) -> u64 {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_u64().unwrap_or(0)
}

/// Where trawl counts HTTP messages differently from tshark, on purpose:
/// (file, requests, responses, why).
const HTTP_DIFFERENCES: &[(&str, u64, u64, &str)] = &[
    (
        "zeek_http_methods.pcap",
        49,
        49,
        "each of the 49 connections carries one request and one response; tshark does not recognise 22 request lines \
         (unknown methods, missing spaces, non-ASCII methods, 'HTTP/1.' without minor version), trawl keeps them with \
         error=parse_error",
    ),
    (
        "zeek_http_206_example_b.pcap",
        3,
        3,
        "the first connection carries two 206 responses (816896 and 206024 body bytes, matching its 1023578 \
         reassembled bytes); tshark loses the first one among its 52 malformed frames",
    ),
    (
        "sanders_http_espn.pcapng",
        61,
        61,
        "a response body with a lost segment: its Content-Length lets trawl skip the gap and read the next response, \
         tshark gives up on that stream",
    ),
    (
        "suricata_http-pipeline-files-with-gap.pcap",
        3,
        3,
        "three pipelined responses; the gap is inside the second body (Content-Length 733), so the third is still \
         read; tshark reports one",
    ),
    (
        "suricata_tcp-rst-unacked-stream-10.pcap",
        1,
        1,
        "the 200 response head was captured before the losses; tshark does not dissect it because the stream has gaps",
    ),
];

#[test]
fn corpus_flow_and_http_counts_match_tshark() {
    let mut checked = 0;
    for e in oracle() {
        let file = e["file"].as_str().unwrap_or_default().to_string();
        let (outcome, rows) = run(&[corpus(&file)], 2, false);
        let s = &outcome.stats;
        assert_eq!(s.tcp_flows, u(&e, &["tcp_conversations"]), "{file}: TCP flows vs tshark conv,tcp");
        assert_eq!(s.udp_flows, u(&e, &["udp_conversations"]), "{file}: UDP flows vs tshark conv,udp");
        let (req, resp) = match HTTP_DIFFERENCES.iter().find(|d| d.0 == file) {
            Some(d) => (d.1, d.2),
            None => (u(&e, &["http", "requests"]), u(&e, &["http", "responses"])),
        };
        assert_eq!(s.http_requests, req, "{file}: HTTP requests");
        assert_eq!(s.http_responses, resp, "{file}: HTTP responses");
        // Every row's table count agrees with the counters.
        assert_eq!(flows(&rows).len() as u64, s.flows, "{file}: flow rows");
        // Real traffic fits the default flow-state budget, what its
        // parsers hold included: nothing is cut short by eviction.
        assert_eq!(s.flow_table_evictions, 0, "{file}: flows evicted");
        checked += 1;
    }
    assert_eq!(checked, 53, "the corpus has 53 captures");
}

#[test]
fn corpus_http_methods_and_statuses_match_tshark() {
    // Where the counts agree, the methods and status codes must too.
    for e in oracle() {
        let file = e["file"].as_str().unwrap_or_default().to_string();
        if HTTP_DIFFERENCES.iter().any(|d| d.0 == file) || u(&e, &["http", "requests"]) == 0 {
            continue;
        }
        let (_, rows) = run(&[corpus(&file)], 1, false);
        let mut methods: HashMap<String, u64> = HashMap::new();
        let mut statuses: HashMap<String, u64> = HashMap::new();
        for r in &rows {
            if let Record::Call(c) = &r.record
                && c.protocol == "http"
            {
                if let Some(StartLine::Request { method, .. }) = c.exchange.request.as_ref().map(|m| &m.start) {
                    *methods.entry(method.clone()).or_default() += 1;
                }
                if let Some(StartLine::Response { status, .. }) = c.exchange.response.as_ref().map(|m| &m.start) {
                    *statuses.entry(status.to_string()).or_default() += 1;
                }
            }
        }
        let want_m: HashMap<String, u64> = serde_json::from_value(e["http"]["methods"].clone()).unwrap_or_default();
        let want_s: HashMap<String, u64> =
            serde_json::from_value(e["http"]["status_codes"].clone()).unwrap_or_default();
        assert_eq!(methods, want_m, "{file}: methods");
        assert_eq!(statuses, want_s, "{file}: status codes");
    }
}

#[test]
fn corpus_reassembled_streams_match_tshark_follow() {
    // For every stream direction without a gap, the reassembled bytes
    // hash to what `tshark -z follow,tcp,raw` printed.
    let mut compared = 0;
    let mut gapped = 0;
    for e in oracle() {
        let file = e["file"].as_str().unwrap_or_default().to_string();
        let Some(streams) = e["tcp_stream_payloads"].as_array() else { continue };
        let by_nodes: HashMap<(String, String), &Value> = streams
            .iter()
            .map(|s| {
                ((s["node0"].as_str().unwrap_or("").to_string(), s["node1"].as_str().unwrap_or("").to_string()), s)
            })
            .collect();
        let (_, rows) = run(&[corpus(&file)], 2, true);
        for f in flows(&rows).into_iter().filter(|f| f.protocol == "tcp") {
            let Some(d) = &f.digest else { panic!("{file}: flow {} has no digest", f.flow_id) };
            let client = endpoint(&f.src_ip, f.src_port);
            let server = endpoint(&f.dst_ip, f.dst_port);
            let (n0, n1, d0, d1, g0, g1) = if d.first_from_client {
                (client, server, &d.dirs[0], &d.dirs[1], f.dirs[0].gap_bytes, f.dirs[1].gap_bytes)
            } else {
                (server, client, &d.dirs[1], &d.dirs[0], f.dirs[1].gap_bytes, f.dirs[0].gap_bytes)
            };
            // node0 is whoever sent the first packet tshark gave the stream;
            // where tshark could not dissect that packet (a TCP header cut
            // by the snaplen) its node0 is the other side.
            let (o, keys) = match (by_nodes.get(&(n0.clone(), n1.clone())), by_nodes.get(&(n1.clone(), n0.clone()))) {
                (Some(o), _) => (o, [("node0_bytes", "node0_sha256"), ("node1_bytes", "node1_sha256")]),
                (None, Some(o)) => (o, [("node1_bytes", "node1_sha256"), ("node0_bytes", "node0_sha256")]),
                (None, None) => panic!("{file}: stream {n0} -> {n1} not in the oracle"),
            };
            for (ours, gap, (bytes_key, sha_key)) in [(d0, g0, keys[0]), (d1, g1, keys[1])] {
                if gap > 0 {
                    // Bytes the capture lacks: tshark's follow output is not
                    // a faithful stream there, so it is not compared.
                    gapped += 1;
                    continue;
                }
                assert_eq!(ours.0, o[bytes_key].as_u64().unwrap_or(u64::MAX), "{file}: {n0}->{n1} {bytes_key}");
                assert_eq!(ours.1, o[sha_key].as_str().unwrap_or(""), "{file}: {n0}->{n1} {sha_key}");
                compared += 1;
            }
        }
    }
    // 152 TCP streams in the corpus, two directions each; 8 have gaps.
    assert_eq!(gapped, 8, "directions with gaps");
    assert_eq!(compared, 296, "directions compared");
}

#[test]
fn corpus_handshake_rtt_matches_tshark() {
    // tshark numbers TCP streams in order of their first packet, as trawl
    // numbers flows (flow_id), so stream N is the Nth TCP flow.
    let mut compared = 0;
    for e in oracle() {
        let file = e["file"].as_str().unwrap_or_default().to_string();
        let Some(by_stream) = e["tcp"]["handshake_rtt_by_stream"].as_object() else { continue };
        let (_, rows) = run(&[corpus(&file)], 1, false);
        let mut tcp: Vec<&FlowRow> = flows(&rows).into_iter().filter(|f| f.protocol == "tcp").collect();
        tcp.sort_by_key(|f| f.flow_id);
        for (i, f) in tcp.iter().enumerate() {
            let want = by_stream.get(&i.to_string()).and_then(|v| v.as_f64()).map(|s| (s * 1e6).round() as i64);
            let got = f.handshake_rtt_ns.map(|ns| (ns as f64 / 1e3).round() as i64);
            if got.is_none() && f.zeek_state == "REJ" {
                // tshark also reports SYN -> RST/ACK of a refused connection
                // as its initial RTT; no handshake took place, so trawl
                // leaves it null.
                continue;
            }
            assert_eq!(got, want, "{file}: stream {i} handshake RTT in µs");
            compared += got.is_some() as usize;
        }
    }
    assert!(compared >= 90, "compared {compared} handshakes");
}

/// Serialises every row to text, for comparing whole outputs.
fn render(rows: &[Keyed]) -> Vec<String> {
    rows.iter().map(|r| format!("{:?}", r.record)).collect()
}

#[test]
fn output_is_identical_at_any_thread_count() {
    let files: Vec<PathBuf> = [
        "sanders_http_espn.pcapng",
        "zeek_http_methods.pcap",
        "zeek_wikipedia.pcap",
        "suricata_http-pipeline-files-with-gap.pcap",
    ]
    .iter()
    .map(|f| corpus(f))
    .collect();
    let (_, base) = run(&files, 1, true);
    assert!(base.len() > 250, "enough rows to make the comparison meaningful: {}", base.len());
    for threads in [2, 3, 8] {
        let (_, rows) = run(&files, threads, true);
        assert_eq!(render(&rows), render(&base), "{threads} threads");
    }
}

#[test]
fn several_files_merge_in_time_order() {
    // Split a capture's records alternately over two files: analysing both
    // must give the rows of the original, file and frame ids aside.
    let src = std::fs::read(corpus("zeek_wikipedia.pcap")).unwrap_or_default();
    let (head, mut rest) = src.split_at(24);
    let (mut a, mut b) = (head.to_vec(), head.to_vec());
    let mut n = 0;
    while rest.len() >= 16 {
        let len = u32::from_le_bytes([rest[8], rest[9], rest[10], rest[11]]) as usize;
        let (rec, tail) = rest.split_at(16 + len);
        if n % 2 == 0 {
            a.extend_from_slice(rec)
        } else {
            b.extend_from_slice(rec)
        }
        rest = tail;
        n += 1;
    }
    let dir = std::env::temp_dir().join(format!("trawl-merge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok();
    let (pa, pb) = (dir.join("a.pcap"), dir.join("b.pcap"));
    std::fs::write(&pa, &a).ok();
    std::fs::write(&pb, &b).ok();
    let (o1, single) = run(&[corpus("zeek_wikipedia.pcap")], 2, false);
    let (o2, merged) = run(&[pa, pb], 2, false);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(o2.stats.frames, 136);
    assert_eq!(o2.stats.flows, o1.stats.flows);
    let strip = |rows: &[Keyed]| -> Vec<(u64, String, u64, u64)> {
        flows(rows).iter().map(|f| (f.ts as u64, f.community_id.clone(), f.dirs[0].packets, f.dirs[1].bytes)).collect()
    };
    let (mut x, mut y) = (strip(&single), strip(&merged));
    x.sort();
    y.sort();
    assert_eq!(x, y);
}

#[test]
fn gzip_compressed_capture_reads_like_the_original() {
    use std::io::Write;
    let raw = std::fs::read(corpus("zeek_http-qinq-0.pcap")).unwrap_or_default();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).ok();
    let path = std::env::temp_dir().join(format!("trawl-gz-{}.pcap.gz", std::process::id()));
    let gz_bytes = gz.finish().unwrap_or_default();
    std::fs::write(&path, &gz_bytes).ok();
    let (plain_o, plain) = run(&[corpus("zeek_http-qinq-0.pcap")], 1, false);
    let (gz_o, gzipped) = run(std::slice::from_ref(&path), 1, false);
    std::fs::remove_file(&path).ok();
    assert!(gz_o.inputs[0].gzip);
    // The manifest's sha256 is of the file as stored (compressed).
    use sha2::Digest;
    assert_eq!(gz_o.inputs[0].sha256, trawl_analyze::input::hex(&sha2::Sha256::digest(&gz_bytes)));
    assert_ne!(gz_o.inputs[0].sha256, plain_o.inputs[0].sha256);
    assert_eq!(render(&gzipped), render(&plain));
    assert_eq!(gz_o.stats.http_requests, 1);
}

#[test]
fn damaged_captures_are_analysed_up_to_the_damage() {
    // capinfos: "cut short in the middle of a packet" after 2696 packets.
    let (o, _) = run(&[corpus("suricata_http-mime-truncated.pcap")], 2, false);
    let d = o.inputs[0].damage.clone().unwrap_or_else(|| panic!("no damage reported"));
    assert_eq!(d.frames_before, 2696);
    assert_eq!((o.stats.http_requests, o.stats.http_responses), (8, 8));
    // "File has 4325376-byte packet, bigger than maximum of 262144" after 6.
    let (o, _) = run(&[corpus("suricata_tls_DER-incomplete-header.pcap")], 2, false);
    let d = o.inputs[0].damage.clone().unwrap_or_else(|| panic!("no damage reported"));
    assert_eq!(d.frames_before, 6);
    assert!(d.detail.contains("4325376"), "{}", d.detail);
    // An empty capture (header only) is fine.
    let (o, rows) = run(&[corpus("zeek_empty.pcap")], 1, false);
    assert!(o.inputs[0].damage.is_none());
    assert!(rows.is_empty());
}

#[test]
fn vlan_tags_are_recorded_on_flows() {
    // oracle: vlan_ids [0] on all 14 packets (802.1Q, and QinQ with both tags 0).
    for f in ["zeek_http-vlan-0.pcap", "zeek_http-qinq-0.pcap"] {
        let (_, rows) = run(&[corpus(f)], 1, false);
        let vlans: Vec<Option<u16>> = flows(&rows).iter().map(|f| f.vlan).collect();
        assert_eq!(vlans, [Some(0)], "{f}");
    }
    let (_, rows) = run(&[corpus("zeek_wikipedia.pcap")], 1, false);
    assert!(flows(&rows).iter().all(|f| f.vlan.is_none()));
}

#[test]
fn input_facts_match_capinfos() {
    for e in oracle() {
        let file = e["file"].as_str().unwrap_or_default().to_string();
        let (o, _) = run(&[corpus(&file)], 1, false);
        let i = &o.inputs[0];
        assert_eq!(i.sha256, e["sha256"].as_str().unwrap_or(""), "{file}: sha256");
        assert_eq!(i.size, u(&e, &["size"]), "{file}: size");
        // capinfos counts packets; tshark 4.0 also shows some pcapng blocks
        // (custom, statistics) as frames.
        let packets = e["capinfos"]["packets"].as_u64().unwrap_or_else(|| u(&e, &["tshark_packets_read"]));
        assert_eq!(o.stats.frames, packets, "{file}: frames");
        assert_eq!(o.stats.ipv6_packets, u(&e, &["ipv6_packets"]), "{file}: IPv6 packets");
        assert_eq!(
            o.stats.snaplen_truncated_frames,
            u(&e, &["snaplen_truncated_packets"]),
            "{file}: snaplen-truncated frames"
        );
    }
}

#[test]
fn flows_carry_community_ids_like_tshark() {
    // tshark --enable-protocol communityid -T fields -e communityid on
    // these captures (see testdata/golden/community_id.tsv).
    let text = std::fs::read_to_string(testdata().join("golden/community_id.tsv")).unwrap_or_default();
    let mut want: HashMap<String, Vec<String>> = HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let mut parts = line.split('\t');
        if let (Some(f), Some(id)) = (parts.next(), parts.next()) {
            want.entry(f.to_string()).or_default().push(id.to_string());
        }
    }
    assert!(want.len() >= 5);
    for (file, mut ids) in want {
        let (_, rows) = run(&[corpus(&file)], 1, false);
        let mut got: Vec<String> = flows(&rows).iter().map(|f| f.community_id.clone()).collect();
        got.sort();
        got.dedup();
        ids.sort();
        assert_eq!(got, ids, "{file}");
    }
}

#[test]
fn demo_capture_tells_the_checkout_story() {
    // Real nginx, curl and a pipelining Python client
    // (testdata/demo/make_demo.sh). tshark -z http,tree: 18 requests (13 GET,
    // 5 POST); responses 14x200, 3x502, 1x404 and one 100 Continue; 13 TCP
    // connections.
    let (o, rows) = run(&[testdata().join("demo/checkout.pcap")], 2, false);
    assert_eq!(o.stats.tcp_flows, 13);
    assert_eq!((o.stats.http_requests, o.stats.http_responses), (18, 18));
    let calls: Vec<&trawl_analyze::records::CallRow> =
        rows.iter().filter_map(|r| if let Record::Call(c) = &r.record { Some(c.as_ref()) } else { None }).collect();
    let status = |c: &&trawl_analyze::records::CallRow| match c.exchange.response.as_ref().map(|m| &m.start) {
        Some(StartLine::Response { status, .. }) => *status,
        _ => 0,
    };
    let failing: Vec<_> = calls.iter().filter(|c| status(c) == 502).collect();
    assert_eq!(failing.len(), 3);
    assert!(failing.iter().all(|c| {
        c.exchange.response.as_ref().is_some_and(|m| m.body == br#"{"error":"payment gateway unreachable"}"#)
    }));
    assert_eq!(calls.iter().filter(|c| status(c) == 404).count(), 1);
    assert_eq!(calls.iter().filter(|c| c.exchange.interim == vec![100]).count(), 1);
    assert_eq!(calls.iter().filter(|c| status(c) == 200).count(), 14);
    // The pipelined connection: three exchanges, paired in order.
    let last_flow = calls.iter().map(|c| c.flow_id).max().unwrap_or(0);
    let piped: Vec<(u32, String)> = calls
        .iter()
        .filter(|c| c.flow_id == last_flow)
        .filter_map(|c| match c.exchange.request.as_ref().map(|m| &m.start) {
            Some(StartLine::Request { target, .. }) => Some((c.exchange.index, target.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        piped,
        [(0, "/api/products/1".to_string()), (1, "/api/products/2".to_string()), (2, "/api/health".to_string())]
    );
    let bodies: Vec<&[u8]> = calls
        .iter()
        .filter(|c| c.flow_id == last_flow)
        .filter_map(|c| c.exchange.response.as_ref().map(|m| m.body.as_slice()))
        .collect();
    assert!(
        bodies[0].starts_with(br#"{"id":1,"#) && bodies[1].starts_with(br#"{"id":2,"#) && bodies[2] == b"ok",
        "{bodies:?}"
    );
    // The gzip-encoded catalog is stored decoded.
    let catalog = calls
        .iter()
        .find(|c| matches!(c.exchange.request.as_ref().map(|m| &m.start), Some(StartLine::Request { target, .. }) if target == "/api/catalog.json"));
    let body = catalog
        .and_then(|c| c.exchange.response.as_ref())
        .map(|m| (m.header("content-encoding").map(str::to_string), m.body.starts_with(b"{\"products\"")));
    assert_eq!(body, Some((Some("gzip".to_string()), true)));
}

/// xorshift64*: a small deterministic generator for the mutation test.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

#[test]
fn mutated_captures_never_panic() {
    // A stable-toolchain complement to the cargo-fuzz targets in fuzz/:
    // real captures with bytes flipped, lengths corrupted and tails cut
    // must give an outcome or a typed error, never a panic.
    let files = [
        "zeek_http_methods.pcap",
        "sanders_http_espn.pcapng",
        "gopacket_pcapng_be_test202.pcapng",
        "zeek_ipv6-http-atomic-frag.pcap",
        "tcpdump_tcp-handshake-nano.pcap",
        "suricata_http2-continuation.pcap",
        "deepflow_grpc-service-name.pcap",
        "../scenarios/grpc/inventory.pcap",
        "../scenarios/web/websocket.pcap",
        "suricata_dns-tcp-multirequest-buffer.pcap",
        "arkime_tls-split-client-hello.pcap",
        "zeek_redis_pubsub.pcap",
        "zeek_psql-create-insert-select-delete-drop.pcap",
        "deepflow_pgsql-all.pcap",
        "zeek_mysql.pcap",
        "deepflow_kafka_00-produce-v2.pcap",
        "deepflow_amqp-error.pcap",
        "../third_party/mongodb/deepflow_mongo-shell.pcap",
    ];
    let dir = std::env::temp_dir().join(format!("trawl-mutate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut runs = 0;
    for f in files {
        let original = std::fs::read(corpus(f)).unwrap_or_default();
        for round in 0..40 {
            let mut data = original.clone();
            let flips = 1 + (next(&mut state) % 64) as usize;
            for _ in 0..flips {
                let i = (next(&mut state) as usize) % data.len();
                data[i] ^= (next(&mut state) & 0xff) as u8;
            }
            if round % 3 == 0 {
                let cut = (next(&mut state) as usize) % data.len();
                data.truncate(cut.max(1));
            }
            let path = dir.join(format!("m{round}-{}", f.replace('/', "_")));
            std::fs::write(&path, &data).ok();
            let opts = Options { inputs: vec![path.clone()], threads: 2, chunk_size: 1 << 12, ..Options::default() };
            let _ = analyze_to_memory(&opts);
            std::fs::remove_file(&path).ok();
            runs += 1;
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(runs, 720);
}

/// The TCP expert counts of one capture, summed over its connections,
/// under the oracle's names.
fn tcp_expert_counts(rows: &[Keyed]) -> Vec<(&'static str, u64)> {
    let mut sums = vec![
        ("retransmission", 0u64),
        ("fast_retransmission", 0),
        ("spurious_retransmission", 0),
        ("out_of_order", 0),
        ("lost_segment", 0),
        ("ack_lost_segment", 0),
        ("duplicate_ack", 0),
        ("zero_window", 0),
        ("zero_window_probe", 0),
        ("window_full", 0),
        ("keep_alive", 0),
        ("rst_packets", 0),
        ("fin_packets", 0),
    ];
    for f in flows(rows) {
        let Some(m) = &f.tcp else { continue };
        let v = [
            m.retransmissions(),
            m.fast_retransmissions,
            m.spurious_retransmissions,
            m.out_of_order,
            m.missing_segments,
            m.acked_unseen,
            m.dup_acks,
            m.zero_windows,
            m.zero_window_probes,
            m.window_full,
            m.keep_alives,
            m.rst_packets,
            m.fin_packets,
        ];
        for (s, n) in sums.iter_mut().zip(v) {
            s.1 += n as u64;
        }
    }
    sums
}

/// Where trawl's TCP expert counts differ from tshark's, on purpose:
/// (file, oracle name, largest difference allowed).
///
/// zeek_tcp_reassembly.pcap has five frames whose IP total length (1500)
/// exceeds the bytes the frame holds (frames 7, 26, 35, 39, 85: "IPv4
/// total length exceeds packet length"). tshark takes the segment length
/// from the frame (1440 instead of 1448); trawl takes it from the IP
/// header, which the peer's ACKs confirm (frame 8 acknowledges 275 + 1448).
/// tshark therefore sees 8 bytes missing after each of those frames: it
/// flags the next data as "previous segment not captured" and the ACK
/// as "ACKed unseen segment", and its ACKed-unseen handling marks the
/// sender's duplicate-ACK run, which turns the server's next FIN
/// retransmissions (frames 8, 10, 12) into fast retransmissions. trawl
/// counts the same 20 retransmissions, as plain ones.
const TCP_EXPERT_TOLERANCE: &[(&str, &str, u64)] = &[
    ("zeek_tcp_reassembly.pcap", "fast_retransmission", 3),
    ("zeek_tcp_reassembly.pcap", "lost_segment", 2),
    ("zeek_tcp_reassembly.pcap", "ack_lost_segment", 4),
];

#[test]
fn corpus_tcp_expert_counts_match_tshark() {
    // Retransmissions (plain, fast, spurious), out-of-order, missing and
    // ACKed-unseen segments, duplicate ACKs, zero windows and their
    // probes, window-full, keep-alives, RST and FIN packets: per capture,
    // exactly tshark 4.0.17's frame counts (tcp.analysis.* with default
    // preferences, one pass) except where TCP_EXPERT_TOLERANCE explains.
    let mut diffs = Vec::new();
    let mut compared = 0;
    for e in oracle() {
        let file = e["file"].as_str().unwrap_or_default().to_string();
        let (_, rows) = run(&[corpus(&file)], 1, false);
        for (name, got) in tcp_expert_counts(&rows) {
            let want = u(&e, &["tcp", name]);
            compared += 1;
            let allowed = TCP_EXPERT_TOLERANCE.iter().find(|(f, n, _)| *f == file && *n == name).map_or(0, |t| t.2);
            if got.abs_diff(want) > allowed {
                diffs.push(format!("{file}: {name} trawl {got} tshark {want}"));
            }
        }
    }
    assert_eq!(compared, 53 * 13);
    assert!(diffs.is_empty(), "{} of {compared} differ:\n{}", diffs.len(), diffs.join("\n"));
    // The corpus exercises every counter: none is trivially zero.
    let total: Vec<u64> = oracle()
        .iter()
        .map(|e| u(e, &["tcp", "zero_window_probe"]) + u(e, &["tcp", "window_full"]) + u(e, &["tcp", "keep_alive"]))
        .collect();
    assert!(total.iter().sum::<u64>() > 10);
}

#[test]
fn corpus_connection_completeness() {
    // tcp.completeness per connection (1 SYN, 2 SYN-ACK, 4 ACK, 8 data,
    // 16 FIN, 32 RST). tshark prints, on each packet, the value before that
    // packet; its last packet's value plus that packet's own flags gives
    // these. One difference, on purpose: a capture that starts mid-stream
    // is 8 here (data only, Kubeshark's reading) where tshark 4.0 also
    // sets the ACK bit (12) for any ACK seen without a handshake.
    for (file, want) in [
        ("deepflow_server-no-response.pcap", vec![33]),
        ("zeek_tls_tls13-ech.pcap", vec![8, 63, 63]),
        ("suricata_tcp-fastopen-tfo.pcap", vec![31, 31]),
        ("zeek_http_206_example_b.pcap", vec![47, 63]),
        ("zeek_redis_pubsub.pcap", vec![8, 31, 31, 31]),
        ("suricata_tcp-rst-unacked-stream-10.pcap", vec![47]),
    ] {
        let (_, rows) = run(&[corpus(file)], 1, false);
        let mut tcp: Vec<&FlowRow> = flows(&rows).into_iter().filter(|f| f.protocol == "tcp").collect();
        tcp.sort_by_key(|f| f.flow_id);
        let got: Vec<u8> = tcp.iter().filter_map(|f| f.tcp.as_ref().map(|m| m.completeness)).collect();
        assert_eq!(got, want, "{file}");
    }
}

/// Where trawl's HTTP/2 counts differ from tshark's, on purpose: (file,
/// frames, requests, extra paths, why).
const HTTP2_DIFFERENCES: &[(&str, u64, u64, &[&str], &str)] = &[(
    "arkime_http2-nghttp2.pcap",
    21,
    2,
    &["/"],
    "the client's first HEADERS carries a 16 KiB header block continued in a CONTINUATION frame; tshark 4.0 fails to \
     reassemble it (BoundErrorUnreassembled), so it neither decodes the request for / nor sees the five client frames \
     after it (CONTINUATION, SETTINGS ack, two WINDOW_UPDATEs, GOAWAY). trawl reads the whole block.",
)];

#[test]
fn corpus_http2_frames_streams_and_grpc_calls_match_tshark() {
    let mut with_h2 = 0;
    for e in oracle() {
        let file = e["file"].as_str().unwrap_or_default().to_string();
        let h = &e["http2"];
        let (outcome, rows) = run(&[corpus(&file)], 2, false);
        let s = &outcome.stats;
        let diff = HTTP2_DIFFERENCES.iter().find(|d| d.0 == file);
        let (frames, requests) = diff.map_or((u(h, &["frames"]), u(h, &["requests"])), |d| (d.1, d.2));
        assert_eq!(s.http2_frames, frames, "{file}: HTTP/2 frames");
        assert_eq!(s.http2_headers_frames, u(h, &["headers_frames"]), "{file}: HEADERS frames");
        assert_eq!(s.http2_data_frames, u(h, &["data_frames"]), "{file}: DATA frames");
        assert_eq!(s.http2_requests, requests, "{file}: HTTP/2 requests");
        assert_eq!(s.http2_responses, u(h, &["responses_status"]), "{file}: HTTP/2 responses");
        assert_eq!(s.grpc_calls, u(h, &["grpc_requests"]), "{file}: gRPC calls");
        assert_eq!(s.grpc_messages, u(h, &["grpc_messages"]), "{file}: gRPC messages");
        let mut paths: Vec<String> = rows
            .iter()
            .filter_map(|r| match &r.record {
                Record::Call(c) if c.exchange.stream_id.is_some() => {
                    match c.exchange.request.as_ref().map(|m| &m.start) {
                        Some(StartLine::Request { target, .. }) => Some(target.clone()),
                        _ => None,
                    }
                }
                _ => None,
            })
            .collect();
        paths.sort();
        let mut want: Vec<String> = serde_json::from_value(h["paths"].clone()).unwrap_or_default();
        want.extend(diff.map_or(&[][..], |d| d.3).iter().map(|p| p.to_string()));
        want.sort();
        assert_eq!(paths, want, "{file}: HTTP/2 request paths");
        with_h2 += (s.http2_frames > 0) as usize;
    }
    assert_eq!(with_h2, 6, "six corpus captures carry HTTP/2");
}

/// The gRPC calls of the corpus, each attributed its method, status and
/// message counts per direction (tshark's totals above; the split per
/// direction is read off the captures with `tshark -Y grpc`).
#[test]
fn corpus_grpc_calls_are_attributed() {
    let cases = [
        ("deepflow_h2c_ascii.pcap", "hipstershop.CartService", "GetCart", Some(0), [1, 1], None),
        (
            "deepflow_grpc-server-stream.pcap",
            "timeseriesquery.TimeSeriesQueryService",
            "ServerStreamQuery",
            Some(0),
            [1, 5],
            Some("gap"),
        ),
        ("deepflow_grpc-service-name.pcap", "StreamingService", "ClientStreamRPC", Some(0), [3, 1], None),
    ];
    for (file, service, method, status, messages, error) in cases {
        let (_, rows) = run(&[corpus(file)], 1, false);
        let calls: Vec<_> = rows
            .iter()
            .filter_map(|r| match &r.record {
                Record::Call(c) => Some(c.as_ref()),
                _ => None,
            })
            .collect();
        assert_eq!(calls.len(), 1, "{file}");
        let c = calls[0];
        assert_eq!(c.protocol, "grpc", "{file}");
        let g = c.exchange.detail.grpc().unwrap_or_else(|| panic!("{file}: no gRPC details"));
        assert_eq!(
            (g.service.as_str(), g.method.as_str(), g.status, g.messages),
            (service, method, status, messages),
            "{file}"
        );
        assert_eq!(
            c.exchange.error.as_deref().or(c.exchange.response.as_ref().and_then(|m| m.error.as_deref())),
            error,
            "{file}"
        );
        // Payloads decode as protobuf (field numbers as keys).
        let req = g.decoded[0].as_deref().unwrap_or_default();
        assert!(req.starts_with("[{\"") && !req.contains("undecodable"), "{file}: {req}");
    }
}

/// DNS (with mDNS and LLMNR, which tshark's `dns` also covers) over UDP
/// and TCP: queries, responses and question names per corpus capture, as
/// tshark counts them. trawl reads NetBIOS name service (port 137) as the
/// different protocol it is, as tshark does. Names compare in lower case
/// (DNS names are case-insensitive; trawl stores them lower-cased).
#[test]
fn corpus_dns_messages_match_tshark() {
    let mut with_dns = 0;
    for e in oracle() {
        let file = e["file"].as_str().unwrap_or_default().to_string();
        let d = &e["dns"];
        let (outcome, rows) = run(&[corpus(&file)], 2, false);
        let s = &outcome.stats;
        assert_eq!(
            (s.dns_queries, s.dns_responses, s.dns_tcp_queries, s.dns_tcp_responses),
            (u(d, &["queries"]), u(d, &["responses"]), u(d, &["queries_over_tcp"]), u(d, &["responses_over_tcp"])),
            "{file}: DNS queries, responses, and over TCP"
        );
        let mut names: Vec<String> = rows
            .iter()
            .filter_map(|r| match &r.record {
                Record::Call(c) => c.exchange.detail.dns().map(|d| d.questions.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        names.sort();
        names.dedup();
        let mut want: Vec<String> = serde_json::from_value::<Vec<String>>(d["qnames"].clone())
            .unwrap_or_default()
            .iter()
            .map(|n| n.to_ascii_lowercase())
            .collect();
        want.sort();
        want.dedup();
        assert_eq!(names, want, "{file}: question names");
        with_dns += (s.dns_queries + s.dns_responses > 0) as usize;
    }
    assert_eq!(with_dns, 7, "seven corpus captures carry DNS");
}

/// TLS handshakes: ClientHello and ServerHello counts and the SNI values
/// per corpus capture, as tshark counts them; and for
/// `arkime_tls-split-client-hello.pcap` (a ClientHello split over two
/// records) the fingerprints Arkime's own test of that capture expects
/// (arkime/arkime `tests/pcap/tls-split-client-hello.test`): JA3, JA3S,
/// JA4 and the cipher suite.
#[test]
fn corpus_tls_handshakes_match_tshark_and_arkime() {
    let mut with_tls = 0;
    for e in oracle() {
        let file = e["file"].as_str().unwrap_or_default().to_string();
        let t = &e["tls"];
        let (outcome, rows) = run(&[corpus(&file)], 2, false);
        let s = &outcome.stats;
        assert_eq!(
            (s.tls_client_hellos, s.tls_server_hellos),
            (u(t, &["client_hellos"]), u(t, &["server_hellos"])),
            "{file}: TLS hellos"
        );
        let tls: Vec<&trawl_proto::detail::TlsInfo> = rows
            .iter()
            .filter_map(|r| match &r.record {
                Record::Call(c) => c.exchange.detail.tls(),
                _ => None,
            })
            .collect();
        let sni: Vec<&str> = tls.iter().filter_map(|t| t.sni.as_deref()).collect();
        assert_eq!(sni.len() as u64, u(t, &["sni_occurrences"]), "{file}: SNI occurrences");
        let mut distinct: Vec<String> = sni.iter().map(|s| s.to_string()).collect();
        distinct.dedup();
        assert_eq!(
            distinct,
            serde_json::from_value::<Vec<String>>(t["sni"].clone()).unwrap_or_default(),
            "{file}: SNI"
        );
        if file == "arkime_tls-split-client-hello.pcap" {
            let h = tls[0];
            assert_eq!(h.ja3.as_deref(), Some("35708a08e7be9f7aa5bce7f2d5c1cecb"));
            assert_eq!(h.ja3s.as_deref(), Some("eb1d94daa7e0344597e756a1fb6e7054"));
            assert_eq!(h.ja4.as_deref(), Some("t13d1516h2_8daaf6152771_02713d6af862"));
            assert_eq!((h.version, h.cipher_suite), (Some(0x0304), Some(0x1301)));
        }
        with_tls += !tls.is_empty() as usize;
    }
    assert_eq!(with_tls, 4, "four corpus captures carry TLS handshakes");
}

/// Redis: the top-level RESP values each side sent, per corpus capture,
/// against the oracle's count over tshark's follow-stream bytes (tshark
/// 4.0's own RESP dissector misses inline commands and split values, so
/// the oracle parsed the reassembled bytes; its node 0 is the side that
/// sent the capture's first packet, which in
/// `zeek_redis_start-with-server.pcapng` is the server).
#[test]
fn corpus_redis_values_match_the_oracle() {
    // zeek_redis_bulk-loading.pcap: the client sends an empty line between
    // its last SET and an ECHO. The oracle counts it as an inline command;
    // Redis ignores an empty line (it sends no reply), and so does trawl.
    const DIFFERENCES: &[(&str, u64, u64)] = &[("zeek_redis_bulk-loading.pcap", 1001, 1001)];
    let mut with_redis = 0;
    for e in oracle() {
        let file = e["file"].as_str().unwrap_or_default().to_string();
        let r = &e["resp"];
        if !r["derived_parse_complete"].as_bool().unwrap_or(false) {
            continue;
        }
        let (outcome, rows) = run(&[corpus(&file)], 2, true);
        let s = &outcome.stats;
        let first_from_client = flows(&rows)
            .iter()
            .find(|f| f.l7_protocols.contains(&"Redis"))
            .and_then(|f| f.digest.as_ref())
            .is_none_or(|d| d.first_from_client);
        let (node0, node1) = (u(r, &["derived_resp_values_node0"]), u(r, &["derived_resp_values_node1"]));
        let want = match DIFFERENCES.iter().find(|d| d.0 == file) {
            Some(d) => (d.1, d.2),
            None if first_from_client => (node0, node1),
            None => (node1, node0),
        };
        assert_eq!(
            (s.redis_commands, s.redis_replies),
            want,
            "{file}: Redis values sent by the client and by the server"
        );
        with_redis += 1;
    }
    assert_eq!(with_redis, 4, "four corpus captures carry Redis");
}

/// The calls of one protocol, by their `protocol`.
fn calls_of<'a>(rows: &'a [Keyed], protocol: &str) -> Vec<&'a trawl_proto::exchange::Exchange> {
    rows.iter()
        .filter_map(|r| match &r.record {
            Record::Call(c) if c.protocol == protocol => Some(&c.exchange),
            _ => None,
        })
        .collect()
}

/// Counts of names as the oracle keys them (`{"3": 14}`).
fn tally(keys: impl Iterator<Item = String>) -> HashMap<String, u64> {
    let mut m = HashMap::new();
    for k in keys {
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

fn oracle_tally(v: &Value) -> HashMap<String, u64> {
    serde_json::from_value(v.clone()).unwrap_or_default()
}

/// PostgreSQL, MySQL, Kafka and AMQP per corpus capture, against tshark's
/// counts: messages per direction, queries, commands by code, Kafka
/// requests and responses by API key, AMQP methods by class and method.
/// Every capture is checked (those without the protocol must have none);
/// the oracle needed "decode as" for three of them (PostgreSQL on port
/// 8000, MySQL on 20130, Kafka on 36333), trawl finds them by content.
#[test]
fn corpus_database_and_messaging_counts_match_tshark() {
    // deepflow_kafka_01-fetch-v12-unknown.pcap: tshark 4.0 does not know
    // Fetch v12 ("Unsupported API version"), so it cannot pair the
    // response (correlation id 20); trawl reads both.
    const KAFKA_RESPONSES: &[(&str, u64)] = &[("deepflow_kafka_01-fetch-v12-unknown.pcap", 1)];
    let mut seen = HashMap::new();
    for e in oracle() {
        let file = e["file"].as_str().unwrap_or_default().to_string();
        let (outcome, rows) = run(&[corpus(&file)], 2, false);
        let s = &outcome.stats;

        let pg = &e["pgsql"];
        let pg_rows = calls_of(&rows, "postgresql");
        let command = |x: &trawl_proto::exchange::Exchange| x.detail.db().map_or(String::new(), |d| d.command.clone());
        let queries = pg_rows.iter().filter(|x| matches!(command(x).as_str(), "Query" | "Parse")).count() as u64;
        assert_eq!(
            (s.pgsql_frontend_messages, s.pgsql_backend_messages, queries),
            (u(pg, &["frontend_messages"]), u(pg, &["backend_messages"]), u(pg, &["queries"])),
            "{file}: PostgreSQL messages each way, and queries"
        );
        let types = oracle_tally(&pg["message_types"]);
        for (name, kind) in [
            ("Simple query", "Query"),
            ("Startup message", "StartupMessage"),
            ("SSL request", "SSLRequest"),
            ("Termination", "Terminate"),
        ] {
            let n = pg_rows.iter().filter(|x| command(x) == kind).count() as u64;
            assert_eq!(n, types.get(name).copied().unwrap_or(0), "{file}: PostgreSQL {name}");
        }

        let my = &e["mysql"];
        let my_rows: Vec<_> = calls_of(&rows, "mysql").into_iter().filter(|x| command(x).starts_with("COM_")).collect();
        let code_of = |name: &str| {
            (0u8..=0x1f).find(|&c| trawl_proto::mysql::command_name(c) == name).map_or(String::new(), |c| c.to_string())
        };
        assert_eq!(my_rows.len() as u64, u(my, &["commands"]), "{file}: MySQL commands");
        assert_eq!(
            tally(my_rows.iter().map(|x| code_of(&command(x)))),
            oracle_tally(&my["command_codes"]),
            "{file}: MySQL commands by code"
        );

        let k = &e["kafka"];
        let k_rows = calls_of(&rows, "kafka");
        let requests: Vec<_> = k_rows.iter().filter(|x| x.request.is_some()).collect();
        let responses = k_rows.iter().filter(|x| x.response.is_some()).count() as u64;
        let want_responses = KAFKA_RESPONSES.iter().find(|d| d.0 == file).map_or(u(k, &["responses"]), |d| d.1);
        assert_eq!(
            (requests.len() as u64, responses),
            (u(k, &["requests"]), want_responses),
            "{file}: Kafka requests and responses"
        );
        let keys = tally(requests.iter().filter_map(|x| x.detail.kafka()).map(|i| i.api_key.to_string()));
        assert_eq!(keys, oracle_tally(&k["request_api_keys"]), "{file}: Kafka requests by API key");

        let a = &e["amqp"];
        let code = |name: &str| {
            [10u16, 20, 40, 50, 60, 85, 90]
                .iter()
                .flat_map(|&c| (0u16..=120).map(move |m| (c, m)))
                .find(|&(c, m)| trawl_proto::amqp::method_name(c, m) == Some(name))
                .map_or(String::new(), |(c, m)| format!("{c}.{m}"))
        };
        let methods: Vec<String> = calls_of(&rows, "amqp")
            .iter()
            .filter_map(|x| x.detail.amqp())
            .flat_map(|i| std::iter::once(code(&i.method)).chain(i.reply_method.as_deref().map(code)))
            .collect();
        assert_eq!(
            (s.amqp_methods, methods.len() as u64),
            (u(a, &["methods"]), u(a, &["methods"])),
            "{file}: AMQP methods"
        );
        assert_eq!(
            tally(methods.into_iter()),
            oracle_tally(&a["class_method"]),
            "{file}: AMQP methods by class and method"
        );

        for (p, n) in [
            ("postgresql", pg_rows.len()),
            ("mysql", my_rows.len()),
            ("kafka", k_rows.len()),
            ("amqp", s.amqp_methods as usize),
        ] {
            *seen.entry(p).or_insert(0) += (n > 0) as usize;
        }
    }
    assert_eq!(
        seen,
        HashMap::from([("postgresql", 3), ("mysql", 2), ("kafka", 4), ("amqp", 2)]),
        "captures carrying each protocol"
    );
}

/// The failing exchanges of the corpus captures, attributed: AMQP's
/// refused exchange declaration and unknown virtual host, a Kafka
/// JoinGroup answered with an error (tshark: "Unexpected Server Error
/// (-1)"), and the MySQL session's statements.
#[test]
fn corpus_errors_and_names_are_attributed() {
    let (_, rows) = run(&[corpus("deepflow_amqp-error.pcap")], 2, false);
    let amqp: Vec<&trawl_proto::detail::AmqpInfo> =
        calls_of(&rows, "amqp").iter().filter_map(|x| x.detail.amqp()).collect();
    let closes: Vec<(u16, &str)> = amqp
        .iter()
        .filter(|i| i.method.ends_with(".close") && i.reply_code != Some(200))
        .map(|i| (i.reply_code.unwrap_or(0), i.method.as_str()))
        .collect();
    assert_eq!(closes, [(406, "channel.close"), (530, "connection.close"), (530, "connection.close")]);
    let declare = amqp
        .iter()
        .find(|i| i.method == "exchange.declare" && i.reply_code == Some(406))
        .map(|i| i.exchange.as_deref());
    assert_eq!(declare, Some(Some("test_ex")), "the declaration the broker refused carries its code");
    let returned = amqp
        .iter()
        .find(|i| i.method == "basic.return")
        .map(|i| (i.reply_code, i.reply_text.as_deref(), i.exchange.as_deref()));
    assert_eq!(returned, Some((Some(312), Some("NO_ROUTE"), Some("return_test"))));

    let (_, rows) = run(&[corpus("deepflow_kafka_11-join-group-v7.pcap")], 2, false);
    let k = calls_of(&rows, "kafka")[0].detail.kafka().cloned().unwrap_or_default();
    assert_eq!(
        (k.api_key, k.api_version, k.correlation_id, k.client_id.as_deref(), k.error_code),
        (11, 7, 120, Some("consumer-zzzz12-1"), Some(-1))
    );
    let (_, rows) = run(&[corpus("deepflow_kafka_00-produce-v2.pcap")], 2, false);
    let k = calls_of(&rows, "kafka")[0].detail.kafka().cloned().unwrap_or_default();
    assert_eq!((k.topics.as_slice(), k.error_code), (&["topic2".to_string()][..], Some(0)));

    let (_, rows) = run(&[corpus("zeek_mysql.pcap")], 2, false);
    let my: Vec<&trawl_proto::detail::DbInfo> = calls_of(&rows, "mysql").iter().filter_map(|x| x.detail.db()).collect();
    assert_eq!(
        (my[0].command.as_str(), my[0].user.as_deref(), my[0].success),
        ("Handshake", Some("tfoerste"), Some(true))
    );
    let selects: Vec<(Option<&str>, Option<u64>)> = my
        .iter()
        .filter(|d| d.query.as_deref().is_some_and(|q| q.starts_with("select")))
        .map(|d| (d.query.as_deref(), d.rows))
        .collect();
    assert_eq!(
        selects,
        [
            (Some("select @@version_comment limit 1"), Some(1)),
            (Some("select * from foo"), Some(2)),
            (Some("select count(*) from foo"), Some(1)),
            (Some("select * from foo"), Some(1)),
        ]
    );
    assert!(
        my.iter().skip(4).all(|d| d.database.as_deref() == Some("test")),
        "COM_INIT_DB test names the database of what follows"
    );
}

/// MongoDB from real servers (testdata/third_party/mongodb, from
/// deepflowio/deepflow): a MongoDB 4.4.25 shell session (OP_QUERY
/// handshake, then OP_MSG) and a find on a non-standard port (3717, which
/// tshark decodes only when told; trawl finds it by content). The
/// requests and replies pair as tshark pairs them (`responseTo`), and the
/// one failing command carries the server's code, code name and message.
#[test]
fn third_party_mongodb_commands_replies_and_errors() {
    let dir = testdata().join("third_party/mongodb");
    let (outcome, rows) = run(&[dir.join("deepflow_mongo-shell.pcap")], 2, false);
    let db: Vec<&trawl_proto::detail::DbInfo> =
        calls_of(&rows, "mongodb").iter().filter_map(|x| x.detail.db()).collect();
    let commands: Vec<&str> = db.iter().map(|d| d.command.as_str()).collect();
    assert_eq!(
        commands,
        [
            "isMaster",
            "saslContinue",
            "saslContinue",
            "whatsmyuri",
            "buildinfo",
            "getLog",
            "isMaster",
            "buildInfo",
            "getCmdLineOpts",
            "buildInfo",
            "isMaster",
            "replSetGetStatus",
            "getLog",
            "isMaster",
            "endSessions"
        ]
    );
    // tshark -d tcp.port==27017,mongo: 15 requests (1 OP_QUERY, 14 OP_MSG), each answered.
    assert_eq!(calls_of(&rows, "mongodb").iter().filter(|x| x.request.is_some() && x.response.is_some()).count(), 15);
    assert_eq!(outcome.stats.db_errors, 1);
    let failed: Vec<_> = db
        .iter()
        .filter(|d| d.success == Some(false))
        .map(|d| (d.command.as_str(), d.error_code.as_deref(), d.error_name.as_deref(), d.error_message.as_deref()))
        .collect();
    assert_eq!(
        failed,
        [("replSetGetStatus", Some("76"), Some("NoReplicationEnabled"), Some("not running with --replSet"))]
    );
    assert_eq!(db[0].database.as_deref(), Some("admin"), "the OP_QUERY handshake names admin.$cmd");

    let (_, rows) = run(&[dir.join("deepflow_mongo-find.pcap")], 2, false);
    let db: Vec<&trawl_proto::detail::DbInfo> =
        calls_of(&rows, "mongodb").iter().filter_map(|x| x.detail.db()).collect();
    assert_eq!(db.len(), 1);
    assert_eq!(
        (db[0].command.as_str(), db[0].collection.as_deref(), db[0].database.as_deref(), db[0].rows, db[0].success),
        ("find", Some("query"), Some("sky-test"), Some(1), Some(true))
    );
    assert!(db[0].query.as_deref().unwrap_or_default().starts_with(r#"{"find":"query","filter":{"name":"drpanda5"}"#));
}

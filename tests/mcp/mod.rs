//! `trawl mcp` driven by the official Python MCP client SDK
//! (tests/mcp/agent_session.py): the scripted agent session over stdio
//! and over streamable HTTP with a bearer token, then the exported PCAP
//! checked against tshark.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{golden_export, packet_digest, scratch, stderr, testdata, trawl};

/// A data folder whose archive holds two nodes of corpus captures.
fn data_dir(name: &str) -> PathBuf {
    let dir = scratch(name);
    for (node, file) in [("node-a", "zeek_http_methods.pcap"), ("node-b", "sanders_http_espn.pcapng")] {
        let d = dir.join("archive").join(node);
        fs::create_dir_all(&d).ok();
        fs::copy(testdata(&format!("corpus/{file}")), d.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    // Two servers of the espn capture as pods of two namespaces, one also
    // behind a service (as in snapshot/tests/archive.rs).
    let car = r#"{"time":"2010-04-07T17:29:00Z","node":"node-b","pods":[
        {"namespace":"shop","name":"checkout-7d9f","ips":["63.85.36.72"],"labels":{"app":"checkout"},"workload":"Deployment/checkout"},
        {"namespace":"infra","name":"proxy-1","ips":["205.234.218.129"],"labels":{"app":"proxy"}}],
        "services":[{"namespace":"cdn","name":"edge","ips":["63.85.36.72"],"selector":{"app":"checkout"}}]}"#;
    fs::write(dir.join("archive/node-b/k8s-1270661340000.json"), car).unwrap_or_else(|e| panic!("{e}"));
    // Later (after the capture ends), proxy-1 is gone.
    let later = r#"{"time":"2010-04-07T18:00:00Z","node":"node-b","pods":[
        {"namespace":"shop","name":"checkout-7d9f","ips":["63.85.36.72"],"labels":{"app":"checkout"},"workload":"Deployment/checkout"}],
        "services":[{"namespace":"cdn","name":"edge","ips":["63.85.36.72"],"selector":{"app":"checkout"}}]}"#;
    fs::write(dir.join("archive/node-b/k8s-1270663200000.json"), later).unwrap_or_else(|e| panic!("{e}"));
    dir
}

fn agent_session(data: &Path, transport: &str, destructive: bool) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/agent_session.py");
    let mut c = Command::new("python3");
    c.arg(&script)
        .args([
            "--trawl",
            env!("CARGO_BIN_EXE_trawl"),
            "--transport",
            transport,
            "--golden",
            &testdata("golden/mcp_tools.json"),
        ])
        .arg("--data")
        .arg(data);
    if destructive {
        c.arg("--allow-destructive");
    }
    let o = c.output().unwrap_or_else(|e| panic!("python3: {e}"));
    assert!(
        o.status.success(),
        "the agent session failed (needs python3 with `pip install mcp==2.3.0`; .ci/run installs it):\n{}",
        stderr(&o).lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    let out = String::from_utf8_lossy(&o.stdout);
    serde_json::from_str(out.lines().last().unwrap_or("")).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The export holds exactly the packets of the failing calls' connections:
/// tshark's `tcp.stream in {streams of http.response.code >= 400}`.
fn check_export(findings: &serde_json::Value) {
    let path = PathBuf::from(findings["export"]["path"].as_str().unwrap_or_default());
    let (_, packets, sha) = golden_export("kfl:http && status_code >= 400");
    assert_eq!(packet_digest(&path), (packets, sha));
    let t = Command::new("tshark").arg("-r").arg(&path).args(["-T", "fields", "-e", "frame.number"]).output();
    let t =
        t.unwrap_or_else(|e| panic!("tshark is needed to open the export (apt-get install tshark; .ci/run does): {e}"));
    assert!(t.status.success(), "tshark cannot read {}: {}", path.display(), stderr(&t));
    assert_eq!(String::from_utf8_lossy(&t.stdout).lines().count() as u64, packets);
    // The call's own PCAP: the packets of its one connection.
    let call = PathBuf::from(findings["call_pcap"]["path"].as_str().unwrap_or_default());
    assert_eq!(packet_digest(&call).0, findings["call_pcap"]["packets"].as_u64().unwrap_or(0));
}

#[test]
fn mcp_agent_session_over_stdio() {
    let data = data_dir("mcp-stdio");
    let f = agent_session(&data, "stdio", false);
    check_export(&f);
    assert!(f["progress_notifications"].as_u64().unwrap_or(0) >= 1, "{f}");
    // Everything the tools wrote is inside the data folder.
    for e in fs::read_dir(data.join("exports")).into_iter().flatten().flatten() {
        assert!(e.path().starts_with(&data), "{}", e.path().display());
    }
    fs::remove_dir_all(&data).ok();
}

#[test]
fn mcp_agent_session_over_http_with_a_bearer_token() {
    let data = data_dir("mcp-http");
    let f = agent_session(&data, "http", true);
    check_export(&f);
    assert!(f["auth"].as_str().unwrap_or_default().starts_with("401"), "{f}");
    assert!(!data.join("snapshots/espn").exists(), "delete_snapshot removed it");
    fs::remove_dir_all(&data).ok();
}

#[test]
fn mcp_refuses_unsafe_or_bad_setups() {
    let data = scratch("mcp-setup");
    let d = data.display().to_string();
    // Reachable from other hosts without a token: refused before listening.
    let o = trawl(&["mcp", "--data", &d, "--listen", "0.0.0.0:0"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("a non-loopback address needs a token"), "{}", stderr(&o));
    let o = trawl(&["mcp", "--data", &d, "--listen", "127.0.0.1:0", "--token", "short"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).starts_with("trawl: --token: expected at least 16 characters"), "{}", stderr(&o));
    let file = data.join("f");
    fs::write(&file, "x").ok();
    let o = trawl(&["mcp", "--data", &file.display().to_string()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("expected a folder"), "{}", stderr(&o));
    // --list-tools is the golden interface less delete_snapshot; --allow-destructive adds it.
    let o = trawl(&["mcp", "--data", &d, "--list-tools"]);
    let tools: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    let names: Vec<&str> = tools.as_array().into_iter().flatten().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names.len(), 24, "{names:?}");
    assert!(!names.contains(&"delete_snapshot"));
    let o = trawl(&["mcp", "--data", &d, "--list-tools", "--allow-destructive"]);
    let tools: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    assert_eq!(tools.as_array().map(Vec::len), Some(25));
    let o = trawl(&["mcp", "--data", &d, "--mcp-config"]);
    let cfg: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    assert_eq!(cfg["mcpServers"]["trawl"]["args"][0], "mcp");
    fs::remove_dir_all(&data).ok();
}

#[test]
fn docs_mcp_md_lists_the_tools_as_served() {
    let o = trawl(&["mcp", "--tools-doc"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/mcp.md")).unwrap_or_default();
    let section = doc
        .split("<!-- tools:begin -->\n")
        .nth(1)
        .and_then(|s| s.split("<!-- tools:end -->").next())
        .unwrap_or_default();
    assert_eq!(
        section,
        String::from_utf8_lossy(&o.stdout),
        "docs/mcp.md is stale: regenerate its tool section with `trawl mcp --tools-doc`"
    );
}

/// gRPC, GraphQL, WebSocket, PostgreSQL and AMQP as an agent sees them:
/// the captures snapshotted and dissected through the tools, failing gRPC
/// calls found by status, GraphQL mutations and errors, WebSocket closes,
/// failing SQL statements by SQLSTATE, the broker's refusals, and the
/// incident stories through the investigation tools (retries, redundant
/// calls, timeline, service map, diff) (tests/mcp/l7_session.py, the
/// official Python MCP client SDK).
#[test]
fn mcp_agent_finds_grpc_graphql_websocket_and_database_traffic() {
    let dir = scratch("mcp-l7");
    for (node, file) in [
        ("grpc", "scenarios/grpc/inventory.pcap"),
        ("web", "scenarios/web/http2-graphql.pcap"),
        ("ws", "scenarios/web/websocket.pcap"),
        ("pg", "scenarios/postgres/postgres.pcap"),
        ("amqp", "corpus/deepflow_amqp-error.pcap"),
        ("baseline", "scenarios/stories/baseline.pcap"),
        ("broken", "scenarios/stories/broken.pcap"),
        ("fixed", "scenarios/stories/fixed.pcap"),
    ] {
        let d = dir.join("archive").join(node);
        fs::create_dir_all(&d).ok();
        fs::copy(testdata(file), d.join("capture.pcap")).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/l7_session.py");
    let o = Command::new("python3")
        .arg(&script)
        .args(["--trawl", env!("CARGO_BIN_EXE_trawl"), "--data"])
        .arg(&dir)
        .output();
    let o = o.unwrap_or_else(|e| panic!("python3: {e}"));
    assert!(
        o.status.success(),
        "the L7 agent session failed (needs python3 with `pip install mcp==2.3.0`):\n{}",
        stderr(&o)
    );
}

/// An agent's investigation of every incident story over MCP
/// (tests/mcp/story_session.py): the evidence of each story with exact
/// counts and times, and a regression check for each defect of issue
/// "Answers an agent can trust".
#[test]
fn mcp_investigates_every_story() {
    let data = scratch("mcp-stories");
    for story in ["baseline", "broken", "fixed", "rush", "cached"] {
        let d = data.join("archive").join(story);
        fs::create_dir_all(&d).ok();
        fs::copy(testdata(&format!("scenarios/stories/{story}.pcap")), d.join(format!("{story}.pcap")))
            .unwrap_or_else(|e| panic!("{story}: {e}"));
    }
    // The Kubernetes cluster scenario, with its kubectl sidecars.
    let node = data.join("archive/node-1");
    fs::create_dir_all(&node).ok();
    fs::copy(testdata("scenarios/k8s/cluster.pcap"), node.join("cluster.pcap")).unwrap_or_else(|e| panic!("{e}"));
    for e in fs::read_dir(testdata("scenarios/k8s/kubectl")).into_iter().flatten().flatten() {
        fs::copy(e.path(), node.join(e.file_name())).unwrap_or_else(|e| panic!("{e}"));
    }
    // Big enough that a dissection is still running when the server is killed.
    let big = data.join("archive/big");
    fs::create_dir_all(&big).ok();
    for i in 0..6 {
        fs::copy(testdata("corpus/suricata_http-mime-truncated.pcap"), big.join(format!("part-{i}.pcap")))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    // A node whose only file is not a capture.
    fs::create_dir_all(data.join("archive/junk")).ok();
    fs::write(data.join("archive/junk/notes.pcap"), "not a capture\n").unwrap_or_else(|e| panic!("{e}"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/story_session.py");
    let o = Command::new("python3")
        .arg(&script)
        .args(["--trawl", env!("CARGO_BIN_EXE_trawl")])
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    assert!(
        o.status.success(),
        "the story session failed (needs python3 with `pip install mcp==2.3.0` and tshark; .ci/run installs them):\n{}",
        stderr(&o).lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    let out = String::from_utf8_lossy(&o.stdout);
    let f: serde_json::Value =
        serde_json::from_str(out.lines().last().unwrap_or("")).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(f["steps"].as_array().map(Vec::len), Some(14), "{f}");
    assert_eq!(f["restart"], "interrupted, then completed");
    assert_eq!(f["diff_rush_cached"], "GET order:42 at 127.0.0.4:6379: 1 -> 0.083 per request");
    fs::remove_dir_all(&data).ok();
}

/// `trawl mcp --listen` under concurrent clients calling every read tool
/// (benches/mcp_load.py, shorter than the benchmark): no call fails; a
/// call past the per-call limit is answered with the limit's error within
/// two seconds and stops; a client that disconnects mid-call leaves the
/// server idle.
#[test]
fn mcp_over_http_holds_under_concurrent_clients_and_stops_what_it_should() {
    let dir = scratch("mcp-load");
    let snap = dir.join("snapshots/checkout");
    let o = trawl(&["analyze", &testdata("demo/checkout.pcap"), "-o", &snap.display().to_string(), "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/mcp_load.py");
    let o = Command::new("python3")
        .arg(&script)
        .args([env!("CARGO_BIN_EXE_trawl"), &dir.display().to_string(), "checkout"])
        .args(["--clients", "8", "--seconds", "6", "--check"])
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}\n{}", stderr(&o));
    assert!(out.contains(" 0 failed"), "{out}");
    fs::remove_dir_all(&dir).ok();
}

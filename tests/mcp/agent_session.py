#!/usr/bin/env python3
"""A scripted agent session against `trawl mcp`, with the official Python
MCP client SDK: Kubeshark's forensic workflow end to end on an archive of
corpus captures, over stdio or streamable HTTP.

Run by tests/cli.rs (mod mcp); by hand:
    python3 tests/mcp/agent_session.py --trawl target/debug/trawl --data DIR --transport stdio

DIR/archive holds node-a/zeek_http_methods.pcap and
node-b/sanders_http_espn.pcapng. Expected values come from the tshark
oracle (testdata/corpus/oracle.json) and are asserted here; the script
prints one JSON object of findings (export path, latencies) on stdout for
the Rust test to check further (the exported packets' digest).
"""
import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

ORACLE = json.load(open(os.path.join(os.path.dirname(__file__), "../../testdata/corpus/oracle.json")))
METHODS = next(o for o in ORACLE if o["file"] == "zeek_http_methods.pcap")
ESPN = next(o for o in ORACLE if o["file"] == "sanders_http_espn.pcapng")


def ms_of(capinfos_time):
    """capinfos' 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC) to Unix ms, floored."""
    from datetime import datetime, timezone

    d = datetime.strptime(capinfos_time, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=timezone.utc)
    return int(d.timestamp() * 1000 // 1) if d.microsecond % 1000 == 0 else int(d.timestamp() * 1000)


def named(page, end):
    """An endpoint's Kubernetes names, from its page's legend."""
    return page.get("names", {}).get(end.get("names"), {})


def check(cond, what):
    if not cond:
        raise AssertionError(what)


async def call(session, name, args=None, progress=None):
    r = await session.call_tool(name, args or {}, progress_callback=progress)
    text = r.content[0].text
    return bool(r.is_error), json.loads(text)


async def ok(session, name, args=None, progress=None):
    err, v = await call(session, name, args, progress)
    check(not err, f"{name}({args}) failed: {v}")
    return v


async def fail(session, name, args):
    err, v = await call(session, name, args)
    check(err, f"{name}({args}) should fail with isError, got {v}")
    return v


async def session_checks(session, golden, bless, destructive, data):
    findings = {}
    init = session.initialize_result if hasattr(session, "initialize_result") else None
    tools = (await session.list_tools()).tools
    names = [t.name for t in tools]
    listed = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]
    # The golden file is the whole interface, as --allow-destructive offers it.
    if bless and destructive:
        with open(golden, "w") as f:
            json.dump(listed, f, indent=2, sort_keys=True)
            f.write("\n")
    want = [t for t in json.load(open(golden)) if destructive or t["name"] != "delete_snapshot"]
    check(listed == want, f"tools/list differs from {golden} (rerun with TRAWL_BLESS=1 if the change is intended):\n{json.dumps(listed)[:2000]}")
    check(("delete_snapshot" in names) == destructive, f"delete_snapshot offered={('delete_snapshot' in names)} with allow_destructive={destructive}")
    prompts = [p.name for p in (await session.list_prompts()).prompts]
    check(
        prompts == ["analyze_traffic", "find_errors", "trace_request", "show_topology", "latency_analysis", "security_audit", "compare_traffic", "debug_connection"],
        prompts,
    )
    p = await session.get_prompt("debug_connection", {"ip": "10.0.0.5"})
    check("list_l4_flows" in p.messages[0].content.text and "10.0.0.5" in p.messages[0].content.text, p)
    res = [r.uri for r in (await session.list_resources()).resources]
    check([str(u) for u in res] == ["trawl://snapshots", "trawl://schema", "trawl://kfl"], res)
    kfl_doc = (await session.read_resource("trawl://kfl")).contents[0].text
    check("status_code" in kfl_doc, "the KFL reference names status_code")

    # 1. Boundaries: per node, the first and last packet of its capture.
    b = await ok(session, "get_data_boundaries")
    nodes = {n["name"]: n for n in b["nodes"]}
    check(sorted(nodes) == ["node-a", "node-b"], nodes)
    a = nodes["node-a"]
    first = METHODS["capinfos"]["first_packet_time"]
    last = METHODS["capinfos"]["last_packet_time"]
    check(a["oldest"].startswith(first.replace(" ", "T")), (a["oldest"], first))
    check(a["newest"].startswith(last.replace(" ", "T")), (a["newest"], last))
    check(b["cluster"]["oldest_ts"] == nodes["node-b"]["oldest_ts"], "node-b (2010) holds the oldest packet")
    check(b["cluster"]["newest_ts"] == a["newest_ts"], "node-a (2012) holds the newest packet")

    # Nothing is dissected yet: the error says what to do and which snapshots exist.
    e = await fail(session, "list_api_calls", {"kfl": "http"})
    check("create_snapshot" in e["error"], e)

    # 2. A snapshot of node-a's whole capture.
    snap = await ok(
        session,
        "create_snapshot",
        {"name": "methods", "start": a["oldest_ts"], "end": a["newest_ts"] + 1, "nodes": ["node-a"]},
    )
    check(snap["packet_count"] == METHODS["capinfos"]["packets"], snap)
    e = await fail(session, "create_snapshot", {"name": "methods", "duration": "1m"})
    check("already exists" in e["error"] and e["known_snapshots"] == ["methods"], e)
    e = await fail(session, "create_snapshot", {"name": "../escape", "duration": "1m"})
    check("name" in e["error"], e)
    e = await fail(session, "get_snapshot", {"id": "nope"})
    check(e["known_snapshots"] == ["methods"], e)
    g = await ok(session, "get_snapshot", {"id": "methods"})
    check(g["state"] == "raw" and g["packet_count"] == 655 and g["dissection"]["status"] == "not_started", g)

    # 3. Dissect it, with progress notifications.
    progress = []

    async def on_progress(p, total, message):
        progress.append((p, total, message))

    d = await ok(session, "start_snapshot_dissection", {"snapshot_id": "methods", "wait_seconds": 120}, on_progress)
    check(d["status"] == "completed" and d["progress"] == 100, d)
    check(progress and progress[-1][0] == 100 and progress[-1][1] == 100, progress)
    check(all(x[0] <= y[0] for x, y in zip(progress, progress[1:])), f"progress never goes back: {progress}")
    check(d["stats"]["packets_processed"] == 655 and d["stats"]["flows"] == METHODS["tcp_conversations"], d)
    # A pcap file cannot say it dropped packets: none counted.
    check(d["stats"]["capture_dropped_packets"] == 0, d)
    findings["progress_notifications"] = len(progress)
    st = await ok(session, "get_snapshot_dissection_status", {"snapshot_id": "methods"})
    check(st["status"] == "completed", st)
    again = await ok(session, "start_snapshot_dissection", {"snapshot_id": "methods"})
    check(again["started"].startswith("already indexed"), again)
    ds = await ok(session, "list_snapshot_dissections")
    check([x["status"] for x in ds["dissections"]] == ["completed"], ds)
    l7 = await ok(session, "get_l7_data_boundaries")
    check(l7["snapshots"][0]["api_calls"] == METHODS["http"]["responses"], l7)

    # 4. Stats: calls per status code are tshark's response codes.
    s = await ok(session, "get_api_stats", {"kfl": "http", "group_by": "status", "snapshot_id": "methods"})
    got = {g["key"]: g["calls"] for g in s["groups"]}
    check(got == METHODS["http"]["status_codes"], (got, METHODS["http"]["status_codes"]))
    check(s["total_calls"] == 49 and s["total_errors"] == 44 and abs(s["error_rate"] - 0.898) < 1e-9, s)
    s = await ok(session, "get_api_stats", {"group_by": "endpoint", "limit": 3})
    check(s["truncated"] and len(s["groups"]) == 3 and all("p99_ms" in g for g in s["groups"]), s)
    e = await fail(session, "get_api_stats", {"group_by": "pod"})
    check("group_by" in e["error"] or "unknown variant" in e["error"], e)

    # 5. Calls with a KFL filter, paged.
    kfl = "http && status_code >= 400"
    c = await ok(session, "list_api_calls", {"kfl": kfl, "limit": 40})
    check(c["total"] == 44 and c["returned"] == 40 and c["truncated"] and c["next_offset"] == 40, {k: c[k] for k in c if k != "calls"})
    c2 = await ok(session, "list_api_calls", {"kfl": kfl, "limit": 40, "offset": 40})
    check(c2["returned"] == 4 and not c2["truncated"] and "next_offset" not in c2, c2)
    ids = [x["id"] for x in c["calls"] + c2["calls"]]
    check(len(set(ids)) == 44, "pages do not overlap")
    check(all(x["status"] >= 400 and x["proto"] == "http" for x in c["calls"]), c["calls"][0])
    first_call = c["calls"][0]
    check(set(first_call) >= {"id", "ts", "proto", "method", "path", "status", "latency_ms", "src", "dst"}, first_call)
    check(set(first_call["src"]) >= {"ip", "port"}, first_call)
    full = await ok(session, "list_api_calls", {"kfl": kfl, "limit": 1, "format": "full"})
    check("request_headers" in full["calls"][0] and "response_body" in full["calls"][0] and full["calls"][0]["id"] == first_call["id"], full)
    # Bad KFL: the caret message and where it points.
    e = await fail(session, "list_api_calls", {"kfl": "http && status_cod >= 400"})
    check("^" in e["error"] and "status_code" in e["error"] and e["kfl_error"]["start"] == 8, e)
    # A misspelt parameter is an error naming the accepted ones, never "all rows".
    e = await fail(session, "list_api_calls", {"filter": "http"})
    check("unknown parameter `filter`" in e["error"] and "kfl" in e["accepted_parameters"], e)
    e = await fail(session, "list_api_calls", {"limit": 5000})
    check("limit" in e["error"] and "1000" in e["error"], e)
    e = await fail(session, "list_api_calls", {"snapshot_id": "nope"})
    check(e["known_snapshots"] == ["methods"], e)

    # 6. One call in detail: fields, bodies, its flow, a PCAP of its connection.
    det = await ok(session, "get_api_call_details", {"id": first_call["id"], "include_pcap": True, "max_payload_size": 64})
    check(det["call"]["status_code"] == first_call["status"] and det["call"]["method"] == first_call["method"], det["call"])
    check(det["l4_flow"]["flow_id"] == det["call"]["flow_id"], det["l4_flow"])
    # The call's connection carries its TCP health (docs/tcp-insights.md).
    check(det["l4_flow"]["connection_completeness"] == 31 and det["l4_flow"]["retransmissions"] == 0 and det["l4_flow"]["handshake_rtt_us"] > 0, det["l4_flow"])
    if det["response_body"]:
        check(det["response_body"]["returned_bytes"] <= 64, det["response_body"])
    flow_pkts = det["l4_flow"]["client_packets"] + det["l4_flow"]["server_packets"]
    check(det["pcap"]["packets"] == flow_pkts and os.path.isfile(det["pcap"]["path"]), (det["pcap"], flow_pkts))
    findings["call_pcap"] = det["pcap"]
    e = await fail(session, "get_api_call_details", {"id": "methods/999999"})
    check("no call" in e["error"], e)

    # Flows, workloads, SQL.
    f = await ok(session, "list_l4_flows", {"l4proto": "tcp", "limit": 10})
    check(f["total"] == METHODS["tcp_conversations"] and f["returned"] == 10 and f["truncated"], {k: f[k] for k in f if k != "flows"})
    check(f["flows"][0]["proto"] == "tcp" and "client_stats" in f["flows"][0], f["flows"][0])
    ip = f["flows"][0]["server"]["ip"]
    f2 = await ok(session, "list_l4_flows", {"ip": ip, "limit": 1000, "max_result_bytes": 2000000})
    check(f2["total"] == METHODS["tcp_conversations"], "every flow of this capture talks to one server")
    # TCP expert metrics per connection (Kubeshark's tcp_metrics), against
    # tshark: 98 FINs, no retransmission, each stream's initial RTT.
    m = [x["tcp_metrics"] for x in f2["flows"]]
    check(sum(x["fin_count"] for x in m) == METHODS["tcp"]["fin_packets"] and sum(x["retransmissions"] for x in m) == 0, m[0])
    want = METHODS["tcp"]["handshake_rtt_by_stream"]
    check([x["handshake_time_us"] for x in m] == [round(want[str(i)] * 1e6) for i in range(len(m))], m[:2])
    check(all(x["connection_completeness"] == 31 for x in m), [x["connection_completeness"] for x in m])
    # All 49 connections between the two peers are one L4 flow.
    pf = await ok(session, "list_l4_flows", {"group": "peers"})
    check(pf["total"] == 1 and pf["flows"][0]["connections"] == {"total": 49, "open": 0, "in_progress": 0, "closed": 49}, pf)
    hs = METHODS["tcp"]["handshake_rtt_s"]
    p50 = pf["flows"][0]["tcp_handshake_p50_us"]
    check(abs(p50 - hs["median"] * 1e6) <= 0.05 * hs["median"] * 1e6 and p50 <= pf["flows"][0]["tcp_handshake_p99_us"] <= hs["max"] * 1e6 + 1, pf)
    e = await fail(session, "list_l4_flows", {"ip": "not-an-ip"})
    check("ip" in e["error"], e)
    summ = await ok(session, "get_l4_flow_summary", {"top": 3})
    # One client talks to one server port in all 49 connections: one top pair.
    check(summ["total_flows"] == 49 and summ["tcp_flows"] == 49 and summ["unique_clients"] == 1 and summ["unique_servers"] == 1, summ)
    check(summ["total_pkts"] == METHODS["capinfos"]["packets"] and summ["top_by_pkts"][0]["pkts"] == 655, summ)
    # Bytes are captured frame bytes: the pcap file less its 24-byte header and 16 bytes per record.
    check(summ["total_bytes"] == METHODS["size"] - 24 - 16 * 655 and summ["top_by_bytes"][0]["flows"] == 49, summ)
    # TCP health of the selection, against tshark: no retransmission, no RST, no refusal.
    th = summ["tcp_health"]
    check(th["capture_dropped_packets"] == 0 and "notes" not in summ, summ)
    check(th["retransmissions"] == METHODS["tcp"]["retransmission"] == 0 and th["rst_count"] == METHODS["tcp"]["rst_packets"] and th["refused"] == 0, th)
    check(METHODS["tcp"]["handshake_rtt_s"]["min"] * 1e6 - 1 <= th["handshake_p50_us"] <= th["handshake_p99_us"] <= METHODS["tcp"]["handshake_rtt_s"]["max"] * 1e6 + 1, th)
    # Workloads from node-b's sidecar: two pods and a service.
    w = await ok(session, "list_workloads")
    check(w["total"] == 3 and w["sidecars_read"] == 2, w)
    # As the cluster was at a time: proxy-1 is listed until the second sidecar.
    at = await ok(session, "list_workloads", {"type": "pod", "timestamp": "2010-04-07T17:59:59Z"})
    check([x["name"] for x in at["workloads"]] == ["proxy-1", "checkout-7d9f"] and at["sidecars_read"] == 2, at)
    at = await ok(session, "list_workloads", {"type": "pod", "timestamp": 1270663200000})
    check([x["name"] for x in at["workloads"]] == ["checkout-7d9f"], at)
    w2 = await ok(session, "list_workloads", {"name": "proxy-1", "namespace": "infra"})
    # Gone from the second sidecar on; valid since before the first (open start).
    check(w2["workloads"][0]["until_ts"] == 1270663200000 and "from_ts" not in w2["workloads"][0], w2)
    check([(x["kind"], x["namespace"], x["name"]) for x in w["workloads"]] == [("service", "cdn", "edge"), ("pod", "infra", "proxy-1"), ("pod", "shop", "checkout-7d9f")], w)
    w = await ok(session, "list_workloads", {"type": "pod", "labels": {"app": "checkout"}})
    check(w["total"] == 1 and w["workloads"][0]["workload"] == "Deployment/checkout" and w["workloads"][0]["ips"][0]["ip"] == "63.85.36.72", w)
    check("until_ts" not in w["workloads"][0]["ips"][0], w)
    ips = await ok(session, "list_ips", {"ip": "63.85.36.72"})
    check(ips["total"] == 1 and sorted((r["kind"], r["name"]) for r in ips["ips"][0]["records"]) == [("pod", "checkout-7d9f"), ("service", "edge")], ips)
    ips = await ok(session, "list_ips", {"namespaces": ["infra"]})
    check([x["ip"] for x in ips["ips"]] == ["205.234.218.129"], ips)
    e = await fail(session, "list_workloads", {"name_regex": "("})
    check("name_regex" in e["error"], e)
    q = await ok(session, "run_sql", {"sql": "SELECT status_code, count(*) AS n FROM calls GROUP BY 1 ORDER BY 2 DESC", "limit": 2})
    check(q["rows"][0] == {"status_code": 400, "n": 30} and q["truncated"] and q["returned"] == 2, q)
    e = await fail(session, "run_sql", {"sql": "DROP TABLE calls"})
    check("read-only" in e["error"], e)
    e = await fail(session, "run_sql", {"sql": "COPY (SELECT 1) TO '/tmp/x.csv'"})
    check("read-only" in e["error"], e)

    # 7. Export the packets of the failing calls' connections.
    x = await ok(session, "export_snapshot_pcap", {"id": "methods", "kfl": kfl, "name": "errors"})
    check(x["packets"] == 440 and x["path"].endswith("/exports/errors.pcapng"), x)
    findings["export"] = x
    e = await fail(session, "export_snapshot_pcap", {"id": "methods", "name": "../../etc/x"})
    check("name" in e["error"], e)
    e = await fail(session, "export_snapshot_pcap", {"id": "methods", "bpf_filter": "port banana"})
    check("not a valid filter" in e["error"], e)
    # A workload filter: packets with a peer in shop or infra (tshark:
    # `ip.addr == 63.85.36.72 || ip.addr == 205.234.218.129` selects 707).
    wf = await ok(session, "create_snapshot", {"name": "shop-infra", "nodes": ["node-b"], "workload_filter": {"namespaces": ["shop", "infra"]}})
    check(wf["packet_count"] == 707, wf)
    ws = await ok(session, "list_workloads", {"snapshot_id": "shop-infra", "namespace": "shop"})
    # The cut spans the archive (node-a's 2012 capture ends it), so it carries both sidecars.
    check(ws["total"] == 1 and ws["sidecars_read"] == 2, ws)
    # A raw (not dissected) snapshot exports by BPF and window alone.
    await ok(session, "create_snapshot", {"name": "espn", "nodes": ["node-b"]})
    xb = await ok(session, "export_snapshot_pcap", {"id": "espn", "bpf_filter": "src host 205.234.218.129 and tcp port 80", "name": "espn-bpf"})
    check(xb["packets"] == 317, xb)
    e = await fail(session, "export_snapshot_pcap", {"id": "espn", "kfl": "http"})
    check("not dissected" in e["error"], e)
    lst = await ok(session, "list_snapshots")
    check([(s["name"], s["state"]) for s in lst["snapshots"]] == [("espn", "raw"), ("methods", "indexed"), ("shop-infra", "raw")], lst)

    # Dissection without waiting: poll the status, as a client without progress does.
    d = await ok(session, "start_snapshot_dissection", {"snapshot_id": "espn"})
    check(d["started"] == "started" and d["status"] in ("running", "completed"), d)
    e = await fail(session, "start_snapshot_dissection", {"snapshot_id": "espn", "wait_seconds": 601})
    check("wait_seconds" in e["error"], e)
    for _ in range(1200):
        st = await ok(session, "get_snapshot_dissection_status", {"snapshot_id": "espn"})
        if st["status"] != "running":
            break
        await asyncio.sleep(0.05)
    # tshark: 61 HTTP requests, 14 DNS queries (each answered), 25 TCP and 14 UDP conversations.
    check(st["status"] == "completed" and st["stats"]["entries_created"] == ESPN["http"]["requests"] + ESPN["dns"]["queries"], st)
    check(st["stats"]["flows"] == ESPN["tcp_conversations"] + ESPN["udp_conversations"], st)
    # Without snapshot_id, queries span every dissected snapshot.
    both = await ok(session, "list_api_calls", {"kfl": "http", "limit": 1})
    check(both["total"] == METHODS["http"]["responses"] + ESPN["http"]["requests"], both)
    q = await ok(session, "run_sql", {"sql": "SELECT snapshot, count(*) AS n FROM calls GROUP BY 1 ORDER BY 1"})
    check(q["rows"] == [{"snapshot": "espn", "n": 61 + 14}, {"snapshot": "methods", "n": 49}], q)
    # The snapshot's sidecars name the peers at the packets' time: tshark
    # finds 4 requests to 63.85.36.72 (`http.request && ip.dst == 63.85.36.72`),
    # pod checkout-7d9f of shop, and 35 to 205.234.218.129, pod proxy-1.
    k = await ok(session, "list_api_calls", {"snapshot_id": "espn", "kfl": 'dst.namespace == "shop"'})
    check(k["total"] == 4 and all(named(k, c["dst"])["pod"] == "checkout-7d9f" and named(k, c["dst"])["workload"] == "Deployment/checkout" for c in k["calls"]), k)
    k = await ok(session, "list_api_calls", {"snapshot_id": "espn", "kfl": 'dst.pod.name == "proxy-1" && src.namespace == "internal"', "limit": 1})
    check(k["total"] == 35 and named(k, k["calls"][0]["dst"])["ns"] == "infra" and named(k, k["calls"][0]["src"])["ns"] == "internal", k)
    # Stats by workload and namespace: the two named servers, the rest public.
    s = await ok(session, "get_api_stats", {"snapshot_id": "espn", "kfl": "http", "group_by": "dst_workload"})
    got = {g["key"]: g["calls"] for g in s["groups"]}
    check(got["shop/Deployment/checkout"] == 4 and got["infra/proxy-1"] == 35 and s["total_calls"] == 61, got)
    s = await ok(session, "get_api_stats", {"snapshot_id": "espn", "kfl": "http", "group_by": "dst_ns"})
    check({g["key"]: g["calls"] for g in s["groups"]} == {"infra": 35, "public": 22, "shop": 4} and s["group_by"] == "dst_namespace", s)
    # Compact DNS rows carry the transaction id and the answers.
    dns = await ok(session, "list_api_calls", {"snapshot_id": "espn", "kfl": "dns && size(dns_answers) > 0", "limit": 1})
    check(isinstance(dns["calls"][0]["dns_id"], int) and dns["calls"][0]["dns_answers"], dns["calls"][0])
    # DNS: tshark's 14 responses all say NOERROR (rcode 0), which is no error
    # and no missing answer, though its status is 0.
    s = await ok(session, "get_api_stats", {"snapshot_id": "espn", "kfl": "dns", "group_by": "protocol"})
    g = s["groups"][0]
    check((g["key"], g["calls"], g["errors"], g["no_response"]) == ("dns", ESPN["dns"]["responses"], 0, 0) and g["p50_ms"] is not None, s)
    # Kubeshark's list_l4_flows filters by either end's namespace, pod or service.
    # tshark `-z conv,tcp`: 2 conversations with 63.85.36.72.
    f = await ok(session, "list_l4_flows", {"snapshot_id": "espn", "ns": "shop"})
    check(f["total"] == 2 and all(named(f, x["server"])["pod"] == "checkout-7d9f" for x in f["flows"]), f)
    f2 = await ok(session, "list_l4_flows", {"snapshot_id": "espn", "pod": "checkout-7d9f"})
    check(f2["total"] == f["total"], f2)
    f3 = await ok(session, "list_l4_flows", {"snapshot_id": "espn", "svc": "edge"})
    check(f3["total"] == 0, "a ClusterIP held by a pod names the pod, not the service")

    # A snapshot whose packets vanished from disk: the dissection fails,
    # says why, and the snapshot stays as it was (not indexed).
    await ok(session, "create_snapshot", {"name": "gone", "nodes": ["node-a"], "duration": "1s"})
    os.remove(os.path.join(data, "snapshots", "gone", "raw", "node-a.pcapng"))
    d = await ok(session, "start_snapshot_dissection", {"snapshot_id": "gone", "wait_seconds": 60})
    check(d["status"] == "failed" and "node-a.pcapng" in d["errors"][0], d)
    g = await ok(session, "get_snapshot", {"id": "gone"})
    check(g["state"] == "raw", g)
    e = await fail(session, "list_api_calls", {"snapshot_id": "gone"})
    check("not dissected" in e["error"], e)

    if destructive:
        await ok(session, "delete_snapshot", {"id": "espn"})
        e = await fail(session, "get_snapshot", {"id": "espn"})
        check(e["known_snapshots"] == ["gone", "methods", "shop-infra"], e)
    else:
        e = await fail(session, "delete_snapshot", {"id": "espn"})
        check("--allow-destructive" in e["error"], e)
    e = await fail(session, "no_such_tool", {})
    check("known_tools" in e, e)

    # Latency of a filtered list_api_calls through the whole stack.
    t = []
    for _ in range(5):
        t0 = time.perf_counter()
        await ok(session, "list_api_calls", {"kfl": kfl, "limit": 100})
        t.append((time.perf_counter() - t0) * 1000)
    findings["list_api_calls_ms"] = sorted(t)[len(t) // 2]
    return findings


def http_status(url, token):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}).encode()
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("WWW-Authenticate")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("WWW-Authenticate")


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trawl", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--transport", choices=["stdio", "http"], required=True)
    ap.add_argument("--golden", required=True)
    ap.add_argument("--allow-destructive", action="store_true")
    a = ap.parse_args()
    bless = os.environ.get("TRAWL_BLESS") == "1"
    args = ["mcp", "--data", a.data] + (["--allow-destructive"] if a.allow_destructive else [])
    if a.transport == "stdio":
        params = StdioServerParameters(command=a.trawl, args=args)
        async with stdio_client(params) as (r, w):
            async with ClientSession(r, w) as s:
                info = await s.initialize()
                check(info.server_info.name == "trawl", info.server_info)
                findings = await session_checks(s, a.golden, bless, a.allow_destructive, a.data)
    else:
        proc = subprocess.Popen([a.trawl] + args + ["--listen", "127.0.0.1:0"], stderr=subprocess.PIPE, text=True)
        try:
            url = token = None
            while url is None or token is None:
                line = proc.stderr.readline()
                check(line, "trawl mcp --listen exited before printing its address and token")
                m = re.search(r"at (http://\S+/mcp)", line)
                url = m.group(1) if m else url
                m = re.search(r"bearer token .*: ([0-9a-f]{64})$", line.strip())
                token = m.group(1) if m else token
            # No token, a wrong token: 401 with a Bearer challenge. The right one: 200.
            check(http_status(url, None) == (401, 'Bearer realm="trawl"'), http_status(url, None))
            check(http_status(url, "0" * 64)[0] == 401, "a wrong token is refused")
            check(http_status(url, token[:-1])[0] == 401, "a token prefix is refused")
            async with streamable_http_client(url, http_client=create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})) as (r, w):
                async with ClientSession(r, w) as s:
                    info = await s.initialize()
                    check(info.server_info.name == "trawl", info.server_info)
                    findings = await session_checks(s, a.golden, bless, a.allow_destructive, a.data)
            findings["auth"] = "401 with no token, a wrong token and a token prefix; the session above ran with the right one"
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    print(json.dumps(findings))


if __name__ == "__main__":
    asyncio.run(main())

#!/usr/bin/env python3
"""An agent's investigation of every incident story over MCP, with the
official Python MCP client SDK: the evidence each story holds, found with
exact counts and times, and a regression check for each defect an agent
investigation once tripped over (issue "Answers an agent can trust").

Run by tests/cli.rs (mod mcp); by hand:
    python3 tests/mcp/story_session.py --trawl target/debug/trawl --data DIR

DIR/archive holds one node per story (testdata/scenarios/stories):
baseline, broken, fixed, rush, cached, each with its recording; `node-1`,
the Kubernetes cluster scenario (testdata/scenarios/k8s: its recording and
kubectl sidecars); `big`, copies of a corpus capture large enough that a
dissection is still running when the server is killed; and a node `junk`
whose only file is not a capture. Expected values come from the
stories' design (shop.py: 12 Redis reads per order read when broken, a
1 s gateway timeout before a 1.5 s payment, twelve customers at once in
the rush) and from tshark, and are asserted here. Prints one JSON object
of findings on stdout.
"""
import argparse
import asyncio
import json
import re
import os
import subprocess
import time

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

STORIES = ["baseline", "broken", "fixed", "rush", "cached", "node-1"]
KFL_TOOLS = {
    "list_api_calls": {},
    "get_api_stats": {},
    "list_l4_flows": {"ip": "127.0.0.99"},
    "get_l4_flow_summary": {},
    "export_snapshot_pcap": {"id": "broken"},
    "get_service_map": {},
    "find_retries": {},
    "find_redundant_calls": {},
    "get_incident_timeline": {},
    "security_audit": {},
    "diff_snapshots": {"baseline": "baseline", "candidate": "broken"},
}


def check(cond, what):
    if not cond:
        raise AssertionError(what)


async def call(s, name, args=None):
    r = await s.call_tool(name, args or {})
    text = r.content[0].text
    return bool(r.is_error), json.loads(text), len(text)


async def ok(s, name, args=None):
    err, v, _ = await call(s, name, args)
    check(not err, f"{name}({args}) failed: {v}")
    return v


async def fail(s, name, args):
    err, v, _ = await call(s, name, args)
    check(err, f"{name}({args}) should fail with isError, got {json.dumps(v)[:500]}")
    return v


def tshark(pcap, *args):
    o = subprocess.run(["tshark", "-r", pcap, *args], capture_output=True, text=True, check=True)
    return [l.split("\t") for l in o.stdout.splitlines() if l]


def rfc3339_ms(epoch):
    """tshark's epoch seconds as RFC 3339 to the millisecond (floored)."""
    from datetime import datetime, timezone

    ms = int(float(epoch) * 1000)
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:23]


async def all_calls(s, snap, kfl=""):
    out, offset = [], 0
    while True:
        page = await ok(s, "list_api_calls", {"snapshot_id": snap, "kfl": kfl, "limit": 100, "offset": offset, "format": "full", "max_result_bytes": 2000000})
        out += page["calls"]
        if "next_offset" not in page:
            return out
        offset = page["next_offset"]


async def setup(s, data):
    # Defect 12: a node whose only file is not a capture is refused, by file and reason.
    e = await fail(s, "create_snapshot", {"name": "junk", "nodes": ["junk"]})
    check("junk/notes.pcap" in e["error"] and "no readable capture" in e["error"], e)
    for story in STORIES:
        await ok(s, "create_snapshot", {"name": story, "nodes": [story]})
        d = await ok(s, "start_snapshot_dissection", {"snapshot_id": story, "wait_seconds": 120})
        check(d["status"] == "completed", d)
    # A dissection begun by a server that is gone reads as interrupted, not not_started.
    await ok(s, "create_snapshot", {"name": "halfway", "nodes": ["broken"]})
    with open(os.path.join(data, "snapshots", "halfway", ".dissection.json"), "w") as f:
        json.dump({"pid": 4194303, "started_unix_ms": 0}, f)
    st = await ok(s, "get_snapshot_dissection_status", {"snapshot_id": "halfway"})
    check(st["status"] == "interrupted" and "again" in st["next"], st)


async def bodies(s, f, data):
    """Defect 1: every stored body comes back through get_api_call_details."""
    calls = await all_calls(s, "broken")
    sql = await ok(s, "run_sql", {"snapshot_id": "broken", "limit": 1000, "max_result_bytes": 2000000,
                                  "sql": "SELECT id, length(encode(request_body, 'hex')) / 2 AS request, length(encode(response_body, 'hex')) / 2 AS response FROM calls"})
    stored = {f"broken/{r['id']}": r for r in sql["rows"]}
    seen = {}
    for c in calls:
        d = await ok(s, "get_api_call_details", {"id": c["id"], "include_l4": False})
        for side in ["request", "response"]:
            want, body = stored[c["id"]][side], d[f"{side}_body"]
            got = None if body is None else body["stored_bytes"]
            check(got == want, f"{c['id']} {side} body: {want} bytes stored, {got} came back")
            if want:
                seen[d["call"]["protocol"]] = seen.get(d["call"]["protocol"], 0) + 1
    # Redis keeps its command line and reply type in columns of their own, not bodies.
    check(set(seen) == {"http"} and seen["http"] == sum(1 for r in stored.values() for k in ("request", "response") if r[k]), f"bodies seen per protocol: {seen}")
    checkout = [c for c in calls if c["path"] == "/checkout"][0]
    d = await ok(s, "get_api_call_details", {"id": checkout["id"]})
    check(d["request_body"]["text"] == '{"order": 42}', d["request_body"])
    check(json.loads(d["response_body"]["text"])["card"] == "4111 1111 1111 1111", d["response_body"])
    redis = [c for c in calls if c["protocol"] == "redis"][0]
    d = await ok(s, "get_api_call_details", {"id": redis["id"]})
    check((d["call"]["redis_line"], d["call"]["redis_reply_type"]) == ("GET order:42", "bulk"), d["call"])
    f["bodies_checked"] = seen
    # A flow id is not a call id.
    flows = await ok(s, "list_l4_flows", {"snapshot_id": "broken", "limit": 1})
    fid = flows["flows"][0]["id"]
    check("/flow-" in fid and "time" in flows["flows"][0], flows["flows"][0])
    e = await fail(s, "get_api_call_details", {"id": fid})
    check("is a flow id" in e["error"], e)
    e = await fail(s, "trace_api_call", {"id": fid})
    check("is a flow id" in e["error"], e)


async def order(s, f):
    """Defect 2: oldest first means by request time."""
    sql = await ok(s, "run_sql", {"snapshot_id": "broken", "sql": "SELECT id FROM calls ORDER BY timestamp, id LIMIT 3"})
    want = [f"broken/{r['id']}" for r in sql["rows"]]
    got = await ok(s, "list_api_calls", {"snapshot_id": "broken", "limit": 3})
    check([c["id"] for c in got["calls"]] == want and got["order"] == "time", f"{got['calls']} != {want}")
    by_id = await ok(s, "list_api_calls", {"snapshot_id": "broken", "limit": 3, "order": "id"})
    check([c["id"] for c in by_id["calls"]] != want, "the recording overlaps calls, so id order differs from time order")
    c = got["calls"][0]
    check(c["time"].startswith("2026-") and isinstance(c["ts"], int), c)
    # The first three 503s are the first three sent: tshark's first 503 responses answer requests in that order.
    first = await ok(s, "list_api_calls", {"snapshot_id": "broken", "kfl": "http && status_code == 503", "limit": 3})
    times = [c["time"] for c in first["calls"]]
    check(times == sorted(times) and [c["path"] for c in first["calls"]] == ["/charge"] * 3, first["calls"])
    f["first_calls"] = want


async def trace(s, f):
    """Defect 3: a downstream call has at most one parent; timing that cannot decide says so."""
    roots = await ok(s, "list_api_calls", {"snapshot_id": "rush", "kfl": 'dst.port == 8080 && path == "/orders/42"', "limit": 12})
    check(roots["total"] == 12, roots["total"])
    under = {}
    for r in roots["calls"]:
        t = await ok(s, "trace_api_call", {"id": r["id"]})
        check(not t["truncated"], t)
        ids = [c["id"] for c in t["calls"]]
        check(len(ids) == len(set(ids)) and len(ids) == 1, f"under load only the root is certain: {ids}")
        for a in t.get("ambiguous", []):
            check(a["candidate_parents"] >= 2 and a["endpoint"] == "GET /orders/{id}", a)
            if a["best_guess_is_this_parent"]:
                under[a["id"]] = under.get(a["id"], 0) + 1
    # Each of the twelve downstream order reads is some request's best guess, and only one's.
    check(len(under) == 12 and set(under.values()) == {1}, under)
    # With request ids (broken), the chain is certain: 12 Redis reads under the orders call.
    reads = await ok(s, "list_api_calls", {"snapshot_id": "broken", "kfl": 'dst.port == 8080 && path == "/orders/42"', "limit": 1})
    t = await ok(s, "trace_api_call", {"id": reads["calls"][0]["id"]})
    links = [(c["depth"], c["endpoint"], c["link"]) for c in t["calls"]]
    check(links[:2] == [(0, "GET /orders/{id}", "root"), (1, "GET /orders/{id}", "trace header")], links)
    check(links[2:14] == [(2, "GET order:42", "timing")] * 12 and "ambiguous" not in t, links)
    f["trace_rush_best_guesses"] = len(under)


async def redundant(s, f):
    """Defect 4: a cache that never hits, across requests, with the saving."""
    r = await ok(s, "find_redundant_calls", {"snapshot_id": "rush"})
    redis = [x for x in r["redundant"] if x["request"] == "GET order:42"]
    check(len(redis) == 1, r)
    x = redis[0]
    check((x["scope"], x["count"], x["inbound_requests"], x["saving"]["calls"], x["service"]) == ("across_requests", 12, 12, 11, "127.0.0.3:8081"), x)
    r = await ok(s, "find_redundant_calls", {"snapshot_id": "cached"})
    check(not [x for x in r["redundant"] if x["request"] == "GET order:42"], r)
    r = await ok(s, "find_redundant_calls", {"snapshot_id": "broken"})
    within = sorted((x["inbound_endpoint"], x["request"], x["count"]) for x in r["redundant"] if x["scope"] == "within_request")
    check(within == [("GET /orders/{id}", "GET order:42", 12)] * 3, within)
    across = {x["request"]: (x["count"], x["inbound_requests"]) for x in r["redundant"] if x["scope"] == "across_requests"}
    # Reads only: the payments and analytics posts are not cacheable.
    check(across == {"GET order:42": (36, 3), "GET /orders/42": (3, 3)}, across)
    f["redundant_rush"] = x


async def diff(s, f):
    """Defect 5: an improvement is not a regression; figures with their precision."""
    d = await ok(s, "diff_snapshots", {"baseline": "rush", "candidate": "cached"})
    check(d["verdict"] == "pass" and d["regressions"] == 0, d)
    better = [x for x in d["findings"] if x["kind"] == "downstream_calls_changed"]
    check(len(better) == 1 and better[0]["direction"] == "better" and better[0]["detail"] == "GET order:42 at 127.0.0.4:6379: 1 -> 0.083 per request", better)
    # And the other way: taking the cache away is for the worse.
    d = await ok(s, "diff_snapshots", {"baseline": "cached", "candidate": "rush"})
    worse = [(x["kind"], x["detail"]) for x in d["findings"] if x["direction"] == "worse"]
    check(d["verdict"] == "fail" and worse == [("downstream_calls_changed", "GET order:42 at 127.0.0.4:6379: 0.083 -> 1 per request")], d)
    d = await ok(s, "diff_snapshots", {"baseline": "baseline", "candidate": "broken"})
    check(d["verdict"] == "fail", d)
    worse = {(x["endpoint"], x["kind"]) for x in d["findings"] if x["direction"] == "worse"}
    check(("127.0.0.3:8081 GET /orders/{id}", "downstream_calls_changed") in worse and ("127.0.0.5:8082 POST /audit-log", "missing_endpoint") in worse, worse)
    d = await ok(s, "diff_snapshots", {"baseline": "broken", "candidate": "fixed"})
    dirs = {(x["endpoint"], x["kind"]): x["direction"] for x in d["findings"]}
    check(dirs[("127.0.0.3:8081 GET /orders/{id}", "downstream_calls_changed")] == "better", dirs)
    check(dirs[("127.0.0.2:8080 POST /pay", "error_resolved")] == "better", dirs)
    f["diff_rush_cached"] = better[0]["detail"]


async def percentiles(s, f):
    """Defect 6: one percentile definition, the latency of a real call."""
    kfl = 'dst.port == 8080 && path == "/orders/42"'
    stats = await ok(s, "get_api_stats", {"snapshot_id": "rush", "kfl": kfl})
    g = stats["groups"][0]
    check(stats["percentile_method"].startswith("exact") and g["calls"] == 12, stats)
    m = await ok(s, "get_service_map", {"snapshot_id": "rush", "kfl": kfl})
    check(len(m["edges"]) == 1 and m["edges"][0]["p50_ms"] == g["p50_ms"] and m["edges"][0]["p99_ms"] == g["p99_ms"], (m, g))
    lat = sorted(c["latency_ms"] for c in (await ok(s, "list_api_calls", {"snapshot_id": "rush", "kfl": kfl, "limit": 100}))["calls"])
    check(g["p50_ms"] == lat[5] and g["p90_ms"] == lat[10] and g["p99_ms"] == lat[11], (g, lat))
    check("error_definition" not in stats, "definitions live in the tool description, once")
    f["rush_p50_ms"] = g["p50_ms"]


async def service_map(s, f):
    """Defect 7: edges carry their ports."""
    m = await ok(s, "get_service_map", {"snapshot_id": "broken"})
    ports = {(e["from"], e["to"]): e["ports"] for e in m["edges"]}
    check(ports[("127.0.0.2", "127.0.0.3")] == [8081] and ports[("127.0.0.3", "127.0.0.4")] == [6379] and ports[("127.0.0.10", "127.0.0.6")] == [8443], ports)


async def timeline(s, f, data):
    """Defect 8: failures by when they came back, one timeout, the origin named."""
    t = await ok(s, "get_incident_timeline", {"snapshot_id": "broken"})
    ff = t["first_failures"]
    check([x["first_failed_at"] for x in ff] == sorted(x["first_failed_at"] for x in ff), ff)
    by = {(x["server"], x["endpoint"], x["kind"]): x for x in ff}
    pay = by[("127.0.0.2:8080", "POST /pay", "503")]
    auth = by[("127.0.0.5:8082", "POST /authorize", "abandoned_by_caller")]
    check(not pay["looks_like_timeout"] and pay["caused_by"]["callee"] == "127.0.0.5:8082 POST /authorize", pay)
    check(auth["looks_like_timeout"] and 1000 <= auth["timeout_ms"] <= 1010 and auth["count"] == 3, auth)
    check([x["looks_like_timeout"] for x in ff].count(True) == 1, "only the hop that timed out is flagged")
    # tshark: the first 503 of the gateway comes back at this frame's time; its request was sent http.time earlier.
    pcap = os.path.join(data, "archive", "broken", "broken.pcap")
    row = tshark(pcap, "-Y", "http.response.code == 503 && tcp.srcport == 8080", "-T", "fields", "-e", "frame.time_epoch", "-e", "http.time")[0]
    check(pay["first_failed_at"][:23] == rfc3339_ms(row[0]), (pay["first_failed_at"], row))
    check(pay["first_request_at"][:23] == rfc3339_ms(float(row[0]) - float(row[1])), (pay["first_request_at"], row))
    origin = [o for o in t["origins"] if o["failure"] == "127.0.0.2:8080 POST /pay 503"]
    check(len(origin) == 1 and origin[0]["origin"] == "127.0.0.5:8082 POST /authorize", t["origins"])
    e = await fail(s, "get_incident_timeline", {"snapshot_id": "broken", "bucket_seconds": 0.0001})
    check("at least 0.001" in e["error"], e)
    e = await fail(s, "get_incident_timeline", {"snapshot_id": "broken", "bucket_seconds": 1e-12})
    f["origin"] = origin[0]


async def bad_filters(s, f):
    """Defects 9 and 14: filters combine as expressions; one error shape."""
    for tool, extra in KFL_TOOLS.items():
        args = dict(extra, kfl="((")
        if tool not in ("export_snapshot_pcap", "diff_snapshots"):
            args["snapshot_id"] = "broken"
        e = await fail(s, tool, args)
        check("kfl_error" in e and "src.ip" not in e["error"], f"{tool}: {e}")
    e = await fail(s, "list_l4_flows", {"snapshot_id": "broken", "kfl": "tcp) || (tcp", "ip": "127.0.0.99"})
    check("kfl_error" in e, e)
    none = await ok(s, "list_l4_flows", {"snapshot_id": "broken", "kfl": "tcp || tcp", "ip": "127.0.0.99"})
    check(none["total"] == 0, none)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as fh:
        parts = fh.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


async def sql_deadline(s, f, data):
    """Defect 10: timeout_ms is a limit, and the work stops."""
    heavy = "SELECT sum(a.caplen * b.caplen + c.ordinal) FROM packets a CROSS JOIN packets b CROSS JOIN packets c"
    pids = subprocess.run(["pgrep", "-f", f"mcp --data {data}"], capture_output=True, text=True).stdout.split()
    t0 = time.monotonic()
    e = await fail(s, "run_sql", {"snapshot_id": "broken", "sql": heavy, "timeout_ms": 1000})
    took = time.monotonic() - t0
    check("cancelled" in e["error"] and took < 2.0, (took, e))
    time.sleep(0.3)
    before = sum(cpu_seconds(p) for p in pids)
    time.sleep(1.5)
    burnt = sum(cpu_seconds(p) for p in pids) - before
    check(burnt < 0.3, f"the cancelled query kept burning {burnt:.2f} s of CPU")
    f["sql_timeout"] = {"answered_s": round(took, 3), "cpu_after_s": burnt}


async def budgets(s, f):
    """Defect 11: results are capped in size and say how to get the rest."""
    err, page, size = await call(s, "list_api_calls", {"snapshot_id": "broken", "limit": 1000, "format": "full"})
    check(not err and size <= 40000 and page["truncated"] and "result_truncated" in page, (size, page.get("result_truncated")))
    ids, offset = [c["id"] for c in page["calls"]], page["next_offset"]
    check(offset == len(ids) and offset > 0, page["result_truncated"])
    while True:
        err, p, size = await call(s, "list_api_calls", {"snapshot_id": "broken", "limit": 1000, "format": "full", "offset": offset})
        check(not err and size <= 40000, size)
        ids += [c["id"] for c in p["calls"]]
        if "next_offset" not in p:
            break
        offset = p["next_offset"]
    check(len(ids) == page["total"] == len(set(ids)), (len(ids), page["total"]))
    for tool, args in [("run_sql", {"sql": "SELECT * FROM calls"}), ("list_l4_flows", {}), ("get_incident_timeline", {"bucket_seconds": 0.001, "all_buckets": True})]:
        err, v, size = await call(s, tool, dict(args, snapshot_id="broken"))
        check(not err and size <= 40000, (tool, size))
    err, v, size = await call(s, "run_sql", {"snapshot_id": "broken", "sql": "SELECT * FROM calls", "max_result_bytes": 200000})
    check(not err and 40000 < size <= 200000, size)
    e = await fail(s, "run_sql", {"snapshot_id": "broken", "sql": "SELECT 1", "max_result_bytes": 10})
    check("max_result_bytes" in e["error"], e)
    e = await fail(s, "list_api_calls", {"snapshot_id": "broken", "limt": 5})
    check(e["accepted_parameters"] == sorted(["end", "format", "kfl", "limit", "max_result_bytes", "offset", "order", "snapshot_id", "start"]), e)
    f["pages"] = len(ids)


async def workloads(s, f):
    """Defect 7 with Kubernetes names, one naming of a workload, and the legend."""
    m = await ok(s, "get_service_map", {"snapshot_id": "node-1"})
    ports = {(e["from"], e["to"]): e["ports"] for e in m["edges"]}
    check(ports[("shop/Deployment/frontend", "shop/Deployment/checkout")] == [8080] and ports[("payments/Deployment/ledger", "payments/StatefulSet/payments")] == [8080], ports)
    check(all(p for p in ports.values()), ports)
    # get_api_stats names clients and servers as the map names its nodes.
    for group, end in [("src_workload", "from"), ("dst_workload", "to")]:
        st = await ok(s, "get_api_stats", {"snapshot_id": "node-1", "group_by": group})
        keys = {g["key"] for g in st["groups"]}
        check(keys == {e[end] for e in m["edges"]}, (group, keys, sorted({e[end] for e in m["edges"]})))
    # Compact rows name each pod once, in a legend.
    page = await ok(s, "list_api_calls", {"snapshot_id": "node-1", "limit": 100})
    names = page["names"]
    refs = [c[side]["names"] for c in page["calls"] for side in ("src", "dst") if "names" in c[side]]
    check(set(refs) == set(names) and len(refs) > len(names), (refs, names))
    frontend = [c for c in page["calls"] if names.get(c["src"].get("names"), {}).get("pod", "").startswith("frontend-")]
    check(frontend and names[frontend[0]["src"]["names"]]["workload"] == "Deployment/frontend", frontend[:1])
    flows = await ok(s, "list_l4_flows", {"snapshot_id": "node-1", "limit": 100})
    check("names" in flows and all("pod" not in x["client"] for x in flows["flows"]), flows["flows"][:1])
    f["legend_entries"] = len(names)


async def exports(s, f):
    """Defect 13: an export is never overwritten."""
    first = await ok(s, "export_snapshot_pcap", {"id": "broken", "kfl": "http && status_code >= 500", "name": "errors"})
    e = await fail(s, "export_snapshot_pcap", {"id": "broken", "name": "errors"})
    check("exists already" in e["error"] and e["suggested_name"] == "errors-2", e)
    check(os.path.getsize(first["path"]) == first["size_bytes"], first)


async def other_evidence(s, f):
    """The rest of each story, as an agent reads it."""
    r = await ok(s, "find_retries", {"snapshot_id": "broken"})
    charge = [c for c in r["retry_chains"] if c["endpoint"] == "POST /charge"][0]
    check(charge["attempts"] == 4 and charge["backoff"] == "constant" and charge["reused_connection"] == [False] * 3, charge)
    check([round(w / 1000) for w in charge["intervals_ms"]] == [1, 1, 1], charge)
    r = await ok(s, "find_retries", {"snapshot_id": "fixed"})
    charge = [c for c in r["retry_chains"] if c["endpoint"] == "POST /charge"][0]
    check(charge["backoff"] == "exponential" and [round(w / 1000) for w in charge["waits_ms"]] == [1, 2, 4], charge)
    a = await ok(s, "security_audit", {"snapshot_id": "broken"})
    cards = [x for x in a["findings"] if x["kind"] == "sensitive_data"]
    check({tuple(x["urls"]) for x in cards} == {("/checkout",), ("/charge",)}, cards)
    missing = [x for x in a["findings"] if x["kind"] == "missing_authorization"]
    check(all(not x["calls_truncated"] and x["urls"] for x in missing) and len(missing) == 3, missing)
    t = await ok(s, "get_incident_timeline", {"snapshot_id": "fixed"})
    check({x["endpoint"] for x in t["first_failures"]} == {"POST /charge"}, t)
    t = await ok(s, "get_incident_timeline", {"snapshot_id": "rush"})
    kinds = {(x["endpoint"], x["kind"], x["looks_like_timeout"]) for x in t["first_failures"]}
    check(kinds == {("POST /pay", "503", False), ("POST /authorize", "abandoned_by_caller", True)}, kinds)
    p = await s.get_prompt("find_errors", {"snapshot_id": "broken"})
    check("get_incident_timeline" in p.messages[0].content.text, p)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trawl", required=True)
    ap.add_argument("--data", required=True)
    a = ap.parse_args()
    f = {}
    params = StdioServerParameters(command=a.trawl, args=["mcp", "--data", a.data])
    async with stdio_client(params) as (r, w):
        async with ClientSession(r, w) as s:
            await s.initialize()
            await setup(s, a.data)
            for step in [bodies, order, trace, redundant, diff, percentiles, service_map, timeline, bad_filters, sql_deadline, budgets, workloads, exports, other_evidence]:
                args = (s, f, a.data) if step in (bodies, timeline, sql_deadline) else (s, f)
                await step(*args)
                f.setdefault("steps", []).append(step.__name__)
    await redaction(a.trawl, a.data, f)
    await restart(a.trawl, a.data, params, f)
    print(json.dumps(f))


async def redaction(trawl, data, f):
    """--redact: credentials and card numbers masked in every result, each
    as a short hash of itself (the same token alike, two tokens apart);
    without it the payloads are whole."""
    async def read(extra):
        params = StdioServerParameters(command=trawl, args=["mcp", "--data", data, "--quiet", *extra])
        async with stdio_client(params) as (r, w):
            async with ClientSession(r, w) as s:
                await s.initialize()
                page = await ok(s, "list_api_calls", {"snapshot_id": "broken", "kfl": '"authorization" in request.headers',
                                                      "limit": 100, "format": "full"})
                money = await s.call_tool("list_api_calls", {"snapshot_id": "broken", "limit": 100, "format": "full",
                                                             "kfl": 'path == "/checkout" || path == "/charge"'})
                audit = await ok(s, "security_audit", {"snapshot_id": "broken", "show_secrets": True})
                one = await ok(s, "get_api_call_details", {"id": page["calls"][0]["id"]})
                return page["calls"], money.content[0].text, audit, one

    calls, money, audit, one = await read([])
    tokens = {c["id"]: c["request_headers"]["authorization"] for c in calls}
    check(len(tokens) >= 10 and all(t.startswith("Bearer eyJ") for t in tokens.values()), tokens)
    check("4111 1111 1111 1111" in money and "4111 1111 1111 1111" in json.dumps(audit), "the payloads are whole")
    calls, money, audit, one = await read(["--redact"])
    masked = {c["id"]: c["request_headers"]["authorization"] for c in calls}
    check(masked.keys() == tokens.keys(), (masked.keys(), tokens.keys()))
    check(all(re.fullmatch(r"Bearer \[redacted #[0-9a-f]{8}\]", m) for m in masked.values()), masked)
    # A function of the token, one to one: an agent can still tell them apart.
    pairs = {(tokens[i], masked[i]) for i in tokens}
    check(len({t for t, _ in pairs}) == len(pairs) == len({m for _, m in pairs}), pairs)
    check("eyJ" not in json.dumps(one) and one["call"]["request_headers"]["authorization"] in masked.values(), one)
    check("4111" not in money and "[redacted card number #" in money, money[:2000])
    check(audit["redacted"] and "4111 1111 1111 1111" not in json.dumps(audit), audit)
    f["redaction"] = {"tokens": len({t for t, _ in pairs}), "calls": len(masked)}


async def restart(trawl, data, params, f):
    """A server killed mid-dissection: the next one says interrupted, and runs it again."""
    async with stdio_client(params) as (r, w):
        async with ClientSession(r, w) as s:
            await s.initialize()
            await ok(s, "create_snapshot", {"name": "big", "nodes": ["big"]})
            d = await ok(s, "start_snapshot_dissection", {"snapshot_id": "big"})
            check(d["status"] == "running", d)
            for pid in subprocess.run(["pgrep", "-f", f"mcp --data {data}"], capture_output=True, text=True).stdout.split():
                os.kill(int(pid), 9)
            try:
                await s.call_tool("list_snapshots", {})
            except Exception:
                pass
    async with stdio_client(params) as (r, w):
        async with ClientSession(r, w) as s:
            await s.initialize()
            st = await ok(s, "get_snapshot_dissection_status", {"snapshot_id": "big"})
            check(st["status"] == "interrupted", st)
            listed = await ok(s, "list_snapshot_dissections", {"snapshot": "big"})
            check(listed["dissections"][0]["status"] == "interrupted", listed)
            e = await fail(s, "list_api_calls", {"snapshot_id": "big"})
            check("not dissected" in e["error"], e)
            d = await ok(s, "start_snapshot_dissection", {"snapshot_id": "big", "wait_seconds": 300})
            check(d["status"] == "completed", d)
            st = await ok(s, "get_snapshot_dissection_status", {"snapshot_id": "big"})
            check(st["status"] == "completed" and not os.path.exists(os.path.join(data, "snapshots", "big", ".dissection.json")), st)
    f["restart"] = "interrupted, then completed"


if __name__ == "__main__":
    asyncio.run(main())

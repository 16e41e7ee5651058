#!/usr/bin/env python3
"""Load on `trawl mcp --listen`: concurrent clients calling every read
tool, with the official Python MCP client SDK over streamable HTTP; then
the per-call time limit and a client that goes away mid-call.

    benches/mcp_load.py TRAWL DATA SNAPSHOT [--clients 50] [--seconds 60] [--check]

DATA is a data folder whose snapshots/ holds SNAPSHOT (indexed). Each
client opens its own session and, until the time is up, calls tools
picked in turn from a mix of every read tool (KFL lists and stats, call
details, flows, the service map, retries, redundant calls, the
timeline, the audit, a trace, SQL, workloads, snapshots). Printed: calls
made, failed calls, p50/p99 per tool and overall, the server's peak RSS.
Then three checks: on a server started with `--call-timeout 1`, a query
that would run for minutes is answered with the limit's error within
two seconds and stops burning CPU; with `--max-concurrent-calls 1`, a
second call that runs queries waits until the first is cancelled at its
limit (then runs), while a call that reads no tables is answered at once;
and a client that disconnects while its call runs leaves the server idle. With --check, exit 1 when any
call failed or a check did not hold (what CI runs, shorter).
"""
import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import time

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

# A query that would run for hours: the packets table crossed with itself
# four times (the demo capture's 144 packets make 6e10 rows).
HEAVY_SQL = ("SELECT sum(a.caplen * b.caplen + c.ordinal + d.caplen + e.caplen) FROM packets a "
             "CROSS JOIN packets b CROSS JOIN packets c CROSS JOIN packets d CROSS JOIN packets e")


def start_server(trawl, data, extra):
    token = "load-" + os.urandom(16).hex()
    proc = subprocess.Popen([trawl, "mcp", "--data", data, "--listen", "127.0.0.1:0", "--token", token, "--quiet",
                             *extra], stderr=subprocess.PIPE, text=True)
    url = None
    while url is None:
        line = proc.stderr.readline()
        if not line:
            raise SystemExit(f"mcp_load.py: trawl mcp --listen exited: {proc.stderr.read()}")
        m = re.search(r"at (http://\S+/mcp)", line)
        url = m.group(1) if m else None
    return proc, url, token


def rss_kb(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as fh:
        parts = fh.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def session(url, token):
    return streamable_http_client(url, http_client=create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}))


def mix(snap, call_id):
    """Every read tool, with arguments that read the snapshot."""
    return [
        ("list_api_calls", {"snapshot_id": snap, "kfl": "http && status_code >= 400", "limit": 50}),
        ("list_api_calls", {"snapshot_id": snap, "kfl": 'method == "POST"', "limit": 20, "format": "full"}),
        ("get_api_call_details", {"id": call_id}),
        ("get_api_stats", {"snapshot_id": snap, "kfl": "http", "group_by": "endpoint"}),
        ("get_api_stats", {"snapshot_id": snap, "kfl": "", "group_by": "status"}),
        ("list_l4_flows", {"snapshot_id": snap, "kfl": "tcp", "limit": 50}),
        ("get_l4_flow_summary", {"snapshot_id": snap}),
        ("get_service_map", {"snapshot_id": snap}),
        ("find_retries", {"snapshot_id": snap}),
        ("find_redundant_calls", {"snapshot_id": snap}),
        ("get_incident_timeline", {"snapshot_id": snap}),
        ("security_audit", {"snapshot_id": snap}),
        ("trace_api_call", {"id": call_id}),
        ("run_sql", {"snapshot_id": snap, "sql": "SELECT status_code, count(*) AS n FROM api_calls GROUP BY 1"}),
        ("list_workloads", {"snapshot_id": snap}),
        ("list_ips", {"snapshot_id": snap}),
        ("list_snapshots", {}),
        ("get_l7_data_boundaries", {}),
    ]


async def client(url, token, calls, until, times, failures, offset):
    async with session(url, token) as (r, w, *_):
        async with ClientSession(r, w) as s:
            await s.initialize()
            i = offset
            while time.monotonic() < until:
                name, args = calls[i % len(calls)]
                i += 1
                t0 = time.perf_counter()
                try:
                    res = await s.call_tool(name, args)
                    bad = res.content[0].text if res.is_error else None
                except Exception as e:  # a transport failure is a failed call too
                    bad = repr(e)
                ms = (time.perf_counter() - t0) * 1000
                times.setdefault(name, []).append(ms)
                if bad:
                    failures.append(f"{name}: {bad[:200]}")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


async def load(a):
    extra = ["--max-concurrent-calls", str(a.max_concurrent_calls)] if a.max_concurrent_calls else []
    proc, url, token = start_server(a.trawl, a.data, extra)
    try:
        async with session(url, token) as (r, w, *_):
            async with ClientSession(r, w) as s:
                await s.initialize()
                first = await s.call_tool("list_api_calls", {"snapshot_id": a.snapshot, "kfl": "", "limit": 1})
                call_id = json.loads(first.content[0].text)["calls"][0]["id"]
        calls = mix(a.snapshot, call_id)
        times, failures = {}, []
        peak = [0]

        async def sample():
            while True:
                peak[0] = max(peak[0], rss_kb(proc.pid))
                await asyncio.sleep(0.25)

        sampler = asyncio.create_task(sample())
        start = time.monotonic()
        until = start + a.seconds
        await asyncio.gather(*(client(url, token, calls, until, times, failures, k) for k in range(a.clients)))
        wall = time.monotonic() - start
        sampler.cancel()
        peak_mb = max(peak[0], rss_kb(proc.pid, "VmHWM")) / 1024
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    n = sum(len(v) for v in times.values())
    every = [x for v in times.values() for x in v]
    print(f"{a.clients} clients for {a.seconds} s: {n} calls ({n / wall:.0f}/s), {len(failures)} failed, "
          f"p50 {statistics.median(every):.0f} ms, p99 {pct(every, 0.99):.0f} ms, server peak RSS {peak_mb:.0f} MB")
    print("| tool | calls | p50 ms | p99 ms |")
    print("|---|---|---|---|")
    for name in sorted(times):
        v = times[name]
        print(f"| {name} | {len(v)} | {statistics.median(v):.0f} | {pct(v, 0.99):.0f} |")
    for f in failures[:10]:
        print("failed:", f)
    return {"calls": n, "failed": len(failures), "peak_rss_mb": peak_mb}


async def limits(a):
    """The per-call limit, and a client that goes away mid-call."""
    proc, url, token = start_server(a.trawl, a.data, ["--call-timeout", "1"])
    found = {}
    try:
        async with session(url, token) as (r, w, *_):
            async with ClientSession(r, w) as s:
                await s.initialize()
                t0 = time.monotonic()
                res = await s.call_tool("run_sql", {"snapshot_id": a.snapshot, "sql": HEAVY_SQL, "timeout_ms": 60000})
                took = time.monotonic() - t0
                text = res.content[0].text
        time.sleep(0.3)
        before = cpu_seconds(proc.pid)
        time.sleep(1.5)
        burnt = cpu_seconds(proc.pid) - before
        found["limit"] = {"error": res.is_error and "per-call limit" in text and "narrow" in text,
                          "answered_s": round(took, 2), "cpu_after_s": round(burnt, 2)}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    # Turns: with one call that runs queries at a time, a second waits
    # until the first is cancelled at its limit, then runs; a call that
    # reads no tables does not wait at all.
    proc, url, token = start_server(a.trawl, a.data, ["--call-timeout", "1.5", "--max-concurrent-calls", "1"])
    try:
        async def call(name, args, delay):
            await asyncio.sleep(delay)
            async with session(url, token) as (r, w, *_):
                async with ClientSession(r, w) as s:
                    await s.initialize()
                    t0 = time.monotonic()
                    res = await s.call_tool(name, args)
                    return res.is_error, res.content[0].text, round(time.monotonic() - t0, 2)

        heavy, queued, light = await asyncio.gather(
            call("run_sql", {"snapshot_id": a.snapshot, "sql": HEAVY_SQL, "timeout_ms": 60000}, 0.0),
            call("list_api_calls", {"snapshot_id": a.snapshot, "kfl": "", "limit": 1}, 0.5),
            call("list_snapshots", {}, 0.5))
        found["turns"] = {"heavy_limit": heavy[0] and "per-call limit" in heavy[1],
                          "queued_ok": not queued[0], "queued_s": queued[2],
                          "light_ok": not light[0], "light_s": light[2]}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    proc, url, token = start_server(a.trawl, a.data, [])
    try:
        async def abandon():
            async with session(url, token) as (r, w, *_):
                async with ClientSession(r, w) as s:
                    await s.initialize()
                    await s.call_tool("run_sql", {"snapshot_id": a.snapshot, "sql": HEAVY_SQL, "timeout_ms": 60000})

        task = asyncio.create_task(abandon())
        await asyncio.sleep(1.0)
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):
            pass
        time.sleep(0.5)
        before = cpu_seconds(proc.pid)
        time.sleep(1.5)
        found["disconnect"] = {"cpu_after_s": round(cpu_seconds(proc.pid) - before, 2)}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(json.dumps(found))
    return found


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trawl")
    ap.add_argument("data")
    ap.add_argument("snapshot")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--max-concurrent-calls", type=int, default=0,
                    help="passed to the loaded server (0: its default, one per CPU)")
    a = ap.parse_args()
    result = await load(a)
    found = await limits(a)
    if a.check:
        ok = (result["failed"] == 0 and result["calls"] >= a.clients and found["limit"]["error"]
              and found["limit"]["answered_s"] < 2.0 and found["limit"]["cpu_after_s"] < 0.3
              and found["disconnect"]["cpu_after_s"] < 0.3
              and found["turns"]["heavy_limit"] and found["turns"]["queued_ok"]
              and found["turns"]["queued_s"] >= 0.8 and found["turns"]["light_ok"]
              and found["turns"]["light_s"] < found["turns"]["queued_s"] / 2)
        sys.exit(0 if ok else 1)


asyncio.run(main())

#!/usr/bin/env python3
"""Runs the hostile-traffic suite: `trawl analyze` on every capture that
make_hostile.py wrote, and checks each against its promises.

    benches/hostile/run.py TRAWL CASEDIR OUTDIR [--budget-mb 256] [--no-speed]

For each case it prints one markdown row: packets, size, wall time,
throughput (MB/s, packets/s, and rows written a second: flows, calls
and parse issues, a flood's unit of work), peak RSS, and the caps that fired
(the positive counters among the caps of docs/architecture.md and the
parse-issue kinds). A case fails when trawl exits non-zero or panics,
when its peak RSS is over the budget, when its packet rate is under half
of the `normal` case's and its byte rate too (unless --no-speed: debug
builds), or when a cap
it must fire did not. Exit status 1 when any case failed.
"""
import argparse
import json
import os
import subprocess
import sys
import time

# The manifest counters that say a cap or a defence fired.
CAPS = [
    "flow_table_evictions", "flow_table_evictions_answered", "tcp_ooo_overflows", "tcp_shard_ooo_overflows",
    "tcp_unacked_dropped", "http_bodies_truncated", "requests_given_up", "parse_issues_dropped",
    "ip_frag_overflows", "ip_frag_timeouts", "ip_frag_errors", "malformed_frames", "snaplen_truncated_frames",
    "hpack_unknown_fields", "http2_resyncs", "dns_answers_dropped", "tcp_gap_bytes", "tcp_refused",
]


def run(cmd):
    """Runs `cmd`; returns (exit status, stderr, wall seconds, peak RSS in KiB)."""
    start = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.monotonic() - start
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    return os.waitstatus_to_exitcode(status), err, wall, usage.ru_maxrss


def sql(trawl, snap, query):
    out = subprocess.run([trawl, "sql", snap, "-c", query, "--format", "json"], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"run.py: trawl sql {snap}: {out.stderr.strip()}")
    return json.loads(out.stdout or "[]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trawl")
    ap.add_argument("casedir")
    ap.add_argument("outdir")
    ap.add_argument("--budget-mb", type=float, default=256)
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--only", nargs="*", help="these cases (and normal, the yardstick)")
    a = ap.parse_args()
    with open(os.path.join(a.casedir, "cases.json")) as f:
        cases = json.load(f)
    os.makedirs(a.outdir, exist_ok=True)
    print("| case | packets | MB | wall s | MB/s | k packets/s | k rows/s | peak RSS MB | caps that fired | verdict |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    normal = None
    failures = 0
    for c in cases:
        if a.only and c["name"] not in a.only and c["name"] != "normal":
            continue
        snap = os.path.join(a.outdir, c["name"] + ".snap")
        cmd = [a.trawl, "analyze", os.path.join(a.casedir, c["file"]), "-o", snap, "--force", *c["args"]]
        code, err, wall, rss_kb = run(cmd)
        problems = []
        fired = []
        written = 0
        if code != 0 or "panicked" in err:
            problems.append(f"exit {code}: {err.strip().splitlines()[-1] if err.strip() else ''}")
        else:
            with open(os.path.join(snap, "manifest.json")) as f:
                counters = json.load(f)["counters"]
            fired = [f"{k} {counters[k]:,}" for k in CAPS if counters.get(k, 0) > 0]
            rows = sql(a.trawl, snap, "select 'issue' as t, kind as k, count(*) as n from parse_issues group by kind "
                       "union all select 'end', end_reason, count(*) from flows group by end_reason "
                       "union all select 'rows', 'api_calls', count(*) from api_calls order by t, k")
            issues = {r["k"]: r["n"] for r in rows if r["t"] == "issue"}
            # Rows written (issues, flows by end reason, calls): a flood's
            # packets are each a flow, so its work is rows, not packets.
            written = sum(r["n"] for r in rows)
            reasons = {r["k"] for r in rows if r["t"] == "end"}
            fired += [f"issue {k} {n:,}" for k, n in issues.items()]
            for e in c["expect"]:
                kind, name = e.split(":", 1)
                ok = (counters.get(name, 0) > 0 if kind == "counter"
                      else name in issues if kind == "issue" else name in reasons)
                if not ok:
                    problems.append(f"expected {e}")
        rss_mb = rss_kb / 1024
        if rss_mb > a.budget_mb:
            problems.append(f"peak RSS {rss_mb:.0f} MB over {a.budget_mb:.0f}")
        pps, mbps = c["packets"] / wall, c["bytes"] / 1e6 / wall
        if c["name"] == "normal":
            normal = (pps, mbps)
        elif not a.no_speed and normal and wall > 1 and pps < normal[0] / 2 and mbps < normal[1] / 2:
            # Slow by both measures: packets (floods of small packets) and
            # bytes (attacks in large segments).
            problems.append(f"{pps / 1e3:.0f} k packets/s and {mbps:.0f} MB/s, under half of normal's "
                            f"{normal[0] / 1e3:.0f} k and {normal[1]:.0f} MB/s")
        verdict = "ok" if not problems else "FAIL: " + "; ".join(problems)
        failures += bool(problems)
        print(f"| {c['name']} | {c['packets']:,} | {c['bytes'] / 1e6:.1f} | {wall:.2f} | {c['bytes'] / 1e6 / wall:.0f} "
              f"| {pps / 1e3:.0f} | {written / wall / 1e3:.0f} | {rss_mb:.0f} | {', '.join(fired) or '-'} | {verdict} |",
              flush=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Times MCP tool calls against `trawl mcp` over stdio with the official
Python MCP client (see benches/mcp_latency.sh): what an agent waits for,
JSON-RPC and serialisation included.

For list_api_calls two figures: a filter the server has not seen (it
counts every match for `total` while it fetches the page; each run adds a
distinct no-op term ` && method != "noN"` so no count is reused), and the
same filter again (the count is cached with the catalog, as when an agent
pages through results). The catalog is opened by a warm-up call first.
"""
import asyncio
import json
import statistics
import sys
import time

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client


def stats(times):
    times = sorted(times)
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.9))]


async def timed(s, name, args):
    t0 = time.perf_counter()
    r = await s.call_tool(name, args)
    ms = (time.perf_counter() - t0) * 1000
    if r.is_error:
        raise SystemExit(f"{name} {args}: {r.content[0].text}")
    return ms, json.loads(r.content[0].text)


async def main():
    trawl, data, snap, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    # The call whose details are fetched: the middle one of the table.
    middle = int(sys.argv[5]) if len(sys.argv) > 5 else 5_000_000
    lists = [
        {"kfl": "http && status_code >= 400", "limit": 100},
        {"kfl": 'http && path.startsWith("/api") && method == "POST"', "limit": 100},
        {"kfl": "http && status_code >= 400", "limit": 100, "offset": 10000},
        {"kfl": "http && status_code >= 400", "limit": 1000, "format": "full"},
        {"kfl": 'timestamp > now() - duration("1m")', "limit": 100},
    ]
    others = [
        ("get_api_stats", {"kfl": "http", "group_by": "status", "snapshot_id": snap}),
        ("get_api_call_details", {"id": f"{snap}/{middle}"}),
    ]
    params = StdioServerParameters(command=trawl, args=["mcp", "--data", data, "--quiet"])
    async with stdio_client(params) as (r, w):
        async with ClientSession(r, w) as s:
            await s.initialize()
            await timed(s, "list_api_calls", {"snapshot_id": snap, "limit": 1})
            print("| list_api_calls arguments | total | new filter: median / p90 ms | same filter again: median / p90 ms |")
            print("|---|---|---|---|")
            for args in lists:
                fresh, again = [], []
                for i in range(runs):
                    a = dict(args, snapshot_id=snap, kfl=args["kfl"] + f' && method != "no{i}"')
                    ms, body = await timed(s, "list_api_calls", a)
                    fresh.append(ms)
                    ms, _ = await timed(s, "list_api_calls", a)
                    again.append(ms)
                (fm, f90), (am, a90) = stats(fresh), stats(again)
                print(f"| `{json.dumps(args)}` | {body['total']} | {fm:.0f} / {f90:.0f} | {am:.0f} / {a90:.0f} |")
            print()
            print("| tool | arguments | median / p90 ms |")
            print("|---|---|---|")
            for name, args in others:
                t = [(await timed(s, name, args))[0] for _ in range(runs)]
                m, p = stats(t)
                shown = {k: v for k, v in args.items() if k != "snapshot_id"}
                print(f"| {name} | `{json.dumps(shown)}` | {m:.0f} / {p:.0f} |")


asyncio.run(main())

#!/usr/bin/env python3
"""Times MCP tool calls against `trawl mcp` over stdio with the official
Python MCP client (see benches/mcp_latency.sh). Prints median and p90 per
call, after one warm-up call each (the first opens the catalog)."""
import asyncio
import json
import statistics
import sys
import time

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client


async def main():
    trawl, data, snap, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    cases = [
        ("list_api_calls", {"kfl": "http && status_code >= 400", "limit": 100}),
        ("list_api_calls", {"kfl": 'http && path.startsWith("/api") && method == "POST"', "limit": 100}),
        ("list_api_calls", {"kfl": "http && status_code >= 400", "limit": 100, "offset": 10000}),
        ("list_api_calls", {"kfl": "http && status_code >= 400", "limit": 1000, "format": "full"}),
        ("list_api_calls", {"kfl": 'timestamp > now() - duration("1m")', "limit": 100}),
        ("get_api_stats", {"kfl": "http", "group_by": "status"}),
        ("get_api_call_details", {"id": f"{snap}/5000000", "include_pcap": False}),
    ]
    params = StdioServerParameters(command=trawl, args=["mcp", "--data", data, "--quiet"])
    async with stdio_client(params) as (r, w):
        async with ClientSession(r, w) as s:
            await s.initialize()
            print(f"| tool | arguments | total | median ms | p90 ms |")
            print(f"|---|---|---|---|---|")
            for name, args in cases:
                args = dict(args, **({"snapshot_id": snap} if name != "get_api_call_details" else {}))
                first = await s.call_tool(name, args)
                if first.is_error:
                    raise SystemExit(f"{name} {args}: {first.content[0].text}")
                body = json.loads(first.content[0].text)
                times = []
                for _ in range(runs):
                    t0 = time.perf_counter()
                    await s.call_tool(name, args)
                    times.append((time.perf_counter() - t0) * 1000)
                times.sort()
                p90 = times[min(len(times) - 1, int(len(times) * 0.9))]
                shown = {k: v for k, v in args.items() if k != "snapshot_id"}
                total = body.get("total", body.get("total_calls", "-"))
                print(f"| {name} | `{json.dumps(shown)}` | {total} | {statistics.median(times):.0f} | {p90:.0f} |")


asyncio.run(main())

#!/usr/bin/env python3
"""Times `list_api_calls` for the last five minutes of a dataset through
`trawl mcp --data DATASET` over stdio, with the official Python MCP
client (benches/dataset.sh): what a monitoring agent asking every five
minutes waits for. Each run adds a distinct no-op term so no count is
reused; the catalog is opened by a warm-up call first.

    dataset_recent.py TRAWL DATASET RUNS
"""
import asyncio
import json
import statistics
import sys
import time

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client


async def main():
    trawl, data, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    params = StdioServerParameters(command=trawl, args=["mcp", "--data", data, "--quiet"])
    recent = 'timestamp > now() - duration("5m")'
    async with stdio_client(params) as (r, w):
        async with ClientSession(r, w) as s:
            await s.initialize()
            await s.call_tool("list_api_calls", {"kfl": recent, "limit": 1})
            times, total = [], None
            for i in range(runs):
                t0 = time.perf_counter()
                res = await s.call_tool("list_api_calls", {"kfl": recent + f' && method != "no{i}"', "limit": 100})
                times.append((time.perf_counter() - t0) * 1000)
                if res.is_error:
                    raise SystemExit(res.content[0].text)
                total = json.loads(res.content[0].text)["total"]
            times.sort()
            p90 = times[min(len(times) - 1, int(len(times) * 0.9))]
            print(f"list_api_calls last 5m: {total} calls matched; median {statistics.median(times):.0f} ms, p90 {p90:.0f} ms, max {times[-1]:.0f} ms over {runs} runs")


asyncio.run(main())

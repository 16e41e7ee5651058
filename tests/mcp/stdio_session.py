"""What the single-purpose agent sessions share (l7_session.py,
dataset_session.py): checks that end the session with a message, a tool
call that must succeed, and a main that runs `checks` against `trawl mcp
--data DIR` over stdio and prints its findings as one JSON line.
"""
import argparse
import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def check(cond, what):
    if not cond:
        sys.exit(f"check failed: {what}")


async def ok(session, name, args=None):
    r = await session.call_tool(name, args or {})
    check(not r.is_error, f"{name}({args}) failed: {r.content[0].text if r.content else r}")
    return json.loads(r.content[0].text)


def run(checks, extra_args=()):
    """Parses --trawl BIN --data DIR, serves DIR and prints checks(session).
    Further arguments go to `trawl mcp` (`--cluster df://HOST:PORT`)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--trawl", required=True)
    ap.add_argument("--data", required=True)
    a, rest = ap.parse_known_args()

    async def main():
        # The whole environment (the SDK passes only a few variables):
        # a dataset on S3 is reached with AWS_* settings.
        params = StdioServerParameters(command=a.trawl, args=["mcp", "--data", a.data, *extra_args, *rest],
                                       env=dict(os.environ))
        async with stdio_client(params) as (r, w):
            async with ClientSession(r, w) as s:
                await s.initialize()
                found = await checks(s)
        print(json.dumps(found))

    asyncio.run(main())

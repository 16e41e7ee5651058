"""An agent on a live dataset over MCP, with the official Python MCP
client SDK over stdio: `trawl mcp --data DATASET` while an indexer is
still following the archive. The last five minutes' failures are listed
(the story's whole run), one is opened and traced by its id. Prints the
findings as one JSON line.

    python3 dataset_session.py --trawl BIN --data DATASET
"""

from stdio_session import check, ok, run


async def checks(s):
    found = {}
    recent = 'http && status_code >= 500 && timestamp > now() - duration("5m")'
    page = await ok(s, "list_api_calls", {"kfl": recent, "limit": 100})
    found["failed_total"] = page["total"]
    ids = [c["id"] for c in page["calls"]]
    found["ids"] = ids
    check(ids and all(i.startswith("node-a/") for i in ids), ids)
    d = await ok(s, "get_api_call_details", {"id": ids[0]})
    found["details"] = {"id": d["id"], "status": d["call"]["status_code"], "path": d["call"]["path"],
                        "flow": d["l4_flow"]["flow_id"] if d.get("l4_flow") else None}
    t = await ok(s, "trace_api_call", {"id": ids[0]})
    found["trace_root"] = t["root"]
    # The same id without its node part: ids are unique across the dataset.
    bare = ids[0].split("/")[1]
    d2 = await ok(s, "get_api_call_details", {"id": int(bare)})
    found["bare_id"] = d2["id"]
    return found


if __name__ == "__main__":
    run(checks, ("--quiet",))

"""An agent pages through a dataset's calls over MCP, with the official
Python MCP client SDK over stdio: every page of `list_api_calls` for a
few filters, in both orders, by `next_offset`, plus the total each page
reports. Run once locally and once with `--cluster df://HOST:PORT`, the
two outputs must be the same. Prints the pages as one JSON line.

    python3 paging_session.py --trawl BIN --data DATASET [--cluster URL]
"""

from stdio_session import ok, run

FILTERS = ["", "http && status_code >= 500", 'dst.port == 8082 && request.method == "POST"']


async def checks(s):
    found = {}
    for kfl in FILTERS:
        for order in ("time", "id"):
            pages, offset = [], 0
            while offset is not None and len(pages) < 50:
                page = await ok(s, "list_api_calls", {"kfl": kfl, "order": order, "limit": 7, "offset": offset})
                pages.append({"total": page["total"], "ids": [c["id"] for c in page["calls"]],
                              "calls": page["calls"]})
                offset = page.get("next_offset")
            found[f"{order}:{kfl}"] = pages
    return found


if __name__ == "__main__":
    run(checks, ("--quiet",))

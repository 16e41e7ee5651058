#!/usr/bin/env python3
"""Regenerates kfl_vs_tshark.tsv: for each corpus capture with HTTP or TCP
traffic, the number of messages (or conversations) tshark 4.0 finds for a
display filter that means the same as a KFL filter.

    python3 testdata/golden/make_kfl_vs_tshark.py > testdata/golden/kfl_vs_tshark.tsv

Counting: a frame can carry several HTTP messages (pipelining), so the
count is the number of values of `count_field` in the frames the display
filter selects, not the number of frames. Flow rows count the lines of
`tshark -q -z conv,tcp,FILTER`.

query/tests/queries.rs (`kfl_counts_match_tshark_display_filters`) runs
each KFL filter on a snapshot of the capture and compares.
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "corpus")

# (table, KFL filter, tshark display filter, field counted per message)
CALL_ROWS = [
    ("calls", 'http && method != ""', "http.request", "http.request.method"),
    ("calls", 'http && method == "GET"', 'http.request.method == "GET"', "http.request.method"),
    ("calls", 'http && method == "POST"', 'http.request.method == "POST"', "http.request.method"),
    ("calls", "http && status_code >= 400", "http.response.code >= 400", "http.response.code"),
    ("calls", "http && status_code >= 200 && status_code < 300", "http.response.code >= 200 && http.response.code < 300", "http.response.code"),
    ("calls", "http && status_code == 304", "http.response.code == 304", "http.response.code"),
    ("calls", 'http && "user-agent" in request.headers', "http.request && http.user_agent", "http.request.method"),
    ("calls", 'http && request.headers["Accept-Encoding"].contains("gzip")', 'http.request && http.accept_encoding contains "gzip"', "http.request.method"),
    ("calls", 'http && status_code != 0 && response.headers["content-type"].startsWith("text/html")', 'http.response && http.content_type matches "^text/html"', "http.response.code"),
    ("calls", 'http && path.matches("\\\\.(gif|png|jpg)$")', 'http.request.uri matches "\\\\.(gif|png|jpg)$"', "http.request.method"),
    ("calls", 'http && method != "" && status_code == 0', "http.request && !http.response_in", "http.request.method"),
]
# The last five seconds of the capture: now() is the last packet's time.
NOW_ROW = ("calls", 'http && method != "" && timestamp >= now() - duration("5s")', "http.request && frame.time_epoch >= {cut}", "http.request.method")
FLOW_ROWS = [
    ("flows", "tcp", "", None),
    ("flows", "tcp && (src.port == 80 || dst.port == 80)", "tcp.port == 80", None),
    ("flows", "tcp && dst.port == 443", "tcp.dstport == 443 || tcp.srcport == 443", None),
]


def run(args):
    # Two passes (-2) so that http.response_in is known on requests.
    # Exit status 2 is a capture cut short: tshark still reports what it read.
    p = subprocess.run(args[:1] + ["-2"] + args[1:], capture_output=True, text=True)
    if p.returncode not in (0, 2):
        raise RuntimeError(f"{args}: {p.stderr}")
    return p.stdout


def messages(path, dfilter, field):
    out = run(["tshark", "-n", "-r", path, "-Y", dfilter, "-T", "fields", "-e", field])
    return sum(len([v for v in line.split(",") if v]) for line in out.splitlines())


def conversations(path, dfilter):
    spec = "conv,tcp" + ("," + dfilter if dfilter else "")
    out = run(["tshark", "-n", "-q", "-r", path, "-z", spec])
    return sum(1 for line in out.splitlines() if "<->" in line)


def last_packet_epoch(path):
    out = run(["tshark", "-n", "-r", path, "-T", "fields", "-e", "frame.time_epoch"])
    times = [float(t) for t in out.split()]
    return max(times) if times else None


def main():
    oracle = json.load(open(os.path.join(CORPUS, "oracle.json")))
    print("file\ttable\tkfl\ttshark_filter\ttshark_count")
    for entry in sorted(oracle, key=lambda e: e["file"]):
        name = entry["file"]
        path = os.path.join(CORPUS, name)
        if (entry.get("http") or {}).get("requests", 0) > 0:
            rows = list(CALL_ROWS)
            last = last_packet_epoch(path)
            rows.append((NOW_ROW[0], NOW_ROW[1], NOW_ROW[2].format(cut=f"{last - 5:.9f}"), NOW_ROW[3]))
            for table, kfl, dfilter, field in rows:
                print(f"{name}\t{table}\t{kfl}\t{dfilter}\t{messages(path, dfilter, field)}")
        if entry.get("tcp_conversations", 0) > 0:
            for table, kfl, dfilter, _ in FLOW_ROWS:
                print(f"{name}\t{table}\t{kfl}\t{dfilter}\t{conversations(path, dfilter)}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Regenerates archive_vs_tshark.tsv: the packets tshark (and tcpdump, for
BPF) select from corpus captures, as a count and a sha256, for the
snapshot and export tests in snapshot/tests/archive.rs.

The digest is sha256 over every selected packet, in capture order, of
8 bytes of little-endian capture time in ns followed by the captured
bytes: the same packets at the same times give the same digest, whatever
the container (pcap or pcapng) they are written in.

Run from the repository root with tshark 4.x and tcpdump installed:
    TZ=UTC python3 testdata/golden/make_archive_vs_tshark.py > testdata/golden/archive_vs_tshark.tsv
"""
import hashlib
import os
import struct
import subprocess
import sys
import tempfile

CORPUS = "testdata/corpus"
DEMO = "testdata/demo"


def digest_nsec_pcap(path):
    data = open(path, "rb").read()
    magic = data[:4]
    if magic == b"\x4d\x3c\xb2\xa1":
        end = "<"
    elif magic == b"\xa1\xb2\x3c\x4d":
        end = ">"
    else:
        raise SystemExit(f"{path}: expected a nanosecond pcap")
    h = hashlib.sha256()
    n = 0
    pos = 24
    while pos + 16 <= len(data):
        sec, nsec, incl, _orig = struct.unpack(end + "IIII", data[pos:pos + 16])
        h.update(struct.pack("<q", sec * 1_000_000_000 + nsec))
        h.update(data[pos + 16:pos + 16 + incl])
        pos += 16 + incl
        n += 1
    return n, h.hexdigest()


def tshark_select(capture, display_filter):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "out.pcap")
        subprocess.run(["tshark", "-r", capture, "-Y", display_filter, "-F", "nsecpcap", "-w", out], check=True, stderr=subprocess.DEVNULL)
        return digest_nsec_pcap(out)


def tcpdump_select(capture, bpf):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "out.pcap")
        subprocess.run(["tcpdump", "-r", capture, "--time-stamp-precision=nano", "-w", out, bpf], check=True, stderr=subprocess.DEVNULL)
        return digest_nsec_pcap(out)


def streams(capture, display_filter):
    out = subprocess.run(["tshark", "-r", capture, "-Y", display_filter, "-T", "fields", "-e", "tcp.stream"],
                         check=True, capture_output=True, text=True).stdout
    return sorted({int(x) for x in out.split()})


def main():
    if os.environ.get("TZ") != "UTC":
        raise SystemExit("run with TZ=UTC: tshark reads frame.time literals in local time")
    rows = []
    # Snapshot windows over a two-node archive: node-a holds
    # zeek_http_methods.pcap rotated into 200-packet files, node-b holds
    # sanders_http_espn.pcapng.
    nodes = {"node-a": f"{CORPUS}/zeek_http_methods.pcap", "node-b": f"{CORPUS}/sanders_http_espn.pcapng"}
    windows = {
        "window-a": ("2012-12-01T02:28:00Z", "2012-12-01T02:28:30Z"),
        "window-b": ("2010-04-07T17:29:30.5Z", "2010-04-07T17:29:31.2Z"),
    }
    for wname, (start, end) in windows.items():
        s = start.replace("T", " ")
        e = end.replace("T", " ")
        f = f'frame.time >= "{s}" && frame.time < "{e}"'
        for node, cap in nodes.items():
            n, h = tshark_select(cap, f)
            rows.append((f"{wname}:{start}/{end}", node, os.path.basename(cap), f, n, h))
    # Export: the connections of the HTTP calls with an error status.
    for cap, kfl, code in [
        (f"{CORPUS}/zeek_http_methods.pcap", "http && status_code >= 400", "http.response.code >= 400"),
        (f"{DEMO}/checkout.pcap", "http && status_code >= 500", "http.response.code >= 500"),
    ]:
        st = streams(cap, code)
        f = "tcp.stream in {" + ",".join(map(str, st)) + "}"
        n, h = tshark_select(cap, f)
        rows.append((f"kfl:{kfl}", "-", os.path.basename(cap), f, n, h))
    # Export of a UDP flow whose datagrams were fragmented (real traffic,
    # testdata/scenarios/make_udp_fragments.sh): every frame of it,
    # fragments included. tshark's `udp.stream == 0` selects only the 6
    # frames that carry a UDP header (whole or completing a datagram); the
    # fragments before them are part of the flow too, so the reference is
    # every IP frame of protocol UDP.
    n, h = tshark_select("testdata/scenarios/udp-fragments.pcap", "ip.proto == 17")
    rows.append(("flows:udp", "-", "udp-fragments.pcap", "ip.proto == 17", n, h))
    # Export with a BPF filter, against tcpdump.
    for cap, bpf in [(f"{CORPUS}/zeek_http_methods.pcap", "tcp[tcpflags] & tcp-syn != 0"), (f"{CORPUS}/sanders_http_espn.pcapng", "src host 205.234.218.129 and tcp port 80")]:
        n, h = tcpdump_select(cap, bpf)
        rows.append((f"bpf:{bpf}", "-", os.path.basename(cap), "(tcpdump)", n, h))
    print("case\tnode\tfile\ttshark_filter\tpackets\tsha256")
    for r in rows:
        print("\t".join(map(str, r)))


if __name__ == "__main__":
    sys.exit(main())

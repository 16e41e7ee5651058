#!/usr/bin/env python3
"""Writes a hostile capture: a SYN flood (or a UDP flood) from distinct
source addresses, none answered, as a pcap (Ethernet, microsecond times).

    benches/hostile/make_flood.py syn|udp PACKETS OUT.pcap [--pps N]

Sources count up through 10.0.0.0/8 (then wrap into 11.0.0.0/8 and on),
so that every packet opens a flow of its own; the target is
192.168.0.1:80 (TCP) or :53 (UDP). Checksums are computed, so the packets
pass any validating reader. Time starts at 2026-01-01T00:00:00Z and
advances 1/PPS s a packet (default 100,000 packets a second): what a
capture of a flood on a busy link looks like.
"""
import argparse
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pcapgen import checksum  # noqa: E402

START_S = 1767225600  # 2026-01-01T00:00:00Z


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kind", choices=["syn", "udp"])
    ap.add_argument("packets", type=int)
    ap.add_argument("out")
    ap.add_argument("--pps", type=int, default=100_000)
    a = ap.parse_args()
    if a.packets <= 0 or a.pps <= 0:
        sys.exit("make_flood.py: PACKETS and --pps must be positive")
    dst = bytes([192, 168, 0, 1])
    eth = bytes.fromhex("020000000001" "020000000002" "0800")
    with open(a.out + ".tmp", "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        out = []
        for i in range(a.packets):
            n = (10 << 24) + i
            src = struct.pack("!I", n & 0xFFFFFFFF)
            sport = 1024 + (i * 7919) % 64000
            if a.kind == "syn":
                seq = (i * 2654435761) & 0xFFFFFFFF
                # SYN with MSS 1460 (options: 4 bytes).
                l4 = struct.pack("!HHIIBBHHH", sport, 80, seq, 0, 6 << 4, 0x02, 64240, 0, 0) + bytes.fromhex("020405b4")
                proto = 6
            else:
                payload = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01"
                l4 = struct.pack("!HHHH", sport, 53, 8 + len(payload), 0) + payload
                proto = 17
            pseudo = src + dst + struct.pack("!BBH", 0, proto, len(l4))
            c = checksum(pseudo + l4)
            l4 = l4[:16] + struct.pack("!H", c) + l4[18:] if proto == 6 else l4[:6] + struct.pack("!H", c or 0xFFFF) + l4[8:]
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), i & 0xFFFF, 0x4000, 64, proto, 0, src, dst)
            ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
            frame = eth + ip + l4
            us = i * 1_000_000 // a.pps
            out.append(struct.pack("<IIII", START_S + us // 1_000_000, us % 1_000_000, len(frame), len(frame)) + frame)
            if len(out) >= 65536:
                f.write(b"".join(out))
                out.clear()
        f.write(b"".join(out))
    os.replace(a.out + ".tmp", a.out)


if __name__ == "__main__":
    main()

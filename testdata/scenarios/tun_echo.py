"""The far end of a tun device, for testdata/scenarios/capture_tun.sh.

Creates the tun device NAME (raw IP: no link header, as WireGuard and IP
tunnels are) and answers what it reads from it: UDP datagrams to port 7
are echoed back (RFC 862), ICMP echo requests answered. Prints "ready"
once the device exists.

    python3 tun_echo.py NAME
"""

import fcntl
import os
import struct
import sys

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def checksum(b: bytes) -> int:
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(src: bytes, dst: bytes, proto: int, body: bytes) -> bytes:
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 0, 0x4000, 64, proto, 0, src, dst)
    return h[:10] + struct.pack("!H", checksum(h)) + h[12:] + body


def answer(p: bytes):
    if len(p) < 20 or p[0] >> 4 != 4:
        return None
    ihl = (p[0] & 15) * 4
    proto, src, dst, body = p[9], p[12:16], p[16:20], p[ihl:]
    if proto == 17 and len(body) >= 8:
        sport, dport = struct.unpack("!HH", body[:4])
        if dport != 7:
            return None
        data = body[8:]
        udp = struct.pack("!HHHH", 7, sport, 8 + len(data), 0) + data
        pseudo = src + dst + struct.pack("!BBH", 0, 17, len(udp))
        udp = udp[:6] + struct.pack("!H", checksum(pseudo + udp) or 0xFFFF) + udp[8:]
        return ipv4(dst, src, 17, udp)
    if proto == 1 and len(body) >= 8 and body[0] == 8:
        icmp = b"\0\0\0\0" + body[4:]
        icmp = icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]
        return ipv4(dst, src, 1, icmp)
    return None


def main():
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", sys.argv[1].encode(), IFF_TUN | IFF_NO_PI))
    print("ready", flush=True)
    while True:
        reply = answer(os.read(fd, 65535))
        if reply:
            os.write(fd, reply)


if __name__ == "__main__":
    main()

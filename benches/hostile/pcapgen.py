"""Writing hostile captures: Ethernet/IPv4 frames, TCP connections with
handshakes and acknowledgements, UDP datagrams and IP fragments, into a
classic pcap (microsecond times) that is renamed into place when complete.

IP header checksums are computed; TCP checksums are left zero (trawl, like
tshark by default, does not check them) and UDP checksums are zero (none),
which keeps a generator in Python fast enough for millions of packets.
"""
import os
import struct

START_US = 1767225600 * 1_000_000  # 2026-01-01T00:00:00Z
ETH = bytes.fromhex("020000000001" "020000000002" "0800")
SYN, FIN, RST, PSH, ACK = 0x02, 0x01, 0x04, 0x08, 0x10


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip4(n: int) -> bytes:
    return struct.pack("!I", n & 0xFFFFFFFF)


class Pcap:
    """A pcap being written; `now_us` advances `step_us` a packet unless
    a caller sets it."""

    def __init__(self, path: str, step_us: int = 10):
        self.path = path
        self.tmp = path + ".tmp"
        self.f = open(self.tmp, "wb")
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        self.buf = []
        self.now_us = START_US
        self.step_us = step_us
        self.ip_id = 0
        self.packets = 0

    def frame(self, frame: bytes, ts_us: int | None = None) -> None:
        ts = self.now_us if ts_us is None else ts_us
        self.buf.append(struct.pack("<IIII", ts // 1_000_000, ts % 1_000_000, len(frame), len(frame)) + frame)
        self.now_us += self.step_us
        self.packets += 1
        if len(self.buf) >= 4096:
            self.f.write(b"".join(self.buf))
            self.buf.clear()

    def ip(self, src: bytes, dst: bytes, proto: int, l4: bytes, frag: int = 0x4000, ident: int | None = None,
           ts_us: int | None = None) -> None:
        if ident is None:
            self.ip_id = (self.ip_id + 1) & 0xFFFF
            ident = self.ip_id
        h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), ident, frag, 64, proto, 0, src, dst)
        h = h[:10] + struct.pack("!H", checksum(h)) + h[12:]
        self.frame(ETH + h + l4, ts_us)

    def udp(self, src: bytes, sport: int, dst: bytes, dport: int, payload: bytes, ts_us: int | None = None) -> None:
        self.ip(src, dst, 17, struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload, ts_us=ts_us)

    def tcp(self, src: bytes, sport: int, dst: bytes, dport: int, seq: int, ack: int, flags: int,
            payload: bytes = b"", window: int = 65535, options: bytes = b"", ts_us: int | None = None) -> None:
        off = (20 + len(options)) // 4
        h = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, off << 4, flags, window, 0, 0)
        self.ip(src, dst, 6, h + options + payload, ts_us=ts_us)

    def close(self) -> None:
        self.f.write(b"".join(self.buf))
        self.f.close()
        os.replace(self.tmp, self.path)


class Conn:
    """A TCP connection in a capture: the handshake on creation, then
    `send` from either side (segments of at most `mss`, each acknowledged
    by the other side), `fin` to close."""

    def __init__(self, w: Pcap, client: bytes, cport: int, server: bytes, sport: int, handshake: bool = True):
        self.w = w
        self.ends = [(client, cport), (server, sport)]
        self.seq = [1000 + cport * 7919, 5000 + sport * 104729]
        if handshake:
            w.tcp(client, cport, server, sport, self.seq[0], 0, SYN, options=bytes.fromhex("020405b4"))
            w.tcp(server, sport, client, cport, self.seq[1], self.seq[0] + 1, SYN | ACK,
                  options=bytes.fromhex("020405b4"))
            self.seq = [self.seq[0] + 1, self.seq[1] + 1]
            w.tcp(client, cport, server, sport, self.seq[0], self.seq[1], ACK)

    def send(self, side: int, data: bytes, mss: int = 1448, acked: bool = True) -> None:
        (s, sp), (d, dp) = self.ends[side], self.ends[1 - side]
        for i in range(0, len(data), mss):
            chunk = data[i:i + mss]
            self.w.tcp(s, sp, d, dp, self.seq[side], self.seq[1 - side], ACK | PSH, chunk)
            self.seq[side] += len(chunk)
            if acked:
                self.w.tcp(d, dp, s, sp, self.seq[1 - side], self.seq[side], ACK)

    def fin(self) -> None:
        for side in (0, 1):
            (s, sp), (d, dp) = self.ends[side], self.ends[1 - side]
            self.w.tcp(s, sp, d, dp, self.seq[side], self.seq[1 - side], FIN | ACK)
            self.seq[side] += 1
        (s, sp), (d, dp) = self.ends[0], self.ends[1]
        self.w.tcp(s, sp, d, dp, self.seq[0], self.seq[1], ACK)

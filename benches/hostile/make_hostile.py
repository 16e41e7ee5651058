#!/usr/bin/env python3
"""Writes the hostile-traffic suite: one capture per attack on trawl's
readers and parsers, and `cases.json`, which says for each what it is,
the analysis settings it runs with and the caps it must fire.

    benches/hostile/make_hostile.py OUTDIR [--small] [--only NAME ...]

`--small` writes each case at a fiftieth of its size or less (seconds in
all: what CI runs); without it the captures are what docs/security.md
reports (minutes in all). `normal` is ordinary request-dense HTTP made by
the same generator: the throughput every attack is held against.

Each case lists `expect`: counters of the manifest that must be positive
(`counter:NAME`), parse-issue kinds that must be present (`issue:KIND`),
or flow end reasons that must occur (`end_reason:NAME`).
"""
import argparse
import gzip
import json
import os
import random
import struct
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pcapgen import ACK, FIN, PSH, RST, SYN, Conn, Pcap, ip4  # noqa: E402

CLIENTS = 10 << 24  # 10.0.0.0/8
SERVER = ip4((192 << 24) | (168 << 16) | 1)


def client(i: int) -> bytes:
    return ip4(CLIENTS + i)


def http_exchange(c: Conn, i: int) -> None:
    c.send(0, f"GET /api/items/{i} HTTP/1.1\r\nHost: shop\r\nAccept: application/json\r\n\r\n".encode())
    body = json.dumps({"id": i, "name": f"item-{i}", "price": i % 97}).encode()
    c.send(1, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


def normal(w: Pcap, n: int) -> None:
    """Keep-alive connections of ten small JSON calls each."""
    for i in range(n):
        c = Conn(w, client(i), 1024 + i % 60000, SERVER, 80)
        for k in range(10):
            http_exchange(c, i * 10 + k)
        c.fin()


def syn_flood(w: Pcap, n: int) -> None:
    for i in range(n):
        w.tcp(client(i), 1024 + (i * 7919) % 64000, SERVER, 80, i * 2654435761, 0, SYN,
              options=bytes.fromhex("020405b4"))


def udp_flood(w: Pcap, n: int) -> None:
    q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01"
    for i in range(n):
        w.udp(client(i), 1024 + (i * 7919) % 64000, SERVER, 53, q)


def port_scan(w: Pcap, n: int) -> None:
    """One scanner, every port of `n` / 65535 targets; closed ports answer RST."""
    scanner = client(1)
    for i in range(n):
        target = ip4((192 << 24) | (168 << 16) | (1 + i // 65535))
        port = 1 + i % 65535
        w.tcp(scanner, 40000, target, port, 777, 0, SYN)
        w.tcp(target, port, scanner, 40000, 0, 778, RST | ACK)


def endless_chunked(w: Pcap, n: int) -> None:
    """Connections whose chunked response never ends (no last chunk, no FIN)."""
    chunk = b"400\r\n" + b"x" * 1024 + b"\r\n"
    for i in range(n):
        c = Conn(w, client(i), 1024 + i % 60000, SERVER, 80)
        c.send(0, b"GET /stream HTTP/1.1\r\nHost: shop\r\n\r\n")
        c.send(1, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 2)


def bomb(kind: str, size: int) -> bytes:
    zeros = b"\0" * (1 << 20)
    if kind == "gzip":
        z = zlib.compressobj(9, zlib.DEFLATED, 31)
    elif kind == "deflate":
        z = zlib.compressobj(9, zlib.DEFLATED, 15)
    else:
        import brotli

        return brotli.compress(b"\0" * size, quality=5)
    return b"".join(z.compress(zeros) for _ in range(size >> 20)) + z.flush()


def http1_bomb(kind: str):
    def make(w: Pcap, n: int, size: int) -> None:
        body = bomb(kind, size)
        for i in range(n):
            c = Conn(w, client(i), 1024 + i, SERVER, 80)
            c.send(0, b"GET /report HTTP/1.1\r\nHost: shop\r\nAccept-Encoding: gzip, deflate, br\r\n\r\n")
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: %s\r\nContent-Length: %d\r\n\r\n"
            c.send(1, head % (kind.encode(), len(body)) + body)
            c.fin()
    return make


# HTTP/2: frames and HPACK literals (never indexed, new names).
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, SETTINGS, CONTINUATION = 0, 1, 4, 9
END_STREAM, END_HEADERS = 1, 4


def frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack("!I", len(payload))[1:] + bytes([kind, flags]) + struct.pack("!I", stream) + payload


def hpack_int(value: int, prefix_bits: int, first: int) -> bytes:
    top = (1 << prefix_bits) - 1
    if value < top:
        return bytes([first | value])
    out = [first | top]
    value -= top
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def literal(name: bytes, value: bytes, indexed: bool = False) -> bytes:
    first = 0x40 if indexed else 0x00
    return bytes([first]) + hpack_int(len(name), 7, 0) + name + hpack_int(len(value), 7, 0) + value


def h2_conn(w: Pcap, i: int, port: int = 8080) -> Conn:
    c = Conn(w, client(i), 1024 + i, SERVER, port)
    c.send(0, PREFACE + frame(SETTINGS, 0, 0, b""))
    c.send(1, frame(SETTINGS, 0, 0, b"") + frame(SETTINGS, 1, 0, b""))
    return c


def request_headers(path: bytes, extra: bytes = b"") -> bytes:
    return (literal(b":method", b"POST") + literal(b":scheme", b"http") + literal(b":path", path)
            + literal(b":authority", b"shop") + extra)


def h2_bomb(grpc: bool):
    def make(w: Pcap, n: int, size: int) -> None:
        body = bomb("gzip", size)
        for i in range(n):
            c = h2_conn(w, i)
            if grpc:
                req = request_headers(b"/shop.Catalog/Export", literal(b"content-type", b"application/grpc")
                                      + literal(b"grpc-encoding", b"gzip"))
                c.send(0, frame(HEADERS, END_HEADERS, 1, req)
                       + frame(DATA, END_STREAM, 1, b"\0" + struct.pack("!I", 2) + b"\x08\x01"))
                resp = (literal(b":status", b"200") + literal(b"content-type", b"application/grpc")
                        + literal(b"grpc-encoding", b"gzip"))
                msg = b"\1" + struct.pack("!I", len(body)) + body
            else:
                c.send(0, frame(HEADERS, END_HEADERS | END_STREAM, 1, request_headers(b"/report")))
                resp = literal(b":status", b"200") + literal(b"content-encoding", b"gzip")
                msg = body
            out = frame(HEADERS, END_HEADERS, 1, resp)
            for k in range(0, len(msg), 16384):
                out += frame(DATA, 0, 1, msg[k:k + 16384])
            if grpc:
                out += frame(HEADERS, END_HEADERS | END_STREAM, 1, literal(b"grpc-status", b"0"))
            else:
                out += frame(DATA, END_STREAM, 1, b"")
            c.send(1, out)
            c.fin()
    return make


def hpack_table_size(w: Pcap, n: int) -> None:
    """A peer that allows a 2 GiB table, asks for 16 MiB and fills it."""
    for i in range(n):
        c = Conn(w, client(i), 1024 + i, SERVER, 8080)
        c.send(0, PREFACE + frame(SETTINGS, 0, 0, struct.pack("!HI", 1, 0x7FFFFFFF)))
        c.send(1, frame(SETTINGS, 0, 0, struct.pack("!HI", 1, 0x7FFFFFFF)) + frame(SETTINGS, 1, 0, b""))
        for s in range(40):
            block = hpack_int(1 << 24, 5, 0x20) + request_headers(b"/x")
            block += b"".join(literal(b"x-fill-%d-%d" % (s, k), b"v" * 4000, indexed=True) for k in range(14))
            c.send(0, frame(HEADERS, END_HEADERS | END_STREAM, 1 + 2 * s, block))


def continuation_flood(w: Pcap, n: int) -> None:
    """A header block that never ends: CONTINUATION after CONTINUATION."""
    for i in range(n):
        c = h2_conn(w, i)
        out = frame(HEADERS, 0, 1, request_headers(b"/x"))
        piece = frame(CONTINUATION, 0, 1, literal(b"x-more", b"m" * 1000))
        c.send(0, out + piece * 2000)


def nested_json(w: Pcap, n: int, depth: int) -> None:
    deep = "[" * depth + "1" + "]" * depth
    for i in range(n):
        c = Conn(w, client(i), 1024 + i, SERVER, 80)
        body = ('{"query":"query Q($x: [Int]) { items(x: $x) { id } }","variables":{"x":%s}}' % deep).encode()
        c.send(0, b"POST /graphql HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
               % (len(body), body))
        resp = ('{"data":%s}' % deep).encode()
        c.send(1, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(resp), resp))
        c.fin()


def nested_protobuf(w: Pcap, n: int, depth: int) -> None:
    def varint(v: int) -> bytes:
        out = b""
        while v >= 128:
            out += bytes([v % 128 + 128])
            v //= 128
        return out + bytes([v])
    msg = b"\x08\x01"
    for _ in range(depth):
        msg = b"\x0a" + varint(len(msg)) + msg
    for i in range(n):
        c = h2_conn(w, i)
        req = request_headers(b"/shop.Catalog/Get", literal(b"content-type", b"application/grpc"))
        c.send(0, frame(HEADERS, END_HEADERS, 1, req)
               + frame(DATA, END_STREAM, 1, b"\0" + struct.pack("!I", len(msg)) + msg))
        resp = literal(b":status", b"200") + literal(b"content-type", b"application/grpc")
        c.send(1, frame(HEADERS, END_HEADERS, 1, resp) + frame(DATA, 0, 1, b"\0" + struct.pack("!I", len(msg)) + msg)
               + frame(HEADERS, END_HEADERS | END_STREAM, 1, literal(b"grpc-status", b"0")))
        c.fin()


def nested_resp(w: Pcap, n: int, depth: int) -> None:
    for i in range(n):
        c = Conn(w, client(i), 1024 + i, SERVER, 6379)
        c.send(0, b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n")
        c.send(1, b"*1\r\n" * depth + b":1\r\n")
        c.fin()


def bson_doc(depth: int) -> bytes:
    doc = struct.pack("<i", 5) + b"\0"
    for _ in range(depth):
        inner = b"\x03a\0" + doc
        doc = struct.pack("<i", 4 + len(inner) + 1) + inner + b"\0"
    return doc


def op_msg(request_id: int, doc: bytes) -> bytes:
    body = struct.pack("<I", 0) + b"\0" + doc
    return struct.pack("<iiii", 16 + len(body), request_id, 0, 2013) + body


def nested_bson(w: Pcap, n: int, depth: int) -> None:
    cmd = b"\x10find\0" + struct.pack("<i", 1)
    for i in range(n):
        c = Conn(w, client(i), 1024 + i, SERVER, 27017)
        inner = bson_doc(depth)
        doc = cmd + b"\x03filter\0" + inner
        doc = struct.pack("<i", 4 + len(doc) + 1) + doc + b"\0"
        c.send(0, op_msg(1, doc))
        c.send(1, op_msg(2, doc))
        c.fin()


NEAR_2_31 = 0x7FFFFFF0


def length_fields(w: Pcap, n: int, filler: int) -> None:
    """Every length-prefixed protocol announcing a message near 2^31 bytes,
    then sending `filler` bytes of it."""
    pad = b"\xab" * filler
    heads = {
        9092: struct.pack("!ihhi", NEAR_2_31, 3, 12, 1) + struct.pack("!h", 4) + b"test",  # Kafka Metadata v12
        5432: struct.pack("!ii", 8, 80877103)[:0] + struct.pack("!ii", NEAR_2_31, 196608),  # PostgreSQL startup
        3306: b"",  # MySQL: the server speaks first (below)
        27017: struct.pack("<iiii", NEAR_2_31, 1, 0, 2013),  # MongoDB OP_MSG
        5672: b"AMQP\0\0\x09\x01",  # AMQP header, then a frame (below)
        6379: b"*1\r\n$2147483600\r\n",  # Redis bulk string
        53: struct.pack("!H", 0xFFFF),  # DNS over TCP: 64 KiB (the field's maximum)
        443: b"\x16\x03\x01\xff\xff\x01\xff\xff\xff\x03\x03",  # TLS record and ClientHello at their maxima
        8080: PREFACE + frame(SETTINGS, 0, 0, b"") + b"\xff\xff\xff\x00\x00\x00\x00\x00\x01",  # HTTP/2 frame of 16 MiB
        8081: b"",  # gRPC message (below)
        8082: b"",  # WebSocket frame (below)
    }
    for i in range(n):
        for port, head in heads.items():
            c = Conn(w, client(i), 1024 + i, SERVER, port)
            if port == 3306:
                greeting = b"\x0a8.0.36\0" + struct.pack("<I", 7) + b"abcdefgh\0" + b"\xff\xf7\x21\x02\x00\xff\xc1\x15" + b"\0" * 10 + b"ijklmnopqrst\0mysql_native_password\0"
                c.send(1, struct.pack("<I", len(greeting))[:3] + b"\0" + greeting)
                head = b"\xff\xff\xff\x01"  # a 16 MiB packet (continued)
            elif port == 5672:
                c.send(0, head)
                head = struct.pack("!BHI", 1, 0, NEAR_2_31)
            elif port == 8081:
                c.send(0, PREFACE + frame(SETTINGS, 0, 0, b""))
                req = request_headers(b"/shop.Catalog/Get", literal(b"content-type", b"application/grpc"))
                c.send(0, frame(HEADERS, END_HEADERS, 1, req))
                head = b""
                for k in range(0, len(pad) + 5, 16384):
                    part = (b"\0" + struct.pack("!I", NEAR_2_31) + pad)[k:k + 16384]
                    head += frame(DATA, 0, 1, part)
                c.send(0, head)
                continue
            elif port == 8082:
                c.send(0, b"GET /ws HTTP/1.1\r\nHost: shop\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
                c.send(1, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
                head = b"\x82\xff" + struct.pack("!Q", 1 << 62) + b"\0\0\0\0"
            c.send(0, head + pad)


def dns_loops(w: Pcap, n: int) -> None:
    """Responses whose names point at themselves or at each other."""
    q = b"\x03www\x07example\x03com\x00\x00\x01\x00\x01"
    for i in range(n):
        ident = struct.pack("!H", i & 0xFFFF)
        w.udp(client(i), 3000 + i % 60000, SERVER, 53, ident + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + q)
        # The answer (at offset 33) is named by a pointer to itself; the
        # second's CNAME target is a label followed by a pointer to that
        # pointer (offset 61).
        answer = b"\xc0\x21" + struct.pack("!HHIH", 1, 1, 60, 4) + b"\x0a\0\0\x01"
        answer += b"\xc0\x0c" + struct.pack("!HHIH", 5, 1, 60, 4) + b"\x01a\xc0\x3d"
        w.udp(SERVER, 53, client(i), 3000 + i % 60000, ident + b"\x81\x80\x00\x01\x00\x02\x00\x00\x00\x00" + q + answer)


def tls_absurd(w: Pcap, n: int, filler: int) -> None:
    pad = b"\x42" * filler
    for i in range(n):
        c = Conn(w, client(i), 1024 + i, SERVER, 443)
        # A record longer than TLS allows, holding a handshake message of 16 MiB.
        c.send(0, b"\x16\x03\x03\xff\xff" + b"\x01\xff\xff\xff\x03\x03" + pad)
        c.send(1, b"\x17\x03\x03\xff\xff" + pad)


def fragments(w: Pcap, n: int) -> None:
    """Overlapping fragments of one datagram (their bytes differing), first
    fragments of datagrams that never complete, and last fragments that
    end past the largest datagram."""
    src, dst = client(7), SERVER
    udp = struct.pack("!HHHH", 5000, 9999, 8 + 1480 * 4, 0)
    for i in range(n // 2):
        off = (i * 37) % 500  # offsets in 8-byte units, overlapping
        w.ip(src, dst, 17, (udp if off == 0 else b"") + bytes([i % 251]) * 64, frag=0x2000 | off, ident=4242)
    for i in range(n // 2):
        w.ip(client(100 + i % 50000), dst, 17, udp + b"f" * 1472, frag=0x2000, ident=i & 0xFFFF)
    # Fragments that would end past 65,535 bytes (the ping of death).
    for i in range(n // 100 + 1):
        w.ip(src, dst, 17, b"d" * 200, frag=8180, ident=(5000 + i) & 0xFFFF)


def time_jumps(w: Pcap, n: int) -> None:
    """Ordinary calls whose packets' times jump years back and forth."""
    rnd = random.Random(7)
    year_us = 365 * 86400 * 1_000_000
    for i in range(n):
        c = Conn(w, client(i), 1024 + i % 60000, SERVER, 80)
        http_exchange(c, i)
        c.fin()
        # Between 1971 and 2100: pcap seconds are 32 bits.
        w.now_us = w.now_us + rnd.choice([-20, -3, -1, 1, 5, 30]) * year_us
        w.now_us = min(max(w.now_us, 365 * 86400 * 1_000_000), 4_100_000_000 * 1_000_000)


def cases(small: bool):
    k = 50 if small else 1
    has_brotli = True
    try:
        import brotli  # noqa: F401
    except ImportError:
        has_brotli = False
    bomb_size = (16 if small else 256) << 20
    out = [
        ("normal", "ordinary request-dense HTTP/1.1: keep-alive connections of ten small JSON calls",
         # 40,000 connections: long enough (~1.7 s) that start-up does not set the yardstick.
         lambda w: normal(w, 40000 // k), [], ["counter:http_requests"]),
        ("syn_flood", "SYNs from distinct sources, none answered",
         lambda w: syn_flood(w, 1_000_000 // k), ["--flow-memory", "2MiB"] if small else [],
         ["counter:flow_table_evictions", "end_reason:evicted"]),
        ("udp_flood", "one DNS query each from distinct sources, none answered",
         lambda w: udp_flood(w, 1_000_000 // k), ["--flow-memory", "2MiB"] if small else [],
         ["counter:flow_table_evictions", "end_reason:evicted"]),
        ("port_scan", "every port of four hosts probed by one scanner, each refused",
         lambda w: port_scan(w, 4 * 65535 // k), [], ["counter:tcp_refused"]),
        ("endless_chunked", "connections each holding a chunked response that never ends",
         lambda w: endless_chunked(w, 100_000 // k), [], ["counter:http_bodies_truncated"]),
        ("gzip_bomb_http1", f"HTTP/1.1 responses of {bomb_size >> 20} MiB of zeros gzipped",
         lambda w: http1_bomb("gzip")(w, 200 // k, bomb_size), [], ["counter:http_bodies_truncated"]),
        ("deflate_bomb_http1", f"the same deflated", lambda w: http1_bomb("deflate")(w, 200 // k, bomb_size), [],
         ["counter:http_bodies_truncated"]),
    ]
    if has_brotli:
        out.append(("brotli_bomb_http1", "the same with brotli", lambda w: http1_bomb("br")(w, 200 // k, bomb_size), [],
                    ["counter:http_bodies_truncated"]))
    out += [
        ("gzip_bomb_http2", "the same over HTTP/2", lambda w: h2_bomb(False)(w, 200 // k, bomb_size), [],
         ["counter:http_bodies_truncated"]),
        ("gzip_bomb_grpc", "a gzip-compressed gRPC message of zeros",
         lambda w: h2_bomb(True)(w, 200 // k, bomb_size), [], ["counter:grpc_calls"]),
        ("hpack_table_size", "HPACK: a 2 GiB table allowed, 16 MiB asked for and filled with 4 KB values",
         lambda w: hpack_table_size(w, 2 if small else 50), [], ["issue:hpack_table_capped"]),
        ("continuation_flood", "a header block of 2,000 CONTINUATION frames that never ends",
         lambda w: continuation_flood(w, 2 if small else 50), [], ["issue:header_block_too_large"]),
        ("nested_json", "GraphQL variables and a response nested 30,000 arrays deep",
         lambda w: nested_json(w, 2000 // k, 30_000), [], ["counter:graphql_operations"]),
        ("nested_protobuf", "gRPC messages nested 10,000 fields deep",
         lambda w: nested_protobuf(w, 2000 // k, 10_000), [], ["counter:grpc_calls"]),
        ("nested_resp", "Redis replies nested 100,000 arrays deep",
         lambda w: nested_resp(w, 200 // k, 100_000), [], ["counter:redis_commands", "issue:bad_resp"]),
        ("nested_bson", "MongoDB documents nested 10,000 deep",
         lambda w: nested_bson(w, 2000 // k, 10_000), [], ["counter:db_requests"]),
        ("length_fields", "Kafka, PostgreSQL, MySQL, MongoDB, AMQP, Redis, DNS, TLS, HTTP/2, gRPC and WebSocket "
         "length fields near their maxima (2^31 where 32 bits allow), then 1 MiB of the message",
         lambda w: length_fields(w, 20 // k + 1, (256 << 10) if small else 1 << 20), [], []),
        ("dns_loops", "DNS responses whose names point at themselves and at each other",
         lambda w: dns_loops(w, 200_000 // k), [], ["counter:dns_responses", "issue:bad_dns_answers"]),
        ("tls_absurd", "TLS records and handshake messages longer than TLS allows, then 1 MiB",
         lambda w: tls_absurd(w, 100 // k + 1, (256 << 10) if small else 1 << 20), [], []),
        ("ip_fragments", "overlapping fragments of one datagram, first fragments that never complete, fragments "
         "past 65,535 bytes",
         lambda w: fragments(w, 400_000 // k), [],
         ["counter:ip_frag_timeouts", "counter:ip_frag_errors"] + ([] if small else ["counter:ip_frag_overflows"])),
        ("time_jumps", "ordinary calls whose times jump years backwards and forwards",
         lambda w: time_jumps(w, 20_000 // k), [], ["counter:http_requests"]),
    ]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir")
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--only", nargs="*")
    a = ap.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    index = []
    for name, what, make, args, expect in cases(a.small):
        if a.only and name not in a.only:
            continue
        path = os.path.join(a.outdir, name + ".pcap")
        w = Pcap(path)
        make(w)
        w.close()
        index.append({"name": name, "what": what, "file": name + ".pcap", "args": args, "expect": expect,
                      "packets": w.packets, "bytes": os.path.getsize(path)})
        print(f"{name}: {w.packets} packets, {os.path.getsize(path) / 1e6:.1f} MB", file=sys.stderr)
    old = os.path.join(a.outdir, "cases.json")
    if a.only and os.path.exists(old):
        # Rewrite the named cases only; the others stay as they were.
        with open(old) as f:
            kept = [c for c in json.load(f) if c["name"] not in a.only]
        order = [name for name, *_ in cases(a.small)]
        index = sorted(kept + index, key=lambda c: order.index(c["name"]) if c["name"] in order else len(order))
    tmp = os.path.join(a.outdir, "cases.json.tmp")
    with open(tmp, "w") as f:
        json.dump(index, f, indent=1)
    os.replace(tmp, os.path.join(a.outdir, "cases.json"))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The shop of the incident stories (make_incident_stories.sh): a gateway,
an orders service backed by Redis, and a payment service, each a real
HTTP server (the standard library's), on their own loopback addresses.

    shop.py MODE ROLE      MODE: broken | fixed   ROLE: gateway | orders | payment | analytics

The gateway passes the customer's X-Request-Id on to the services it
calls (the request chains of `trawl trace`). What MODE changes, story
by story:
  - retries: the gateway retries a failing charge after 1, 1, 1 s
    (broken) or 1, 2, 4 s (fixed); payment fails the first three
    attempts at each order with 503 either way;
  - redundant calls: orders reads the same key from Redis 12 times per
    request (broken) or once (fixed);
  - Cache-Control: orders' response carries `Cache-Control: max-age=60`
    only when fixed;
  - cascade: payment's /authorize takes 1.5 s (broken) against the
    gateway's 1 s timeout, so the gateway answers 503; fixed, it answers
    at once;
  - credentials: broken, the gateway passes the customer's bearer token
    on to orders and payment; fixed, it sends each its own service token;
  - card numbers: broken, a successful charge answers with the card
    number in full; fixed, with its last four digits;
  - schema: broken, orders answers the order's total as a string;
  - audit log: fixed, the gateway records each successful checkout with
    payment's /audit-log; broken, it forgets;
  - third parties: broken, the gateway reports each order read to an
    analytics service outside the private ranges (203.0.113.10, a
    documentation address on the namespace's loopback), with the
    customer's token.
"""
import http.client
import http.server
import json
import socket
import sys
import threading
import time

GATEWAY = ("127.0.0.2", 8080)
ORDERS = ("127.0.0.3", 8081)
REDIS = ("127.0.0.4", 6379)
PAYMENT = ("127.0.0.5", 8082)
ANALYTICS = ("203.0.113.10", 8083)
TIMEOUT = 1.0

MODE, ROLE = sys.argv[1], sys.argv[2]
BROKEN = MODE == "broken"
RUSH = MODE in ("rush", "cached")
CACHED = MODE == "cached"


SERVICE_TOKENS = {ORDERS: "Bearer svc-orders-4f7a9c2e81d3", PAYMENT: "Bearer svc-payment-b81e06d9a5c4"}


def call(me, to, method, path, body=None, timeout=None, inbound=None):
    """One HTTP request from address `me` to `to`, on its own connection;
    the inbound request's X-Request-Id is passed on, and a credential:
    the customer's own (broken) or the service's token (fixed)."""
    c = http.client.HTTPConnection(to[0], to[1], timeout=timeout, source_address=(me[0], 0))
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if inbound is not None and inbound.get("X-Request-Id"):
            headers["X-Request-Id"] = inbound["X-Request-Id"]
        credential = inbound.get("Authorization") if BROKEN and inbound is not None else SERVICE_TOKENS.get(to)
        if credential:
            headers["Authorization"] = credential
        c.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


class Redis:
    """A RESP client over one connection (the bytes redis-cli sends)."""

    def __init__(self, me):
        self.s = socket.create_connection(REDIS, source_address=(me[0], 0))
        self.f = self.s.makefile("rb")

    def command(self, *args):
        out = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in (x.encode() for x in args))
        self.s.sendall(out)
        line = self.f.readline()
        if line.startswith(b"$"):
            n = int(line[1:])
            return None if n < 0 else self.f.read(n + 2)[:-2].decode()
        return line[1:].strip().decode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    attempts = {}
    redis = None
    # The rush: orders serves one request at a time; cached, it keeps what it read.
    serial = threading.Lock()
    cache = {}

    def log_message(self, *a):
        pass

    def reply(self, status, body, headers=()):
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The gateway gave up waiting (the cascade story).
            self.close_connection = True

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"{}")

    def do_GET(self):
        if ROLE == "gateway" and self.path.startswith("/orders/"):
            status, headers, data = call(GATEWAY, ORDERS, "GET", self.path, inbound=self.headers)
            passed = [("Cache-Control", headers["Cache-Control"])] if "Cache-Control" in headers else []
            if BROKEN:
                call(GATEWAY, ANALYTICS, "POST", "/events", {"event": "order_read", "path": self.path}, inbound=self.headers)
            return self.reply(status, json.loads(data), passed)
        if ROLE == "orders" and self.path.startswith("/orders/"):
            key = "order:" + self.path.rsplit("/", 1)[1]
            if RUSH:
                with Handler.serial:
                    time.sleep(0.1)
                    if not CACHED or key not in Handler.cache:
                        Handler.cache[key] = Handler.redis.command("GET", key)
                    value = Handler.cache[key]
            else:
                for _ in range(12 if BROKEN else 1):
                    value = Handler.redis.command("GET", key)
            headers = [] if BROKEN else [("Cache-Control", "max-age=60")]
            order = json.loads(value)
            if BROKEN:
                order["total"] = str(order["total"])
            return self.reply(200, order, headers)
        self.reply(404, {"error": "no such path"})

    def do_POST(self):
        body = self.body()
        if ROLE == "gateway" and self.path == "/checkout":
            delays = [1, 1, 1] if BROKEN else [1, 2, 4]
            for attempt in range(len(delays) + 1):
                status, _, data = call(GATEWAY, PAYMENT, "POST", "/charge", body, inbound=self.headers)
                if status < 500 or attempt == len(delays):
                    break
                time.sleep(delays[attempt])
            if status == 200 and not BROKEN:
                call(GATEWAY, PAYMENT, "POST", "/audit-log", {"event": "checkout", "order": body["order"]}, inbound=self.headers)
            return self.reply(status, json.loads(data))
        if ROLE == "gateway" and self.path == "/pay":
            try:
                status, _, data = call(GATEWAY, PAYMENT, "POST", "/authorize", body, timeout=TIMEOUT, inbound=self.headers)
                return self.reply(status, json.loads(data))
            except (socket.timeout, TimeoutError):
                return self.reply(503, {"error": "payment timed out"})
        if ROLE == "payment" and self.path == "/charge":
            n = Handler.attempts.get(body["order"], 0) + 1
            Handler.attempts[body["order"]] = n
            if n <= 3:
                return self.reply(503, {"error": "card processor unavailable"})
            card = "4111 1111 1111 1111" if BROKEN else "**** **** **** 1111"
            return self.reply(200, {"order": body["order"], "charged": True, "card": card})
        if ROLE == "analytics" and self.path == "/events":
            return self.reply(202, {"accepted": True})
        if ROLE == "payment" and self.path == "/audit-log":
            return self.reply(201, {"recorded": True})
        if ROLE == "payment" and self.path == "/authorize":
            if BROKEN or RUSH:
                time.sleep(1.5)
            return self.reply(200, {"order": body["order"], "authorized": True})
        self.reply(404, {"error": "no such path"})


def main():
    me = {"gateway": GATEWAY, "orders": ORDERS, "payment": PAYMENT, "analytics": ANALYTICS}[ROLE]
    if ROLE == "orders":
        Handler.redis = Redis(me)
    server = http.server.ThreadingHTTPServer(me, Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()

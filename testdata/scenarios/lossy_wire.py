"""One end of a lossy, slow point-to-point link between two network
namespaces, in user space: what `tc qdisc add ... netem delay D loss L`
does, for kernels built without sch_netem (this project's CI VMs).

Each namespace runs one copy. It opens a TUN device, and the two copies
exchange every IP packet over a Unix datagram socket (a file path, which
both namespaces see). A copy holds each packet it is about to deliver to
its own TUN for --delay-ms and drops --loss percent of them (a seeded
random generator, so a run is repeatable as far as the kernel's timing
allows).

    python3 lossy_wire.py --tun tun0 --addr 10.77.0.1 --peer 10.77.0.2 \
        --me /tmp/w/a.sock --other /tmp/w/b.sock --delay-ms 40 --loss 3 --seed 1
"""

import argparse
import fcntl
import heapq
import os
import random
import select
import socket
import struct
import subprocess
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tun", required=True)
    ap.add_argument("--addr", required=True)
    ap.add_argument("--peer", required=True)
    ap.add_argument("--me", required=True)
    ap.add_argument("--other", required=True)
    ap.add_argument("--delay-ms", type=float, default=0.0)
    ap.add_argument("--loss", type=float, default=0.0, help="percent of packets dropped")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    tun = open_tun(a.tun)
    subprocess.run(["ip", "addr", "add", a.addr, "peer", a.peer, "dev", a.tun], check=True)
    subprocess.run(["ip", "link", "set", a.tun, "mtu", "1500", "up"], check=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if os.path.exists(a.me):
        os.unlink(a.me)
    sock.bind(a.me)
    rng = random.Random(a.seed)
    # Packets waiting to be delivered to our TUN: (due, order, bytes).
    pending = []
    order = 0
    print("ready", flush=True)
    while True:
        timeout = None
        if pending:
            timeout = max(0.0, pending[0][0] - time.monotonic())
        readable, _, _ = select.select([tun, sock], [], [], timeout)
        if tun in readable:
            pkt = os.read(tun, 65535)
            try:
                sock.sendto(pkt, a.other)
            except OSError:
                pass  # the other end is not up yet: the link is down
        if sock in readable:
            pkt = sock.recv(65535)
            if rng.random() * 100.0 >= a.loss:
                heapq.heappush(pending, (time.monotonic() + a.delay_ms / 1000.0, order, pkt))
                order += 1
        now = time.monotonic()
        while pending and pending[0][0] <= now:
            _, _, pkt = heapq.heappop(pending)
            os.write(tun, pkt)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)

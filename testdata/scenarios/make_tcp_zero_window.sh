#!/usr/bin/env bash
# Records a capture of a receiver that stops reading: a Python server
# with a small receive buffer accepts a connection and sleeps for 2 s
# before reading, then reads slowly; the client sends 256 KiB at once.
# The receiver's window fills (window full), closes (zero window), the
# sender probes it (zero-window probes) and the window opens again
# (window updates). Loopback inside a private network namespace
# (unshare -n); tcpdump records it (snaplen 200).
#
# Needs root, unshare, python3, tcpdump.
#
#   testdata/scenarios/make_tcp_zero_window.sh OUT.pcap
set -euo pipefail
out=$(realpath -m "${1:?usage: make_tcp_zero_window.sh OUT.pcap}")
if [ -z "${TRAWL_IN_NETNS:-}" ]; then
  export TRAWL_IN_NETNS=1
  exec unshare -n -- "$0" "$@"
fi
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
ip link set lo up
tcpdump -i lo -s 200 -U -w "$out" 'tcp port 9099' 2>/dev/null &
tcpdump_pid=$!
sleep 1
python3 - <<'PY'
import socket, threading, time

srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
# A small receive buffer: the window closes after a few KiB.
srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
srv.bind(("127.0.0.1", 9099))
srv.listen(1)

def slow_reader():
    conn, _ = srv.accept()
    time.sleep(2.0)                    # not reading: the window closes
    total = 0
    while True:
        data = conn.recv(2048)
        if not data:
            break
        total += len(data)
        time.sleep(0.002)              # a slow consumer
    conn.sendall(b"got %d\n" % total)
    conn.close()

t = threading.Thread(target=slow_reader)
t.start()
cli = socket.create_connection(("127.0.0.1", 9099))
cli.sendall(b"x" * 262144)
cli.shutdown(socket.SHUT_WR)
print(cli.recv(100).decode().strip())
cli.close()
t.join()
PY
sleep 1
kill "$tcpdump_pid"
wait "$tcpdump_pid" 2>/dev/null || true

#!/usr/bin/env bash
# Records a capture that dropped packets, as a stalled capture process
# does: dumpcap (Wireshark's capture engine, a 1 MiB buffer) listens on
# one end of a veth pair between two network namespaces, is stopped
# (SIGSTOP) while python3 sends UDP datagrams of 18 bytes (60-byte
# frames) for half a second, then resumes and keeps the first 200
# packets. The kernel drops what its buffer cannot hold; dumpcap writes
# the count into the file's interface statistics block (isb_ifdrop) and
# prints it ("Packets received/dropped on interface ...").
#   ns A: 10.78.0.1 (sender)   ns B: the veth end without an address (dumpcap)
#
#   testdata/scenarios/capture_drops.sh OUT.pcapng
#
# Writes OUT.pcapng and OUT.pcapng.log (dumpcap's console).
set -euo pipefail
out=$1
. "$(dirname "$0")/netns.sh"
veth_pair td 10.78.0 neigh
a=$ns_a; b=$ns_b; vb=$if_b
ip netns exec $b dumpcap -q -i $vb -B 1 -a packets:200 -w "$out" 2> "$out.log" &
d=$!
await_line "$out.log" "Capturing on"
sleep 0.5
kill -STOP $d
ip netns exec $a python3 -c '
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.time() + 0.5
n = 0
while time.time() < end:
    for _ in range(100):
        s.sendto(b"d" * 18, ("10.78.0.2", 9)); n += 1
print("sent", n)
'
kill -CONT $d
wait $d
cat "$out.log"

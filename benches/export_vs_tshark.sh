#!/usr/bin/env bash
# Times `trawl export-pcap` (packets of 1% of the flows, read through the
# snapshot's packet index) against `tshark -r CAPTURE -Y FILTER -w` with
# the equivalent display filter, and checks both wrote the same packets.
#
#   benches/export_vs_tshark.sh [CAPTURE] [RUNS]
#
# Without CAPTURE, benches/data/http-1g.pcap is recorded first by
# benches/make_http_capture.sh. The snapshot is made once (not timed).
# Needs tshark, capinfos and GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${2:-3}
. benches/common.sh
bench_setup "${1:-}"
snap=${cap%.pcap}.snap
if [ ! -f "$snap/packets.parquet" ]; then
  "$bin" analyze "$cap" -o "$snap" --force -q
fi
out=$(mktemp -d /tmp/trawl-export-bench.XXXXXX)
trap 'rm -rf "$out"' EXIT

# 1% of the flows: clients whose port lies in [40000, 40300). The server
# port (8080) is outside the range, so the tshark filter below selects the
# same packets: both directions of those connections.
kfl='tcp && src.port >= 40000 && src.port < 40300'
dfilter='(tcp.srcport >= 40000 && tcp.srcport < 40300) || (tcp.dstport >= 40000 && tcp.dstport < 40300)'
flows=$("$bin" query "$snap" --table flows --count --kfl 'tcp')
picked=$("$bin" query "$snap" --table flows --count --kfl "$kfl")

measure() { # label, command...: prints "wall rss_kb"
  /usr/bin/time -f "%e %M" -o "$out/time" "$@" >/dev/null 2>"$out/err" || { cat "$out/err" >&2; return 1; }
  cat "$out/time"
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

: > "$out/trawl"
for _ in $(seq "$runs"); do
  measure "$bin" export-pcap "$snap" --table flows --kfl "$kfl" -o "$out/trawl.pcapng" >> "$out/trawl"
done
: > "$out/tshark"
for _ in $(seq "$runs"); do
  measure tshark -r "$cap" -Y "$dfilter" -w "$out/tshark.pcapng" >> "$out/tshark"
done
t_trawl=$(cut -d' ' -f1 "$out/trawl" | median)
t_tshark=$(cut -d' ' -f1 "$out/tshark" | median)
rss_trawl=$(cut -d' ' -f2 "$out/trawl" | sort -n | tail -1)
rss_tshark=$(cut -d' ' -f2 "$out/tshark" | sort -n | tail -1)
n_trawl=$(capinfos -M -c "$out/trawl.pcapng" | awk '/Number of packets/ { print $NF }')
n_tshark=$(capinfos -M -c "$out/tshark.pcapng" | awk '/Number of packets/ { print $NF }')
size=$(stat -c %s "$cap")
echo "capture: $cap ($(awk -v s="$size" 'BEGIN { printf "%.2f GB", s / 1e9 }')), $flows TCP flows, $picked picked ($(awk -v a="$picked" -v b="$flows" 'BEGIN { printf "%.2f%%", 100 * a / b }'))"
echo
echo "| tool | median wall (s) of $runs | peak RSS (MB) | packets written |"
echo "|---|---|---|---|"
echo "| trawl export-pcap --kfl | $t_trawl | $((rss_trawl / 1024)) | $n_trawl |"
echo "| tshark -Y ... -w | $t_tshark | $((rss_tshark / 1024)) | $n_tshark |"
echo
echo "speed-up: $(awk -v a="$t_tshark" -v b="$t_trawl" 'BEGIN { printf "%.0fx", a / (b > 0 ? b : 0.001) }')"
# Same packets: times and bytes of every packet, in order.
same() { tshark -r "$1" -T fields -e frame.time_epoch -e frame.cap_len -e tcp.seq_raw -e tcp.ack_raw -e tcp.flags 2>/dev/null | sha256sum | cut -c1-16; }
d_trawl=$(same "$out/trawl.pcapng")
d_tshark=$(same "$out/tshark.pcapng")
echo "packet digests (time, length, seq, ack, flags): trawl $d_trawl, tshark $d_tshark"
if [ "$n_trawl" != "$n_tshark" ] || [ "$d_trawl" != "$d_tshark" ]; then
  echo "MISMATCH: trawl wrote $n_trawl packets, tshark $n_tshark" >&2
  exit 1
fi

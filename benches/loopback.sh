# Sourced by the benchmark capture recorders (make_*_capture.sh): a
# private network namespace whose loopback looks like Ethernet, and
# tcpdump recording it while the traffic runs.
#
#   enter_netns "$0" "$@"     re-executes the script inside a private
#                             network namespace (unshare -n), once
#   ethernet_loopback         lo up, MTU 1500, no offloads: frames are
#                             Ethernet-sized, as on a real link
#   record_until OUT SIZE_MB FILTER ROUND
#                             tcpdump records FILTER into OUT while the
#                             function ROUND runs, again and again, until
#                             OUT holds SIZE_MB (ROUND at least once; SIZE_MB
#                             0: once)
#
# Needs root, unshare, ethtool, tcpdump.
enter_netns() {
  if [ -z "${TRAWL_IN_NETNS:-}" ]; then
    export TRAWL_IN_NETNS=1
    exec unshare -n -- "$@"
  fi
}

ethernet_loopback() {
  ip link set lo up
  ip link set lo mtu 1500
  ethtool -K lo tso off gso off gro off >/dev/null 2>&1 || true
}

record_until() {
  local out=$1 size_mb=$2 filter=$3 round=$4 rounds=0
  rm -f "$out"
  tcpdump -i lo -s 0 -B 262144 -U -w "$out" "$filter" 2>/dev/null &
  local tcpdump_pid=$!
  sleep 1
  while [ "$rounds" -eq 0 ] || [ "$(stat -c %s "$out")" -lt $((size_mb * 1024 * 1024)) ]; do
    rounds=$((rounds + 1))
    "$round"
  done
  sleep 1
  kill "$tcpdump_pid" 2>/dev/null || true
  wait "$tcpdump_pid" 2>/dev/null || true
  echo "wrote $out ($(stat -c %s "$out") bytes, $rounds rounds)"
}

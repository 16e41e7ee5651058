# Helpers sourced by the capture scenarios (testdata/scenarios/capture_*.sh)
# and benches (benches/capture_*.sh).
#
# veth_pair: two private network namespaces joined by a veth pair, with
# names unique to the calling process (several may run at once) and IPv6
# off in both (no link-up chatter).
#
#   veth_pair TAG PREFIX MODE
#
# Sets ns_a, ns_b (namespaces trawl-TAG-a-PID, trawl-TAG-b-PID) and
# if_a, if_b (interfaces TAGaPID, TAGbPID; TAG of at most 3 letters);
# PREFIX.1/24 goes on if_a. MODE "addr": PREFIX.2/24 on if_b. MODE
# "neigh": if_b has no address, and if_a a static neighbour entry for
# PREFIX.2 pointing at if_b, so that nothing but what is sent crosses
# the link (no ARP, nothing answers). A trap on EXIT removes the
# namespaces (with the link) and stops the caller's background jobs,
# then runs the function `on_exit` if the caller defines one.
veth_pair() {
  local tag=$1 prefix=$2 mode=$3
  ns_a=trawl-$tag-a-$$; ns_b=trawl-$tag-b-$$; if_a=$tag"a"$$; if_b=$tag"b"$$
  trap veth_pair_cleanup EXIT
  ip netns del "$ns_a" 2>/dev/null || true; ip netns del "$ns_b" 2>/dev/null || true
  ip netns add "$ns_a"; ip netns add "$ns_b"
  local ns
  for ns in "$ns_a" "$ns_b"; do ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; done
  ip link add "$if_a" type veth peer name "$if_b"
  ip link set "$if_a" netns "$ns_a"; ip link set "$if_b" netns "$ns_b"
  ip -n "$ns_a" addr add "$prefix.1/24" dev "$if_a"
  case $mode in
    addr) ip -n "$ns_b" addr add "$prefix.2/24" dev "$if_b" ;;
    neigh) ;;
    *) echo "veth_pair: MODE is addr or neigh, not $mode" >&2; return 2 ;;
  esac
  ip -n "$ns_a" link set "$if_a" up; ip -n "$ns_b" link set "$if_b" up
  if [ "$mode" = neigh ]; then
    local mac
    mac=$(ip -n "$ns_b" -o link show "$if_b" | grep -o "link/ether [0-9a-f:]*" | cut -d" " -f2)
    ip -n "$ns_a" neigh add "$prefix.2" lladdr "$mac" dev "$if_a" nud permanent
  fi
}

veth_pair_cleanup() {
  kill -CONT $(jobs -p) 2>/dev/null || true
  kill $(jobs -p) 2>/dev/null || true
  ip netns del "$ns_a" 2>/dev/null || true; ip netns del "$ns_b" 2>/dev/null || true
  if declare -F on_exit >/dev/null; then on_exit; fi
}

# await_line FILE PATTERN: waits (10 s at most) until FILE holds a line
# matching PATTERN, such as a capture tool's "listening on".
await_line() {
  local _
  for _ in $(seq 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

# side_by_side TRAWL NS IFACE OUT NODE [CAPTURE ARGS...]: tcpdump
# (TCPDUMP_FILTER, if set, as its filter) and `trawl capture` on the same
# interface in namespace NS, into OUT/tcpdump.pcap and OUT/archive/NODE/
# (trawl's console in OUT/trawl.log); returns once both capture, with
# their pids in td and tr.
side_by_side() {
  local bin=$1 ns=$2 iface=$3 out=$4 node=$5
  shift 5
  ip netns exec "$ns" tcpdump -i "$iface" -s 0 -U -w "$out/tcpdump.pcap" ${TCPDUMP_FILTER:-} 2>/dev/null &
  td=$!
  ip netns exec "$ns" "$bin" capture --iface "$iface" --out "$out/archive" --node "$node" "$@" 2> "$out/trawl.log" &
  tr=$!
  await_line "$out/trawl.log" "capturing on" || true
  local _
  for _ in $(seq 100); do [ -s "$out/tcpdump.pcap" ] && break; sleep 0.1; done
  sleep 1
}

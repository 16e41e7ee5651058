#!/usr/bin/env bash
# Records testdata/scenarios/k8s/: a small "cluster" of real HTTP servers
# and clients, one network namespace per pod, and the Kubernetes sidecars
# that describe it, in kubectl List form and in timeline form.
#
# Inside a private network and mount namespace (unshare -n -m), a bridge
# br0 plays node-1 (pod gateway 10.244.0.1, node address 192.168.49.2);
# each pod is a network namespace on the bridge. Python http.server
# programs serve, curl calls; a Python DNS server plays CoreDNS behind the
# kube-dns ClusterIP; a namespace "internet" holds api.partner.example
# (203.0.113.10). ClusterIPs live on their backend pod (what a capture
# before kube-proxy's DNAT sees). Halfway, the Job pod report-... is
# deleted and a new pod ledger-... takes its address 10.244.3.30.
# tcpdump records br0. Needs root, python3, curl, tcpdump, iproute2.
#
#   testdata/scenarios/make_k8s_cluster.sh testdata/scenarios/k8s
set -euo pipefail
out=$(realpath -m "${1:?usage: make_k8s_cluster.sh OUT_DIR}")
if [ -z "${TRAWL_IN_NETNS:-}" ]; then
  export TRAWL_IN_NETNS=1
  exec unshare -n -m --propagation private -- "$0" "$@"
fi
mkdir -p "$out"
exec python3 "$(dirname "$0")/k8s_cluster.py" "$out"

#!/usr/bin/env bash
# Cost of the Kubernetes context: `trawl analyze` of the bench capture
# without sidecars, and with a kubectl List of N pods (default 10000) in
# which the capture's address (127.0.0.1, both sides of every flow) is a
# running pod with labels and annotations behind a service, so that every
# side of every flow and call is named: the worst case per row. Also the
# time to load that List alone (`trawl workloads LIST --kind node`).
#
#   benches/kube_context.sh [CAPTURE] [RUNS] [PODS]
#
# Needs GNU time and python3; CAPTURE as in analyze_vs_tshark.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${2:-3}
pods=${3:-10000}
. benches/common.sh
bench_setup "${1:-}"
out=$(mktemp -d /tmp/trawl-bench-kube.XXXXXX)
trap 'rm -rf "$out"' EXIT

python3 - "$out/cluster.json" "$pods" <<'PY'
import json, sys
path, n = sys.argv[1], int(sys.argv[2])
def pod(i, ip, ns):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"app-{i}-7d9f8b6c5-x{i:05d}", "namespace": ns, "creationTimestamp": "2020-01-01T00:00:00Z",
                         "labels": {"app": f"app-{i}", "pod-template-hash": "7d9f8b6c5", "tier": "web"},
                         "annotations": {"prometheus.io/scrape": "true", "kubectl.kubernetes.io/last-applied-configuration": "{}" * 200},
                         "ownerReferences": [{"kind": "ReplicaSet", "name": f"app-{i}-7d9f8b6c5", "controller": True}]},
            "spec": {"nodeName": f"node-{i % 50}", "containers": [{"ports": [{"containerPort": 8080}]}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}}
items = [pod(0, "127.0.0.1", "bench")]
for i in range(1, n):
    items.append(pod(i, f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}", f"ns-{i % 40}"))
items.append({"kind": "Service", "metadata": {"name": "app-0", "namespace": "bench"}, "spec": {"clusterIP": "10.96.0.1", "selector": {"app": "app-0"}}})
items.append({"kind": "EndpointSlice", "metadata": {"name": "app-0-abc", "namespace": "bench", "labels": {"kubernetes.io/service-name": "app-0"}},
              "endpoints": [{"addresses": ["127.0.0.1"]}], "ports": [{"port": 8080}]})
json.dump({"apiVersion": "v1", "kind": "List", "items": items}, open(path, "w"))
PY
list_mb=$(awk -v s="$(stat -c %s "$out/cluster.json")" 'BEGIN { printf "%.1f", s / 1e6 }')

results=()
for i in $(seq "$runs"); do
  results+=("$(measure no-sidecar "$bin" analyze "$cap" -o "$out/snap" --force -q -j 2 --no-k8s-discovery)")
  results+=("$(measure "list-$pods-pods" "$bin" analyze "$cap" -o "$out/snap" --force -q -j 2 --no-k8s-discovery --k8s "$out/cluster.json")")
  results+=("$(measure load-list-only "$bin" workloads "$out/cluster.json" --kind node)")
done
named=$("$bin" analyze "$cap" -o "$out/snap" --force --json -j 2 --no-k8s-discovery --k8s "$out/cluster.json" | python3 -c 'import json,sys; m=json.load(sys.stdin)["manifest"]; print(m["kubernetes"]["sidecars"][0]["matched"], m["counters"]["flows"] + m["counters"]["api_calls"])')

printf '%s\n' "${results[@]}" | summarize | awk -v cap="$cap" -v list_mb="$list_mb" -v named="$named" '
  BEGIN {
    split(named, f, " ")
    printf "Capture: %s; sidecar: kubectl List of %s MB; %d sides named over %d flows and calls\n\n", cap, list_mb, f[1], f[2]
    print "| run | runs | median wall (s) | CPU s (mean) | peak RSS (MB) |"
    print "|---|---|---|---|---|"
  }
  { printf "| %s | %d | %.2f | %.2f | %.0f |\n", $1, $2, $3, $4, $5 }'

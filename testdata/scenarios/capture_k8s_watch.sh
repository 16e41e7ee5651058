#!/usr/bin/env bash
# `trawl capture --kubeconfig` against the API server stand-in
# (k8s_api_server.py, serving the recorded scenario cluster on
# 127.0.0.1 inside a private network namespace): the watcher lists and
# watches, is told 410 Gone, lists again, and writes the timeline sidecar
# next to the captures of lo.
#
#   testdata/scenarios/capture_k8s_watch.sh TRAWL OUT_DIR [SECONDS]
#
# Writes OUT_DIR/archive/kube/ (pcapng and k8s-*.jsonl), OUT_DIR/api.log
# (the requests the watcher made) and OUT_DIR/trawl.log.
set -euo pipefail
bin=$(realpath "$1"); out=$(realpath -m "$2"); secs=${3:-5}
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$out"; mkdir -p "$out"
export bin out secs here
exec unshare --net bash -euo pipefail -c '
ip link set lo up
python3 "$here/k8s_api_server.py" "$here/k8s/kubectl" "$out/port" "$out/api.log" &
api=$!
# Stopped however this ends: a server left running holds the caller'"'"'s
# output open, and the test would wait for it forever.
trap "kill $api 2>/dev/null || true" EXIT
for _ in $(seq 100); do [ -s "$out/port" ] && break; sleep 0.05; done
cat > "$out/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: recorded
  cluster:
    server: http://127.0.0.1:$(cat "$out/port")
users:
- name: watcher
  user:
    token: recorded-cluster-token
contexts:
- name: recorded
  context:
    cluster: recorded
    user: watcher
current-context: recorded
KC
"$bin" capture --iface lo --out "$out/archive" --node kube --kubeconfig "$out/kubeconfig" --duration "$secs" 2> "$out/trawl.log" || { cat "$out/trawl.log"; exit 1; }
kill $api
cat "$out/trawl.log"
'

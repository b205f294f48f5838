#!/usr/bin/env bash
# The gateway benchmark (`make bench`): genaiops beside a plain nginx proxy and
# Portkey's gateway on the same mock upstream (../shared/bench/peers.sh), then
# genaiops' resident memory holding 1,000 idle keep-alive connections.
#   bench/gateway.sh [--workers N] [--no-portkey] [--duration S] [--stream]
# Workers default to 1, as nginx's worker_processes in peers.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PEERS=${PEERS:-$ROOT/../shared/bench/peers.sh}
WORKERS=1 PK="" DUR=6 STREAM=0
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) WORKERS=$2; shift 2;;
    --no-portkey) PK=--no-portkey; shift;;
    --duration) DUR=$2; shift 2;;
    --stream) STREAM=1; shift;;
    -h|--help) sed -n '2,6p' "$0"; exit 0;;
    *) echo "gateway.sh: unknown argument $1" >&2; exit 2;;
  esac
done
[ -x "$PEERS" ] || [ -f "$PEERS" ] || { echo "gateway.sh: $PEERS not found" >&2; exit 2; }
command -v nginx >/dev/null && command -v wrk >/dev/null || bash scripts/install-deps.sh --bench
BIN=$ROOT/build/genaiops
RUN=$(mktemp -d)
PORT=18090
UP=http://127.0.0.1:18000/v1
[ "$STREAM" = 1 ] && UP=http://127.0.0.1:18000/stream/v1
cat >"$RUN/bench.yaml" <<YAML
server: { listen: 127.0.0.1:$PORT, workers: $WORKERS, log_level: warn }
store: { url: "sqlite://$RUN/bench.db" }
providers:
  - { name: mock, type: openai, base_url: $UP, api_key: sk-bench }
models:
  - { name: gpt-4o-mini, provider: mock }
YAML
"$BIN" serve --config "$RUN/bench.yaml" >"$RUN/serve.log" 2>&1 &
GW=$!
trap 'kill $GW 2>/dev/null || true; rm -rf "$RUN"' EXIT
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && break; sleep 0.1; done
echo "genaiops $(git rev-parse --short HEAD 2>/dev/null || echo '?'), workers $WORKERS, $(nproc) cores"
bash "$PEERS" --gateway "http://127.0.0.1:$PORT/v1/chat/completions" --duration "$DUR" --keep $PK
# memory with 1,000 idle keep-alive connections (each has served one request)
node "$ROOT/bench/idle-conns.mjs" "$PORT" 1000 "$GW"
[ -f /tmp/genaiops-bench/nginx.pid ] && kill "$(cat /tmp/genaiops-bench/nginx.pid)" 2>/dev/null || true

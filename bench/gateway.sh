#!/usr/bin/env bash
# The gateway benchmark (`make bench`): genaiops beside a plain nginx proxy and
# Portkey's gateway on the same mock upstream (../shared/bench/peers.sh), then
# genaiops' resident memory holding 1,000 idle keep-alive connections, and
# throughput with telemetry (traces + metrics) on against the same build with
# it off.
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
# two gateways: telemetry as configured by default (traces and metrics on)
# and the same build with both off, to measure what telemetry costs
gw_config() { # port telemetry-line
  cat <<YAML
server: { listen: 127.0.0.1:$1, workers: $WORKERS, log_level: warn }
store: { url: "sqlite://$RUN/bench-$1.db" }
providers:
  - { name: mock, type: openai, base_url: $UP, api_key: sk-bench }
models:
  - { name: gpt-4o-mini, provider: mock }
$2
YAML
}
OFF_PORT=$((PORT + 1))
gw_config "$PORT" "" >"$RUN/bench.yaml"
gw_config "$OFF_PORT" "telemetry: { traces: false, metrics: false }" >"$RUN/bench-off.yaml"
"$BIN" serve --config "$RUN/bench.yaml" >"$RUN/serve.log" 2>&1 &
GW=$!
"$BIN" serve --config "$RUN/bench-off.yaml" >"$RUN/serve-off.log" 2>&1 &
GW_OFF=$!
trap 'kill $GW $GW_OFF 2>/dev/null || true; rm -rf "$RUN"' EXIT
for p in $PORT $OFF_PORT; do
  for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$p/healthz" && break; sleep 0.1; done
done
echo "genaiops $(git rev-parse --short HEAD 2>/dev/null || echo '?'), workers $WORKERS, $(nproc) cores"
bash "$PEERS" --gateway "http://127.0.0.1:$PORT/v1/chat/completions" --duration "$DUR" --keep $PK
# telemetry on vs off, alternating so both see the same machine (32 connections)
HERE_SHARED=$(dirname "$PEERS")
rps() { WRK_BODY="$HERE_SHARED/chat.json" WRK_HEADERS="Authorization: Bearer sk-bench" \
  wrk -t1 -c32 -d"${DUR}s" -s "$HERE_SHARED/post.lua" "http://127.0.0.1:$1/v1/chat/completions" 2>&1 |
  awk '/Requests\/sec/ { printf "%.0f", $2 }'; }
on=0 off=0
for round in 1 2; do
  a=$(rps "$PORT"); b=$(rps "$OFF_PORT")
  echo "telemetry round $round: on ${a} rps, off ${b} rps"
  on=$((on + a)); off=$((off + b))
done
sleep 1 # let the writer catch up before reading its counters
curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^genaiops_traces_(written|dropped)_total/ { printf "%s %s\n", $1, $2 }'
awk -v a="$on" -v b="$off" 'BEGIN { printf "throughput ratio telemetry on/off at 32 conns: %.2f\n", a / b }'
# memory with 1,000 idle keep-alive connections (each has served one request)
node "$ROOT/bench/idle-conns.mjs" "$PORT" 1000 "$GW"
[ -f /tmp/genaiops-bench/nginx.pid ] && kill "$(cat /tmp/genaiops-bench/nginx.pid)" 2>/dev/null || true

#!/usr/bin/env bash
# The gateway benchmark (`make bench`): genaiops beside a plain nginx proxy and
# Portkey's gateway on the same mock upstream (../shared/bench/peers.sh), then
# genaiops' resident memory holding 1,000 idle keep-alive connections, and
# throughput with telemetry (traces + metrics) on against the same build with
# it off.
#   bench/gateway.sh [--workers N] [--no-portkey] [--duration S] [--rounds R] [--stream]
# Workers default to 1, as nginx's worker_processes in peers.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PEERS=${PEERS:-$ROOT/../shared/bench/peers.sh}
WORKERS=1 PK="" DUR=6 STREAM=0 ROUNDS=${ROUNDS:-4}
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) WORKERS=$2; shift 2;;
    --no-portkey) PK=--no-portkey; shift;;
    --duration) DUR=$2; shift 2;;
    --stream) STREAM=1; shift;;
    --rounds) ROUNDS=$2; shift 2;;
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
# the gateway core (issue #2's comparison): the telemetry-off gateway beside the peers
echo "peers.sh: the 'gateway' row is genaiops with telemetry off (the gateway core)"
bash "$PEERS" --gateway "http://127.0.0.1:$OFF_PORT/v1/chat/completions" --duration "$DUR" --keep $PK
# telemetry (traces + metrics, the default) on vs off, alternating so both
# see the same machine: throughput at 32 connections and p50 at one
HERE_SHARED=$(dirname "$PEERS")
wrk_run() { # port conns -> "rps p50us"
  WRK_BODY="$HERE_SHARED/chat.json" WRK_HEADERS="Authorization: Bearer sk-bench" \
  wrk -t1 -c"$2" -d"${DUR}s" --latency -s "$HERE_SHARED/post.lua" "http://127.0.0.1:$1/v1/chat/completions" 2>&1 |
  awk 'function us(v) { if (v ~ /us$/) return v+0; if (v ~ /ms$/) return (v+0)*1000; return (v+0)*1000000 }
       /Requests\/sec/ { r=$2 } / 50%/ { p=us($2) } END { printf "%.0f %.0f", r, p }'; }
# ROUNDS alternating rounds (default 4), each side first in every other one, so that a
# drift of the machine during the run falls on both sides alike; first a short warm-up
# of each (the store's first batches grow its file, malloc's arenas fill)
DUR_SAVED=$DUR DUR=2
wrk_run "$PORT" 32 >/dev/null; wrk_run "$OFF_PORT" 32 >/dev/null
# each run starts with the trace writer idle: a writer still storing the
# previous run's traces would take CPU from the run after it (the off
# gateway's runs, which flattered the on/off ratio)
settle() {
  for _ in $(seq 100); do
    d=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^genaiops_trace_queue_depth / { print $2 }')
    [ "${d:-0}" = 0 ] && return 0
    sleep 0.2
  done
}
DUR=$DUR_SAVED
on=0 off=0 on1=0 off1=0
for round in $(seq "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then
    settle; read -r a _ <<<"$(wrk_run "$PORT" 32)"; settle; read -r b _ <<<"$(wrk_run "$OFF_PORT" 32)"
  else
    settle; read -r b _ <<<"$(wrk_run "$OFF_PORT" 32)"; settle; read -r a _ <<<"$(wrk_run "$PORT" 32)"
  fi
  read -r _ a1 <<<"$(wrk_run "$PORT" 1)"; read -r _ b1 <<<"$(wrk_run "$OFF_PORT" 1)"
  echo "telemetry round $round: on ${a} rps @32, p50 ${a1}us @1 | off ${b} rps @32, p50 ${b1}us @1"
  on=$((on + a)); off=$((off + b)); on1=$((on1 + a1)); off1=$((off1 + b1))
done
sleep 1 # let the writer catch up before reading its counters
curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^genaiops_traces_(written|dropped)_total/ { printf "%s %s\n", $1, $2 }'
awk -v a="$on" -v b="$off" 'BEGIN { printf "throughput ratio telemetry on/off at 32 conns: %.2f\n", a / b }'
awk -v a="$on1" -v b="$off1" -v n="$ROUNDS" 'BEGIN { printf "p50 at 1 conn: telemetry on %dus, off %dus (+%dus)\n", a / n, b / n, (a - b) / n }'
# a chat request that names a prompt (rendered by the gateway) against the
# same request with the rendered messages inline (../shared/bench/chat.json),
# on the telemetry-off gateway, alternating
curl -s -o /dev/null -X POST -H 'content-type: application/json' --data @"$ROOT/bench/prompt-bench.json" \
  "http://127.0.0.1:$OFF_PORT/api/v1/prompts"
sleep 0.5 # the gateway picks the new prompt up within telemetry's poll (250 ms)
wrk_body() { # port conns body -> rps
  WRK_BODY="$3" WRK_HEADERS="Authorization: Bearer sk-bench" \
  wrk -t1 -c"$2" -d"${DUR}s" -s "$HERE_SHARED/post.lua" "http://127.0.0.1:$1/v1/chat/completions" 2>&1 |
  awk '/Requests\/sec/ { printf "%.0f", $2 } /Non-2xx/ { bad=1 } END { if (bad) printf " (errors)" }'; }
pr=0 inl=0
for round in $(seq "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then
    a=$(wrk_body "$OFF_PORT" 32 "$ROOT/bench/prompt-chat.json"); b=$(wrk_body "$OFF_PORT" 32 "$HERE_SHARED/chat.json")
  else
    b=$(wrk_body "$OFF_PORT" 32 "$HERE_SHARED/chat.json"); a=$(wrk_body "$OFF_PORT" 32 "$ROOT/bench/prompt-chat.json")
  fi
  echo "prompt round $round: by reference $a rps @32 | inline $b rps @32"
  pr=$((pr + ${a%% *})); inl=$((inl + ${b%% *}))
done
awk -v a="$pr" -v b="$inl" 'BEGIN { printf "throughput ratio prompt by reference / inline at 32 conns: %.2f\n", a / b }'
# memory with 1,000 idle keep-alive connections (each has served one request)
node "$ROOT/bench/idle-conns.mjs" "$PORT" 1000 "$GW"   # the default (telemetry on) gateway
[ -f /tmp/genaiops-bench/nginx.pid ] && kill "$(cat /tmp/genaiops-bench/nginx.pid)" 2>/dev/null || true

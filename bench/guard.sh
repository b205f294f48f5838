#!/usr/bin/env bash
# bench/guard.sh - what the default guardrail policies cost the gateway.
#
#   bench/guard.sh [--workers N] [--duration S] [--rounds R] [--stream]
#
# Two gateways of the same build on the same mock upstream (nginx, from
# ../shared/bench/peers.sh): one with the policies of
# examples/guardrails/default.yaml (input: PII and secrets redacted,
# injection blocked; output: PII and secrets redacted), one without any.
# peers.sh runs once with the guarded gateway in its 'gateway' row, then
# R alternating rounds of wrk at 32 connections give the throughput ratio
# guarded / unguarded (the issue's bar: at least 0.9). Telemetry is on in
# both (the default), so the ratio is the guardrails' own cost.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS:-$ROOT/../shared/bench/peers.sh}
WORKERS=2 DUR=10 ROUNDS=4 STREAM=0
while [ $# -gt 0 ]; do
  case $1 in
    --workers) WORKERS=$2; shift 2;;
    --duration) DUR=$2; shift 2;;
    --rounds) ROUNDS=$2; shift 2;;
    --stream) STREAM=1; shift;;
    -h|--help) sed -n '2,14p' "$0"; exit 0;;
    *) echo "guard.sh: unknown argument $1" >&2; exit 2;;
  esac
done
[ -f "$PEERS" ] || { echo "guard.sh: $PEERS not found" >&2; exit 2; }
command -v nginx >/dev/null && command -v wrk >/dev/null || bash "$ROOT/scripts/install-deps.sh" --bench
BIN=$ROOT/build/genaiops
RUN=$(mktemp -d)
PORT=18190 OFF_PORT=18191
UP=http://127.0.0.1:18000/v1
[ "$STREAM" = 1 ] && UP=http://127.0.0.1:18000/stream/v1
gw_config() { # port guardrails-yaml
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
# the default policies, as in examples/guardrails/default.yaml
POLICIES='guardrails:
  policies:
    - { name: input-privacy, stage: input, detectors: [pii, secrets], action: redact }
    - { name: input-injection, stage: input, detectors: [injection], action: block }
    - { name: output-privacy, stage: output, detectors: [pii, secrets], action: redact }'
gw_config "$PORT" "$POLICIES" >"$RUN/guarded.yaml"
gw_config "$OFF_PORT" "" >"$RUN/plain.yaml"
"$BIN" serve --config "$RUN/guarded.yaml" >"$RUN/guarded.log" 2>&1 &
GW=$!
"$BIN" serve --config "$RUN/plain.yaml" >"$RUN/plain.log" 2>&1 &
GW_OFF=$!
trap 'kill $GW $GW_OFF 2>/dev/null || true; rm -rf "$RUN"' EXIT
for p in $PORT $OFF_PORT; do
  for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$p/healthz" && break; sleep 0.1; done
done
echo "genaiops $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), workers $WORKERS, $(nproc) cores"
echo "peers.sh: the 'gateway' row is genaiops with the default guardrail policies"
bash "$PEERS" --gateway "http://127.0.0.1:$PORT/v1/chat/completions" --duration "$DUR" --keep --no-portkey
HERE_SHARED=$(dirname "$PEERS")
wrk_run() { # port -> rps
  WRK_BODY="$HERE_SHARED/chat.json" WRK_HEADERS="Authorization: Bearer sk-bench" \
  wrk -t1 -c32 -d"${DUR}s" -s "$HERE_SHARED/post.lua" "http://127.0.0.1:$1/v1/chat/completions" 2>&1 |
  awk '/Requests\/sec/ { printf "%.0f", $2 } /Non-2xx/ { bad=1 } END { if (bad) printf " (errors)" }'; }
# Each run starts with both trace writers idle: a writer still storing the
# previous run's traces would take CPU from the run after it (the guarded
# gateway's traces carry five more spans), which favoured whichever
# gateway ran second.
settle() {
  for _ in $(seq 100); do
    local busy=0
    for p in $PORT $OFF_PORT; do
      d=$(curl -s "http://127.0.0.1:$p/metrics" | awk '/^genaiops_trace_queue_depth / { print $2 }')
      [ "${d:-0}" != 0 ] && busy=1
    done
    [ $busy = 0 ] && return 0
    sleep 0.2
  done
}
DUR_SAVED=$DUR DUR=2
wrk_run "$PORT" >/dev/null; wrk_run "$OFF_PORT" >/dev/null
DUR=$DUR_SAVED
on=0 off=0
for round in $(seq "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then settle; a=$(wrk_run "$PORT"); settle; b=$(wrk_run "$OFF_PORT")
  else settle; b=$(wrk_run "$OFF_PORT"); settle; a=$(wrk_run "$PORT"); fi
  echo "guardrails round $round: default policies ${a} rps @32 | none ${b} rps @32"
  on=$((on + ${a%% *})); off=$((off + ${b%% *}))
done
curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^genaiops_guardrail_checks_total/ { print }' | head -6
awk -v a="$on" -v b="$off" 'BEGIN { printf "throughput ratio default guardrails / none at 32 conns: %.2f\n", a / b }'
[ -f /tmp/genaiops-bench/nginx.pid ] && kill "$(cat /tmp/genaiops-bench/nginx.pid)" 2>/dev/null || true

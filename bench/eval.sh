#!/usr/bin/env bash
# The evaluation benchmark (`make bench-eval`): `genaiops eval` beside promptfoo on the same
# promptfoo-format suite (2,000 tests x 4 deterministic assertions on the shared nginx mock
# upstream), through ../shared/bench/eval-peers.sh, then genaiops alone at 2,000, 20,000 and
# 100,000 tests to show that its peak memory stays flat.
#   bench/eval.sh [--no-promptfoo] [--concurrency J]
# Both runners get the same concurrency and no cache; genaiops also skips storing the run
# (--no-store), as promptfoo's --no-cache run keeps no database of responses either.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PEERS=${EVAL_PEERS:-$ROOT/../shared/bench/eval-peers.sh}
PF="" J=16
while [ $# -gt 0 ]; do
  case "$1" in
    --no-promptfoo) PF=--no-promptfoo; shift;;
    --concurrency) J=$2; shift 2;;
    -h|--help) sed -n '2,8p' "$0"; exit 0;;
    *) echo "eval.sh: unknown argument $1" >&2; exit 2;;
  esac
done
[ -f "$PEERS" ] || { echo "eval.sh: $PEERS not found" >&2; exit 2; }
command -v nginx >/dev/null || bash scripts/install-deps.sh --bench
BIN=$ROOT/build/genaiops
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
CMD="$BIN eval -c {config} -j $J --no-cache --no-store --no-table --no-progress-bar -o $OUT/out.json"
echo "genaiops $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) cores, concurrency $J"
# (eval-peers.sh ends with a status of 1 when promptfoo is left out: its last test is false)
bash "$PEERS" --tests 2000 --concurrency "$J" --cmd "$CMD" $PF || true
echo "genaiops alone, peak memory as the suite grows:"
for n in 2000 20000 100000; do
  printf '%7d tests: ' "$n"
  { bash "$PEERS" --tests "$n" --concurrency "$J" --cmd "$CMD" --no-promptfoo || true; } | tail -1
done

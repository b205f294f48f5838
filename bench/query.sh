#!/bin/sh
# query.sh - how long listing the latest 50 traces with a filter takes on a
# store of 1,000,000 traces (target: under 100 ms).
#
#   bench/query.sh                       # build/ binaries, /tmp/genaiops-query-bench.db
#   BUILD=build-rel DB=/path/x.db N=200000 RUNS=9 bench/query.sh
#
# Fills DB with `store_bench --populate N` when it does not exist yet (an
# existing file is reused as it is, whatever it holds), then times each
# filter RUNS times two ways:
#   cli  - `genaiops traces list --config C FILTERS --json`, a whole process
#          (start, config, open, query, JSON out): an upper bound;
#   rest - GET /api/v1/traces?FILTERS on a `genaiops serve` of that store
#          (the REST handler, the thread pool, SQLite and the JSON), by curl.
# Prints min / median / max milliseconds per filter.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
DB=${DB:-/tmp/genaiops-query-bench.db}
N=${N:-1000000}
RUNS=${RUNS:-5}
PORT=${PORT:-18990}
BIN=$BUILD/genaiops

[ -x "$BIN" ] || { echo "query.sh: no $BIN (build first, or set BUILD)" >&2; exit 1; }
if [ ! -f "$DB" ]; then
    [ -x "$BUILD/store_bench" ] || { echo "query.sh: no $BUILD/store_bench" >&2; exit 1; }
    echo "populating $DB with $N traces (a few minutes for 1M)..."
    "$BUILD/store_bench" --populate "$N" --db "$DB"
else
    echo "reusing $DB ($(du -m "$DB" | cut -f1) MiB; delete it to repopulate)"
fi

work=$(mktemp -d)
trap 'kill "$srv" 2>/dev/null || true; rm -rf "$work"' EXIT INT TERM
srv=
cat > "$work/c.yaml" <<EOF
server: { listen: 127.0.0.1:$PORT, workers: 2 }
store: { url: "sqlite://$DB" }
EOF

now_ns() { date +%s%N; }

# stats FILE: min median max of the numbers in FILE, one per line
stats() { sort -n "$1" | awk '{ v[NR] = $1 } END { printf "%6.1f %6.1f %6.1f", v[1], v[int((NR + 1) / 2)], v[NR] }'; }

# The filters: CLI flags | the same as a query string
FILTERS='--model gpt-4o|model=gpt-4o
--status error|status=error
--model claude-sonnet-4 --status error|model=claude-sonnet-4&status=error
--provider anthropic --status 429|provider=anthropic&status=429
--deployment support-bot --key alice|deployment=support-bot&key=alice
--min-cost 0.01|min_cost=0.01
--status ok --min-latency-ms 1000|status=ok&min_latency_ms=1000'

"$BIN" serve --config "$work/c.yaml" >"$work/serve.log" 2>&1 &
srv=$!
i=0
until curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; do
    i=$((i + 1))
    [ $i -lt 100 ] || { echo "query.sh: the server did not start:" >&2; cat "$work/serve.log" >&2; exit 1; }
    sleep 0.1
done

printf '%-58s %-22s %-22s\n' "latest 50 where" "cli ms (min med max)" "rest ms (min med max)"
echo "$FILTERS" | while IFS='|' read -r flags qs; do
    : >"$work/cli"
    : >"$work/rest"
    r=0
    while [ $r -lt "$RUNS" ]; do
        t0=$(now_ns)
        # shellcheck disable=SC2086
        "$BIN" traces list --config "$work/c.yaml" $flags --limit 50 --json >"$work/out.json"
        t1=$(now_ns)
        echo "$t0 $t1" | awk '{ print ($2 - $1) / 1e6 }' >>"$work/cli"
        curl -fs -o "$work/rest.json" -w '%{time_total}\n' "http://127.0.0.1:$PORT/api/v1/traces?$qs&limit=50" |
            awk '{ print $1 * 1000 }' >>"$work/rest"
        r=$((r + 1))
    done
    rows=$(grep -o '"trace_id"' "$work/out.json" | wc -l)
    printf '%-58s %-22s %-22s %s rows\n' "$qs" "$(stats "$work/cli")" "$(stats "$work/rest")" "$rows"
done

#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/fuzz_*.c) with clang and runs each
# for FUZZ_SECONDS over a copy of its committed seed corpus (FUZZ_SEED pins
# libFuzzer's seed). A crash leaves its input in build-fuzz/artifacts/ and
# fails the run; turn it into a test.
set -uo pipefail
cd "$(dirname "$0")/.."
SECS=${FUZZ_SECONDS:-20}
SEED=${FUZZ_SEED:-0}   # 0: libFuzzer picks one; CI pins it so a run is reproducible
JOBS=$(nproc 2>/dev/null || echo 2)
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFUZZ=ON >/dev/null || exit 1
make -C build-fuzz -j"$JOBS" >/dev/null || { make -C build-fuzz 2>&1 | tail -20; exit 1; }
mkdir -p build-fuzz/artifacts
rc=0
for src in tests/fuzz/fuzz_*.c; do
  name=$(basename "$src" .c); short=${name#fuzz_}
  work=$(mktemp -d)
  [ -d "tests/fuzz/corpus/$short" ] && cp -r "tests/fuzz/corpus/$short/." "$work/"
  if ASAN_OPTIONS=detect_leaks=1 "build-fuzz/$name" -seed="$SEED" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
       -artifact_prefix=build-fuzz/artifacts/"$name"- "$work" >"build-fuzz/$name.log" 2>&1; then
    echo "fuzz ok   $name ($(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "build-fuzz/$name.log" | tail -1) runs in ${SECS}s)"
  else
    echo "fuzz FAIL $name"; tail -30 "build-fuzz/$name.log"; rc=1
  fi
  rm -rf "$work"
done
exit $rc

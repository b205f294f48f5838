#!/usr/bin/env bash
# Source checks (curl's checksrc in miniature): no banned calls, and every
# C file opens with a comment saying what it is for.
set -uo pipefail
cd "$(dirname "$0")/.."
rc=0
banned=$(grep -nE '\b(sprintf|strcpy|strcat|strtok|atoi|gets)\s*\(' $(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 2>/dev/null || find src tests -name '*.[ch]') | grep -v 'snprintf\|vsnprintf' || true)
if [ -n "$banned" ]; then echo "banned calls (use the bounded forms):"; echo "$banned"; rc=1; fi
for f in $(git ls-files 'src/*.c' 'src/*.h' 2>/dev/null || find src -name '*.[ch]'); do
  head -c 3 "$f" | grep -q '^/\*' || { echo "$f: does not open with a comment saying what it is for"; rc=1; }
done
exit $rc

#!/usr/bin/env bash
# Installs the Debian packages genaiops needs to build and test, and the npm
# packages of the SDK tests. As root it runs apt-get; otherwise it prints the
# command to run. Only what is missing is installed.
#   scripts/install-deps.sh          build + test dependencies
#   scripts/install-deps.sh --bench  also nginx and wrk for the benchmarks
set -euo pipefail
cd "$(dirname "$0")/.."
pkgs=(build-essential cmake pkg-config clang llvm libclang-rt-14-dev
      libuv1-dev libcurl4-openssl-dev libssl-dev ca-certificates libjansson-dev libyaml-dev
      libsqlite3-dev libpcre2-dev curl openssl)
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)
# promtool checks the /metrics text in the tests; Debian ships it only in
# `prometheus` (19 MB download, 96 MB installed). PROMTOOL=/path also works.
command -v promtool >/dev/null 2>&1 || [ -x "${PROMTOOL:-}" ] || pkgs+=(prometheus)
# Debian's Chromium, driven by playwright-core in the console's browser tests
# (tests/browser). CHROMIUM_PATH=/path also works.
command -v chromium >/dev/null 2>&1 || [ -x "${CHROMIUM_PATH:-}" ] || pkgs+=(chromium fonts-dejavu-core)
[ "${1:-}" = "--bench" ] && pkgs+=(nginx-light wrk)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Packages that ship a daemon (prometheus) must not start it here: we only
    # want their tools. policy-rc.d is Debian's switch for that.
    made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if [ "$made_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
  else
    echo "install-deps: missing packages; run as root:"
    echo "  sudo apt-get install -y ${missing[*]}"
    exit 1
  fi
fi
# The official openai client for the SDK tests (pinned in tests/sdk/package-lock.json).
if [ -f tests/sdk/package.json ] && [ ! -d tests/sdk/node_modules/openai ]; then
  echo "install-deps: npm ci in tests/sdk"
  (cd tests/sdk && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
# playwright-core (pinned in tests/browser/package-lock.json) drives Chromium in the console's tests;
# it downloads no browser of its own.
if [ -f tests/browser/package.json ] && [ ! -d tests/browser/node_modules/playwright-core ]; then
  echo "install-deps: npm ci in tests/browser"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
# promptfoo itself, for the verdict-parity test of `genaiops eval` (tests/parity; pinned in its
# package-lock.json). `npm install` rather than `npm ci`: npm's lock files leave out the
# optional platform packages of some dependencies, which `npm ci` then refuses.
if [ -f tests/parity/package.json ] && [ ! -x tests/parity/node_modules/.bin/promptfoo ]; then
  echo "install-deps: npm install in tests/parity (promptfoo, for the parity test)"
  (cd tests/parity && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi
echo "install-deps: ok"

# Thin front for the commands people type; the build itself is CMake's.
#   make          release build into build/ (build/genaiops)
#   make demo     build, then serve the embedded default (simulator, ./genaiops.db)
#   make test     everything CI runs: unit, integration, SDK, sanitizers, short fuzz
#   make bench    the gateway benchmark beside nginx and Portkey (../shared/bench/peers.sh)
#   make bench-eval  the eval runner beside promptfoo (../shared/bench/eval-peers.sh)
#   make bench-guard the default guardrail policies against none (bench/guard.sh)
#   make fuzz     longer fuzz runs of every target (FUZZ_SECONDS=300 by default)
#   make web-assets  regenerate build/generated/web_assets.c from src/web/ui/ (the build does it too)
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all build demo test unit asan fuzz bench bench-eval bench-guard clean format check-src web-assets

all: build

build:
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@$(MAKE) --no-print-directory -C build -j$(JOBS)

web-assets:
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@$(MAKE) --no-print-directory -C build web-assets

demo: build
	./build/genaiops serve

unit: build
	./build/unit_tests

test:
	@bash scripts/test.sh

asan:
	@CC=clang cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSANITIZE=ON >/dev/null
	@$(MAKE) --no-print-directory -C build-asan -j$(JOBS)

fuzz:
	@FUZZ_SECONDS=$${FUZZ_SECONDS:-300} bash scripts/fuzz.sh

bench: build
	@bash bench/gateway.sh

bench-eval: build
	@bash bench/eval.sh

bench-guard: build
	@bash bench/guard.sh

check-src:
	@bash scripts/check-src.sh

clean:
	rm -rf build build-asan build-fuzz

#!/usr/bin/env bash
# Measures the platform's speed on this machine and rewrites BENCHMARKS.md (never run by CI).
# Pass --first-prepare to also time a default-study prepare from an empty cache (~10 min).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/arena prepare
.venv/bin/python -m benchmarks.bench_testbed "$@"
.venv/bin/python -m benchmarks.bench_server
.venv/bin/python -m benchmarks.bench_prompt_cache
.venv/bin/python -m benchmarks.bench_workspace
.venv/bin/python -m benchmarks.bench_lm_cpu
.venv/bin/python -m benchmarks.bench_load

#!/usr/bin/env bash
# Measures the platform's speed on this machine and rewrites BENCHMARKS.md (never run by CI).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/arena prepare
.venv/bin/python -m benchmarks.bench_testbed "$@"

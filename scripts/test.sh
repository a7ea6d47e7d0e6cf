#!/usr/bin/env bash
# The README's test command: installs what the tests need, lints, checks import rules, runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/ruff check .
.venv/bin/lint-imports
exec .venv/bin/python -m pytest -q -p no:cacheprovider --durations=30 "$@"

#!/usr/bin/env bash
# Starts the Streamlit workspace for human researchers against a running study server.
#   ARENA_URL=http://127.0.0.1:8765 bash scripts/workspace.sh [--server.port 8501]
# Sign in with the participant token the admin gave you (`arena up` prints one).
set -euo pipefail
cd "$(dirname "$0")/.."
export ARENA_URL=${ARENA_URL:-http://127.0.0.1:8765}
exec .venv/bin/python -m streamlit run participants/workspace/app.py \
  --server.headless true --browser.gatherUsageStats false --client.toolbarMode minimal "$@"

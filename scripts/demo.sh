#!/usr/bin/env bash
# The README's main command: installs, prepares the embedded default study (tasks, cached
# features, frozen baselines: ~10 min the first time on two cores, seconds after), prints its
# baselines, then starts the platform and prints its URL and a participant token.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/arena prepare
exec .venv/bin/arena up "$@"

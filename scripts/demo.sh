#!/usr/bin/env bash
# The README's main command: installs, prepares the embedded default study (tasks, cached features,
# frozen baselines; ~10 min the first time on two cores, seconds after) and prints its baselines.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/arena prepare
.venv/bin/arena run baselines/vanilla.py --task rt_sentiment --seeds 3

"""Where the platform keeps what it computes: one cache folder outside the repository."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The data, model and feature cache. `ARENA_CACHE_DIR` overrides the per-user default."""
    configured = os.environ.get("ARENA_CACHE_DIR")
    root = Path(configured) if configured else Path.home() / ".cache" / "w2s-arena"
    root.mkdir(parents=True, exist_ok=True)
    return root.resolve()

"""Does one arm reach a higher PGR than another by time t? Records → frames → participant
curves → the arm comparison, figures and the report. The names most analyses need, loaded on
first use: importing one light module (`analysis.palette` for the workspace's colours) must not
pull in scipy and the whole statistics stack, which made a workspace page's first load seconds
slower."""

from __future__ import annotations

import importlib

_WHERE = {"ENDPOINTS": "analysis.curves", "participant_curves": "analysis.curves",
          "compare_arms": "analysis.endpoint", "participant_endpoint": "analysis.endpoint",
          "AXES": "analysis.frames", "Prices": "analysis.frames",
          "attempts_frame": "analysis.frames", "arm_color": "analysis.palette"}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'analysis' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)

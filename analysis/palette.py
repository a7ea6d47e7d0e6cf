"""One colour per arm, everywhere: the workspace, the report and exported figures all take an
arm's colour from here, so "ai" is the same red on every page."""

from __future__ import annotations

import hashlib

ARM_COLORS = {"human": "#1f77b4", "ai": "#d62728", "automated-baseline": "#7f7f7f",
              "imported": "#2ca02c"}
# Arms a protocol names beyond the usual four: a colour chosen by a stable hash of the name
# (Python's hash() changes between processes; two pages must agree).
EXTRA_COLORS = ["#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#ff7f0e"]
REFERENCE_COLOR = "#555555"


def arm_color(arm: str) -> str:
    if arm in ARM_COLORS:
        return ARM_COLORS[arm]
    digest = int(hashlib.sha256(str(arm).encode()).hexdigest()[:8], 16)
    return EXTRA_COLORS[digest % len(EXTRA_COLORS)]


def arm_fill(arm: str, alpha: float = 0.18) -> str:
    """The arm's colour as a translucent fill for bands."""
    hex_ = arm_color(arm).lstrip("#")
    red, green, blue = (int(hex_[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({red},{green},{blue},{alpha})"

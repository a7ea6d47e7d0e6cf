"""GPU-seconds on the books: what an attempt that ran on GPUs records and is charged.

A GPU study charges `compute_seconds_per_day` in GPU-seconds: each seed's wall time, measured by
the runner, times the GPUs its slot held. CPU studies charge slot-seconds (wall time × the one
slot held). The attempt row carries all three; the store charges
`coalesce(gpu_seconds, slot_seconds, cpu_seconds)` (study.store.queries.CHARGED_COMPUTE).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def gpu_columns(outcomes: Iterable[Any]) -> dict[str, float | None]:
    """The attempt's GPU columns from its seeds' outcomes; None on a run without GPUs, so the
    attempt is charged its slot-seconds."""
    outcomes = list(outcomes)
    gpu_s = [o.gpu_s for o in outcomes if o.gpu_s]
    peaks = [o.peak_gpu_mb for o in outcomes if o.peak_gpu_mb is not None]
    return {"gpu_seconds": sum(gpu_s) if gpu_s else None,
            "peak_gpu_mb": max(peaks) if peaks else None}


def compute_unit(gpu_study: bool) -> str:
    # A CPU study charges slot-seconds: wall time × the worker slot held (CPU time is recorded).
    return "GPU-seconds" if gpu_study else "slot-seconds"


def format_compute(seconds: float | None, unit: str) -> str:
    """'1.25 GPU-h' / '340 GPU-s' / '95 slot-s': GPU time in hours once there is an hour of it."""
    if seconds is None:
        return "—"
    short = "GPU" if unit.startswith("GPU") else unit.split("-")[0]
    if short == "GPU" and abs(seconds) >= 3600:
        return f"{seconds / 3600:.2f} GPU-h"
    return f"{seconds:.0f} {short}-s"

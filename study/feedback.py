"""What a participant is shown of a public score: coarse in *items*, not in PGR digits.

Rounding PGR to 2 decimals resolves about two public items on a task where one item moves PGR
by 0.006, so flipping one prediction per attempt read one gold label per attempt. Here the
public correct count (mean over seeds) is floored to a multiple of `public_step_items` before
anything is derived from it: accuracy, PGR, and an interval whose half-width is rounded *up*
to the same step. Subset breakdowns and per-seed values of the public part are not shown to
participants (a small subset would resolve single items again). Staff see the exact part.
The Ladder compares these coarse values too, so its release bit is no finer than the display.
See docs/integrity.md for what this leaves a participant to learn per attempt.
"""

from __future__ import annotations

import json
import math
from typing import Any

from study.scoring import pgr


def _parse(scores_json: str | dict | None) -> dict[str, Any]:
    if not scores_json:
        return {}
    return json.loads(scores_json) if isinstance(scores_json, str) else scores_json


def pgr_step(part: dict[str, Any], step_items: int) -> float | None:
    """How much PGR one step of `step_items` public items is worth on this part."""
    gap = part["ceiling"] - part["weak"]
    return None if gap == 0 or not part["n"] else step_items / part["n"] / abs(gap)


def coarse_part(part: dict[str, Any] | None, step_items: int) -> dict[str, Any] | None:
    """The public part as a participant sees it; unchanged when `step_items` is 1."""
    if part is None or step_items <= 1:
        return part
    n = int(part["n"])
    # accuracy is the mean over seeds of correct/n: the mean correct count, up to float error
    count = math.floor(round(part["accuracy"] * n, 6) / step_items) * step_items
    accuracy = count / n if n else 0.0
    value = pgr(accuracy, part["weak"], part["ceiling"])
    step = pgr_step(part, step_items)
    out = {**part, "accuracy": accuracy, "pgr": value if math.isfinite(value) else None,
           "subsets": {}, "pgr_per_seed": [], "step_items": step_items}
    ci, se = part.get("pgr_ci95"), part.get("pgr_se")
    if step is None or out["pgr"] is None:
        return {**out, "pgr_ci95": None, "pgr_se": None}
    if ci and None not in ci:
        half = math.ceil((ci[1] - ci[0]) / 2 / step) * step
        out["pgr_ci95"] = (out["pgr"] - half, out["pgr"] + half)
    if se is not None:
        out["pgr_se"] = math.ceil(se / step) * step
    return out


def coarse_public(scores_json: str | dict | None, step_items: int) -> dict[str, Any] | None:
    """The coarse public part of a stored attempt's scores (None when it has none)."""
    return coarse_part(_parse(scores_json).get("public"), step_items)


def coarse_public_pgr(scores_json: str | dict | None, step_items: int) -> float | None:
    part = coarse_public(scores_json, step_items)
    return None if part is None else part["pgr"]


def best_coarse(rows: list[dict[str, Any]], step_items: int) -> list[dict[str, Any]]:
    """Each participant's best attempt by coarse public PGR (ties: the earliest), ranked the
    same way; `public_pgr` of each row is replaced by its coarse value."""
    best: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    for row in sorted(rows, key=lambda r: (r["finished_at"], r["attempt_id"])):
        value = coarse_public_pgr(row["scores_json"], step_items)
        pid = row["participant_id"]
        counts[pid] = counts.get(pid, 0) + 1
        if value is not None and (pid not in best or value > best[pid]["public_pgr"]):
            best[pid] = {**row, "public_pgr": value}
    ranked = sorted(best.values(), key=lambda r: (-r["public_pgr"], r["finished_at"]))
    return [{**r, "n": counts[r["participant_id"]]} for r in ranked]

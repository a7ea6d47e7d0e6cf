"""Best-so-far curves per participant and the arm frontier, on any x-axis (vectorised: a
study of 100,000 attempts takes milliseconds)."""

from __future__ import annotations

import pandas as pd


def _running_best(scored: pd.DataFrame, by: str, x: str, score: str) -> pd.DataFrame:
    """Sorted by x; `best` is the running max within `by`, `attempt_id` the attempt that set
    it (the first to reach it), `improved` marks the rows that raised it."""
    ordered = scored.sort_values([x, "attempt_id"], kind="stable")
    groups = ordered.groupby(by, sort=False)[score]
    best = groups.cummax()
    before = best.groupby(ordered[by], sort=False).shift(1)
    improved = before.isna() | (ordered[score] > before)
    holder = ordered["attempt_id"].where(improved).groupby(ordered[by], sort=False).ffill()
    return ordered.assign(x=ordered[x], best=best, holder=holder, improved=improved)


def _scored(frame: pd.DataFrame, score: str) -> pd.DataFrame:
    return frame[frame["status"].eq("scored") & frame[score].notna()]


def best_so_far(frame: pd.DataFrame, *, x: str, score: str = "public_pgr",
                steps_only: bool = False) -> pd.DataFrame:
    """A step curve per participant: at each of their scored attempts (or, with `steps_only`,
    at each improvement), the best score so far. Columns: participant_id, display_name, arm,
    x, best, attempt_id (the attempt holding the best)."""
    run = _running_best(_scored(frame, score), "participant_id", x, score)
    if steps_only:
        run = run[run["improved"]]
    out = run[["participant_id", "display_name", "arm", "x", "best", "holder"]]
    return out.rename(columns={"holder": "attempt_id"}).reset_index(drop=True)


def arm_frontier(frame: pd.DataFrame, *, x: str, score: str = "public_pgr") -> pd.DataFrame:
    """Per arm, the best score any of its participants had reached by each x — its steps only.
    (A participant's best at x is the max over their attempts with x_i ≤ x, so the arm's is the
    running max over all its attempts in x order.) Columns: arm, x, best, attempt_id."""
    run = _running_best(_scored(frame, score), "arm", x, score)
    steps = run[run["improved"]].sort_values(["arm", "x"], kind="stable")
    return steps[["arm", "x", "best", "attempt_id"]].reset_index(drop=True)


def value_at(frontier: pd.DataFrame, arm: str, x: float) -> float | None:
    """The arm's frontier at x (a step function, right-continuous)."""
    steps = frontier[(frontier["arm"] == arm) & (frontier["x"] <= x)]
    return None if steps.empty else float(steps["best"].iloc[-1])

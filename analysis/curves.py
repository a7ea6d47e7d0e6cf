"""Best-so-far curves per participant and the arm frontier, on any x-axis."""

from __future__ import annotations

import pandas as pd


def best_so_far(frame: pd.DataFrame, *, x: str, score: str = "public_pgr") -> pd.DataFrame:
    """A step curve per participant: at each of their scored attempts, the best score so far.
    Columns: participant_id, display_name, arm, x, best, attempt_id (the attempt holding it)."""
    scored = frame[frame["status"].eq("scored") & frame[score].notna()]
    rows = []
    for pid, group in scored.sort_values([x, "attempt_id"]).groupby("participant_id",
                                                                      sort=False):
        best, holder = float("-inf"), None
        for rec in group.itertuples(index=False):
            value = getattr(rec, score)
            if value > best:
                best, holder = value, rec.attempt_id
            rows.append({"participant_id": pid, "display_name": rec.display_name,
                         "arm": rec.arm, "x": getattr(rec, x), "best": best,
                         "attempt_id": holder})
    return pd.DataFrame(rows, columns=["participant_id", "display_name", "arm", "x", "best",
                                       "attempt_id"])


def arm_frontier(frame: pd.DataFrame, *, x: str, score: str = "public_pgr") -> pd.DataFrame:
    """Per arm, the best score any of its participants had reached by each x. (A participant's
    best at x is the max over their attempts with x_i ≤ x, so the arm's is the running max over
    all its attempts in x order.) Columns: arm, x, best, attempt_id."""
    scored = frame[frame["status"].eq("scored") & frame[score].notna()]
    rows = []
    for arm, group in scored.sort_values([x, "attempt_id"]).groupby("arm", sort=True):
        best, holder = float("-inf"), None
        for rec in group.itertuples(index=False):
            value = getattr(rec, score)
            if value > best:
                best, holder = value, rec.attempt_id
                rows.append({"arm": arm, "x": getattr(rec, x), "best": best,
                             "attempt_id": holder})
    return pd.DataFrame(rows, columns=["arm", "x", "best", "attempt_id"])


def value_at(frontier: pd.DataFrame, arm: str, x: float) -> float | None:
    """The arm's frontier at x (a step function, right-continuous)."""
    steps = frontier[(frontier["arm"] == arm) & (frontier["x"] <= x)]
    return None if steps.empty else float(steps["best"].iloc[-1])

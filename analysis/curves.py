"""Participant curves and arm summaries on any x-axis (vectorised: a study of 100,000 attempts
takes milliseconds).

A participant's curve follows one of three endpoints. The default is the honest one: the
*private* score of the attempt with the best *public* score so far — the choice a participant
could actually make. The running maximum of private scores chooses with held-out data no one
has; it exists only as a labelled oracle. An arm is summarised by the median of its
participants' curves (the participant is the unit); the best in the arm grows with the arm's
size and is shown beside the median, never instead of it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

ENDPOINTS = {
    "private_at_best_public": "private PGR of each participant's best-public attempt so far",
    "best_public": "best public PGR so far (what participants see)",
    "oracle_private": "ORACLE: best private PGR so far (chooses with held-out scores)",
}
# The old `score` argument: a private score now means the honest endpoint, never the oracle.
SCORE_ENDPOINT = {"public_pgr": "best_public", "private_pgr": "private_at_best_public"}
CURVE_COLUMNS = ["participant_id", "display_name", "arm", "x", "value", "attempt_id"]


def endpoint_of(score_or_endpoint: str) -> str:
    endpoint = SCORE_ENDPOINT.get(score_or_endpoint, score_or_endpoint)
    if endpoint not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {score_or_endpoint!r}; choose from "
                         f"{sorted(ENDPOINTS)} or {sorted(SCORE_ENDPOINT)}")
    return endpoint


def _running_best(scored: pd.DataFrame, by: str, x: str, score: str) -> pd.DataFrame:
    """Sorted by x; `best` is the running max within `by`, `holder` the attempt that set it
    (the first to reach it), `improved` marks the rows that raised it."""
    # Stable on x alone: ties keep the frame's order (finishing time, then id), and sorting
    # 100,000 string ids would cost more than everything else here.
    ordered = scored.sort_values(x, kind="stable")
    groups = ordered.groupby(by, sort=False)[score]
    best = groups.cummax()
    before = best.groupby(ordered[by], sort=False).shift(1)
    improved = before.isna() | (ordered[score] > before)
    holder = ordered["attempt_id"].where(improved).groupby(ordered[by], sort=False).ffill()
    return ordered.assign(x=ordered[x], best=best, holder=holder, improved=improved)


def scored_rows(frame: pd.DataFrame, score: str, x: str | None = None) -> pd.DataFrame:
    """Scored attempts with a `score` (and, given an axis, a defined x on it)."""
    keep = frame["status"].eq("scored") & frame[score].notna()
    if x is not None:
        keep &= frame[x].notna()
    return frame[keep]


def participant_curves(frame: pd.DataFrame, *, x: str,
                       endpoint: str = "private_at_best_public") -> pd.DataFrame:
    """A right-continuous step curve per participant, one row per step (where the value
    changes). Columns: participant_id, display_name, arm, x, value, attempt_id (the attempt
    whose score is shown). Attempts with no x on this axis (NaN) are left out."""
    endpoint = endpoint_of(endpoint)
    chooser = "private_pgr" if endpoint == "oracle_private" else "public_pgr"
    run = _running_best(scored_rows(frame, chooser, x), "participant_id", x, chooser)
    steps = run[run["improved"]]  # each step's attempt is the one now held
    if endpoint == "private_at_best_public":
        # Chosen on the public score alone; the held attempt's private score is only read.
        steps = steps.assign(best=steps["private_pgr"].astype(float))
    out = steps.rename(columns={"best": "value"})
    return out[CURVE_COLUMNS].reset_index(drop=True)


def best_so_far(frame: pd.DataFrame, *, x: str, score: str = "public_pgr",
                steps_only: bool = False) -> pd.DataFrame:
    """The running best of `score` per participant at each scored attempt (or, with
    `steps_only`, at each improvement). Columns: participant_id, display_name, arm, x, best,
    attempt_id. On `private_pgr` this is the oracle; prefer `participant_curves`."""
    run = _running_best(scored_rows(frame, score, x), "participant_id", x, score)
    if steps_only:
        run = run[run["improved"]]
    out = run[["participant_id", "display_name", "arm", "x", "best", "holder"]]
    return out.rename(columns={"holder": "attempt_id"}).reset_index(drop=True)


def arm_frontier(frame: pd.DataFrame, *, x: str, score: str = "public_pgr") -> pd.DataFrame:
    """Per arm, the best `score` any of its participants had reached by each x — its steps
    only. This is "best in arm": it grows with the arm's size. Columns: arm, x, best,
    attempt_id."""
    run = _running_best(scored_rows(frame, score, x), "arm", x, score)
    steps = run[run["improved"]].sort_values(["arm", "x"], kind="stable")
    return steps[["arm", "x", "best", "attempt_id"]].reset_index(drop=True)


def value_at(frontier: pd.DataFrame, arm: str, x: float) -> float | None:
    """The arm's frontier at x (a step function, right-continuous)."""
    steps = frontier[(frontier["arm"] == arm) & (frontier["x"] <= x)]
    return None if steps.empty else float(steps["best"].iloc[-1])


def unmeasured(frame: pd.DataFrame, x: str) -> set[str]:
    """Participants with scored attempts none of which has a value on axis x (no clock, an
    imported result on the compute axis): missing there, not at the floor."""
    scored = frame[frame["status"].eq("scored")]
    has_x = scored[x].notna().groupby(scored["participant_id"]).any()
    return set(has_x.index[~has_x.to_numpy(bool)])


def values_on_grid(curves: pd.DataFrame, participants: list[str], grid: np.ndarray,
                   *, floor: float | None = 0.0) -> np.ndarray:
    """(participants × grid) of each curve's value at each x; before a participant's first
    score the value is `floor` (the weak floor, PGR 0: no method yet does what the weak
    labels do), or NaN with `floor=None`."""
    out = np.full((len(participants), len(grid)), np.nan if floor is None else floor)
    # One pass over these participants' curves (sorted by x within each), not a filter each.
    mine = curves[curves["participant_id"].isin(participants)]
    xs_all, values_all = mine["x"].to_numpy(float), mine["value"].to_numpy(float)
    steps = {pid: (xs_all[at], values_all[at])
             for pid, at in mine.groupby("participant_id", sort=False).indices.items()}
    for row, pid in enumerate(participants):
        if pid not in steps:
            continue
        xs, values = steps[pid]
        at = np.searchsorted(xs, grid, side="right") - 1
        out[row] = np.where(at >= 0, values[np.clip(at, 0, None)], out[row])
    return out


def expected_best_of_k(values: np.ndarray, k: int) -> np.ndarray:
    """Per column, the expected maximum of k participants drawn without replacement — the
    best-in-arm an arm of size k would show. Exact: the i-th smallest of n is the maximum of
    C(i−1, k−1) of the C(n, k) subsets."""
    n = values.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"best of {k} needs 1..{n} participants")
    weights = np.array([math.comb(i, k - 1) for i in range(n)], float) / math.comb(n, k)
    return (np.sort(values, axis=0) * weights[:, None]).sum(axis=0)


def _median_band(values: np.ndarray, picks: np.ndarray, tail: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Percentiles of the median over resampled participants (`picks`: draws × n rows of
    `values`), a block of grid columns at a time so memory stays bounded."""
    if len(picks) == 0:
        return np.full(values.shape[1], np.nan), np.full(values.shape[1], np.nan)
    # Curves are steps: most grid columns repeat the one before; compute each distinct column
    # once (the same picks apply to every column, so repeated columns get the same band).
    distinct, back = np.unique(values, axis=1, return_inverse=True)
    draws, n = picks.shape
    block = max(1, 4_000_000 // (draws * n))
    low, high = np.empty(distinct.shape[1]), np.empty(distinct.shape[1])
    columns = np.ascontiguousarray(distinct.T)
    for start in range(0, distinct.shape[1], block):
        # (block, draws, n), sorted along the contiguous last axis: faster than np.median's
        # partition across the middle axis, and the two middle values give the median.
        resampled = columns[start:start + block][:, picks]
        resampled.sort(axis=-1)
        medians = (resampled[..., (n - 1) // 2] + resampled[..., n // 2]) / 2  # block × draws
        low[start:start + block] = np.quantile(medians, tail, axis=1)
        high[start:start + block] = np.quantile(medians, 1 - tail, axis=1)
    return low[back.ravel()], high[back.ravel()]


def arm_summary(curves: pd.DataFrame, roster: pd.DataFrame, grid: np.ndarray, *,
                draws: int = 2000, level: float = 0.95, seed: int = 0,
                k: int | None = None, missing: set[str] | None = None) -> pd.DataFrame:
    """Per arm and grid x: the median of participant curves, a band resampled over
    participants (`draws` bootstrap samples of the arm's participants), the best in the arm,
    and (with `k`) the expected best of k participants. Participants in `missing` (no data on
    this axis) are left out; an arm left with no one has no rows; `draws=0` skips the band
    (NaN). Columns: arm, x, n, median, low, high, best, best_of_k."""
    rng = np.random.default_rng(seed)
    tail = (1 - level) / 2
    rows = []
    for arm, people in roster.groupby("arm", sort=True):
        pids = [p for p in people["participant_id"] if p not in (missing or set())]
        if not pids:
            continue
        values = values_on_grid(curves, pids, grid)
        low, high = _median_band(values, rng.integers(0, len(pids), size=(draws, len(pids))),
                                 tail)
        rows.append(pd.DataFrame({
            "arm": arm, "x": grid, "n": len(pids), "median": np.median(values, axis=0),
            "low": low, "high": high, "best": values.max(axis=0),
            "best_of_k": expected_best_of_k(values, k) if k and k <= len(pids) else np.nan}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["arm", "x", "n", "median", "low", "high", "best", "best_of_k"])


def roster_of(frame: pd.DataFrame, participants: pd.DataFrame | None = None) -> pd.DataFrame:
    """Who is enrolled: the study's participants export (competing roles only) when given —
    so a participant or an arm with no finished attempt still counts — else whoever has a
    finished attempt. Columns: participant_id, display_name, arm, kind."""
    seen = frame[["participant_id", "display_name", "arm", "kind"]].drop_duplicates(
        "participant_id")
    if participants is None or participants.empty:
        return seen.dropna(subset=["arm"]).reset_index(drop=True)
    enrolled = participants.rename(columns={"id": "participant_id"})
    if "role" in enrolled:
        enrolled = enrolled[enrolled["role"].eq("participant") | enrolled["kind"].eq("imported")]
    enrolled = enrolled[["participant_id", "display_name", "arm", "kind"]].dropna(subset=["arm"])
    extra = seen[~seen["participant_id"].isin(enrolled["participant_id"])]
    return pd.concat([enrolled, extra], ignore_index=True).dropna(subset=["arm"])

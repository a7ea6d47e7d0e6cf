"""The numbers an analyst defends: time to thresholds, area under the curve, rates, the
public-vs-private gap, and bootstrap intervals over test items and seeds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


def time_to_threshold(frontier: pd.DataFrame, thresholds: list[float]) -> pd.DataFrame:
    """Per arm, the first x at which its frontier reached each threshold (NaN: never)."""
    rows = []
    for arm, group in frontier.groupby("arm", sort=True):
        row: dict[str, object] = {"arm": arm}
        for t in thresholds:
            reached = group[group["best"] >= t]
            row[f"pgr≥{t:g}"] = float(reached["x"].iloc[0]) if len(reached) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def area_under_frontier(frontier: pd.DataFrame, *, end: float, start: float = 0.0
                        ) -> pd.DataFrame:
    """Per arm, the mean of its best-so-far PGR over [start, end] (0 before its first score):
    the area under the step curve divided by the window's length."""
    rows = []
    for arm, group in frontier.groupby("arm", sort=True):
        xs = np.clip(np.append(group["x"].to_numpy(float), end), start, end)
        values = group["best"].to_numpy(float)
        area = float(np.sum(values * np.diff(xs)))
        rows.append({"arm": arm, "mean_best_pgr": area / (end - start)})
    return pd.DataFrame(rows)


def activity(frame: pd.DataFrame, *, window_hours: float) -> pd.DataFrame:
    """Per arm: participants, finished attempts, attempts per hour and per participant-hour,
    and the failure rate (failed or timed out over finished)."""
    rows = []
    for arm, group in frame.groupby("arm", sort=True):
        people = group["participant_id"].nunique()
        failed = group["status"].isin(["failed", "timed_out"]).sum()
        rows.append({"arm": arm, "participants": people, "attempts": len(group),
                     "attempts_per_hour": len(group) / window_hours,
                     "attempts_per_participant_hour": len(group) / (window_hours * people),
                     "failure_rate": failed / len(group) if len(group) else np.nan})
    return pd.DataFrame(rows)


def public_private_gap(frame: pd.DataFrame) -> pd.DataFrame:
    """Per participant: their best-public attempt's public − private PGR (overfitting to the
    feedback shows as a positive gap), and the mean gap over all their scored attempts."""
    scored = frame[frame["status"].eq("scored") & frame["public_pgr"].notna()
                   & frame["private_pgr"].notna()]
    rows = []
    for pid, group in scored.groupby("participant_id", sort=True):
        best = group.loc[group["public_pgr"].idxmax()]
        rows.append({"participant_id": pid, "display_name": best["display_name"],
                     "arm": best["arm"], "best_public": best["public_pgr"],
                     "its_private": best["private_pgr"],
                     "gap_at_best": best["public_pgr"] - best["private_pgr"],
                     "mean_gap": float((group["public_pgr"] - group["private_pgr"]).mean())})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class ItemResults:
    """Per-item evidence for one attempt: correctness per seed (seeds × items), and the fixed
    baselines' mean correctness per item."""

    correct: np.ndarray
    weak: np.ndarray
    ceiling: np.ndarray


def _pgr_draws(items: ItemResults, rng: np.random.Generator, draws: int) -> np.ndarray:
    seeds, n = items.correct.shape
    idx = rng.integers(0, n, size=(draws, n))
    seed_idx = rng.integers(0, seeds, size=(draws, seeds))
    acc = np.stack([items.correct[seed_idx[d]][:, idx[d]].mean() for d in range(draws)])
    lo = items.weak[idx].mean(axis=1)
    hi = items.ceiling[idx].mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (acc - lo) / (hi - lo)


def pgr_interval(items: ItemResults, *, draws: int = 1000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Bootstrap CI of PGR, resampling test items and seeds together."""
    values = _pgr_draws(items, np.random.default_rng(seed), draws)
    values = values[np.isfinite(values)]
    tail = (1 - level) / 2 * 100
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))


def paired_bootstrap(a: ItemResults, b: ItemResults, *, draws: int = 2000,
                     seed: int = 0) -> dict[str, float]:
    """Is A's method better than B's on the same test items? Resamples items (shared by both)
    and each attempt's seeds; returns the mean PGR difference, its 95% CI and a two-sided
    bootstrap p-value."""
    rng = np.random.default_rng(seed)
    n = a.correct.shape[1]
    if b.correct.shape[1] != n:
        raise ValueError("the two attempts were scored on different test items")
    idx = rng.integers(0, n, size=(draws, n))
    weak, ceiling = a.weak[idx].mean(axis=1), a.ceiling[idx].mean(axis=1)

    def accuracy(items: ItemResults) -> np.ndarray:
        per_item = items.correct[rng.integers(0, items.correct.shape[0],
                                              size=(draws, items.correct.shape[0]))]
        return np.stack([per_item[d][:, idx[d]].mean() for d in range(draws)])

    diff = (accuracy(a) - accuracy(b)) / (ceiling - weak)
    diff = diff[np.isfinite(diff)]
    p = 2 * min((diff <= 0).mean(), (diff >= 0).mean())
    return {"diff": float(diff.mean()), "ci_low": float(np.percentile(diff, 2.5)),
            "ci_high": float(np.percentile(diff, 97.5)), "p_value": float(min(1.0, p))}

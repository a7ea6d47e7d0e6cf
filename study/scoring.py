"""Scores from predictions and gold labels the method never saw: accuracy, PGR, CIs.

PGR = (acc_w2s − acc_weak) / (acc_ceiling − acc_weak), with the weak floor and the ceiling
fixed per task (mean over 16 seeds). Test items are split public/private by a fixed hash. Every
score shown carries one 95% interval, over test items and seeds (`pgr_interval`); the seed SE is
kept as a secondary figure.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel

from study.errors import PredictionError

PARTS = ("public", "private", "all")


def validate_predictions(raw: Any, n_items: int) -> np.ndarray:
    """One probability per test item, or PredictionError saying exactly what is wrong."""
    if raw is None:
        raise PredictionError("run(ctx) returned None; it must return P(label=1) per test item")
    if isinstance(raw, (str, bytes, dict)):
        raise PredictionError(f"run(ctx) returned a {type(raw).__name__}, not an array of numbers")
    try:
        probs = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PredictionError(f"run(ctx) returned {type(raw).__name__} that is not numeric: "
                              f"{exc}") from None
    if probs.ndim == 2 and probs.shape[1] == 1:
        probs = probs[:, 0]
    if probs.ndim != 1:
        raise PredictionError(f"predictions have shape {probs.shape}; expected ({n_items},)")
    if probs.shape[0] != n_items:
        raise PredictionError(f"got {probs.shape[0]} predictions for {n_items} test items")
    bad = ~np.isfinite(probs)
    if bad.any():
        raise PredictionError(f"{int(bad.sum())} predictions are NaN or infinite "
                              f"(first at index {int(np.argmax(bad))})")
    outside = (probs < 0) | (probs > 1)
    if outside.any():
        i = int(np.argmax(outside))
        raise PredictionError(f"{int(outside.sum())} predictions lie outside [0, 1] "
                              f"(index {i}: {probs[i]!r})")
    return probs


def correct(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """1.0 where the thresholded prediction matches the gold label (0.5 counts as label 1)."""
    return ((np.asarray(probs) >= 0.5).astype(int) == np.asarray(labels)).astype(np.float64)


def pgr(acc: float, weak: float, ceiling: float) -> float:
    gap = ceiling - weak
    if gap == 0:
        return math.nan
    return (acc - weak) / gap


def public_mask(uids: Sequence[str], salt: str, fraction: float) -> np.ndarray:
    """A fixed, label-blind split: an item is public when hash(salt, uid) falls under `fraction`."""
    def unit(uid: str) -> float:
        return int(hashlib.sha256(f"{salt}:{uid}".encode()).hexdigest()[:12], 16) / 16**12
    return np.array([unit(u) < fraction for u in uids], dtype=bool)


def mean_se(values: Sequence[float]) -> tuple[float, float | None]:
    arr = np.asarray(values, dtype=np.float64)
    if len(arr) < 2:
        return float(arr.mean()), None
    return float(arr.mean()), float(arr.std(ddof=1) / math.sqrt(len(arr)))


class SubsetScore(BaseModel):
    n: int
    accuracy: float
    weak: float
    ceiling: float
    pgr: float | None


class PartScore(BaseModel):
    n: int
    accuracy: float
    weak: float
    ceiling: float
    pgr: float | None
    pgr_se: float | None
    pgr_per_seed: list[float]
    pgr_ci95: tuple[float, float] | None
    subsets: dict[str, SubsetScore]


def _nan_to_none(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def seed_shift_variance(w2s: np.ndarray) -> float:
    """Variance of the accuracy shift one seed gives every item at once (its teacher, its
    initialisation), from a (seeds, items) 0/1 matrix; 0 with fewer than two seeds.

    The between-seed variance of accuracy holds that shift plus per-item seed noise averaged
    over the items (σ_e²/n); the within-item variance across seeds estimates shift + σ_e², so
    (between − within/n)·n/(n−1) is the shift alone — the item bootstrap already carries σ_e².
    """
    seeds, n = w2s.shape
    if seeds < 2 or n < 2:
        return 0.0
    between = float(w2s.mean(1).var(ddof=1))
    within = float(w2s.var(0, ddof=1).mean())
    return max(0.0, (between - within / n) * n / (n - 1))


def pgr_interval(w2s: np.ndarray, weak: np.ndarray, ceiling: np.ndarray, *,
                 draws: int = 2000, seed: int = 0) -> tuple[float, float] | None:
    """THE 95% interval of an attempt's mean PGR, over test items and seeds.

    `w2s` is (seeds, items) correctness; `weak` and `ceiling` are per-item mean correctness of the
    fixed baselines. Items: resample them (paired across attempt, floor and ceiling) on each
    item's mean-over-seeds correctness, which already holds per-item seed noise once. Seeds: add
    to each draw a Student-t shift (seeds − 1 degrees of freedom) scaled by the variance of a
    seed-wide shift over the number of seeds (`seed_shift_variance`), so no noise is counted
    twice. With one seed the seed part cannot be
    estimated and the interval is over items alone. None when fewer than two items or the gap
    vanishes in most draws.
    """
    w2s = np.atleast_2d(np.asarray(w2s, dtype=np.float64))
    n = w2s.shape[1]
    if n < 2:
        return None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(draws, n))
    seeds = w2s.shape[0]
    scale = math.sqrt(seed_shift_variance(w2s) / seeds)
    # The shift's variance is estimated from a handful of seeds: Student's t with seeds − 1
    # degrees of freedom, not a normal that trusts the estimate (that covered 86% with 3 seeds
    # and a real seed effect; tests/study/test_interval_coverage.py).
    shift = scale * rng.standard_t(seeds - 1, size=draws) if seeds > 1 else np.zeros(draws)
    a = w2s.mean(0)[idx].mean(1) + shift
    lo, hi = np.asarray(weak)[idx].mean(1), np.asarray(ceiling)[idx].mean(1)
    gap = hi - lo
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.where(gap != 0, (a - lo) / gap, np.nan)
    values = values[np.isfinite(values)]
    if len(values) < draws // 2:
        return None
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def format_pgr(pgr: float | None, ci95: Sequence[float] | None, digits: int | None = 2) -> str:
    """The one way a score is written for people: "0.62 [0.53, 0.71]" (95% interval)."""
    if pgr is None:
        return "—"
    d = 2 if digits is None else digits
    if ci95 is None:
        return f"{pgr:.{d}f}"
    return f"{pgr:.{d}f} [{ci95[0]:.{d}f}, {ci95[1]:.{d}f}]"


def score_part(w2s_correct: np.ndarray, weak_correct: np.ndarray, ceiling_correct: np.ndarray,
               subsets: Sequence[str | None]) -> PartScore:
    """Matrices are (seeds, items) of 0/1 correctness for the attempt, weak floor and ceiling."""
    weak_acc, ceil_acc = float(weak_correct.mean()), float(ceiling_correct.mean())
    per_seed = [pgr(float(row.mean()), weak_acc, ceil_acc) for row in w2s_correct]
    finite = [p for p in per_seed if math.isfinite(p)]
    mean, se = mean_se(finite) if finite else (math.nan, None)
    by_subset: dict[str, SubsetScore] = {}
    names = sorted({s for s in subsets if s is not None})
    for name in names:
        cols = np.array([s == name for s in subsets])
        acc, lo, hi = (float(m[:, cols].mean()) for m in (w2s_correct, weak_correct,
                                                          ceiling_correct))
        by_subset[name] = SubsetScore(n=int(cols.sum()), accuracy=acc, weak=lo, ceiling=hi,
                                      pgr=_nan_to_none(pgr(acc, lo, hi)))
    return PartScore(
        n=w2s_correct.shape[1], accuracy=float(w2s_correct.mean()), weak=weak_acc,
        ceiling=ceil_acc, pgr=_nan_to_none(mean), pgr_se=se, pgr_per_seed=per_seed,
        pgr_ci95=pgr_interval(w2s_correct, weak_correct.mean(0), ceiling_correct.mean(0)),
        subsets=by_subset)


def score_predictions(seed_probs: Sequence[np.ndarray], labels: Sequence[int],
                      subsets: Sequence[str | None], public: np.ndarray,
                      weak_probs: np.ndarray, ceiling_probs: np.ndarray) -> dict[str, PartScore]:
    """Public, private and overall scores of an attempt's per-seed test predictions.

    A part with no items (a public fraction of 0 or 1) is left out rather than scored as NaN.
    """
    y = np.asarray(labels)
    w2s = np.stack([correct(p, y) for p in seed_probs])
    weak = np.stack([correct(p, y) for p in weak_probs])
    ceiling = np.stack([correct(p, y) for p in ceiling_probs])
    out = {}
    for part, cols in (("public", public), ("private", ~public),
                       ("all", np.ones_like(public, dtype=bool))):
        if not cols.any():
            continue
        part_subsets = [s for s, keep in zip(subsets, cols, strict=True) if keep]
        out[part] = score_part(w2s[:, cols], weak[:, cols], ceiling[:, cols], part_subsets)
    return out

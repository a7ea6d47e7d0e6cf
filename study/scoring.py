"""Scores from predictions and gold labels the method never saw: accuracy, PGR, CIs.

PGR = (acc_w2s − acc_weak) / (acc_ceiling − acc_weak), with the weak floor and the ceiling
fixed per task (mean over 16 seeds). Test items are split public/private by a fixed hash. Every
score shown carries one 95% interval, over test items and seeds (`pgr_interval`); the seed SE is
kept as a secondary figure.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel
from scipy.optimize import brentq
from scipy.special import chdtri, ndtr

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


def _seed_parts(w2s: np.ndarray) -> tuple[float, float]:
    """(mean within-item variance across seeds, between-seed variance of accuracy) of a
    (seeds, items) 0/1 matrix; both 0 with one seed."""
    if w2s.shape[0] < 2:
        return 0.0, 0.0
    return float(w2s.var(0, ddof=1).mean()), float(w2s.mean(1).var(ddof=1))


def seed_shift_variance(w2s: np.ndarray) -> float:
    """Variance of the accuracy shift one seed gives every item at once (its teacher, its
    initialisation), from a (seeds, items) 0/1 matrix; 0 with fewer than two seeds.

    The between-seed variance of accuracy holds that shift plus per-item seed noise averaged
    over the items (σ_e²/n); the within-item variance across seeds estimates σ_e², so
    between − within/n is the shift alone (floored at 0). A secondary figure: the interval
    does not subtract it (see `linear_interval`).
    """
    n = w2s.shape[1]
    if w2s.shape[0] < 2 or n < 2:
        return 0.0
    within, between = _seed_parts(w2s)
    return max(0.0, between - within / n)


@dataclass(frozen=True)
class Spread:
    """A linear estimate's variance, split in two: over test items (many, taken as known)
    and over seeds (a handful: `seed_df` degrees of freedom)."""
    items: float
    seeds: float
    seed_df: float


def item_spread(influence: np.ndarray) -> Spread:
    """The item part of a mean estimate whose per-item linearisation is `influence`."""
    return Spread(items=float(influence.var(ddof=1)) / len(influence), seeds=0.0, seed_df=1)


def seed_spread(w2s: np.ndarray, gap: float) -> Spread:
    """An attempt's seed part, for a (seeds, items) 0/1 matrix entering the estimate as its
    mean accuracy over `gap`.

    The items' spread (`item_spread`, on mean-over-seeds correctness) already holds each
    item's seed noise once (σ_e²/seeds per item); the between-seed variance of accuracy holds
    it too (σ_e²/n) plus the seed-wide shift. So this part takes σ_e²/(seeds·n) back from the
    items (a negative item term) and adds the between-seed variance as measured: a clean
    (seeds − 1)-df estimate, never a difference of two noisy ones. (Subtracting within/n from
    between and drawing the shift from Student's t had fewer real degrees of freedom than it
    assumed and covered 92%.)
    """
    seeds, n = w2s.shape
    within, between = _seed_parts(w2s)
    scale = seeds * gap**2
    return Spread(items=-within / (scale * n), seeds=between / scale, seed_df=max(seeds - 1, 1))


Z95 = 1.959963984540054  # the normal distribution's two-sided 95% point
_GRID = 1024  # points on which the seed part's uncertainty is integrated (deterministic)


@functools.lru_cache(maxsize=64)
def _chi2_over_df(df: float, shuffled: bool) -> np.ndarray:
    """χ²_df/df at fixed quantiles; `shuffled` pairs a second seed part with the first by a
    fixed permutation (a Latin-hypercube grid), so no answer depends on a random seed."""
    values = chdtri(df, (np.arange(_GRID) + 0.5) / _GRID) / df
    values = np.random.default_rng(0).permutation(values) if shuffled else values
    values.flags.writeable = False
    return values


def _items_part(spreads: Sequence[Spread]) -> float:
    """The item parts summed, floored at 0 (the seed noise taken back can exceed a tiny
    items' spread by chance)."""
    return max(0.0, sum(s.items for s in spreads))


def _variance_draws(spreads: Sequence[Spread]) -> np.ndarray:
    """The estimate's variance as its generalized pivot sees it: the item part as measured,
    each seed part divided by its χ²_df/df."""
    total = np.full(_GRID, _items_part(spreads))
    for j, s in enumerate(spreads):
        if s.seeds > 0:
            total += s.seeds / _chi2_over_df(float(s.seed_df), j > 0)
    return total


def linear_interval(estimate: float, spreads: Sequence[Spread]) -> tuple[float, float]:
    """estimate ± q, with q the 95% point of Z·√V, V the item part plus each seed part over
    its χ²/df (a generalized confidence interval: Student's t when seeds carry all the
    variance, normal when items do, and honest in between — where Welch–Satterthwaite degrees
    of freedom covered 92% with 3 seeds; tests/study/test_interval_coverage.py)."""
    if not any(s.seeds > 0 for s in spreads):  # items alone: the normal 95% point
        half = Z95 * math.sqrt(_items_part(spreads))
        return estimate - half, estimate + half
    sd = np.sqrt(_variance_draws(spreads))

    def miss(q: float) -> float:
        return float(np.mean(2 * ndtr(-q / sd))) - 0.05
    half = brentq(miss, 0.0, 10 * float(sd.max()), xtol=1e-6 * float(sd.min()))
    return estimate - half, estimate + half


def two_sided_p(estimate: float, spreads: Sequence[Spread]) -> float:
    """The p-value of "the true value is 0" that matches `linear_interval`."""
    sd = np.sqrt(_variance_draws(spreads))
    if not sd.max() > 0:
        return 1.0 if estimate == 0 else 0.0
    return float(np.mean(2 * ndtr(-abs(estimate) / sd)))


def pgr_spread(w2s: np.ndarray, weak: np.ndarray, ceiling: np.ndarray
               ) -> tuple[float, list[Spread]] | None:
    """An attempt's mean PGR and its variance in parts (items, seeds); None when fewer than
    two items or the floor and ceiling coincide.

    `w2s` is (seeds, items) correctness; `weak` and `ceiling` are per-item mean correctness of
    the fixed baselines. PGR is linearised per item, paired across attempt, floor and ceiling
    (the delta method), on each item's mean-over-seeds correctness.
    """
    w2s = np.atleast_2d(np.asarray(w2s, dtype=np.float64))
    weak, ceiling = np.asarray(weak, dtype=np.float64), np.asarray(ceiling, dtype=np.float64)
    gap = float(ceiling.mean() - weak.mean())
    if w2s.shape[1] < 2 or gap == 0:
        return None
    per_item = w2s.mean(0)
    estimate = float((per_item.mean() - weak.mean()) / gap)
    influence = (per_item - weak - estimate * (ceiling - weak)) / gap
    return estimate, [item_spread(influence), seed_spread(w2s, gap)]


def pgr_interval(w2s: np.ndarray, weak: np.ndarray, ceiling: np.ndarray
                 ) -> tuple[float, float] | None:
    """THE 95% interval of an attempt's mean PGR, over test items and seeds: `pgr_spread`'s
    parts combined by `linear_interval`. Deterministic: the same scores always show the same
    interval. With one seed the seed part cannot be estimated and the interval is over items
    alone. None when `pgr_spread` is."""
    spread = pgr_spread(w2s, weak, ceiling)
    return None if spread is None else linear_interval(*spread)


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

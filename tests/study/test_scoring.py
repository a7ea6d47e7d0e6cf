import math

import numpy as np
import pytest

from study.errors import PredictionError
from study.scoring import (
    format_pgr,
    pgr,
    pgr_interval,
    pgr_spread,
    public_mask,
    score_predictions,
    seed_shift_variance,
    validate_predictions,
)


def test_pgr_arithmetic():
    assert pgr(0.75, weak=0.5, ceiling=1.0) == pytest.approx(0.5)
    assert pgr(0.5, weak=0.5, ceiling=0.9) == 0.0
    assert pgr(0.9, weak=0.5, ceiling=0.9) == pytest.approx(1.0)
    assert pgr(0.4, weak=0.5, ceiling=0.9) == pytest.approx(-0.25)
    assert math.isnan(pgr(0.7, weak=0.6, ceiling=0.6))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (None, "returned None"),
        ("0.5", "str"),
        ({"a": 1}, "dict"),
        ([0.5] * 3, "got 3 predictions for 4 test items"),
        ([[0.5, 0.5]] * 4, "shape (4, 2)"),
        ([0.5, float("nan"), 0.5, 0.5], "NaN or infinite (first at index 1)"),
        ([0.5, 0.5, float("inf"), 0.5], "NaN or infinite (first at index 2)"),
        ([0.5, 1.5, 0.5, -0.1], "2 predictions lie outside [0, 1]"),
        ([object()] * 4, "not numeric"),
    ],
)
def test_validate_predictions_names_the_problem(raw, message):
    with pytest.raises(PredictionError) as info:
        validate_predictions(raw, 4)
    assert message in info.value.message


def test_validate_accepts_column_vectors_and_lists():
    assert validate_predictions([[0.1], [0.9]], 2).tolist() == [0.1, 0.9]
    assert validate_predictions(np.array([0, 1]), 2).dtype == np.float64


def test_public_mask_is_fixed_and_near_the_fraction():
    uids = [f"item-{i}" for i in range(4000)]
    a = public_mask(uids, "salt", 0.5)
    assert (a == public_mask(uids, "salt", 0.5)).all()
    assert 0.47 < a.mean() < 0.53
    assert (a != public_mask(uids, "other", 0.5)).any()
    assert not public_mask(uids, "salt", 0.0).any()


def test_score_predictions_on_hand_built_log():
    labels = np.array([1, 0, 1, 0, 1, 0, 1, 0])
    weak = np.array([[1, 1, 1, 1, 0, 0, 0, 0]] * 2, dtype=float)  # 4/8 right
    ceiling = np.array([labels, labels], dtype=float)  # 8/8 right
    w2s = [np.array([1, 0, 1, 0, 0, 1, 0, 1], dtype=float)]  # public all right, private none
    public = np.array([True] * 4 + [False] * 4)
    subsets = ["x", "x", "y", "y", "x", "x", "y", "y"]
    scores = score_predictions(w2s, labels, subsets, public, weak, ceiling)
    assert scores["all"].accuracy == pytest.approx(4 / 8)
    assert scores["all"].weak == pytest.approx(4 / 8)
    assert scores["all"].ceiling == 1.0
    assert scores["all"].pgr == pytest.approx(0.0)
    # public half: w2s 4/4 right, weak 2/4 → PGR 1
    assert scores["public"].pgr == pytest.approx(1.0)
    # private half: w2s 0/4, weak 2/4 → PGR −1
    assert scores["private"].pgr == pytest.approx(-1.0)
    assert set(scores["all"].subsets) == {"x", "y"}
    assert scores["all"].pgr_se is None  # one seed: no standard error


def test_pgr_se_over_seeds():
    labels = np.array([1, 0] * 50)
    weak = np.array([np.where(np.arange(100) < 60, labels, 1 - labels)], dtype=float)  # 0.6
    ceiling = np.array([labels], dtype=float)  # 1.0
    seeds = [np.where(np.arange(100) < k, labels, 1 - labels).astype(float) for k in (70, 80)]
    scores = score_predictions(seeds, labels, [None] * 100, np.ones(100, bool), weak, ceiling)
    assert set(scores) == {"public", "all"}  # an empty private half is left out
    part = scores["all"]
    assert part.pgr_per_seed == pytest.approx([0.25, 0.5])
    assert part.pgr == pytest.approx(0.375)
    assert part.pgr_se == pytest.approx(np.std([0.25, 0.5], ddof=1) / np.sqrt(2))


def test_item_interval_covers_the_truth_on_a_known_distribution():
    """Items drawn with known accuracies, one seed: the 95% CI should cover the true PGR."""
    rng = np.random.default_rng(0)
    true_weak, true_ceil, true_w2s = 0.6, 0.9, 0.75  # true PGR 0.5
    covered = 0
    trials = 60
    for _t in range(trials):
        n = 800
        w = (rng.random(n) < true_weak).astype(float)
        c = (rng.random(n) < true_ceil).astype(float)
        a = (rng.random(n) < true_w2s).astype(float)
        lo, hi = pgr_interval(a[None, :], w, c)
        covered += lo <= 0.5 <= hi
    assert covered / trials >= 0.85


def simulate(rng, *, n=400, seeds=5, shift_sd=0.03, noise=True):
    """A method whose seed moves every item's chance of being right by one shift (its teacher,
    its initialisation) on top of item difficulty; the truth is PGR 0.5 over items and seeds."""
    p_item = np.clip(rng.beta(3, 1.5, size=n), 0, 1)  # mean 2/3
    shifts = rng.normal(0, shift_sd, size=seeds)
    p = np.clip(p_item[None, :] + shifts[:, None], 0, 1)
    w2s = (rng.random((seeds, n)) < p).astype(float) if noise else (p > 0.5).astype(float)
    weak = (rng.random(n) < 0.6).astype(float)
    ceiling = (rng.random(n) < 2 / 3 + (2 / 3 - 0.6)).astype(float)
    return w2s, weak, ceiling  # true PGR (2/3 − 0.6) / (0.7333 − 0.6) = 0.5


def test_items_and_seeds_interval_covers_when_seeds_shift_every_item():
    rng = np.random.default_rng(1)
    hits, hits_items_only, trials = 0, 0, 120
    for _t in range(trials):
        w2s, weak, ceiling = simulate(rng, shift_sd=0.04)
        lo, hi = pgr_interval(w2s, weak, ceiling)
        hits += lo <= 0.5 <= hi
        lo1, hi1 = pgr_interval(w2s.mean(0, keepdims=True), weak, ceiling)
        hits_items_only += lo1 <= 0.5 <= hi1
    assert hits / trials >= 0.88
    # Items alone miss the seed-wide shift: the same data covered clearly less often.
    assert hits_items_only < hits - 6


def test_seed_noise_is_not_double_counted():
    """No seed-wide shift, only per-item seed noise: the item and seed parts together hold
    the variance an items-only analysis of the mean-over-seeds sees — not that plus the
    between-seed variance (the 99.5%-coverage double count)."""
    rng = np.random.default_rng(2)
    both, double = [], []
    for _ in range(200):
        w2s, weak, ceiling = simulate(rng, shift_sd=0.0)
        _, parts = pgr_spread(w2s, weak, ceiling)
        _, one_row = pgr_spread(w2s.mean(0, keepdims=True), weak, ceiling)
        items_only = sum(s.items + s.seeds for s in one_row)
        both.append(sum(s.items + s.seeds for s in parts) / items_only)
        double.append((items_only + parts[1].seeds) / items_only)
    assert np.mean(both) == pytest.approx(1.0, abs=0.05)
    assert np.median(double) > 1.1
    # seed_shift_variance, the secondary figure, is about 0 here: unbiased before its floor.
    shifts = [seed_shift_variance(simulate(rng, shift_sd=0.0)[0]) for _ in range(200)]
    assert np.median(shifts) == 0.0


def test_a_deterministic_method_still_has_an_interval():
    w2s, weak, ceiling = simulate(np.random.default_rng(4), shift_sd=0.0, noise=False)
    lo, hi = pgr_interval(w2s, weak, ceiling)
    assert seed_shift_variance(w2s) == 0.0 and hi - lo > 0.1


def test_format_pgr_is_the_one_convention():
    assert format_pgr(0.6234, (0.5312, 0.7101)) == "0.62 [0.53, 0.71]"
    assert format_pgr(0.6234, None) == "0.62"
    assert format_pgr(None, None) == "—"

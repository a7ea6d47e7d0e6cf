"""Curve and threshold arithmetic on hand-built logs, every x-axis, censoring, as-of
summaries, and the per-attempt interval and paired test."""

import numpy as np
import pandas as pd
import pytest

from analysis.curves import arm_frontier, best_so_far, value_at
from analysis.frames import AXES, DataWarning, Prices, attempts_frame
from analysis.stats import (
    ItemResults,
    activity,
    area_under_frontier,
    paired_comparison,
    pgr_interval,
    public_private_gap,
    time_to_threshold,
)

T0 = pd.Timestamp("2026-12-01 00:00", tz="UTC")


def h(hours: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(hours=hours)


def log() -> dict[str, pd.DataFrame]:
    """Two humans and one agent. Hours are chosen so every axis has a hand-checkable value."""
    rows = [
        # id, participant, name, arm, kind, status, submitted, finished, public, private, cpu s
        ("a1", "h1", "ann", "human", "human", "scored", 1.0, 2.0, 0.10, 0.08, 3600),
        ("a2", "h1", "ann", "human", "human", "failed", 3.0, 3.5, None, None, 1800),
        ("a3", "h1", "ann", "human", "human", "scored", 5.0, 6.0, 0.30, 0.20, 3600),
        ("b1", "h2", "bob", "human", "human", "scored", 2.0, 4.0, 0.25, 0.26, 7200),
        ("c1", "g1", "claude-1", "ai", "agent", "scored", 0.5, 1.0, 0.40, 0.35, 1800),
        ("c2", "g1", "claude-1", "ai", "agent", "scored", 1.5, 2.5, 0.35, 0.30, 1800),
        ("c3", "g1", "claude-1", "ai", "agent", "scored", 7.0, 8.0, 0.90, 0.70, 3600),
        ("c4", "g1", "claude-1", "ai", "agent", "cancelled", 8.0, 8.5, None, None, 0),
    ]
    attempts = pd.DataFrame(
        [{"id": r[0], "participant_id": r[1], "display_name": r[2], "arm": r[3],
          "participant_kind": r[4], "task": "rt_sentiment", "status": r[5],
          "submitted_at": h(r[6]), "finished_at": h(r[7]), "public_pgr": r[8],
          "private_pgr": r[9], "cpu_seconds": float(r[10])} for r in rows])
    sessions = pd.DataFrame([
        {"participant_id": "h1", "started_at": h(0.5), "ended_at": h(2.5)},  # 2 h
        {"participant_id": "h1", "started_at": h(5.0), "ended_at": None},  # still in
        {"participant_id": "g1", "started_at": h(0.0), "ended_at": h(10.0)},
    ])
    usage = pd.DataFrame([
        {"participant_id": "g1", "recorded_at": h(0.5), "cost_usd": 1.5},
        {"participant_id": "g1", "recorded_at": h(2.0), "cost_usd": 2.0},
        {"participant_id": "g1", "recorded_at": h(7.5), "cost_usd": 4.0},
    ])
    flags = pd.DataFrame([{"attempt_id": "c3", "kind": "probing"}])
    return {"attempts": attempts, "sessions": sessions, "usage": usage, "flags": flags}


@pytest.fixture
def frame():
    data = log()
    with pytest.warns(DataWarning):  # bob never clocked in; ann left a clock-in open
        return attempts_frame(data["attempts"], study_start=T0, sessions=data["sessions"],
                              usage=data["usage"], flags=data["flags"],
                              prices=Prices(cpu_hour=2.0))


def test_the_frame_keeps_finished_attempts_with_every_axis(frame):
    assert list(frame["attempt_id"]) == ["c1", "a1", "c2", "a2", "b1", "a3", "c3"]
    assert set(AXES) <= set(frame.columns)
    row = frame.set_index("attempt_id")
    assert row.loc["a3", "calendar_hours"] == pytest.approx(6.0)
    assert row.loc["a3", "own_hours"] == pytest.approx(5.5)  # ann started (clocked in) at 0.5
    assert row.loc["b1", "own_hours"] == pytest.approx(2.0)  # bob's first submit at 2.0
    assert row.loc["a1", "active_hours"] == pytest.approx(1.5)  # 0.5→2.0
    assert row.loc["a3", "active_hours"] == pytest.approx(3.0)  # 2 h + 5.0→6.0
    # ann's failed a2 was submitted at 3.0, between her clock-ins: flagged, off the axis
    assert row.loc["a2", "clocked_out"] and np.isnan(row.loc["a2", "active_hours"])
    # c4 was cancelled at 8.5 after using no CPU; compute counts every run: 1 + 0.5 + 0.5 h
    assert row.loc["a3", "compute_hours"] == pytest.approx(2.5)  # 1 + 0.5 + 1
    assert row.loc["c2", "dollars"] == pytest.approx(3.5 + 1.0 * 2.0)  # API + CPU hours
    assert row.loc["c3", "dollars"] == pytest.approx(7.5 + 2.0 * 2.0)
    assert row.loc["c3", "flagged"] and not row.loc["c1", "flagged"]


def test_without_clock_events_active_hours_are_unknown_not_zero(frame):
    """bob never clocked in: his attempt has no active-hours value (it used to sit at 0, so
    the arm "reached" every threshold at hour 0)."""
    bob = frame[frame["participant_id"] == "h2"]
    assert bob["active_hours"].isna().all()
    frontier = arm_frontier(frame, x="active_hours")
    humans = frontier[frontier["arm"] == "human"]
    assert list(humans["best"]) == [0.10, 0.30] and humans["x"].min() > 0


@pytest.mark.parametrize("axis", list(AXES))
def test_best_so_far_and_frontier_on_each_axis(frame, axis):
    curves = best_so_far(frame, x=axis)
    claude = curves[curves["participant_id"] == "g1"]
    assert list(claude["best"]) == [0.40, 0.40, 0.90]
    assert list(claude["attempt_id"]) == ["c1", "c1", "c3"]
    ann = curves[curves["participant_id"] == "h1"]
    assert list(ann["best"]) == [0.10, 0.30]
    frontier = arm_frontier(frame, x=axis)
    humans = list(frontier[frontier["arm"] == "human"]["best"])
    assert humans == sorted(humans)
    if axis in ("calendar_hours", "dollars"):  # dollars: CPU hours × 2 (a1 2, b1 4, a3 5)
        assert humans == [0.10, 0.25, 0.30]
    assert value_at(frontier, "ai", frame.set_index("attempt_id").loc["c3", axis]) == 0.90


def test_thresholds_area_and_rates(frame):
    frontier = arm_frontier(frame, x="calendar_hours")
    times = time_to_threshold(frontier, [0.2, 0.5, 0.95], as_of=9.0, end=10.0)
    times = times.set_index(["arm", "threshold"])
    assert times.loc[("human", 0.2), "x"] == 4.0 and times.loc[("ai", 0.2), "x"] == 1.0
    assert times.loc[("ai", 0.5), "x"] == 8.0
    # not reached: censored at the hour it was watched to, "not yet" while the window is open
    assert times.loc[("human", 0.5)].to_dict() == {"x": 9.0, "censored": True,
                                                    "status": "not yet"}
    closed = time_to_threshold(frontier, [0.95], as_of=12.0, end=10.0).set_index("arm")
    assert closed.loc["ai", "status"] == "never" and closed.loc["ai", "x"] == 10.0
    area = area_under_frontier(frontier, end=10.0).set_index("arm")["mean_pgr"]
    # human: 0.10 on [2,4), 0.25 on [4,6), 0.30 on [6,10] → (0.2 + 0.5 + 1.2) / 10
    assert area["human"] == pytest.approx(0.19)
    # ai: 0.40 on [1,8), 0.90 on [8,10] → (2.8 + 1.8) / 10
    assert area["ai"] == pytest.approx(0.46)
    # mid-study, as of hour 5: human (0.2 + 0.25) / 5, over the 5 hours passed, not 10
    early = area_under_frontier(frontier, end=10.0, as_of=5.0).set_index("arm")
    assert early.loc["human", "mean_pgr"] == pytest.approx(0.09)
    assert early.loc["human", "over_hours"] == 5.0
    rates = activity(frame, window_hours=10).set_index("arm")
    assert rates.loc["human", "attempts"] == 4 and rates.loc["human", "failure_rate"] == 0.25
    assert rates.loc["human", "attempts_per_participant_hour"] == pytest.approx(0.2)
    # as of hour 5 the rates divide by 5 elapsed hours, not the whole window
    assert activity(frame, window_hours=168, as_of=5.0).set_index("arm").loc[
        "ai", "attempts_per_hour"] == pytest.approx(3 / 5)
    gap = public_private_gap(frame).set_index("participant_id")
    assert gap.loc["g1", "gap_at_best"] == pytest.approx(0.20)
    assert gap.loc["h2", "gap_at_best"] == pytest.approx(-0.01)


def test_arms_that_never_scored_still_have_rows(frame):
    roster = pd.DataFrame([{"participant_id": "z1", "display_name": "zed", "arm": "baseline",
                            "kind": "agent"}])
    roster = pd.concat([frame[["participant_id", "display_name", "arm", "kind"]]
                        .drop_duplicates(), roster])
    frontier = arm_frontier(frame, x="calendar_hours")
    times = time_to_threshold(frontier, [0.2], as_of=9.0, end=10.0, arms=["baseline"])
    assert times.set_index("arm").loc["baseline", "status"] == "not yet"
    area = area_under_frontier(frontier, end=10.0, arms=["baseline"]).set_index("arm")
    assert area.loc["baseline", "mean_pgr"] == 0.0
    rates = activity(frame, window_hours=10, roster=roster).set_index("arm")
    assert rates.loc["baseline", "attempts"] == 0
    assert rates.loc["baseline", "participants"] == 1
    assert np.isnan(rates.loc["baseline", "failure_rate"])


def _items(rng, n, p_attempt, p_weak=0.6, p_ceiling=0.9, seeds=3):
    return ItemResults(correct=(rng.random((seeds, n)) < p_attempt).astype(float),
                       weak=(rng.random(n) < p_weak).astype(float),
                       ceiling=(rng.random(n) < p_ceiling).astype(float))


def test_the_interval_covers_a_known_pgr():
    rng = np.random.default_rng(1)
    covered = sum(lo <= 0.5 <= hi for lo, hi in
                  (pgr_interval(_items(rng, 600, 0.75)) for _ in range(40)))
    assert covered >= 34  # ~95% nominal; 34/40 leaves room for sampling noise


def test_paired_comparison_tells_a_real_difference_from_none():
    rng = np.random.default_rng(2)
    base = _items(rng, 1000, 0.70)
    better = ItemResults(correct=(rng.random((3, 1000)) < 0.80).astype(float),
                         weak=base.weak, ceiling=base.ceiling)
    same = ItemResults(correct=(rng.random((3, 1000)) < 0.70).astype(float),
                       weak=base.weak, ceiling=base.ceiling)
    real = paired_comparison(better, base)
    # Three seeds: the seed part is known to 2 df, so p cannot be tiny (t with 2 df).
    assert real["diff"] > 0.2 and real["p_value"] < 0.05 and real["ci_low"] > 0
    none = paired_comparison(same, base)
    assert none["p_value"] > 0.05 and none["ci_low"] < 0 < none["ci_high"]


def test_the_paired_test_holds_its_level_when_seeds_shift_whole_runs():
    """Two programs of equal skill on the same items, each seed shifting a whole run: the
    old item+seed bootstrap and a normal seed shift rejected ~10% at α = 0.05."""
    from tests.study.test_interval_coverage import _expit, _population

    rng = np.random.default_rng(3)
    rejected = 0
    for _study in range(150):
        ease, weak_p, ceiling_p = _population(rng, 300)
        weak, ceiling = rng.binomial(16, weak_p) / 16, rng.binomial(16, ceiling_p) / 16

        def run(ease=ease):
            shifts = rng.normal(0, 0.15, (3, 1))
            return (rng.random((3, 300)) < _expit(ease[None, :] + shifts)).astype(float)

        test = paired_comparison(ItemResults(run(), weak, ceiling),
                                 ItemResults(run(), weak, ceiling))
        rejected += test["p_value"] <= 0.05
    assert rejected / 150 <= 0.08

"""Participant-level tables on the hand-built log: the per-participant table, matched
comparisons, Kaplan–Meier time to threshold, and the readable thresholds table."""

import numpy as np
import pandas as pd
import pytest

from analysis.curves import participant_curves, roster_of
from analysis.stats import kaplan_meier, km_time_to_threshold, time_to_threshold
from analysis.tables import matched_comparison, participant_table, thresholds_wide
from tests.analysis.test_curves_and_stats import frame  # noqa: F401  (the fixture)


def test_the_participant_table(frame):  # noqa: F811
    roster = roster_of(frame)
    table = participant_table(frame, roster, t=10.0, axis="calendar_hours",
                              endpoint="private_at_best_public", thresholds=[0.2, 0.5],
                              as_of=10.0, end=168.0).set_index("participant_id")
    assert table.loc["g1", "endpoint"] == pytest.approx(0.70)  # c3's private
    assert table.loc["h1", "endpoint"] == pytest.approx(0.20)  # a3's private, not a1's
    assert table.loc["h1", "failed"] == 1 and table.loc["h1", "attempts"] == 3
    assert table.loc["h1", "clocked_out_attempts"] == 1 and table.loc["h1", "clock_capped"]
    assert not table.loc["h2", "clock_events"]
    assert table.loc["h1", "pgr≥0.2"] == 6.0 and not table.loc["h1", "pgr≥0.2 censored"]
    assert table.loc["h1", "pgr≥0.5"] == 10.0 and table.loc["h1", "pgr≥0.5 censored"]


def test_matched_comparison_best_of_k_and_equal_compute(frame):  # noqa: F811
    table = matched_comparison(frame, roster_of(frame), ["ai", "human"], t=10.0,
                               axis="calendar_hours", endpoint="private_at_best_public")
    table = table.set_index("arm")
    assert table.loc["human", "n"] == 2 and table.loc["human", "best_in_arm"] == 0.26
    # k = 1 (the smaller arm): the expected best of one human is the humans' mean
    assert table.loc["human", "k"] == 1
    assert table.loc["human", "best_of_k"] == pytest.approx((0.20 + 0.26) / 2)
    # equal compute: the arms' median participants used 2.0 (ai) and 2.25 (human) h → 2.0;
    # by 2.0 compute hours ann held a1 (private 0.08) and bob b1 (0.26)
    assert table.loc["ai", "compute_budget_hours"] == pytest.approx(2.0)
    assert table.loc["human", "median_at_budget"] == pytest.approx((0.08 + 0.26) / 2)


def test_kaplan_meier_by_hand():
    km = kaplan_meier(np.array([1.0, 2.0, 2.0, 3.0, 5.0]),
                      np.array([True, False, True, True, False]))
    # at 1: 4/5; at 2 (event before censoring): × 3/4 → 0.6; at 3: 2 at risk → × 1/2 → 0.3
    assert list(km["x"]) == [1.0, 2.0, 3.0]
    assert km["survival"].tolist() == pytest.approx([0.8, 0.6, 0.3])


def test_km_time_to_threshold_over_participants(frame):  # noqa: F811
    curves = participant_curves(frame, x="calendar_hours")
    table = km_time_to_threshold(curves, roster_of(frame), [0.2, 0.5], as_of=10.0, end=168.0)
    table = table.set_index(["arm", "threshold"])
    # humans: bob's private 0.26 at 4, ann's 0.20 at 6 → half reached by 4
    assert table.loc[("human", 0.2), "median_x"] == 4.0
    assert table.loc[("human", 0.2), "share_reached"] == 1.0
    assert table.loc[("human", 0.5), "reached"] == 0
    assert np.isnan(table.loc[("human", 0.5), "median_x"])
    assert table.loc[("ai", 0.5), "median_x"] == 8.0


def test_thresholds_wide_says_why_not():
    steps = pd.DataFrame([{"arm": "ai", "x": 3.0, "best": 0.6}])
    long = time_to_threshold(steps, [0.5, 0.9], as_of=50.0, end=168.0, arms=["human"])
    wide = thresholds_wide(long).set_index("arm")
    assert wide.loc["ai", "pgr≥0.5"] == "3.0"
    assert wide.loc["ai", "pgr≥0.9"] == "not yet by 50.0"
    assert wide.loc["human", "pgr≥0.5"] == "not yet by 50.0"
    assert thresholds_wide(long.iloc[:0]).columns.tolist() == ["arm"]


@pytest.mark.parametrize("people", [4, 5])
def test_the_band_is_the_spread_of_medians_over_resampled_participants(people):
    from analysis.curves import _median_band

    rng = np.random.default_rng(people)
    values = rng.random((people, 7))
    values[:, 3] = values[:, 2]  # repeated columns share their band
    picks = rng.integers(0, people, size=(500, people))
    low, high = _median_band(values, picks, 0.025)
    medians = np.median(values[picks], axis=1)  # the definition, by brute force
    assert np.allclose(low, np.quantile(medians, 0.025, axis=0))
    assert np.allclose(high, np.quantile(medians, 0.975, axis=0))


def test_km_on_another_axis_censors_each_participant_at_their_own_exposure():
    """On the compute axis: ann reached 0.5 after 2 compute hours; bob stopped at 1 compute
    hour without reaching it (censored there, before ann's event: not at risk at 2), and cy
    has no data on the axis (missing, not at 0)."""
    curves = pd.DataFrame([
        {"participant_id": "ann", "display_name": "ann", "arm": "human", "x": 2.0,
         "value": 0.6, "attempt_id": "a1"}])
    roster = pd.DataFrame([{"participant_id": p, "display_name": p, "arm": "human",
                            "kind": "human"} for p in ("ann", "bob", "cy")])
    exposure = pd.Series({"ann": 3.0, "bob": 1.0, "cy": np.nan})
    row = km_time_to_threshold(curves, roster, [0.5], exposure=exposure).iloc[0]
    assert (row["n"], row["reached"], row["missing"]) == (2, 1, 1)
    assert row["share_reached"] == 1.0 and row["median_x"] == 2.0
    # bob at 5 compute hours instead: still at risk at ann's event, so half reached
    later = km_time_to_threshold(curves, roster, [0.5],
                                 exposure=exposure.replace(1.0, 5.0)).iloc[0]
    assert later["share_reached"] == 0.5 and later["median_x"] == 2.0
    nobody = km_time_to_threshold(curves.iloc[:0], roster.iloc[2:], [0.5],
                                  exposure=exposure).iloc[0]
    assert nobody["n"] == 0 and nobody["missing"] == 1 and np.isnan(nobody["share_reached"])

"""The participant as the unit: the honest endpoint, the arm test's calibration and power, and a
9-vs-2 study that must not favour the bigger arm — simulated with fixed seeds, in seconds."""

import functools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from analysis.curves import arm_frontier, expected_best_of_k, participant_curves
from analysis.endpoint import (
    compare_arms,
    designer_line,
    detectable_difference,
    participant_endpoint,
    permutation_p,
    smallest_p,
)
from analysis.stats import time_to_threshold
from tests.analysis.synthetic import WINDOW, synthetic_study


def _endpoints(sizes, studies, *, seed, skill=None):
    """(frame, participant endpoints at the window's end) of `studies` synthetic studies."""
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(studies):
        frame = synthetic_study(rng, sizes, skill=skill, attempts=20)
        frames.append(frame.assign(study=k, participant_id=f"s{k}/" + frame["participant_id"],
                                   attempt_id=f"s{k}/" + frame["attempt_id"]))
    # One call over all the studies at once: participants are independent units, so this
    # is the same as one call per study, and pandas' per-call overhead is paid once.
    everything = pd.concat(frames, ignore_index=True)
    values = participant_endpoint(everything, t=WINDOW, axis="calendar_hours")
    study_of = values["participant_id"].str.split("/").str[0].str[1:].astype(int)
    groups = dict(list(values.groupby(study_of.to_numpy())))
    return [(frame, groups[k]) for k, frame in enumerate(frames)]


@functools.cache
def _null_studies():
    return _endpoints({"ai": 6, "human": 6}, 250, seed=11)


@pytest.mark.parametrize("test", ["permutation", "pooled_t"])
def test_under_no_difference_the_arm_test_is_calibrated(test):
    results = [compare_arms(values, "ai", "human", test=test) for _, values in _null_studies()]
    false_positives = np.mean([r.p_value <= 0.05 for r in results])
    assert 0.02 <= false_positives <= 0.08, false_positives


def test_a_nine_vs_two_study_with_equal_skill_does_not_favour_the_bigger_arm():
    studies = _endpoints({"ai": 9, "human": 2}, 150, seed=12)
    results = [compare_arms(values, "ai", "human") for _, values in studies]
    diffs = np.array([r.diff for r in results])
    assert 0.35 <= np.mean(diffs > 0) <= 0.65
    assert abs(diffs.mean()) < 0.03
    assert np.mean([r.p_value <= 0.05 for r in results]) <= 0.08
    # ...whereas "best in arm" does favour it: the audit measured 0.106 ahead and "reaches 0.5
    # first" in 80% of studies (here 0.109 and 85%)
    best_gap, first = [], []
    for frame, _ in studies[:60]:
        frontier = arm_frontier(frame, x="calendar_hours", score="private_pgr")
        ends = frontier.groupby("arm")["best"].last()
        best_gap.append(ends["ai"] - ends["human"])
        times = time_to_threshold(frontier, [0.5], as_of=WINDOW, end=WINDOW).set_index("arm")
        ai, human = times.loc["ai"], times.loc["human"]
        first.append(not ai["censored"] and (human["censored"] or ai["x"] < human["x"]))
    assert np.mean(best_gap) > 0.07 and np.mean(first) > 0.7


def test_the_arm_test_detects_a_real_difference():
    studies = _endpoints({"ai": 9, "human": 9}, 40, seed=13, skill={"ai": 0.65, "human": 0.45})
    results = [compare_arms(values, "ai", "human") for _, values in studies]
    assert np.mean([r.p_value <= 0.05 for r in results]) >= 0.8
    assert all(r.diff > 0 for r in results)


def test_the_honest_endpoint_never_uses_the_private_score_to_choose():
    frame = synthetic_study(np.random.default_rng(14), {"ai": 3, "human": 3})
    honest = participant_curves(frame, x="calendar_hours")
    shuffled = frame.assign(private_pgr=np.random.default_rng(15).permutation(
        frame["private_pgr"].to_numpy()))
    again = participant_curves(shuffled, x="calendar_hours")
    # the same attempts are chosen whatever the private scores are...
    assert list(honest["attempt_id"]) == list(again["attempt_id"])
    assert list(honest["x"]) == list(again["x"])
    # ...and each step shows its chosen attempt's private score
    private = shuffled.set_index("attempt_id")["private_pgr"]
    assert np.allclose(again["value"], again["attempt_id"].map(private))


def test_the_issue_example_best_public_attempt_with_a_low_private_score():
    frame = pd.DataFrame([
        {"attempt_id": "x1", "participant_id": "p", "display_name": "p", "arm": "ai",
         "kind": "agent", "status": "scored", "calendar_hours": 1.0,
         "public_pgr": 0.30, "private_pgr": 0.50},
        {"attempt_id": "x2", "participant_id": "p", "display_name": "p", "arm": "ai",
         "kind": "agent", "status": "scored", "calendar_hours": 2.0,
         "public_pgr": 0.60, "private_pgr": 0.10}])
    honest = participant_endpoint(frame, t=5, axis="calendar_hours")
    assert honest["value"].tolist() == [0.10]
    oracle = participant_endpoint(frame, t=5, axis="calendar_hours", endpoint="oracle_private")
    assert oracle["value"].tolist() == [0.50]


def test_participants_without_a_score_by_t_count_at_the_floor_or_are_excluded():
    frame = synthetic_study(np.random.default_rng(16), {"ai": 2})
    early = frame["participant_id"].eq("ai-0") & frame["calendar_hours"].gt(5)
    frame = frame[~frame["participant_id"].eq("ai-0") | ~early]  # ai-0 scored only before 5
    first = frame[frame["participant_id"] == "ai-1"]["calendar_hours"].min()
    at = participant_endpoint(frame, t=first / 2, axis="calendar_hours").set_index(
        "participant_id")
    assert at.loc["ai-1", "value"] == 0.0 and not at.loc["ai-1", "scored"]
    excluded = participant_endpoint(frame, t=first / 2, axis="calendar_hours",
                                    no_attempt="exclude").set_index("participant_id")
    assert np.isnan(excluded.loc["ai-1", "value"])
    roster = pd.DataFrame([{"participant_id": "new", "display_name": "new", "arm": "human",
                            "kind": "human", "role": "participant"}])
    enrolled = participant_endpoint(frame, t=WINDOW, axis="calendar_hours",
                                    participants=roster).set_index("participant_id")
    assert enrolled.loc["new", "value"] == 0.0 and enrolled.loc["new", "attempts"] == 0


def test_the_smallest_p_the_design_allows():
    assert smallest_p(2, 9) == pytest.approx(1 / 55)
    assert smallest_p(5, 5) == pytest.approx(2 / 252)
    a, b = np.array([0.9, 0.8]), np.linspace(0.1, 0.3, 9)
    assert permutation_p(a, b) == pytest.approx(1 / 55)  # the most extreme split there is
    assert permutation_p(np.array([0.5, 0.5]), np.full(9, 0.5)) == 1.0


def test_the_permutation_p_is_sampled_beyond_the_exact_limit():
    rng = np.random.default_rng(17)
    a, b = rng.normal(0.5, 0.1, 20), rng.normal(0.5, 0.1, 20)
    assert math.comb(40, 20) > 200_000
    p = permutation_p(a, b, draws=4000)
    assert 0 < p <= 1 and abs(p - compare_arms(pd.DataFrame(
        {"arm": ["a"] * 20 + ["b"] * 20, "value": np.concatenate([a, b])}), "a", "b",
        test="pooled_t").p_value) < 0.1


def test_the_study_designer_line():
    values = pd.DataFrame({"arm": ["ai"] * 9 + ["human"] * 2,
                           "value": np.r_[np.linspace(0.4, 0.6, 9), 0.45, 0.55]})
    result = compare_arms(values, "ai", "human")
    assert result.n_a == 9 and result.n_b == 2 and result.smallest_p == pytest.approx(1 / 55)
    assert 0.1 < result.detectable < 0.5
    assert "can detect an arm difference of" in designer_line(result, alpha=0.05)
    tiny = compare_arms(values[values["arm"].eq("human") | values.index.isin([0, 1])],
                        "ai", "human")
    assert tiny.smallest_p == pytest.approx(2 / 6) and math.isinf(tiny.detectable)
    assert "no difference, however large" in designer_line(tiny, alpha=0.05)
    assert detectable_difference(0.1, 20, 20) < detectable_difference(0.1, 5, 5)


def test_expected_best_of_k_is_exact():
    values = np.array([[0.1], [0.2], [0.4]])
    # subsets of 2: {.1,.2}→.2, {.1,.4}→.4, {.2,.4}→.4
    assert expected_best_of_k(values, 2)[0] == pytest.approx(1.0 / 3)
    assert expected_best_of_k(values, 1)[0] == pytest.approx(0.7 / 3)
    assert expected_best_of_k(values, 3)[0] == pytest.approx(0.4)


def test_the_honest_endpoint_is_not_inflated_by_selection_and_the_oracle_is():
    """The best public attempt's private score is an unbiased read of its true PGR (the
    private noise played no part in choosing it); the running max of private scores is not."""
    studies = _endpoints({"ai": 6, "human": 6}, 40, seed=18)
    honest, oracle = [], []
    for frame, _ in studies:
        true = frame.set_index("attempt_id")["true_pgr"]
        for endpoint, out in (("private_at_best_public", honest), ("oracle_private", oracle)):
            held = participant_curves(frame, x="calendar_hours", endpoint=endpoint) \
                .groupby("participant_id").last()
            out.extend(held["value"] - held["attempt_id"].map(true))
    assert abs(np.mean(honest)) < 0.01
    assert np.mean(oracle) > 0.03


def _pooled_t_p(values: pd.DataFrame, study: pd.Series) -> np.ndarray:
    """Per study, the two-sided pooled-t p of ai vs human (vectorised over studies; the same
    test `compare_arms(test="pooled_t")` runs one study at a time)."""
    stats = values.groupby([study, values["arm"]])["value"].agg(["mean", "var", "count"])
    ai, human = stats.xs("ai", level=1), stats.xs("human", level=1)
    df = ai["count"] + human["count"] - 2
    pooled = ((ai["count"] - 1) * ai["var"] + (human["count"] - 1) * human["var"]) / df
    t = (ai["mean"] - human["mean"]) / np.sqrt(pooled * (1 / ai["count"] + 1 / human["count"]))
    return np.asarray(2 * sps.t.sf(np.abs(t), df))


def test_looking_every_eight_hours_would_find_a_difference_far_more_often_than_alpha():
    """Why only the endpoint is confirmatory: 21 looks at null studies reject at some look
    much more often than the 5% one look does."""
    studies = _null_studies()
    frames = pd.concat([f for f, _ in studies], ignore_index=True)
    last = participant_endpoint(frames, t=WINDOW, axis="calendar_hours")
    study = last["participant_id"].str.split("/").str[0]
    once = _pooled_t_p(last, study) <= 0.05
    assert np.isclose(once.mean(), np.mean(
        [compare_arms(v, "ai", "human", test="pooled_t").p_value <= 0.05 for _, v in studies]))
    ever = np.zeros(len(studies), bool)
    for hour in np.arange(8.0, WINDOW + 1, 8.0):
        values = participant_endpoint(frames, t=hour, axis="calendar_hours")
        ever |= _pooled_t_p(values, study) <= 0.05
    assert ever.mean() > 2 * max(once.mean(), 0.05)

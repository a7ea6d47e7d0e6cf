"""Interim looks with alpha spending (analysis.sequential): looked at every hour for 7 days
under no true difference, the group-sequential permutation test claims a difference in at most
α of studies — where testing each hourly look at α does in far more."""

import math
from pathlib import Path

import numpy as np
import pytest

from analysis.endpoint import _splits
from analysis.sequential import alpha_spent, endpoint_matrix, sequential_test
from study.errors import InvalidError
from study.protocol import load_protocol, parse_protocol
from tests.analysis.synthetic import WINDOW, synthetic_study

HOURLY = [float(h) for h in range(1, int(WINDOW) + 1)]


def test_spending_functions_spend_alpha_by_the_end_and_little_early():
    tau = np.array([0.0, 0.1, 0.5, 1.0])
    obf, pocock = alpha_spent(tau, 0.05, "obrien_fleming"), alpha_spent(tau, 0.05, "pocock")
    assert obf[0] == 0 and obf[-1] == pytest.approx(0.05) and pocock[-1] == pytest.approx(0.05)
    assert np.all(np.diff(obf) > 0) and obf[1] < 1e-6 < pocock[1]
    with pytest.raises(ValueError, match="spending"):
        alpha_spent(tau, 0.05, "haybittle")


def _looked_at(rng, sizes, skill=None):
    frame = synthetic_study(rng, sizes, skill=skill, attempts=30)
    values = endpoint_matrix(frame, None, HOURLY, axis="calendar_hours",
                             endpoint="private_at_best_public", no_attempt="floor")
    arms = list(sizes)
    grid = values.drop(columns="arm")
    return (grid[values["arm"].eq(arms[0])].to_numpy(), grid[values["arm"].eq(arms[1])].to_numpy())


STUDIES = 300


@pytest.fixture(scope="module")
def null_studies():
    """Equal arms of 6, each participant's endpoint read at every hour of the window."""
    rng = np.random.default_rng(13)
    return [_looked_at(rng, {"human": 6, "ai": 6}) for _ in range(STUDIES)]


@pytest.mark.parametrize("spending", ["obrien_fleming", "pocock"])
def test_hourly_looks_under_the_null_keep_the_false_positive_rate_within_alpha(
        null_studies, spending):
    studies, alpha = STUDIES, 0.05
    claimed, naive = 0, 0
    for a, b in null_studies:
        looks = sequential_test(a, b, HOURLY, WINDOW, alpha=alpha, spending=spending)
        claimed += any(look.crossed for look in looks)
        naive += any(look.p_value <= alpha for look in looks)
    se = math.sqrt(alpha * (1 - alpha) / studies)
    assert claimed / studies <= alpha + 2 * se, f"{claimed}/{studies} crossed"
    # The same studies, each hourly look tested at α on its own: the peeking problem is real
    # here, so the bound above is not vacuous.
    assert naive / studies > 2.5 * alpha, f"naive {naive}/{studies}"


def test_every_relabelling_counted_never_more_than_alpha_cross():
    """The exact guarantee behind the simulation: over all C(12, 6) relabellings of one
    study's trajectories, the share that would ever cross is within α."""
    a, b = _looked_at(np.random.default_rng(5), {"human": 6, "ai": 6})
    values = np.vstack([a, b])
    crossed = 0
    for pick in _splits(12, 6)[::7]:
        rest = np.setdiff1d(np.arange(12), pick)
        looks = sequential_test(values[pick], values[rest], HOURLY, WINDOW, alpha=0.05,
                                spending="obrien_fleming")
        crossed += any(look.crossed for look in looks)
    assert crossed / len(_splits(12, 6)[::7]) <= 0.05 + 1e-9


def test_a_real_difference_crosses_a_boundary_before_the_end():
    a, b = _looked_at(np.random.default_rng(7), {"ai": 6, "human": 6},
                      skill={"ai": 0.75, "human": 0.35})
    looks = sequential_test(a, b, HOURLY, WINDOW, alpha=0.05, spending="obrien_fleming")
    first = next(look for look in looks if look.crossed)
    assert first.t < WINDOW and first.diff > 0
    assert sum(look.crossed for look in looks) == 1  # the test stops at its first crossing
    assert looks[0].boundary == math.inf  # nothing is spent at the first hour


def test_a_design_too_small_to_spend_never_crosses():
    """2 humans against 9 agents: 55 relabellings, so O'Brien–Fleming allows no crossing until
    α(τ)·55 reaches 1 — an honest "cannot", not a false claim."""
    a, b = _looked_at(np.random.default_rng(8), {"human": 2, "ai": 9},
                      skill={"human": 0.9, "ai": 0.3})
    looks = sequential_test(a, b, HOURLY, WINDOW, alpha=0.05, spending="obrien_fleming")
    early = [look for look in looks if look.alpha_spent * 55 < 1]
    assert early and all(math.isinf(look.boundary) and not look.crossed for look in early)


def test_the_protocol_states_looks_with_a_spending_function_or_not_at_all():
    text = Path("protocols/default.toml").read_text()
    assert load_protocol(Path("protocols/default.toml")).analysis.spending == "none"
    looks = text.replace('spending = "none"', 'spending = "obrien_fleming"').replace(
        "# interim_looks = [48, 96]", "interim_looks = [48, 96]")
    assert parse_protocol(looks).analysis.interim_looks == [48.0, 96.0]
    unspent = text.replace("# interim_looks = [48, 96]", "interim_looks = [48, 96]")
    with pytest.raises(InvalidError, match="spending function"):
        parse_protocol(unspent)

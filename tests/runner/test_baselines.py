"""Every shipped baseline runs through the real method process and scores in a sane range."""

import math

import pytest

from runner.attempt import run_attempt
from runner.method import Budget
from tests.conftest import REPO

BASELINES = ("vanilla", "confident", "logconf", "bootstrap", "zero_shot")


@pytest.mark.parametrize("name", BASELINES)
def test_baseline_scores_sanely_on_the_small_pair(name, rt_task, small_pair):
    result = run_attempt(REPO / "baselines" / f"{name}.py", rt_task, seeds=[5, 6],
                         pair=small_pair, budget=Budget(seconds=120, memory_mb=4096))
    assert result.status == "scored", result.error
    score = result.scores["all"]
    assert 0.5 < score.accuracy < 0.95
    assert math.isfinite(score.pgr) and -3 < score.pgr < 3
    assert len(score.pgr_per_seed) == 2


def test_zero_shot_never_reads_the_teacher():
    source = (REPO / "baselines" / "zero_shot.py").read_text()
    assert "weak_soft_labels" not in source

"""Public feedback coarse in items: what a participant is shown of a public part."""

import math

import pytest

from study.feedback import best_coarse, coarse_part

# A public part of 975 items with the rt_sentiment small pair's floor and ceiling.
PART = {"n": 975, "weak": 0.6726, "ceiling": 0.7471, "pgr_se": 0.031, "pgr_ci95": (0.05, 0.61),
        "pgr_per_seed": [0.3, 0.32], "subsets": {"short": {"n": 40, "accuracy": 0.7}}}


def part_with(correct: float) -> dict:
    accuracy = correct / PART["n"]
    return {**PART, "accuracy": accuracy,
            "pgr": (accuracy - PART["weak"]) / (PART["ceiling"] - PART["weak"])}


def test_the_count_is_floored_to_a_multiple_of_the_step():
    shown = coarse_part(part_with(687.5), 10)
    assert math.isclose(shown["accuracy"] * 975, 680)
    assert shown["subsets"] == {} and shown["pgr_per_seed"] == []
    assert shown["step_items"] == 10


@pytest.mark.parametrize("count", [680, 681, 684.5, 689])
def test_one_flip_inside_a_step_changes_nothing_shown(count):
    assert coarse_part(part_with(count), 10) == coarse_part(part_with(680), 10)


def test_crossing_a_step_moves_the_score_by_one_step():
    below, above = coarse_part(part_with(689), 10), coarse_part(part_with(690), 10)
    step = 10 / 975 / (PART["ceiling"] - PART["weak"])
    assert math.isclose(above["pgr"] - below["pgr"], step)


def test_the_interval_is_centred_on_the_coarse_score_in_whole_steps():
    shown = coarse_part(part_with(687), 10)
    step = 10 / 975 / (PART["ceiling"] - PART["weak"])
    lo, hi = shown["pgr_ci95"]
    assert math.isclose((lo + hi) / 2, shown["pgr"])
    half = (hi - lo) / 2
    assert math.isclose(half / step, round(half / step)) and half >= (0.61 - 0.05) / 2
    assert math.isclose(shown["pgr_se"] / step, round(shown["pgr_se"] / step))


def test_a_step_of_one_item_shows_the_part_unchanged():
    part = part_with(687)
    assert coarse_part(part, 1) is part


def test_the_board_ranks_by_the_coarse_score_earliest_first():
    def row(pid, attempt, correct, t):
        return {"participant_id": pid, "attempt_id": attempt, "finished_at": t,
                "scores_json": {"public": part_with(correct)}, "public_pgr": 0.0}
    rows = [row("p1", "a1", 683, 1), row("p1", "a2", 688, 2),  # same step: a1 stays best
            row("p2", "b1", 695, 3)]
    board = best_coarse(rows, 10)
    assert [(r["participant_id"], r["attempt_id"], r["n"]) for r in board] == \
        [("p2", "b1", 1), ("p1", "a1", 2)]

"""The "best baseline" line is the best shipped baseline as this study ran it — recognised by
its code's sha256, chosen by public score, drawn at the endpoint's score and labelled — never
the automated-baseline arm's tuned variants, and absent when no shipped baseline ran."""

import hashlib

import pandas as pd
import pytest

from analysis.reference import SHIPPED, best_shipped, shipped_baselines
from analysis.report import references


def sha(name: str) -> str:
    return hashlib.sha256((SHIPPED / f"{name}.py").read_bytes()).hexdigest()


def run(aid, code, public, private, *, arm="automated-baseline", status="scored"):
    return {"attempt_id": aid, "participant_id": "bot", "arm": arm, "status": status,
            "code_sha256": code, "public_pgr": public, "private_pgr": private}


def test_the_line_is_the_best_shipped_baseline_not_a_tuned_variant():
    frame = pd.DataFrame([
        run("v1", sha("vanilla"), 0.30, 0.28), run("v2", sha("vanilla"), 0.34, 0.30),
        run("l1", sha("logconf"), 0.60, 0.55),
        run("t1", "a-tuned-logconf-variant", 0.90, 0.85),  # ALPHA rewritten: not shipped
        run("h1", sha("confident"), 0.95, 0.10, arm="human", status="failed")])
    lines = references(frame)
    assert lines == {"weak floor": 0.0, "best shipped baseline: logconf (1 run)": 0.55,
                     "ceiling": 1.0}
    # the plan may pre-register which shipped baselines count
    only = references(frame, baselines=["vanilla"])
    assert only["best shipped baseline: vanilla (2 runs)"] == pytest.approx(0.29)
    # read on the public score when the endpoint is what participants see
    assert references(frame, endpoint="public_pgr")[
        "best shipped baseline: logconf (1 run)"] == 0.60


def test_chosen_by_public_score_never_by_the_held_out_one():
    frame = pd.DataFrame([run("l1", sha("logconf"), 0.60, 0.20),
                          run("c1", sha("confident"), 0.50, 0.70)])
    best = best_shipped(frame, shipped_baselines())
    assert (best.name, best.value) == ("logconf", 0.20)


def test_no_shipped_baseline_ran_no_line():
    frame = pd.DataFrame([run("t1", "a-tuned-variant", 0.9, 0.85)])
    assert references(frame) == {"weak floor": 0.0, "ceiling": 1.0}

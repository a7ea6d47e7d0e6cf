"""Feedback that resists label probing, and audits of top methods, over the real server."""

import time

import pytest

from study.records import AttemptStatus
from tests.conftest import REPO
from tests.e2e.conftest import VANILLA, running_server
from tests.e2e.test_probing import PROBE

INTEGRITY = REPO / "tests" / "protocols" / "integrity.toml"

# Predictions that depend on neither seed nor teacher (label probing is tested in
# test_probing.py, with the same method).
FIXED = PROBE.format(flips=[])


@pytest.fixture
def live(tmp_path, rt_task):
    with running_server(tmp_path, INTEGRITY) as server:
        yield server


def wait_audits(admin, count, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [a for a in admin.audits() if a.status in ("done", "failed")]
        if len(done) >= count:
            return admin.audits()
        time.sleep(0.3)
    raise AssertionError(f"audits not done: {admin.audits()}")


def test_the_ladder_hides_a_score_that_does_not_improve(live):
    vic = live.participant("vic")
    first = vic.wait(vic.submit(FIXED, "rt_sentiment").id, poll=0.1)
    again = vic.wait(vic.submit(FIXED, "rt_sentiment").id, poll=0.1)
    assert first.public is not None and first.released
    assert again.status is AttemptStatus.SCORED and not again.released
    assert again.public is None and "Ladder" in again.public_withheld
    board = vic.leaderboard()
    assert [r.best_attempt_id for r in board] == [first.id]
    with live.admin() as admin:
        assert admin.attempt(again.id).public is not None  # analysts still see it


def test_teacher_ablation_flags_a_teacher_free_method_and_not_vanilla(live):
    wes, xia = live.participant("wes"), live.participant("xia")
    free = wes.wait(wes.submit((REPO / "baselines" / "zero_shot.py").read_text(),
                               "rt_sentiment").id, poll=0.1)
    vanilla = xia.wait(xia.submit(VANILLA, "rt_sentiment").id, poll=0.1)
    assert free.status is vanilla.status is AttemptStatus.SCORED
    with live.admin() as admin:
        audits = wait_audits(admin, 2)
        assert {a.attempt_id for a in audits if a.kind == "teacher_ablation"} == \
            {free.id, vanilla.id}
        flagged = {f.attempt_id for f in admin.flags() if f.kind == "ignores_teacher"}
    assert flagged == {free.id}


def test_disqualification_is_an_audited_event(live):
    yan = live.participant("yan")
    view = yan.wait(yan.submit(VANILLA, "rt_sentiment").id, poll=0.1)
    with live.admin() as admin:
        out = admin.disqualify(view.id, "read labels off the public score")
        assert out.disqualified
    assert yan.leaderboard() == []
    live.stop()
    import duckdb

    from study.server import db_path
    con = duckdb.connect(str(db_path(live.data_dir)), read_only=True)
    actor, payload = con.execute("SELECT actor, payload FROM events WHERE kind = "
                                 "'attempt_disqualified'").fetchone()
    assert actor.startswith("p_") and "read labels off the public score" in payload


def test_static_scan_flags_are_shown_to_analysts(live):
    zed = live.participant("zed")
    sneaky = "import os\n\ndef run(ctx):\n    print(os.listdir('/'))\n" \
             "    return [0.5] * ctx.task.sizes['test']\n"
    view = zed.submit(sneaky, "rt_sentiment")
    with live.admin() as admin:
        (flag,) = [f for f in admin.flags() if f.attempt_id == view.id]
    assert flag.kind == "static_scan"
    assert flag.detail["findings"][0]["code"] == "print(os.listdir('/'))"


def test_finalize_reruns_top_methods_on_held_out_tasks_and_reveals_private(live):
    ava, ben = live.participant("ava"), live.participant("ben", arm="ai", kind="agent")
    a = ava.wait(ava.submit(VANILLA, "rt_sentiment").id, poll=0.1)
    b = ben.wait(ben.submit((REPO / "baselines" / "logconf.py").read_text(),
                            "rt_sentiment").id, poll=0.1)
    assert ava.attempt(a.id).private is None
    with live.admin() as admin:
        wait_audits(admin, 2)  # the automatic teacher ablations of the two new bests
        out = admin.finalize(force=True)
        assert out == {"attempts": 2, "audits_queued": 2}
        wait_audits(admin, 4)
        matrix = {r.attempt_id: r for r in admin.generalization()}
    assert set(matrix) == {a.id, b.id}
    for row in matrix.values():
        assert row.held_out["convention_party"] is not None
        assert row.hill_climb_private is not None
    assert ava.attempt(a.id).private is not None  # revealed to everyone after the window

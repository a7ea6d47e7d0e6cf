"""A protocol change after start is an audited event that forces a re-score."""

import duckdb
import pytest

from participants.sdk import ArenaAPIError
from study.records import AttemptStatus
from study.server import db_path
from tests.e2e.conftest import SLEEPY, SMALL, VANILLA


def test_amend_is_audited_and_rescores(server):
    sam = server.participant("sam")
    before = sam.wait(sam.submit(VANILLA, "rt_sentiment").id, poll=0.1)
    assert before.public.n == pytest.approx(1000, abs=60)
    original = SMALL.read_text()
    amended = original.replace("public_fraction = 0.5", "public_fraction = 0.3")
    with pytest.raises(ArenaAPIError) as info:
        sam.amend_protocol(amended, reason="participants may not")
    assert info.value.status == 403
    with server.admin() as admin:
        with pytest.raises(ArenaAPIError) as same:
            admin.amend_protocol(original, reason="no change")
        assert same.value.status == 409
        with pytest.raises(ArenaAPIError) as tasks:
            admin.amend_protocol(original.replace('["rt_sentiment"]', '["tweet_sentiment"]'),
                                 reason="swap task")
        assert tasks.value.status == 422 and "fixed for a study's life" in tasks.value.message
        with pytest.raises(ArenaAPIError) as recipe:  # the LM recipe the baselines rest on
            admin.amend_protocol(original + "\n[lm]\nepochs = 2\n", reason="retrain")
        assert recipe.value.status == 422 and "[lm]" in recipe.value.message
        out = admin.amend_protocol(amended, reason="less feedback against probing")
        assert out["rescored"] == 1
        study = admin.study()
    assert study.feedback["public_fraction"] == 0.3 and study.protocol_hash == out["protocol_hash"]
    after = sam.attempt(before.id)
    assert after.public.n == pytest.approx(600, abs=60)
    server.stop()
    con = duckdb.connect(str(db_path(server.data_dir)), read_only=True)
    changed = con.execute("SELECT actor, payload FROM events WHERE kind = 'protocol_changed'"
                          ).fetchall()
    assert len(changed) == 1 and "less feedback against probing" in changed[0][1]
    assert con.execute("SELECT count(*) FROM events WHERE kind = 'attempt_rescored'"
                       ).fetchone()[0] == 1


def test_an_amended_time_limit_reaches_the_workers(server):
    """The limit a running server applies is the live protocol's, not the one it started with."""
    ned = server.participant("ned")
    amended = SMALL.read_text().replace("attempt_seconds = 60", "attempt_seconds = 3")
    with server.admin() as admin:
        admin.amend_protocol(amended, reason="shorter seeds")
    view = ned.wait(ned.submit(SLEEPY.format(seconds=30), "rt_sentiment").id, poll=0.2)
    assert view.status is AttemptStatus.TIMED_OUT
    assert "time budget of 3 s" in view.error

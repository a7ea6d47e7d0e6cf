"""Submit → queued → running → scored over HTTP, and the rows in DuckDB agree with the API."""

import json
import tempfile
import time

import duckdb
import pytest

from participants.sdk import ArenaAPIError
from study.feedback import coarse_public_pgr, pgr_step
from study.protocol import load_protocol
from study.records import AttemptStatus
from study.server import db_path
from tests.e2e.conftest import SLEEPY, SMALL, VANILLA


def test_submit_runs_and_scores_and_the_store_agrees(server):
    alice = server.participant("alice")
    view = alice.submit(SLEEPY.format(seconds=1.5), "rt_sentiment")
    assert view.status is AttemptStatus.QUEUED and view.queue_position == 1
    seen = set()
    done = alice.wait(view.id, poll=0.1, on_update=lambda v: seen.add(v.status))
    assert AttemptStatus.RUNNING in seen
    assert done.status is AttemptStatus.SCORED, done.error
    assert done.public is not None and done.public.pgr is not None
    assert done.private is None  # participants never see private scores during the window
    assert round(done.public.pgr, 2) == done.public.pgr  # rounded per protocol
    assert len(done.seeds) == 2 and done.source.startswith("\nimport time")

    with server.admin() as admin:
        data = admin.export("attempts")
    con = duckdb.connect()
    con.execute("CREATE TABLE a AS SELECT * FROM read_parquet(?)", [_tmp_parquet(data)])
    row = con.execute("SELECT status, public_pgr, private_pgr, seeds, display_name, "
                      "scores_json FROM a WHERE id = ?", [view.id]).fetchone()
    assert row[0] == "scored" and row[4] == "alice"
    # The store keeps the exact score; the participant sees it coarse in items, then rounded.
    step = load_protocol(SMALL).feedback.public_step_items
    assert round(coarse_public_pgr(row[5], step), 2) == done.public.pgr
    assert abs(row[1] - done.public.pgr) <= pgr_step(json.loads(row[5])["public"], step) + 0.005
    assert row[2] is not None  # the analyst export carries the private score

    server.stop()
    stored = duckdb.connect(str(db_path(server.data_dir)), read_only=True)
    kinds = [r[0] for r in stored.execute(
        "SELECT kind FROM events WHERE attempt_id = ? AND kind LIKE 'attempt_%' ORDER BY id",
        [view.id]).fetchall()]
    assert kinds == ["attempt_submitted", "attempt_started", "attempt_scored"]
    assert stored.execute("SELECT count(*) FROM seed_results WHERE attempt_id = ? AND "
                          "probs IS NOT NULL", [view.id]).fetchone()[0] == 2


def _tmp_parquet(data: bytes) -> str:
    with tempfile.NamedTemporaryFile(suffix=".parquet", delete=False) as fh:
        fh.write(data)
    return fh.name


def test_a_broken_method_fails_with_its_traceback(server):
    bob = server.participant("bob")
    view = bob.submit("def run(ctx):\n    raise RuntimeError('kaput')\n", "rt_sentiment")
    done = bob.wait(view.id, poll=0.1)
    assert done.status is AttemptStatus.FAILED
    assert done.error == f"seed {done.seeds[0]}: RuntimeError: kaput"
    assert "kaput" in done.traceback


def test_cancel_a_queued_attempt(server):
    carol = server.participant("carol")
    first = carol.submit(SLEEPY.format(seconds=3), "rt_sentiment")
    second = carol.submit(VANILLA, "rt_sentiment")
    cancelled = carol.cancel(second.id)
    assert cancelled.status is AttemptStatus.CANCELLED
    with pytest.raises(ArenaAPIError) as info:
        carol.cancel(second.id)
    assert info.value.status == 409
    carol.cancel(first.id)
    time.sleep(0.5)
    assert carol.attempt(first.id).status is AttemptStatus.CANCELLED


def test_clock_and_forum_link_the_servers_score(server):
    dan = server.participant("dan")
    assert dan.clock_in().clocked_in_since is not None
    with pytest.raises(ArenaAPIError) as info:
        dan.clock_in()
    assert info.value.status == 409
    time.sleep(0.3)
    assert dan.clock_out().active_seconds >= 0.3
    view = dan.wait(dan.submit(VANILLA, "rt_sentiment").id, poll=0.1)
    post = dan.post("result", "vanilla works", "**it scores**", attempt_id=view.id)
    assert post.attempt_public_pgr == view.public.pgr
    assert [p.id for p in dan.forum("vanilla")] == [post.id]
    assert dan.forum("nothing-like-this") == []
    assert "def run(ctx)" in dan.baselines()["vanilla"]
    assert "ctx.strong_features" in dan.brief()
    (task,) = dan.tasks()
    assert task.name == "rt_sentiment" and task.weak < task.ceiling


def test_what_a_method_logs_reaches_its_author(server):
    lia = server.participant("lia")
    logging_method = VANILLA.replace(
        "    head = ctx.lib.train_head",
        "    for step in range(3):\n        ctx.log('loss', 1.0 / (step + 1), step)\n"
        "    ctx.log('nan is dropped', float('nan'))\n    head = ctx.lib.train_head")
    assert logging_method != VANILLA
    done = lia.wait(lia.submit(logging_method, "rt_sentiment").id, poll=0.1)
    assert done.status is AttemptStatus.SCORED, done.error
    losses = [m for m in done.metrics if m["name"] == "loss"]
    assert len(losses) == 3 * len(done.seeds)
    assert {m["seed"] for m in losses} == set(done.seeds)
    assert sorted({m["value"] for m in losses}) == [1 / 3, 0.5, 1.0]
    assert not any(m["name"] == "nan is dropped" for m in done.metrics)

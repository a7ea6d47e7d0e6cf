"""The workspace's server side through the real door: sessions survive the browser, drafts are
kept per participant, a source without `run` costs nothing, a running attempt reports each
seed live, every seed's output is kept, tracebacks carry no host paths, /docs works offline."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from participants.sdk import ArenaAPIError, ArenaClient
from study.api_workspace import DOCS_ASSETS
from tests.conftest import REPO
from tests.e2e.conftest import make_server, wait_for

# Reports progress and a loss per step, prints a line per seed, and is slow enough to watch.
WATCHED = """
import time
def run(ctx):
    print(f"seed {ctx.seed} starting")
    for step in range(8):
        ctx.progress(step + 1, 8)
        ctx.log("loss", 1.0 / (step + 1), step=step)
        time.sleep(0.4)
    head = ctx.lib.train_head(ctx.strong_features("train"), ctx.weak_soft_labels, seed=ctx.seed)
    print(f"seed {ctx.seed} done")
    return head.predict_proba(ctx.strong_features("test"))
"""
BROKEN = "def run(ctx):\n    raise RuntimeError('boom at ' + __file__)\n"


@pytest.fixture(scope="module")
def arena(tmp_path_factory, rt_task):
    live = make_server(tmp_path_factory.mktemp("arena"))
    live.start()
    yield live
    live.stop()


def test_a_session_signs_in_until_it_is_ended_and_dies_with_its_token(arena):
    ana = arena.participant("ana-session")
    opened = ana.open_session()
    assert opened.session.startswith("w2sw_") and opened.session != ana.token
    assert opened.participant.id == ana.participant_id
    browser = ArenaClient(arena.url, opened.session, retries=0)
    assert browser.me().participant.id == ana.participant_id
    with pytest.raises(ArenaAPIError) as exc:  # a session cannot open further sessions
        browser.open_session()
    assert exc.value.status == 401
    browser.end_session()
    with pytest.raises(ArenaAPIError) as exc:
        browser.me()
    assert exc.value.status == 401 and "ended" in exc.value.message
    # Revoking the participant token ends every session it opened.
    second = ArenaClient(arena.url, ana.open_session().session, retries=0)
    assert second.me().participant.id == ana.participant_id
    with arena.admin() as admin:
        admin.revoke_token(ana.token_id)
    with pytest.raises(ArenaAPIError) as exc:
        second.me()
    assert exc.value.status == 401 and "revoked" in exc.value.message


def test_a_session_ends_no_later_than_its_token(arena):
    short = arena.participant("sam-short", hours=1)
    opened = short.open_session()
    assert opened.expires_at <= dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)


def test_drafts_are_kept_per_participant_and_bounded(arena):
    dee, eli = arena.participant("dee-draft"), arena.participant("eli-draft")
    assert dee.draft() is None
    dee.save_draft("def run(ctx):\n    pass  # v1\n", task="rt_sentiment", origin="baseline x")
    dee.save_draft("def run(ctx):\n    pass  # v2\n", task="rt_sentiment", origin="baseline x")
    got = dee.draft()
    assert got is not None and got.source.endswith("# v2\n") and got.origin == "baseline x"
    assert eli.draft() is None  # one participant never reads another's draft
    with pytest.raises(ArenaAPIError) as exc:
        dee.save_draft("#" * 20_001)  # the study's max_source_bytes
    assert exc.value.status == 413
    assert dee.draft().source.endswith("# v2\n")  # a refused save loses nothing
    # Saves within half a minute coalesce: the analysts' export holds one row for both.
    with arena.admin() as admin:
        rows = pq.read_table(io.BytesIO(admin.export("drafts"))).to_pylist()
    mine = [r for r in rows if r["participant_id"] == dee.participant_id]
    assert len(mine) == 1 and mine[0]["arm"] == "human"


def test_a_source_without_run_is_refused_before_it_costs_an_attempt(arena):
    fay = arena.participant("fay-norun")
    before = fay.quota().attempts_left
    for source, words in (("def fit(ctx):\n    return []\n", "no top-level `run`"),
                          ("def run(ctx)\n    return []\n", "line 1")):
        with pytest.raises(ArenaAPIError) as exc:
            fay.submit(source, "rt_sentiment")
        assert exc.value.status == 422 and words in exc.value.message
    assert fay.quota().attempts_left == before and fay.attempts() == []


def test_a_running_attempt_reports_each_seed_live_and_keeps_every_output(arena):
    gus = arena.participant("gus-live")
    view = gus.submit(WATCHED, "rt_sentiment")

    def moving():
        v = gus.attempt(view.id)
        running = [r for r in v.seed_runs if r.state == "running" and (r.done or 0) > 0]
        return v if running and v.metrics else None

    live = wait_for(moving)
    run = next(r for r in live.seed_runs if r.state == "running")
    assert 0 < run.done <= run.total == 8
    assert {m["name"] for m in live.metrics} == {"loss"}
    # Progress moves between two polls of the same seed.
    later = wait_for(lambda: (v := gus.attempt(view.id)).seed_runs and any(
        r.seed == run.seed and ((r.done or 0) > run.done or r.state != "running")
        for r in v.seed_runs) and v)
    assert later is not None
    done = gus.wait(view.id, timeout=180, poll=0.5)
    assert done.status.value == "scored", done.error
    assert [r.seed for r in done.seed_runs] == done.seeds
    for r in done.seed_runs:
        assert r.state == "ok" and f"seed {r.seed} done" in r.log_tail
    assert {m["seed"] for m in done.metrics} == set(done.seeds)
    assert done.public.pgr_per_seed == []  # one score per seed would multiply probing
    with arena.admin() as admin:
        staff = admin.attempt(view.id)
    assert len(staff.public.pgr_per_seed) == len(done.seeds)


def test_failed_attempt_shows_no_host_paths_and_links_its_parent(arena):
    hal = arena.participant("hal-paths")
    first = hal.wait(hal.submit(BROKEN, "rt_sentiment").id, timeout=120, poll=0.5)
    assert first.status.value == "failed" and first.traceback
    shown = first.traceback + (first.error or "") + "".join(
        r.log_tail + (r.error or "") for r in first.seed_runs)
    assert "boom at method.py" in shown
    for host in (str(REPO), str(Path.home())):
        assert host not in shown
    assert [r.state for r in first.seed_runs][1:] == ["not run"]  # stopped at the broken seed
    child = hal.submit(BROKEN + "# edited\n", "rt_sentiment", parent_id=first.id)
    assert hal.attempt(child.id).parent_id == first.id
    other = arena.participant("ivy-other")
    with pytest.raises(ArenaAPIError) as exc:  # someone else's attempt is not a parent
        other.submit(BROKEN, "rt_sentiment", parent_id=first.id)
    assert exc.value.status == 404


def test_api_docs_load_their_assets_from_this_server(arena):
    page = httpx.get(f"{arena.url}/docs").text
    assert f"{DOCS_ASSETS}/swagger-ui-bundle.js" in page and "cdn" not in page.lower()
    js = httpx.get(f"{arena.url}{DOCS_ASSETS}/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000

"""Page logic with Streamlit's AppTest against a real study server (over HTTP, via the SDK)."""

from __future__ import annotations

import uuid

import pytest

from participants.sdk import ArenaAPIError
from participants.workspace.errors import describe_error
from tests.e2e.conftest import VANILLA
from tests.participants.conftest import confirm_if_clocked_out, open_page

FAILS = "def run(ctx):\n    raise ValueError('no')\n"
CONSTANT = """
import numpy as np
def run(ctx):
    return np.full(len(ctx.texts("test")), 0.5)
"""


def texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


def submit_from_editor(at, source: str, note: str = ""):
    open_page(at, "editor")
    at.session_state["editor_source"] = source
    at.text_input(key="editor_note").input(note)
    at.button(key="editor_submit").click().run()
    confirm_if_clocked_out(at)
    assert not at.exception, at.exception
    return at


# ----------------------------------------------------------------------------- sign in
def test_bad_token_is_refused_with_a_clear_message(arena, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.participants.conftest import APP
    monkeypatch.setenv("ARENA_URL", arena.url)
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.text_input(key="signin_token").input("not-a-token")
    at.button(key="signin_submit").click().run()
    assert any("not accepted" in e and "unknown token" in e for e in texts(at.error))
    assert at.session_state["auth_token"] is None
    assert [t.value for t in at.title] == ["w2s-arena workspace"]  # still the sign-in page


def test_revoked_token_signs_out_with_the_reason(arena, app_for):
    rae = arena.participant("rae-revoked")
    at = app_for(rae)
    assert [t.value for t in at.title] == ["Task brief"]
    with arena.admin() as admin:
        admin.revoke_token(rae.token_id)
    open_page(at, "editor")  # the page's first call gets a 401
    at.run()
    assert at.session_state["auth_token"] is None
    assert any("revoked" in w for w in texts(at.warning))


# ----------------------------------------------------------------------------- brief, editor
def test_brief_renders_tasks_docs_and_baselines_and_opens_one(arena, app_for):
    at = app_for(arena.participant("bea"))
    page = "\n".join(texts(at.markdown))
    assert "ctx" in page  # the method API reference from the server's brief
    assert "#### rt_sentiment" in page  # the task, with its whole description
    for task in arena.participant("bea-tasks").tasks():
        assert task.description.strip() in page, task.name  # not cut short
    [intro] = [i for i in texts(at.info) if "PGR" in i]  # roles and PGR explained
    for words in ("(ceiling − weak)", "weak teacher", "*Participants*", "*analysts*", "Clock in"):
        assert words in intro, words
    names = [e.label for e in at.expander]
    assert {"vanilla", "logconf"} <= set(names)
    at.button(key="brief_open_vanilla").click().run()
    assert at.session_state["editor_source"] == VANILLA
    assert at.session_state["editor_origin"] == "baseline vanilla"


def test_editor_submits_and_the_attempt_gets_scored(arena, app_for):
    cleo = arena.participant("cleo")
    at = open_page(app_for(cleo), "editor")
    assert "5 / 5" in texts(at.metric)[0]
    at.selectbox(key="editor_baseline").select("vanilla").run()
    at.button(key="editor_load_baseline").click().run()
    assert at.session_state["editor_source"] == VANILLA
    at.button(key="editor_submit").click().run()
    confirm_if_clocked_out(at)
    assert any("on rt_sentiment is queued" in s for s in texts(at.success)), texts(at.error)
    assert "4 / 5" in texts(at.metric)[0]
    [attempt] = cleo.attempts()
    assert attempt.source == VANILLA  # exactly the editor's text reached the server
    cleo.wait(attempt.id, poll=0.2, timeout=120)
    open_page(at, "attempts")
    metrics = texts(at.metric)
    assert "scored" in metrics[0] and "[" in metrics[1], metrics  # the PGR and its interval


@pytest.mark.parametrize(("source", "expected"), [
    ("", "The editor is empty"),
    ("   \n\n", "The editor is empty"),
    ("# x\n" * 6000, "this study takes methods up to 20,000 bytes"),
    ("def run(ctx):\n    return (\n", "method.py line"),  # the server's compile check
    ("def fit(ctx):\n    return []\n", "defines no top-level `run`"),
])
def test_bad_code_gives_a_clear_message_and_keeps_the_text(arena, app_for, source, expected):
    dana = arena.participant(f"dana-{uuid.uuid4().hex[:8]}")
    at = submit_from_editor(app_for(dana), source)
    assert any(expected in e for e in texts(at.error)), texts(at.error)
    assert at.session_state["editor_source"] == source
    assert dana.attempts() == []


def test_server_rejects_an_oversized_source_with_413(arena):
    """The page's own size check can be skipped (an old tab); the server's 413 reads clearly."""
    eve = arena.participant("eve")
    with pytest.raises(ArenaAPIError) as caught:
        eve.submit("# x\n" * 6000, "rt_sentiment")
    assert caught.value.status == 413
    assert describe_error(caught.value).startswith("The method is too large for this study.")


def test_submit_over_quota_is_refused_and_keeps_the_text(arena, app_for):
    fay = arena.participant("fay")
    for i in range(5):
        fay.submit(CONSTANT + f"# {i}\n", "rt_sentiment")
    at = open_page(app_for(fay), "editor")
    assert "0 / 5" in texts(at.metric)[0]
    mine = CONSTANT + "# the sixth\n"
    at = submit_from_editor(at, mine)
    errors = texts(at.error)
    assert any("quota is used up" in e and "Try again in" in e for e in errors), errors
    assert at.session_state["editor_source"] == mine
    assert len(fay.attempts()) == 5


# ----------------------------------------------------------------------------- attempts
def test_attempts_page_diffs_and_resubmits(arena, app_for):
    gus = arena.participant("gus")
    first = gus.submit(CONSTANT, "rt_sentiment")
    second = gus.submit(CONSTANT.replace("0.5", "0.6"), "rt_sentiment")
    for a in (first, second):
        gus.wait(a.id, poll=0.2, timeout=120)
    at = open_page(app_for(gus), "attempts")
    assert len(at.dataframe[-1].value) == 2  # all my attempts
    diff = [c.value for c in at.code if c.language == "diff"]
    assert diff and "-    return np.full(len(ctx.texts(\"test\")), 0.5)" in diff[0]
    assert "+    return np.full(len(ctx.texts(\"test\")), 0.6)" in diff[0]
    at.selectbox(key="attempts_chosen").set_value(first.id).run()
    assert at.query_params["attempt"] == first.id  # the chosen attempt is in the URL
    at.button(key="attempts_resubmit").click().run()
    assert any("Resubmitted" in i for i in texts(at.info)), texts(at.info)
    views = gus.attempts()
    assert len(views) == 3 and views[0].code_sha256 == first.code_sha256
    assert views[0].parent_id == first.id  # and the attempt page diffs against it
    assert at.query_params["attempt"] == views[0].id
    assert any("Changes since" in h for h in texts(at.subheader))


def test_failed_attempt_shows_error_and_traceback(arena, app_for):
    hal = arena.participant("hal")
    bad = hal.submit("def run(ctx):\n    raise ValueError('my bug')\n", "rt_sentiment")
    hal.wait(bad.id, poll=0.2, timeout=120)
    at = open_page(app_for(hal), "attempts")
    assert "failed" in texts(at.metric)[0]
    assert any("my bug" in e for e in texts(at.error)), texts(at.error)
    assert any("ValueError" in (c.value or "") for c in at.code)


def test_open_in_editor_loads_the_attempt(arena, app_for):
    ivy = arena.participant("ivy")
    a = ivy.submit(CONSTANT, "rt_sentiment")
    at = open_page(app_for(ivy), "attempts")
    at.button(key="attempts_open").click().run()
    assert at.session_state["editor_source"] == CONSTANT
    assert a.id[:12] in at.session_state["editor_origin"]


# ----------------------------------------------------------------------------- leaderboard, forum
def test_leaderboard_and_best_so_far(arena, app_for):
    jo = arena.participant("jo")
    jo.wait(jo.submit(VANILLA, "rt_sentiment").id, poll=0.2, timeout=120)
    at = open_page(app_for(jo), "leaderboard")
    picker = at.selectbox(key="leaderboard_task")  # named even when the study has one task
    assert picker.value == "rt_sentiment" and picker.options == ["rt_sentiment"]
    board = at.dataframe[0].value
    assert "jo (me)" in board["participant"].tolist()
    mine = board[board["participant"] == "jo (me)"]["best public PGR"].iloc[0]
    assert "[" in mine and "]" in mine, mine  # the score with its interval
    # The fixed baselines are reference rows; a failed attempt counts as an attempt.
    assert {"baseline"} == set(board[board["kind"] == "reference"]["arm"])
    jo.wait(jo.submit(FAILS, "rt_sentiment").id, poll=0.2, timeout=120)
    at.run()
    board = at.dataframe[0].value
    assert board[board["participant"] == "jo (me)"]["attempts"].tolist() == [2]
    assert len(at.get("plotly_chart")) == 1


def test_forum_post_links_the_servers_score_and_search_finds_it(arena, app_for):
    kim = arena.participant("kim")
    scored = kim.wait(kim.submit(VANILLA, "rt_sentiment").id, poll=0.2, timeout=120)
    at = open_page(app_for(kim), "forum")
    at.selectbox(key="forum_kind").select("result").run()
    at.text_input(key="forum_title").input("Vanilla floor on rt")
    at.text_area(key="forum_body").input("Plain **vanilla** as a floor.")
    at.selectbox(key="forum_attempt").set_value(scored.id)
    at.button(key="forum_submit").click().run()
    assert any("Posted" in s for s in texts(at.success)), texts(at.error)
    # The form is empty again, so a second click cannot post the same finding twice.
    assert at.text_input(key="forum_title").value == ""
    assert at.text_area(key="forum_body").value == ""
    [post] = [p for p in kim.forum() if p.title == "Vanilla floor on rt"]
    assert post.attempt_id == scored.id and post.attempt_public_pgr == scored.public.pgr
    assert any(f"public PGR {scored.public.pgr:.2f}" in c for c in texts(at.caption))
    at.text_input(key="forum_query").input("floor").run()
    assert any("Vanilla floor on rt" in m for m in texts(at.markdown)), texts(at.markdown)
    at.text_input(key="forum_query").input("zebra-not-there").run()
    assert "No posts match." in texts(at.info)
    # Its own URL opens that post alone; an unknown one says so.
    other = kim.post("insight", "Another finding", "unrelated")
    at.query_params["post"] = post.id
    at.run()
    assert any("Vanilla floor on rt" in m for m in texts(at.markdown))
    assert not any("Another finding" in m for m in texts(at.markdown))
    at.query_params["post"] = other.id
    at.run()
    assert not any("Vanilla floor on rt" in m for m in texts(at.markdown))
    at.query_params["post"] = "post_not_there"
    at.run()
    assert any("No such post" in i for i in texts(at.info))


def test_forum_post_needs_a_title(arena, app_for):
    at = open_page(app_for(arena.participant("lee")), "forum")
    at.button(key="forum_submit").click().run()
    assert "Give the post a title." in texts(at.error)


# ----------------------------------------------------------------------------- clock, roles
def test_clock_in_and_out(arena, app_for):
    mo = arena.participant("mo")
    at = open_page(app_for(mo), "clock")
    assert "Clocked out." in texts(at.info)
    at.button(key="clock_in").click().run()
    assert mo.clock().clocked_in_since is not None
    assert any("Clocked in since" in s for s in texts(at.success))
    at.button(key="clock_in").click().run()
    assert any("already clocked in" in w for w in texts(at.warning))
    at.button(key="clock_out").click().run()
    assert mo.clock().clocked_in_since is None and mo.clock().active_seconds > 0


def test_analyst_view_only_for_analysts(arena, app_for):
    plain = app_for(arena.participant("ned"))
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        plain.switch_page("app_pages/analyst.py")
    at = open_page(app_for(arena.participant("ana", role="analyst")), "analyst")
    assert [t.value for t in at.title] == ["Analyst view"]
    assert int(texts(at.metric)[0]) > 0  # attempts of everyone in this module
    assert len(at.get("plotly_chart")) >= 1

"""A week in the workspace: the draft outlives the browser session, a deep link opens its
attempt, the editor marks a broken line before anything is charged (AppTest against a real
server; the browser test covers the reload itself)."""

from __future__ import annotations

from tests.participants.conftest import open_page

NO_RUN = "import numpy as np\n\ndef fit(ctx):\n    return np.zeros(3)\n"
PAGES = ("brief", "editor", "attempts", "experiments", "leaderboard", "forum", "clock")
TYPO = "def run(ctx):\n    x = 1\n    return x +\n"


def test_the_draft_comes_back_in_a_new_session(arena, app_for):
    nia = arena.participant("nia-draft")
    at = open_page(app_for(nia), "editor")
    at.session_state["editor_source"] = "def run(ctx):\n    return None  # unsaved idea\n"
    at.run()  # the editor page saves what changed
    assert nia.draft().source.endswith("# unsaved idea\n")
    fresh = open_page(app_for(nia), "editor")  # another browser session, same participant
    assert fresh.session_state["editor_source"].endswith("# unsaved idea\n")
    assert fresh.session_state["editor_origin"] == "empty"


def test_editor_marks_the_broken_line_and_charges_nothing(arena, app_for):
    oli = arena.participant("oli-marks")
    at = open_page(app_for(oli), "editor")
    at.session_state["editor_source"] = TYPO
    at.run()
    assert any("method.py line 3" in w for w in (str(w.value) for w in at.warning))
    at.session_state["editor_source"] = NO_RUN
    at.run()
    assert any("no top-level `run`" in str(w.value) for w in at.warning)
    at.button(key="editor_submit").click().run()
    assert any("no top-level `run`" in str(e.value) for e in at.error)
    assert oli.attempts() == [] and oli.quota().attempts_left == 5


def test_header_says_when_the_baseline_was_replaced(arena, app_for):
    at = open_page(app_for(arena.participant("pam-header")), "editor")
    at.selectbox(key="editor_baseline").select("vanilla").run()
    at.button(key="editor_load_baseline").click().run()
    assert any("Editing: **baseline vanilla**" in str(c.value) for c in at.caption)
    at.session_state["editor_source"] += "# tweak\n"
    at.run()
    assert any("baseline vanilla, edited" in str(c.value) for c in at.caption)
    at.session_state["editor_source"] = "def run(ctx):\n    return 0\n"
    at.run()
    assert any("your own text (replaced baseline vanilla)" in str(c.value) for c in at.caption)


def test_a_deep_link_opens_that_attempt(arena, app_for):
    quin = arena.participant("quin-link")
    first = quin.submit("def run(ctx):\n    raise ValueError('first')\n", "rt_sentiment")
    quin.submit("def run(ctx):\n    raise ValueError('second')\n", "rt_sentiment")
    at = app_for(quin)
    at.query_params["attempt"] = first.id
    open_page(at, "attempts")
    assert at.selectbox(key="attempts_chosen").value == first.id
    other = arena.participant("rex-other")
    at = app_for(other)
    at.query_params["attempt"] = first.id  # someone else's attempt reads as missing
    open_page(at, "attempts")
    assert any("cannot be opened" in str(e.value) for e in at.error)


def test_clocked_out_submit_asks_first_and_can_clock_in_on_the_way(arena, app_for):
    sue = arena.participant("sue-clock")
    at = app_for(sue)
    for name in PAGES:  # the clock's state is in the sidebar of every page
        open_page(at, name)
        assert any("Clocked out" in str(w.value) for w in at.sidebar.warning), name
    open_page(at, "editor")
    at.session_state["editor_source"] = "def run(ctx):\n    raise ValueError('x')\n"
    at.button(key="editor_submit").click().run()
    assert sue.attempts() == []  # nothing yet: the page asks first
    assert any("You are clocked out" in str(w.value) for w in at.warning)
    at.button(key="editor_clock_submit").click().run()
    assert sue.clock().clocked_in_since is not None and len(sue.attempts()) == 1
    assert any("Clocked in" in str(s.value) for s in at.sidebar.success)

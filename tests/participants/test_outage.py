"""The study server goes away and comes back: the page says so plainly, and nothing is lost."""

from __future__ import annotations

from tests.participants.conftest import confirm_if_clocked_out, open_page

EDITED = '''
def run(ctx):
    # my half-written idea, typed before the outage
    head = ctx.lib.train_head(ctx.strong_features("train"), ctx.weak_soft_labels, seed=ctx.seed)
    return head.predict_proba(ctx.strong_features("test"))
'''


def test_server_away_and_back_keeps_the_editor_text(arena, app_for):
    olive = arena.participant("olive")
    at = open_page(app_for(olive), "editor")
    at.session_state["editor_source"] = EDITED
    arena.stop()
    try:
        at.button(key="editor_submit").click().run()
        errors = [e.value for e in at.error]
        assert any("cannot be reached" in e and "editor text is kept" in e for e in errors), errors
        assert at.session_state["editor_source"] == EDITED
        # Other pages degrade the same way instead of crashing.
        for page in ("attempts", "leaderboard", "forum", "clock"):
            open_page(at, page)
            assert any("cannot be reached" in e.value for e in at.error), page
        open_page(at, "brief")  # read before the outage: still there
        assert any("rt_sentiment" in str(m.value) for m in at.markdown)
        assert at.session_state["auth_token"]  # still signed in
    finally:
        arena.start()
    open_page(at, "editor")
    assert at.session_state["editor_source"] == EDITED
    at.button(key="editor_submit").click().run()
    confirm_if_clocked_out(at)
    assert any("is queued" in s.value for s in at.success), [e.value for e in at.error]
    [attempt] = olive.attempts()
    assert attempt.source == EDITED

"""One door: the same code submitted from the workspace page and from the SDK makes attempts
that differ only in participant fields (and what the server draws per attempt)."""

from __future__ import annotations

from tests.e2e.conftest import VANILLA
from tests.participants.conftest import confirm_if_clocked_out, open_page

# Drawn or measured per attempt by the server, or naming the participant.
PER_ATTEMPT = {"id", "participant_id", "seeds", "submitted_at", "queued_at", "started_at",
               "finished_at", "queue_position", "public", "private", "wall_seconds",
               "cpu_seconds", "peak_mb"}


def test_page_and_sdk_submits_make_the_same_attempt(arena, app_for):
    human = arena.participant("pat", arm="human", kind="human")
    agent = arena.participant("claude-p", arm="ai", kind="agent")

    at = open_page(app_for(human), "editor")
    at.selectbox(key="editor_baseline").select("vanilla").run()
    at.button(key="editor_load_baseline").click().run()
    at.text_input(key="editor_note").input("same")
    at.button(key="editor_submit").click().run()
    confirm_if_clocked_out(at)  # the page asks a clocked-out human first; the work is the same
    assert any("is queued" in s.value for s in at.success), [e.value for e in at.error]
    agent.submit(VANILLA, "rt_sentiment", note="same")

    for client in (human, agent):
        [mine] = client.attempts()
        client.wait(mine.id, poll=0.2, timeout=120)
    with arena.admin() as admin:
        rows = {v.participant_id: v.model_dump() for v in admin.attempts(everyone=True)}
    page, sdk = rows[human.participant_id], rows[agent.participant_id]
    differing = {k for k in page if page[k] != sdk[k]}
    assert differing <= PER_ATTEMPT, differing - PER_ATTEMPT
    assert page["status"] == sdk["status"] == "scored"
    assert page["code_sha256"] == sdk["code_sha256"] and page["source"] == sdk["source"]
    assert page["note"] == sdk["note"] == "same" and page["task"] == sdk["task"]

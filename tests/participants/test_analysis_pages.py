"""The analyst pages of the workspace: gap closure (frontier, tables, report download) and the
agents' usage with transcripts, on a real server."""

import pytest

from participants.agents.harness import Agent, AgentConfig
from tests.e2e.conftest import VANILLA
from tests.fakes.anthropic_server import FakeMessagesAPI, text_reply, tool_use_reply
from tests.participants.conftest import open_page


def test_gap_closure_page_draws_the_frontier_and_offers_the_report(arena, app_for):
    human = arena.participant("gc-human", arm="human")
    agent = arena.participant("gc-agent", arm="ai", kind="agent")
    for client in (human, agent):
        client.wait(client.submit(VANILLA, "rt_sentiment").id, poll=0.1)
    analyst = arena.participant("gc-analyst", role="analyst")
    at = open_page(app_for(analyst), "gap_closure")
    assert at.title[0].value == "Gap closure"
    assert len(at.get("plotly_chart")) >= 1
    # the pre-registered comparison comes first, labelled: the window is still open
    assert at.info[0].value.startswith("EXPLORATORY")
    frames = [df.value for df in at.dataframe]
    assert any("pgr≥0.2" in f.columns for f in frames)
    assert any({"gc-human", "gc-agent"} <= set(f.get("display_name", [])) for f in frames)
    assert at.get("download_button")
    at.toggle(key="gap_bands").set_value(True).run()
    assert not at.exception
    errors = at.get("plotly_chart")[0].proto.spec
    assert '"error_y"' in errors  # the frontier's steps carry their bootstrap bands
    at.selectbox(key="gap_axis").set_value("active_hours").run()
    at.radio(key="gap_score").set_value("oracle_private").run()
    assert not at.exception
    assert "ORACLE" in at.get("plotly_chart")[0].proto.spec


def test_gap_closure_is_not_even_listed_for_participants(arena, app_for):
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        open_page(app_for(arena.participant("gc-plain")), "gap_closure")


def test_agent_usage_page_shows_tokens_dollars_and_transcripts(arena, app_for, tmp_path):
    import anthropic

    bot = arena.participant("usage-agent", arm="ai", kind="agent")
    with FakeMessagesAPI() as fake:
        fake.replies.extend([tool_use_reply(("my_quota", {}), input_tokens=1000,
                                            output_tokens=100), text_reply("done")])
        Agent(AgentConfig(name="usage-agent", direction="d", workspace=tmp_path / "w",
                          max_iterations=1), bot,
              anthropic.Anthropic(api_key="k", base_url=fake.url, max_retries=0)).run()
    at = open_page(app_for(arena.participant("usage-analyst", role="analyst")), "agent_usage")
    table = at.dataframe[0].value
    row = table[table["participant"] == "usage-agent"].iloc[0]
    assert row["turns"] == 2 and row["input tokens"] == 1100
    assert row["cost ($)"] > 0
    # Its harness stopped it after its one iteration, and the page says why.
    assert row["status"] == "stopped: iteration budget reached: 1 of 1", row["status"]
    assert at.selectbox(key="usage_who").value == "usage-agent"
    assert len(at.get("chat_message")) >= 3

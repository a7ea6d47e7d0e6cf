"""The Claude agent harness, driven by the real anthropic SDK against a fake Messages API on
loopback, submitting through the real study server."""

import json

import anthropic
import pytest

from participants.agents.harness import Agent, AgentConfig
from participants.agents.pricing import turn_cost
from tests.conftest import REPO
from tests.fakes.anthropic_server import (
    FakeMessagesAPI,
    last_tool_results,
    text_reply,
    tool_use_reply,
)

VANILLA = (REPO / "baselines" / "vanilla.py").read_text()


def attempt_id_from_results(body):
    (result,) = last_tool_results(body)
    return json.loads(result["content"])["id"]


def research_script():
    """Read the brief, write a method, submit it, wait, post a finding, update the notebook."""
    return [
        tool_use_reply(("read_brief", {}), text="Let me read the brief.", input_tokens=1200,
                       output_tokens=40, cache_write=900),
        tool_use_reply(("write_file", {"path": "method.py", "content": VANILLA}),
                       input_tokens=1500, output_tokens=300, cache_read=900),
        tool_use_reply(("submit_method", {"file": "method.py"}), input_tokens=1600,
                       output_tokens=30, cache_read=900),  # malformed: no task
        tool_use_reply(("submit_method", {"task": "rt_sentiment", "file": "method.py",
                                          "note": "vanilla first"}),
                       input_tokens=1700, output_tokens=35, cache_read=900),
        lambda body: tool_use_reply(
            ("wait_for_attempt", {"attempt_id": attempt_id_from_results(body)}),
            input_tokens=1800, output_tokens=25, cache_read=900),
        lambda body: tool_use_reply(
            ("post_finding", {"kind": "result", "title": "vanilla baseline",
                              "body": "Vanilla W2S scores as expected.",
                              "attempt_id": json.loads(last_tool_results(body)[0]["content"])
                              ["id"]}), input_tokens=1900, output_tokens=60, cache_read=900),
        tool_use_reply(("write_file", {"path": "NOTEBOOK.md",
                                       "content": "- vanilla works; try logconf next"}),
                       input_tokens=2000, output_tokens=50, cache_read=900),
        text_reply("Iteration done.", input_tokens=2100, output_tokens=10),
    ]


@pytest.fixture
def agent_factory(server, tmp_path):
    def make(fake, name="claude-1", **overrides):
        client = server.participant(name, arm="ai", kind="agent")
        settings = {"max_iterations": 1, **overrides}
        config = AgentConfig(name=name, direction="Try logconf variants.",
                             workspace=tmp_path / name, **settings)
        llm = anthropic.Anthropic(api_key="sk-ant-fake", base_url=fake.url, max_retries=3)
        return Agent(config, client, llm), client

    return make


def test_an_agent_researches_submits_and_posts_through_the_one_door(server, agent_factory):
    with FakeMessagesAPI() as fake:
        script = research_script()
        fake.replies.extend(script)
        agent, client = agent_factory(fake)
        state = agent.run()
    assert state.stopped == "iteration budget reached: 1 of 1"
    (attempt,) = client.attempts()
    assert attempt.status.value == "scored" and attempt.note == "vanilla first"
    (post,) = client.forum()
    assert post.attempt_id == attempt.id and post.attempt_public_pgr == attempt.public.pgr
    notebook = (agent.config.workspace / "NOTEBOOK.md").read_text()
    assert "try logconf next" in notebook

    malformed = last_tool_results(fake.requests[3]["body"])[0]
    assert malformed["is_error"] and "invalid input for submit_method: task" in \
        malformed["content"]
    assert fake.requests[0]["body"]["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert fake.requests[0]["body"]["tools"][-1]["cache_control"] == {"type": "ephemeral"}

    with server.admin() as admin:
        (usage,) = [u for u in admin.usage() if u.participant_id == client.participant_id]
        transcript = admin.transcript(client.participant_id)
    expected = {"input_tokens": 1200 + 1500 + 1600 + 1700 + 1800 + 1900 + 2000 + 2100,
                "output_tokens": 40 + 300 + 30 + 35 + 25 + 60 + 50 + 10,
                "cache_read_tokens": 900 * 6, "cache_write_tokens": 900}
    assert usage.turns == 8
    assert {k: getattr(usage, k) for k in expected} == expected
    assert usage.cost_usd == pytest.approx(turn_cost(
        "claude-opus-4-6", input_tokens=expected["input_tokens"],
        output_tokens=expected["output_tokens"], cache_read_tokens=5400,
        cache_write_tokens=900))
    assert usage.active_hours > 0
    roles = {t["role"] for t in transcript}
    assert roles == {"system", "user", "assistant", "tool", "note"}


def test_api_errors_are_retried_and_lose_nothing(server, agent_factory):
    overloaded = (529, {"type": "error", "error": {"type": "overloaded_error",
                                                   "message": "Overloaded"}})
    broken = (500, {"type": "error", "error": {"type": "api_error", "message": "boom"}})
    with FakeMessagesAPI() as fake:
        fake.replies.extend([overloaded, broken, tool_use_reply(("my_quota", {})),
                             (429, {"type": "error", "error": {"type": "rate_limit_error",
                                                               "message": "slow down"}}),
                             text_reply("done")])
        agent, _ = agent_factory(fake)
        state = agent.run()
    assert state.stopped.startswith("iteration budget reached")
    assert len(fake.requests) == 5  # every failure was retried, none was fatal
    assert "attempts_left" in last_tool_results(fake.requests[3]["body"])[0]["content"]


def test_a_dollar_budget_stops_the_agent_cleanly(server, agent_factory):
    with FakeMessagesAPI() as fake:
        fake.replies.extend([tool_use_reply(("read_brief", {}), input_tokens=200_000,
                                            output_tokens=10_000)] * 3)
        agent, client = agent_factory(fake, max_usd=1.0, max_iterations=10)
        state = agent.run()
    assert state.stopped.startswith("dollar budget reached: $1.25 of $1.00")
    assert len(fake.requests) == 1 + agent.config.closing_turns  # turns to save the notebook
    with server.admin() as admin:
        notes = [t for t in admin.transcript(client.participant_id) if t["role"] == "note"]
    assert any(n["content"].startswith("stopped: dollar budget reached") for n in notes)
    assert client.clock().clocked_in_since is None  # the harness clocked out


def test_the_servers_429_reaches_the_agent_as_a_tool_result(server, agent_factory):
    with FakeMessagesAPI() as fake:
        submits = [tool_use_reply(("submit_method", {"task": "rt_sentiment",
                                                     "source": VANILLA + f"\n# {i}\n"}))
                   for i in range(6)]
        fake.replies.extend([*submits, text_reply("out of quota")])
        agent, _ = agent_factory(fake, turns_per_iteration=30)
        agent.run()
    last = last_tool_results(fake.requests[6]["body"])[0]
    assert last["is_error"] and "server said 429 quota_exceeded" in last["content"]
    assert "5 of 5 attempts" in last["content"]


def test_a_replayed_turn_never_submits_twice(server, agent_factory):
    """A harness killed after its submit ran but before it saved: the resumed harness replays
    the saved reply with the same idempotency key, and the server returns the first attempt."""
    with FakeMessagesAPI() as fake:
        fake.replies.extend([tool_use_reply(("submit_method", {"task": "rt_sentiment",
                                                               "source": VANILLA})),
                             text_reply("done")])
        agent, client = agent_factory(fake)
        saved = agent.state_path
        reply = agent._ask()
        agent.state.messages = [{"role": "user", "content": "go"}]
        agent.state.pending = [b.model_dump(mode="json", exclude_none=True)
                               for b in reply.content]
        agent.state.save(saved)
        agent._step()  # runs the submit, then "dies" before anything else is saved
        resumed = Agent(agent.config, client, agent.llm)
        assert resumed.state.pending is not None  # what the crash left on disk
        resumed._step()
    assert len(client.attempts()) == 1

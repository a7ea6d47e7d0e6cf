"""An agent that runs for days unattended: every failure an operator met, reproduced against
the loopback fake Messages API and the real study server, and survived — with the right exit
code and nothing done twice."""

import json
import os
import socket
import subprocess
import sys
import threading
import time

import anthropic
import httpx
import pytest

from participants.agents.harness import Agent, AgentConfig
from participants.agents.request import SYSTEM
from participants.sdk import ArenaAPIError, ArenaClient
from participants.tools import ToolContext, call_tool
from tests.conftest import REPO
from tests.fakes.anthropic_server import (
    FakeMessagesAPI,
    error_reply,
    last_tool_results,
    text_reply,
    tool_use_reply,
)

VANILLA = (REPO / "baselines" / "vanilla.py").read_text()
FAST_BACKOFF = {"backoff_base": 0.01, "backoff_cap": 0.05}


@pytest.fixture
def make_agent(server, tmp_path):
    def make(fake, name="claude-1", client=None, sdk_retries=0, **overrides):
        client = client or server.participant(name, arm="ai", kind="agent")
        settings = {"max_iterations": 1, **FAST_BACKOFF, **overrides}
        config = AgentConfig(name=name, direction="Try logconf variants.",
                             workspace=tmp_path / "agents" / name, **settings)
        llm = anthropic.Anthropic(api_key="sk-ant-fake", base_url=fake.url,
                                  max_retries=sdk_retries)
        return Agent(config, client, llm), client

    return make


def texts_of(body):
    """Every text block of every user message in a request."""
    out = []
    for m in body["messages"]:
        if m["role"] == "user":
            blocks = m["content"] if isinstance(m["content"], list) else [
                {"type": "text", "text": m["content"]}]
            out += [b["text"] for b in blocks if b.get("type") == "text"]
    return out


# ------------------------------------------------------------------------- tool exceptions
def test_an_exception_inside_a_tool_is_a_tool_error_and_the_agent_lives_on(make_agent):
    with FakeMessagesAPI() as fake:
        fake.script(tool_use_reply(("read_file", {"path": "blob.bin"})),
                    tool_use_reply(("my_quota", {})), text_reply("done"))
        agent, _ = make_agent(fake, turns_per_iteration=5)
        (agent.config.workspace / "blob.bin").write_bytes(b"\xff\xfe\x00binary")
        state = agent.run()
    assert state.stopped.startswith("iteration budget reached")
    (crashed,) = last_tool_results(fake.requests[1]["body"])
    assert crashed["is_error"] and "UnicodeDecodeError" in crashed["content"]
    assert "attempts_left" in last_tool_results(fake.requests[2]["body"])[0]["content"]


def test_a_read_timeout_in_a_tool_comes_back_as_its_error():
    """A study server that accepts and never answers: httpx.ReadTimeout, as data."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with ArenaClient(url, "w2s_x", timeout=0.5, retries=0) as client:
            text, is_error = call_tool(ToolContext(client=client), "my_quota", {})
    assert is_error and "ReadTimeout" in text


def test_a_bad_post_kind_is_an_input_error_naming_the_choices(server):
    client = server.participant("kinds", arm="ai", kind="agent")
    text, is_error = call_tool(ToolContext(client=client), "post_finding",
                               {"kind": "rumour", "title": "t", "body": "b"})
    assert is_error and "kind" in text and "hypothesis" in text


# ------------------------------------------------------------------------ crash, replays
def pending_reply(agent):
    """Ask once and save the reply as pending, as the harness does before its tools run;
    returns its first tool call."""
    agent.state.messages = [{"role": "user", "content": "go"}]
    reply = agent._ask()
    agent.state.pending = [b.model_dump(mode="json", exclude_none=True) for b in reply.content]
    agent.state.save(agent.state_path)
    return agent.state.pending[0]


def test_a_call_that_killed_the_harness_twice_is_never_run_a_third_time(make_agent):
    with FakeMessagesAPI() as fake:
        fake.script(tool_use_reply(("submit_method", {"task": "rt_sentiment",
                                                      "source": VANILLA})),
                    text_reply("done"))
        agent, client = make_agent(fake)
        use = pending_reply(agent)
        agent.state.starts = {use["id"]: 2}  # what two deaths inside the submit leave on disk
        agent.state.save(agent.state_path)
        resumed = Agent(agent.config, client, agent.llm)
        resumed.run()
    assert client.attempts() == []
    (result,) = last_tool_results(fake.requests[1]["body"])
    assert result["is_error"] and "interrupted twice" in result["content"]


def test_a_post_replayed_after_a_crash_is_posted_once(make_agent):
    with FakeMessagesAPI() as fake:
        fake.script(tool_use_reply(("post_finding", {"kind": "insight", "title": "once",
                                                     "body": "only once"})),
                    text_reply("done"))
        agent, client = make_agent(fake)
        agent._run_tool(pending_reply(agent))  # posted; then killed before saving the result
        resumed = Agent(agent.config, client, agent.llm)
        assert resumed.state.results == {} and resumed.state.starts  # what the kill left
        resumed.run()
    assert [p.title for p in client.forum()] == ["once"]
    index = (agent.config.workspace / "forum" / "INDEX.md").read_text()
    assert "[insight] once" in index  # the harness mirrored the forum into the workspace


# --------------------------------------------------------------------------------- outages
def test_forty_529s_in_a_row_are_waited_out(make_agent):
    with FakeMessagesAPI() as fake:
        fake.inject(529, count=40)
        fake.script(tool_use_reply(("my_quota", {})), text_reply("done"))
        agent, _ = make_agent(fake)
        state = agent.run()
    assert fake.injected == 40 and state.stopped.startswith("iteration budget reached")
    assert len(fake.requests) == 42


@pytest.mark.slow
def test_sixty_seconds_of_529s_are_waited_out(make_agent):
    with FakeMessagesAPI() as fake:
        fake.inject(529, seconds=60)
        fake.script(text_reply("done"))
        agent, _ = make_agent(fake, sdk_retries=2, backoff_base=1.0, backoff_cap=8.0)
        state = agent.run()
    assert fake.injected >= 10 and state.stopped.startswith("iteration budget reached")


# ---------------------------------------------------------------------- budgets and cuts
def test_a_stopped_agent_resumes_with_a_new_budget(make_agent):
    with FakeMessagesAPI() as fake:
        fake.script(text_reply("first"), text_reply("second"))
        agent, client = make_agent(fake)
        assert agent.run().stopped == "iteration budget reached: 1 of 1"
        agent.config.max_iterations = 2
        again = Agent(agent.config, client, agent.llm).run()
    assert again.stopped == "iteration budget reached: 2 of 2" and len(fake.requests) == 2


def test_the_turn_cap_warns_before_it_cuts(make_agent):
    with FakeMessagesAPI() as fake:
        fake.script(*[tool_use_reply(("my_quota", {}))] * 4)
        agent, _ = make_agent(fake, turns_per_iteration=4, closing_turns=2)
        agent.run()
    notices = [["update NOTEBOOK.md now" in t for t in texts_of(r["body"])]
               for r in fake.requests]
    assert [any(n) for n in notices] == [False, False, True, True]
    assert "ends in 2 turn(s)" in texts_of(fake.requests[2]["body"])[-1]


def test_the_dollar_budget_gives_closing_turns_for_the_notebook(make_agent):
    with FakeMessagesAPI() as fake:
        fake.script(tool_use_reply(("read_brief", {}), input_tokens=200_000,
                                   output_tokens=10_000),
                    tool_use_reply(("write_file", {"path": "NOTEBOOK.md",
                                                   "content": "- brief read"})),
                    text_reply("notebook updated"))
        agent, client = make_agent(fake, max_usd=1.0, max_iterations=10, closing_turns=2)
        state = agent.run()
    assert state.stopped.startswith("dollar budget reached: $1.25 of $1.00")
    assert len(fake.requests) == 3
    assert "dollar budget reached" in texts_of(fake.requests[1]["body"])[-1]
    assert (agent.config.workspace / "NOTEBOOK.md").read_text() == "- brief read"
    assert client.clock().clocked_in_since is None


# ---------------------------------------------------------------------------------- caching
def test_a_moving_cache_breakpoint_once_the_prompt_is_long_enough(make_agent):
    with FakeMessagesAPI() as fake:
        fake.script(tool_use_reply(("my_quota", {}), input_tokens=3000),  # under 4096
                    tool_use_reply(("my_quota", {}), input_tokens=500, cache_write=4000),
                    tool_use_reply(("my_quota", {}), input_tokens=200, cache_read=4600),
                    text_reply("done"))
        agent, _ = make_agent(fake, turns_per_iteration=10)
        agent.run()

    def marked(body):
        return [(i, j) for i, m in enumerate(body["messages"]) if isinstance(m["content"], list)
                for j, b in enumerate(m["content"]) if "cache_control" in b]

    bodies = [r["body"] for r in fake.requests]
    # the last block of the last message: from the third request on (4096 tokens reached)
    assert [marked(b) for b in bodies] == [[], [], [(4, 0)], [(6, 0)]]
    assert all(b["system"][0]["cache_control"] and b["tools"][-1]["cache_control"]
               for b in bodies)
    assert "cache_control" not in json.dumps(agent.state.messages)  # never stored


# ---------------------------------------------------------------- files, names, transcripts
def test_harness_files_are_out_of_the_agents_reach(make_agent):
    with FakeMessagesAPI() as fake:
        fake.script(tool_use_reply(("list_files", {}),
                                   ("read_file", {"path": "../.harness/claude-1/state.json"})),
                    text_reply("done"))
        agent, _ = make_agent(fake)
        agent.run()
    listed, escaped = last_tool_results(fake.requests[1]["body"])
    assert ".agent-state" not in listed["content"] and "state.json" not in listed["content"]
    assert escaped["is_error"] and "outside your workspace" in escaped["content"]
    assert agent.state_path.is_file() and agent.config.workspace not in agent.state_path.parents


def test_agent_names_are_unique_within_a_study(server):
    server.participant("claude-7", arm="ai", kind="agent")
    with pytest.raises(ArenaAPIError) as taken:
        server.participant("claude-7", arm="ai", kind="agent")
    assert taken.value.status == 409 and "claude-7" in taken.value.message


def test_transcripts_carry_the_prompt_the_tools_and_the_notebook(server, make_agent):
    with FakeMessagesAPI() as fake:
        fake.script(text_reply("done"))
        agent, client = make_agent(fake)
        (agent.config.workspace / "NOTEBOOK.md").write_text("- idea: entropy weighting")
        agent.run()
    with server.admin() as admin:
        entries = admin.transcript(client.participant_id)
    (context,) = [e for e in entries if e["role"] == "system"]
    sent = json.loads(context["content"])
    assert sent["system"] == SYSTEM and {t["name"] for t in sent["tools"]} >= {"submit_method"}
    assert any(e["role"] == "note" and "entropy weighting" in e["content"] for e in entries)


def test_model_options_reach_the_api(make_agent):
    with FakeMessagesAPI() as fake:
        fake.script(text_reply("done"))
        agent, _ = make_agent(fake, max_tokens=16000, thinking="adaptive", effort="high")
        agent.run()
    body = fake.requests[0]["body"]
    assert body["max_tokens"] == 16000 and body["output_config"] == {"effort": "high"}
    assert body["thinking"] == {"type": "adaptive"}
    with pytest.raises(ValueError, match="thinking budget"):
        AgentConfig(name="x", direction="d", workspace=agent.config.workspace,
                    thinking="20000", max_tokens=16000)


# ------------------------------------------------------------------------- the command line
def _cli(server, fake, tmp_path, *extra):
    env = {**os.environ, "ANTHROPIC_API_KEY": "sk-ant-fake", "ANTHROPIC_BASE_URL": fake.url,
           "ARENA_URL": server.url, "ARENA_ADMIN_TOKEN": server.admin_token}
    cmd = [sys.executable, "-m", "study.cli", "agents", "run", "--n", "1",
           "--max-iterations", "1", "--workspaces", str(tmp_path / "agents"), *extra]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
                          check=False)


def test_an_unpriced_model_is_refused_before_any_paid_call(server, tmp_path):
    with FakeMessagesAPI() as fake:
        done = _cli(server, fake, tmp_path, "--model", "claude-unknown-9")
    assert done.returncode == 2 and "no price for model 'claude-unknown-9'" in done.stdout
    assert fake.requests == []


def test_an_agent_that_dies_makes_the_run_exit_non_zero(server, tmp_path):
    with FakeMessagesAPI() as fake:
        fake.script(error_reply(401, "invalid x-api-key"))
        done = _cli(server, fake, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "DIED" in done.stdout and "401" in done.stdout


def test_a_finished_run_exits_zero(server, tmp_path):
    with FakeMessagesAPI() as fake:
        fake.script(text_reply("done"))
        done = _cli(server, fake, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "iteration budget reached" in done.stdout


def test_two_fleets_cannot_share_agent_names(server, tmp_path):
    with FakeMessagesAPI() as fake:
        fake.script(text_reply("done"))
        assert _cli(server, fake, tmp_path / "one").returncode == 0
        clash = _cli(server, fake, tmp_path / "two")
    assert clash.returncode == 1 and "already takes part" in clash.stdout


def test_threads_of_many_agents_share_one_fake(make_agent):
    """Several agents on one fake at once: the injected outage is shared, nothing is lost."""
    with FakeMessagesAPI() as fake:
        fake.inject(529, count=6)
        fake.script(*[text_reply("done")] * 3)
        agents = [make_agent(fake, name=f"claude-{i}")[0] for i in range(3)]
        threads = [threading.Thread(target=a.run) for a in agents]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert all(a.state.stopped.startswith("iteration budget") for a in agents)


# ------------------------------------------------------------------------------- dry runs
SLEEPY = "import time\n\ndef run(ctx):\n    time.sleep({s})\n    return [0.5] * {n}\n"


def test_a_dry_run_the_client_gave_up_on_is_charged_once(server):
    """The SDK used to re-send a dry run on its read timeout: four runs charged for one."""
    client = server.participant("patient", arm="ai", kind="agent")
    with pytest.raises(httpx.ReadTimeout):
        client.dry_run(SLEEPY.format(s=6, n=2000), "rt_sentiment", timeout=2)
    quick = SLEEPY.format(s=0, n=2000)
    assert _once_free(client, quick).ok  # 2 of 3 a day, once the first has ended
    assert client.dry_run(quick, "rt_sentiment").ok  # 3 of 3
    with pytest.raises(ArenaAPIError) as capped:
        client.dry_run(quick, "rt_sentiment")
    assert capped.value.status == 429 and "3 of 3" in capped.value.message


def _once_free(client, source, timeout=120):
    """A dry run as soon as the one still running (the client gave up on it) has ended."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return client.dry_run(source, "rt_sentiment")
        except ArenaAPIError as exc:
            if "run at once" not in exc.message or time.monotonic() > deadline:
                raise
            time.sleep(1)


@pytest.mark.slow
def test_a_dry_run_longer_than_thirty_seconds_comes_back(server):
    client = server.participant("slowpoke", arm="ai", kind="agent")
    view = client.dry_run(SLEEPY.format(s=40, n=2000), "rt_sentiment")
    assert view.ok and view.wall_seconds > 40


def test_a_dry_run_resent_with_its_key_is_run_and_charged_once(server):
    client = server.participant("resender", arm="ai", kind="agent")
    quick = SLEEPY.format(s=0, n=2000)
    first = client.dry_run(quick, "rt_sentiment", idempotency_key="turn-3:toolu_1")
    again = client.dry_run(quick, "rt_sentiment", idempotency_key="turn-3:toolu_1")
    assert again == first and first.ok
    assert client.dry_run(quick, "rt_sentiment").ok  # 2 of 3 a day
    assert client.dry_run(quick, "rt_sentiment").ok  # 3 of 3
    with pytest.raises(ArenaAPIError) as capped:
        client.dry_run(quick, "rt_sentiment")
    assert capped.value.status == 429 and "3 of 3" in capped.value.message


def test_attempt_views_omit_the_source_unless_asked(server, tmp_path):
    """An agent's context is not filled with code it did not ask for."""
    client = server.participant("reader", arm="ai", kind="agent")
    tools = ToolContext(client=client, workspace=tmp_path)
    view = client.submit(VANILLA, "rt_sentiment")
    plain, failed = call_tool(tools, "get_attempt", {"attempt_id": view.id})
    assert not failed and json.loads(plain)["id"] == view.id and "def run" not in plain
    listed, failed = call_tool(tools, "list_my_attempts", {})
    assert not failed and view.id in listed and "def run" not in listed
    full, failed = call_tool(tools, "get_attempt", {"attempt_id": view.id,
                                                    "include_source": True})
    assert not failed and json.loads(full)["source"] == VANILLA

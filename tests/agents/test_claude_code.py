"""The Claude Code runtime against the fake Messages API: one scripted session that runs a Bash
command inside the sandbox and submits through the study's MCP tools; every score still comes
from the runner, and the sandbox holds nothing of the harness or the operator."""

import json
import os
import subprocess
import sys

import pytest

from participants.agents.api_proxy import PLACEHOLDER_KEY
from participants.agents.claude_code import ClaudeCodeAgent, inner_env
from participants.agents.harness import AgentConfig
from tests.conftest import REPO
from tests.fakes.anthropic_server import (
    FakeMessagesAPI,
    last_tool_results,
    text_reply,
    tool_use_reply,
)

VANILLA = (REPO / "baselines" / "vanilla.py").read_text()
PROBE = ("python3 -c 'print(6 * 7)' > answer.txt; cat answer.txt; echo key=$ANTHROPIC_API_KEY; "
         "python3 -c 'import numpy as np, json; print(\"bundle\", "
         "np.load(\"/w2s/bundle/weak_soft_labels.npy\").shape, "
         "json.load(open(\"/w2s/bundle/task.json\"))[\"sizes\"])'; "
         "ls /root /work 2>&1 | head -3; cat ../.harness/*/state.json 2>&1 | head -1; "
         "python3 -c 'import urllib.request as u; u.urlopen(\"http://1.1.1.1\", timeout=3)' "
         "2>&1 | tail -1")


@pytest.mark.slow
def test_a_claude_code_session_runs_bash_in_the_sandbox_and_submits_over_mcp(server,
                                                                             tmp_path, test_ca):
    """The Messages API is HTTPS here (the fake, with a certificate of a CA made in the test),
    reached through the proxy outside the sandbox, as the real one would be."""
    client = server.participant("cc-1", arm="ai", kind="agent")
    context, ca_file = test_ca
    with FakeMessagesAPI(tls=context) as fake:
        fake.script(tool_use_reply(("Bash", {"command": PROBE, "description": "probe"})),
                    tool_use_reply(("mcp__arena__submit_method",
                                    {"task": "rt_sentiment", "source": VANILLA,
                                     "note": "from claude code"})),
                    text_reply("done"))
        config = AgentConfig(name="cc-1", direction="d", workspace=tmp_path / "agents" / "cc-1",
                             max_iterations=1, turns_per_iteration=4)
        agent = ClaudeCodeAgent(config, client, token=client.token, api_url=fake.url,
                                api_key="sk-ant-operator", api_ca_file=ca_file)
        state = agent.run()
    posts = [r for r in fake.requests if r["path"].startswith("/v1/messages")]
    assert state.stopped == "iteration budget reached: 1 of 1", [p["body"] for p in posts][-1:]
    assert (config.workspace / "answer.txt").read_text().strip() == "42"
    bash_out = " ".join(str(r["content"]) for body in (p["body"] for p in posts[1:2])
                        for r in last_tool_results(body))
    assert "42" in bash_out
    assert f"key={PLACEHOLDER_KEY}" in bash_out  # the operator's key stays outside
    assert fake.url.startswith("https://localhost:") and set(fake.sni) == {"localhost"}
    assert {r["headers"]["host"] for r in fake.requests} == {fake.url.removeprefix("https://")}
    assert {r["headers"]["x-api-key"] for r in fake.requests} == {"sk-ant-operator"}
    assert "bundle (3000,) {'train': 3000, 'test': 0}" in bash_out  # train only, no test
    assert "No such file" in bash_out  # neither /root nor /work, nor the harness's state
    assert "spent_usd" not in bash_out
    # two turns before the session's cap, a tool result carries the notebook notice (once)
    notice = "This session ends in 2 turn(s): update NOTEBOOK.md now"
    assert [notice in json.dumps(p["body"]["messages"][-1]) for p in posts] == [
        False, False, True]
    assert "Network is unreachable" in bash_out or "URLError" in bash_out
    (attempt,) = client.attempts()
    assert attempt.note == "from claude code"
    with server.admin() as admin:
        (usage,) = [u for u in admin.usage() if u.display_name == "cc-1"]
    assert usage.turns == 1 and usage.input_tokens == 300


def test_the_sandbox_gets_no_operator_secret():
    env = inner_env(REPO, outside={"ARENA_ADMIN_TOKEN": "w2s_secret", "ANTHROPIC_API_KEY": "k",
                                   "CLAUDE_CODE_ENTRYPOINT": "sdk-py", "AWS_SECRET": "x"})
    assert "ARENA_ADMIN_TOKEN" not in env and "AWS_SECRET" not in env
    assert env["ANTHROPIC_API_KEY"] == PLACEHOLDER_KEY  # the proxy outside adds the real one
    assert env["CLAUDE_CODE_ENTRYPOINT"] == "sdk-py"
    assert env["ANTHROPIC_BASE_URL"].startswith("http://127.0.0.1:")
    assert json.dumps(env).count("w2s_secret") == 0 and os.sep in env["HOME"]


@pytest.mark.slow
def test_arena_agents_run_with_the_claude_code_runtime(server, tmp_path):
    with FakeMessagesAPI() as fake:
        fake.script(text_reply("nothing to do yet"))
        env = {**os.environ, "ANTHROPIC_API_KEY": "sk-ant-fake",
               "ANTHROPIC_BASE_URL": fake.url, "ARENA_URL": server.url,
               "ARENA_ADMIN_TOKEN": server.admin_token}
        done = subprocess.run(
            [sys.executable, "-m", "study.cli", "agents", "run", "--runtime", "claude-code",
             "--n", "1", "--max-iterations", "1", "--prefix", "cc",
             "--workspaces", str(tmp_path / "agents")],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cc-1: iteration budget reached: 1 of 1" in done.stdout
    assert fake.requests and all(r["body"]["stream"] for r in fake.requests)  # Claude Code's

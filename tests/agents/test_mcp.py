"""The MCP server over stdio, driven by the official `mcp` client: every tool, and a bad token."""

import json
import os
import sys

import anyio
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from participants.tools import TOOLS
from tests.conftest import REPO

VANILLA = (REPO / "baselines" / "vanilla.py").read_text()


def params(server, token):
    return StdioServerParameters(
        command=sys.executable, args=["-m", "study.cli", "mcp"], cwd=str(REPO),
        env={**os.environ, "ARENA_URL": server.url, "ARENA_TOKEN": token})


def text_of(result) -> str:
    return "".join(block.text for block in result.content if block.type == "text")


async def _session_calls(server, token):
    async with stdio_client(params(server, token)) as (read, write), \
            ClientSession(read, write) as session:
        await session.initialize()
        listed = await session.list_tools()
        names = {t.name for t in listed.tools}
        out = {"names": names, "schemas": {t.name: t.input_schema for t in listed.tools}}

        async def call(tool, **args):
            result = await session.call_tool(tool, args)
            return text_of(result), result.is_error

        out["brief"] = await call("read_brief")
        out["tasks"] = await call("list_tasks")
        out["baselines"] = await call("read_baseline")
        out["vanilla"] = await call("read_baseline", name="vanilla")
        out["dry_run"] = await call("dry_run_method", task="rt_sentiment", source=VANILLA)
        out["clock_in"] = await call("clock_in")
        out["submit"] = await call("submit_method", task="rt_sentiment", source=VANILLA)
        attempt_id = json.loads(out["submit"][0])["id"]
        out["get"] = await call("get_attempt", attempt_id=attempt_id)
        out["wait"] = await call("wait_for_attempt", attempt_id=attempt_id)
        out["list"] = await call("list_my_attempts")
        out["quota"] = await call("my_quota")
        out["board"] = await call("leaderboard")
        out["post"] = await call("post_finding", kind="result", title="via MCP", body="works",
                                 attempt_id=attempt_id)
        out["forum"] = await call("read_forum", query="MCP")
        out["clock_out"] = await call("clock_out")
        out["bad"] = await call("submit_method", task="rt_sentiment", source="def run(ctx)")
        out["missing"] = await call("submit_method", source="def run(ctx): pass")
        return out


def test_every_tool_over_stdio(server):
    mcp_user = server.participant("mcp-user", arm="ai", kind="agent")
    out = anyio.run(_session_calls, server, mcp_user.token)
    assert out["names"] == {t.name for t in TOOLS if not t.workspace_only}
    assert "ctx.strong_features" in out["brief"][0]
    assert json.loads(out["tasks"][0])[0]["name"] == "rt_sentiment"
    assert "vanilla" in json.loads(out["baselines"][0])
    assert "def run(ctx)" in out["vanilla"][0]
    dry = json.loads(out["dry_run"][0])
    assert dry["ok"] and dry["n_predictions"] == 2000
    assert json.loads(out["wait"][0])["status"] == "scored"
    assert json.loads(out["get"][0])["id"] == json.loads(out["wait"][0])["id"]
    assert len(json.loads(out["list"][0])) == 1
    assert json.loads(out["quota"][0])["attempts_used"] == 1
    assert json.loads(out["board"][0])[0]["display_name"] == "mcp-user"
    post = json.loads(out["post"][0])
    assert post["attempt_public_pgr"] == json.loads(out["wait"][0])["public"]["pgr"]
    assert json.loads(out["forum"][0])["posts"][0]["title"] == "via MCP"
    assert json.loads(out["clock_out"][0])["active_seconds"] > 0
    text, is_error = out["bad"]
    assert is_error and "line 1" in text and "422" in text
    forum = out["schemas"]["read_forum"]["properties"]
    assert forum["limit"]["description"] and forum["limit"]["maximum"] == 200
    assert "scored attempt" in out["schemas"]["post_finding"]["properties"]["kind"][
        "description"]
    text, is_error = out["missing"]
    assert is_error and "task" in text and "required" in text.lower()
    assert all(not value[1] for key, value in out.items()
               if key not in ("names", "schemas", "bad", "missing"))


def test_a_bad_token_is_refused_at_start(server):
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "study.cli", "mcp"], cwd=REPO,
                          env={**os.environ, "ARENA_URL": server.url,
                               "ARENA_TOKEN": "w2s_wrong-token"},
                          capture_output=True, text=True, timeout=60, check=False,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode != 0
    assert "the study server refused the token: unknown token" in proc.stderr

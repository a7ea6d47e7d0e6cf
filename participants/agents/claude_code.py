"""Claude Code as an agent runtime (`arena agents run --runtime claude-code`), the runtime the
AAR agents used: each iteration is one Claude Code session (the Claude Agent SDK, an optional
extra whose wheel carries the Claude Code binary) with Bash, file tools and the study's MCP
tools, so the agent can run its own experiments locally while every score still comes from the
runner.

The session runs in a bubblewrap sandbox that sees only the agent's workspace (read-write), the
task's participant bundle at /w2s/bundle (all of train with one teacher's labels, no test
split), the Python install (read-only) and the Claude Code binary, as an unprivileged user, with
no network but two loopback ports bridged out over Unix sockets (participants.agents.netbridge):
one to a Messages API reverse proxy outside (participants.agents.api_proxy: plain HTTP in, the
real API's HTTPS out, certificate verified, /v1/messages only, the API key added there), one
to the study's MCP tools, which are served *outside* the sandbox with the agent's token — the
token, the API key, the harness's state and the operator's environment never enter it.
Budgets, notebook, forum mirror, usage and transcripts are the Messages-API harness's own.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

from participants.agents.api_proxy import PLACEHOLDER_KEY, MessagesProxy
from participants.agents.harness import NOTEBOOK, Agent, AgentConfig
from participants.agents.netbridge import UnixToTcp
from participants.agents.pricing import turn_cost
from participants.agents.request import SYSTEM
from participants.sdk import ArenaClient
from study.records import UsageSpec

INNER_API, INNER_MCP = 8001, 8002
SYSTEM_DIRS = ("/usr", "/bin", "/lib", "/lib64", "/sbin", "/etc")
PASSED_ENV = ("CLAUDE_CODE_", "CLAUDE_AGENT_", "MCP_", "DISABLE_")
BRIDGE_AT, CLAUDE_AT, SOCKETS_AT = "/w2s-bridge/netbridge.py", "/w2s-claude", "/w2s-sockets"
BUNDLE_AT = "/w2s/bundle"  # the task's participant bundle: train inputs, features, labels
TOOLS = ["Bash", "Read", "Write", "Edit", "Glob", "Grep", "mcp__arena"]


def claude_binary() -> Path:
    """The Claude Code binary the Agent SDK's wheel ships (the `claude-code` extra)."""
    try:
        import claude_agent_sdk
    except ImportError:
        raise SystemExit("the claude-code runtime needs the Claude Agent SDK: "
                         "pip install 'w2s-arena[claude-code]'") from None
    path = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
    if not path.is_file():
        raise SystemExit(f"the Claude Agent SDK has no bundled Claude Code binary at {path}")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _binds() -> list[str]:
    argv: list[str] = []
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            argv += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            argv += ["--ro-bind", d, d]
    for d in sorted({sys.base_prefix, sys.prefix}):
        argv += ["--ro-bind", d, d]
    return argv


def sandbox_argv(*, workspace: Path, home: Path, sockets: Path, binary: Path,
                 env: dict[str, str], bundle: Path | None = None) -> list[str]:
    """`bwrap … python netbridge … -- claude`: what the Agent SDK runs as its CLI."""
    bridge = Path(__file__).with_name("netbridge.py")
    argv = [shutil.which("bwrap") or "bwrap", "--unshare-all", "--die-with-parent",
            "--new-session", "--uid", "65534", "--gid", "65534", "--clearenv",
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", *_binds(),
            *(["--ro-bind", str(bundle), BUNDLE_AT] if bundle else []),
            "--ro-bind", str(binary.parent), CLAUDE_AT, "--ro-bind", str(bridge), BRIDGE_AT,
            "--bind", str(sockets), SOCKETS_AT, "--bind", str(home), str(home),
            "--bind", str(workspace), str(workspace), "--chdir", str(workspace)]
    for key, value in env.items():
        argv += ["--setenv", key, value]
    return [*argv, sys.executable, BRIDGE_AT, str(INNER_API), f"{SOCKETS_AT}/api",
            str(INNER_MCP), f"{SOCKETS_AT}/mcp", "--", f"{CLAUDE_AT}/{binary.name}"]


def inner_env(home: Path, *, outside: dict[str, str]) -> dict[str, str]:
    """The sandbox's whole environment: an allow-list of the SDK's and Claude Code's own
    settings, never the operator's (an admin token, the API key: the proxy adds that)."""
    env = {k: v for k, v in outside.items() if k.startswith(PASSED_ENV)}
    env.update(HOME=str(home), PATH=f"{sys.prefix}/bin:/usr/bin:/bin", LANG="C.UTF-8",
               ANTHROPIC_API_KEY=PLACEHOLDER_KEY,
               ANTHROPIC_BASE_URL=f"http://127.0.0.1:{INNER_API}",
               CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", DISABLE_AUTOUPDATER="1")
    return env


def write_launcher(path: Path, argv_prefix: list[str]) -> Path:
    """The executable the Agent SDK starts as its `cli_path`; it appends the SDK's args."""
    path.write_text("#!/bin/sh\nexec " + " ".join(_quote(a) for a in argv_prefix) + ' "$@"\n')
    path.chmod(0o700)
    return path


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"


class ClaudeCodeAgent(Agent):
    """The harness loop with one Claude Code session per iteration."""

    def __init__(self, config: AgentConfig, client: ArenaClient, *, token: str,
                 api_url: str | None = None, api_key: str | None = None,
                 api_ca_file: str | None = None) -> None:
        super().__init__(config, client, llm=None)
        self.token = token
        self.api_key = api_key or os.environ.get("ANTHROPIC_API_KEY", "")
        self.api_url = api_url or os.environ.get("ANTHROPIC_BASE_URL",
                                                 "https://api.anthropic.com")
        # A gateway with its own certificate authority; default: the system's trust.
        self.api_ca_file = api_ca_file or os.environ.get("ARENA_API_CA_FILE")
        assert config.harness_dir is not None
        self.home = config.harness_dir / "claude-home"
        self.sockets = config.harness_dir / "sockets"
        for d in (self.home, self.sockets):
            d.mkdir(parents=True, exist_ok=True)

    def _step(self) -> None:
        s = self.state
        self._begin_iteration()
        prompt = (s.messages[0]["content"] + f"\n\nYou have at most "
                  f"{self.config.turns_per_iteration} turns in this session; update "
                  f"{NOTEBOOK} before you finish.")
        result = self._session(prompt)
        self._account_session(result)
        s.iteration, s.turn, s.messages = s.iteration + 1, 0, []

    def _session(self, prompt: str) -> dict[str, Any]:
        """Run one sandboxed Claude Code session; returns its result message as a dict."""
        import anyio

        port = _free_port()
        mcp = subprocess.Popen(
            [sys.executable, "-m", "study.cli", "mcp", "--transport", "streamable-http",
             "--port", str(port)],
            env={**os.environ, "ARENA_URL": self.client.url, "ARENA_TOKEN": self.token},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        bridges = [MessagesProxy(self.sockets / "api", self.api_url, api_key=self.api_key,
                                 ca_file=self.api_ca_file),
                   UnixToTcp(self.sockets / "mcp", "127.0.0.1", port)]
        try:
            _wait_port(port, mcp)
            return anyio.run(self._query, prompt)
        finally:
            for b in bridges:
                b.close()
            mcp.terminate()
            mcp.wait(10)

    def _closing_hook(self, turns: list[int]) -> Any:
        """A PostToolUse hook: once the session's turns left reach `closing_turns`, the tool's
        result carries the notice to update the notebook (once), as the harness's own runtime
        says it before every cut. `turns[0]` counts the session's assistant turns so far."""
        c, told = self.config, []

        async def hook(_input: Any, _tool_use_id: str | None, _context: Any) -> dict[str, Any]:
            left = c.turns_per_iteration - turns[0]
            if told or left > c.closing_turns:
                return {}
            told.append(left)
            text = (f"This session ends in {left} turn(s): update {NOTEBOOK} now with what you "
                    "learned and what to try next.")
            self._transcript("note", text, key=f"notice:{self._turn_key()}")
            return {"hookSpecificOutput": {"hookEventName": "PostToolUse",
                                           "additionalContext": text}}

        return hook

    async def _query(self, prompt: str) -> dict[str, Any]:
        from claude_agent_sdk import (
            AssistantMessage,
            ClaudeAgentOptions,
            HookMatcher,
            ResultMessage,
            query,
        )

        c = self.config
        launcher = write_launcher(self.sockets.parent / "claude-sandboxed", sandbox_argv(
            workspace=c.workspace.resolve(), home=self.home.resolve(), bundle=self._bundle(),
            sockets=self.sockets.resolve(), binary=claude_binary(),
            env=inner_env(self.home.resolve(), outside=dict(os.environ))))
        turns = [0]  # the session's assistant turns, for the closing notice
        options = ClaudeAgentOptions(
            cli_path=str(launcher), cwd=str(c.workspace.resolve()), model=c.model,
            system_prompt={"type": "preset", "preset": "claude_code", "append": SYSTEM},
            allowed_tools=TOOLS, max_turns=c.turns_per_iteration,
            mcp_servers={"arena": {"type": "http",
                                   "url": f"http://127.0.0.1:{INNER_MCP}/mcp"}},
            setting_sources=[],
            hooks={"PostToolUse": [HookMatcher(hooks=[self._closing_hook(turns)])]})
        result: dict[str, Any] = {}
        async for message in query(prompt=prompt, options=options):
            self._transcript("assistant", json.dumps(_plain(message), default=str)[:200_000],
                             key=f"{self._turn_key()}:cc:{self.state.turn}")
            self.state.turn += 1
            turns[0] += isinstance(message, AssistantMessage)
            if isinstance(message, ResultMessage):
                result = _plain(message)
        return result

    def _bundle(self) -> Path:
        """The task's participant bundle, downloaded once and unpacked in the harness's folder
        (files and folders only: the archive's links and devices are refused)."""
        assert self.config.harness_dir is not None
        folder = self.config.harness_dir / "bundles" / self.config.task
        if not (folder / "bundle" / "task.json").is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            data = self.client.participant_bundle(self.config.task)
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                tar.extractall(folder, filter="data")
        return (folder / "bundle").resolve()

    def _account_session(self, result: dict[str, Any]) -> None:
        u = result.get("usage") or {}
        inputs, outputs = int(u.get("input_tokens", 0)), int(u.get("output_tokens", 0))
        read = int(u.get("cache_read_input_tokens", 0))
        write = int(u.get("cache_creation_input_tokens", 0))
        cost = turn_cost(self.config.model, input_tokens=inputs, output_tokens=outputs,
                         cache_read_tokens=read, cache_write_tokens=write)
        self.state.spent_usd += cost
        self.client.report_usage(UsageSpec(
            turn_key=f"{self.config.name}:{self.state.iteration}:claude-code",
            model=self.config.model, input_tokens=inputs, output_tokens=outputs,
            cache_read_tokens=read, cache_write_tokens=write, cost_usd=cost))


def _plain(message: Any) -> dict[str, Any]:
    import dataclasses

    data = dataclasses.asdict(message) if dataclasses.is_dataclass(message) else dict(message)
    return {"type": type(message).__name__, **data}


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the study's MCP server exited ({proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the study's MCP server did not start")

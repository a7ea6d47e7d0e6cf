"""What the moving cache breakpoint saves: the same scripted research iteration, run by the real
harness (real anthropic SDK, real study server) against the fake Messages API that accounts
prompt caching by the API's documented rules (tests.fakes.prompt_cache), with and without the
breakpoint on the conversation, priced with the study's price table.

Usage: python -m benchmarks.bench_prompt_cache
A real `arena serve` with no worker slots (the script's tools need no runner). Token counts are
the fake's (4 characters a token): the figures compare the two ways of caching, not a bill.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import anthropic

from benchmarks.report import write_section
from participants.agents.harness import Agent, AgentConfig
from participants.sdk import ArenaClient
from study.protocol import load_protocol
from study.server import create_study
from tests.fakes.anthropic_server import FakeMessagesAPI, text_reply, tool_use_reply

REPO = Path(__file__).resolve().parent.parent
MODELS = ("claude-opus-4-6", "claude-sonnet-4-5")
NOTES = "\n".join(f"- idea {i}: a variant of the logconf loss with a {i}% margin; check the "
                  "teacher agreement on the held-out slice before submitting." for i in range(40))


def research_turns() -> list[dict[str, Any]]:
    """An agent's iteration of reading and note-taking: 16 turns, each adding tool output to
    the conversation, the way a research iteration grows its context."""
    calls = [("read_brief", {}), ("list_tasks", {}), ("read_baseline", {}),
             ("read_baseline", {"name": "vanilla"}), ("read_forum", {}),
             ("write_file", {"path": "ideas.md", "content": NOTES}),
             ("read_file", {"path": "ideas.md"}), ("list_files", {}), ("my_quota", {}),
             ("read_baseline", {"name": "vanilla"}), ("leaderboard", {}),
             ("read_file", {"path": "ideas.md"}), ("list_my_attempts", {}),
             ("write_file", {"path": "NOTEBOOK.md", "content": NOTES[:2000]}),
             ("read_file", {"path": "NOTEBOOK.md"})]
    return [*(tool_use_reply(call, text=f"Step {i}.", output_tokens=150)
              for i, call in enumerate(calls)), text_reply("Iteration done.", output_tokens=80)]


def run_scripted(client: ArenaClient, workspace: Path, *, model: str,
                 cache_conversation: bool) -> tuple[float, list[dict[str, int]]]:
    """One iteration of `research_turns` through the harness: (dollars spent, each turn's
    usage as the fake counted it)."""
    with FakeMessagesAPI(cache=True) as fake:
        fake.script(*research_turns())
        config = AgentConfig(name=workspace.name, direction="Read everything first.",
                             workspace=workspace, model=model, max_iterations=1,
                             turns_per_iteration=len(fake.replies) + 1,
                             cache_conversation=cache_conversation)
        llm = anthropic.Anthropic(api_key="sk-ant-fake", base_url=fake.url, max_retries=0)
        state = Agent(config, client, llm).run()
        assert state.stopped == "iteration budget reached: 1 of 1", state.stopped
        return state.spent_usd, fake.usages


def _serve(folder: Path) -> tuple[subprocess.Popen, str, str]:
    protocol = load_protocol(REPO / "tests" / "protocols" / "small.toml")
    admin_token = create_study(folder / "study", protocol).token
    port = 8793
    server = subprocess.Popen([sys.executable, "-m", "study.cli", "serve", "--data-dir",
                               str(folder / "study"), "--port", str(port), "--slots", "0"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return server, f"http://127.0.0.1:{port}", admin_token


def _row(model: str, moving: bool, cost: float, usages: list[dict[str, int]]) -> str:
    read = sum(u["cache_read_input_tokens"] for u in usages)
    written = sum(u["cache_creation_input_tokens"] for u in usages)
    fresh = sum(u["input_tokens"] for u in usages)
    return (f"| {model} | {'moving' if moving else 'system + tools only'} | {len(usages)} | "
            f"{fresh:,} | {written:,} | {read:,} | ${cost:.4f} |")


def main() -> None:
    rows, ratios = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server, url, admin_token = _serve(folder)
        try:
            with ArenaClient(url, admin_token) as admin:
                admin.wait_ready(timeout=300, poll=0.2)
                for model in MODELS:
                    costs = {}
                    for moving in (False, True):
                        name = f"{model}-{'moving' if moving else 'fixed'}"
                        token = admin.add_participant(name, arm="ai", kind="agent").token
                        with ArenaClient(url, token) as client:
                            cost, usages = run_scripted(client, folder / "agents" / name,
                                                        model=model, cache_conversation=moving)
                        costs[moving] = cost
                        rows.append(_row(model, moving, cost, usages))
                    ratios.append(f"{model}: {costs[True] / costs[False]:.2f}× the cost "
                                  f"(${costs[False]:.4f} → ${costs[True]:.4f})")
        finally:
            server.terminate()
            server.wait(30)
    body = ("The same 16-turn scripted research iteration (reading the brief, baselines, forum "
            "and its own notes) run by the harness against the fake Messages API, which "
            "accounts prompt caching by the API's rules (prefix up to each breakpoint, the "
            "model's minimum cacheable length, 20-block lookback) on 4 characters a token, "
            "priced with study.prices. `python -m benchmarks.bench_prompt_cache`.\n\n"
            "| model | breakpoints | turns | uncached input | cache writes | cache reads | "
            "cost |\n|---|---|---|---|---|---|---|\n" + "\n".join(rows) +
            "\n\nWith the moving breakpoint: " + "; ".join(ratios) + ".")
    write_section("Prompt cache: the moving breakpoint", body)
    print(body)


if __name__ == "__main__":
    main()

"""A Claude research agent: an autonomous loop on the Messages API with tool use.

Each iteration starts from a fresh context holding the agent's research direction and its
notebook (NOTEBOOK.md in its private workspace), so long studies survive context limits. State
is saved after every step, and every tool call carries an idempotency key derived from the turn,
so a killed harness resumes where it stopped without submitting anything twice. Every turn's
tokens and dollars, and the transcript, go to the study server.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from participants.agents.pricing import turn_cost
from participants.sdk import ArenaAPIError, ArenaClient
from participants.tools import TOOLS, ToolContext, call_tool
from study.records import TranscriptSpec, UsageSpec

log = logging.getLogger("w2s_arena.agents")

SYSTEM = """You are an AI researcher in a weak-to-strong supervision race against human
researchers. A weak model's labels must train a stronger model; your score is PGR, the share of
the gap between the weak teacher and a strong model trained on gold labels that your method
recovers. You submit methods (Python files with run(ctx)) that the study server runs and scores
on its own seeds; you see public scores only. Work like a careful scientist: read the brief,
form hypotheses, write methods in your workspace, dry-run them, submit the promising ones, wait
for their scores, and record what you learn in NOTEBOOK.md (it is all you keep between
iterations). Share real findings on the forum, linked to the attempt that shows them. Never try
to read labels or game the scorer: attempts are audited."""

NOTEBOOK = "NOTEBOOK.md"


@dataclass
class AgentConfig:
    name: str
    direction: str
    workspace: Path
    model: str = "claude-opus-4-6"
    task: str = "rt_sentiment"
    max_usd: float = 50.0
    max_hours: float = 24.0
    max_iterations: int = 100
    turns_per_iteration: int = 20
    max_tokens: int = 4096
    api_failures_before_stop: int = 5


@dataclass
class AgentState:
    iteration: int = 0
    turn: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)
    pending: list[dict[str, Any]] | None = None  # an assistant reply whose tools have not run
    spent_usd: float = 0.0
    active_seconds: float = 0.0
    stopped: str | None = None

    @classmethod
    def load(cls, path: Path) -> AgentState:
        return cls(**json.loads(path.read_text())) if path.exists() else cls()

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(path)


def tool_schemas() -> list[dict[str, Any]]:
    schemas = [{"name": t.name, "description": t.description,
                "input_schema": t.input.model_json_schema()} for t in TOOLS]
    schemas[-1]["cache_control"] = {"type": "ephemeral"}  # the tool list is a stable prefix
    return schemas


def _block_dict(block: Any) -> dict[str, Any]:
    return block.model_dump(mode="json", exclude_none=True)


class Agent:
    def __init__(self, config: AgentConfig, client: ArenaClient, llm: Any) -> None:
        self.config = config
        self.client = client
        self.llm = llm
        config.workspace.mkdir(parents=True, exist_ok=True)
        self.state_path = config.workspace / ".agent-state.json"
        self.state = AgentState.load(self.state_path)
        self.tools = ToolContext(client=client, workspace=config.workspace)

    # ---------------------------------------------------------------------------------- run
    def run(self) -> AgentState:
        if self.state.stopped:
            return self.state
        self._clock("in")
        started = time.monotonic() - self.state.active_seconds
        try:
            while self.state.stopped is None:
                self.state.active_seconds = time.monotonic() - started
                reason = self._over_budget()
                if reason:
                    self._stop(reason)
                    break
                self._step()
                self.state.active_seconds = time.monotonic() - started
                self.state.save(self.state_path)
        finally:
            self._clock("out")
        return self.state

    def _over_budget(self) -> str | None:
        c, s = self.config, self.state
        if s.spent_usd >= c.max_usd:
            return f"dollar budget reached: ${s.spent_usd:.2f} of ${c.max_usd:.2f}"
        if s.active_seconds >= c.max_hours * 3600:
            return f"time budget reached: {s.active_seconds / 3600:.2f} of {c.max_hours} h"
        if s.iteration >= c.max_iterations:
            return f"iteration budget reached: {s.iteration} of {c.max_iterations}"
        return None

    def _stop(self, reason: str) -> None:
        log.info("%s stops: %s", self.config.name, reason)
        self.state.stopped = reason
        self._transcript("note", f"stopped: {reason}", key=f"stop:{self.state.iteration}")
        self.state.save(self.state_path)

    # --------------------------------------------------------------------------------- steps
    def _turn_key(self) -> str:
        return f"{self.config.name}:{self.state.iteration}:{self.state.turn}"

    def _opening(self) -> str:
        path = self.config.workspace / NOTEBOOK
        notebook = path.read_text(encoding="utf-8") if path.exists() else "(empty)"
        return (f"Iteration {self.state.iteration}. Your research direction: "
                f"{self.config.direction}\nThe task to climb: {self.config.task}.\n\n"
                f"Your notebook ({NOTEBOOK}):\n{notebook}\n\nContinue your research. Before "
                f"this iteration ends, update {NOTEBOOK} with what you learned and what to try "
                "next.")

    def _step(self) -> None:
        s = self.state
        if not s.messages:
            s.messages = [{"role": "user", "content": self._opening()}]
            self._transcript("user", s.messages[0]["content"])
        if s.pending is None:
            reply = self._ask()
            if reply is None:
                return
            s.pending = [_block_dict(b) for b in reply.content]
            self.state.save(self.state_path)  # before any tool runs: a resume replays them
        uses = [b for b in s.pending if b["type"] == "tool_use"]
        results = []
        for use in uses:
            self.tools.idempotency_key = f"{self._turn_key()}:{use['id']}"
            text, is_error = call_tool(self.tools, use["name"], use.get("input"))
            results.append({"type": "tool_result", "tool_use_id": use["id"],
                            "content": text[:20000], "is_error": is_error})
            self._transcript("tool", json.dumps({"tool": use["name"], "input": use.get("input"),
                                                 "result": text[:4000], "is_error": is_error}),
                             key=f"{self._turn_key()}:{use['id']}")
        s.messages.append({"role": "assistant", "content": s.pending})
        s.pending = None
        s.turn += 1
        if results and s.turn < self.config.turns_per_iteration:
            s.messages.append({"role": "user", "content": results})
            return
        s.iteration, s.turn, s.messages = s.iteration + 1, 0, []  # a fresh context

    def _ask(self) -> Any | None:
        """One Messages API call; the SDK retries 429/5xx/timeouts with backoff. If it still
        fails, the step is simply tried again later: nothing of the state is lost."""
        import anthropic

        c = self.config
        for failure in range(c.api_failures_before_stop):
            try:
                reply = self.llm.messages.create(
                    model=c.model, max_tokens=c.max_tokens,
                    system=[{"type": "text", "text": SYSTEM,
                             "cache_control": {"type": "ephemeral"}}],
                    tools=tool_schemas(), messages=self.state.messages)
                break
            except anthropic.APIError as exc:
                log.warning("%s: Messages API failed (%s), try %d", c.name, exc, failure + 1)
                time.sleep(min(30.0, 2.0**failure))
        else:
            self._stop(f"the Messages API kept failing ({c.api_failures_before_stop} times)")
            return None
        self._account(reply)
        text = "".join(b.text for b in reply.content if b.type == "text")
        self._transcript("assistant", json.dumps([_block_dict(b) for b in reply.content]))
        if text:
            log.info("%s: %s", c.name, text[:200])
        return reply

    def _account(self, reply: Any) -> None:
        u = reply.usage
        cache_read = getattr(u, "cache_read_input_tokens", 0) or 0
        cache_write = getattr(u, "cache_creation_input_tokens", 0) or 0
        cost = turn_cost(self.config.model, input_tokens=u.input_tokens,
                         output_tokens=u.output_tokens, cache_read_tokens=cache_read,
                         cache_write_tokens=cache_write)
        self.state.spent_usd += cost
        try:
            self.client.report_usage(UsageSpec(
                turn_key=self._turn_key(), model=self.config.model, input_tokens=u.input_tokens,
                output_tokens=u.output_tokens, cache_read_tokens=cache_read,
                cache_write_tokens=cache_write, cost_usd=cost))
        except ArenaAPIError as exc:
            log.error("%s: usage not recorded: %s", self.config.name, exc)

    def _transcript(self, role: str, content: str, *, key: str | None = None) -> None:
        try:
            self.client.report_transcript([TranscriptSpec(
                turn_key=key or self._turn_key(), iteration=self.state.iteration, role=role,
                content=content)])
        except ArenaAPIError as exc:
            log.error("%s: transcript not recorded: %s", self.config.name, exc)

    def _clock(self, direction: str) -> None:
        try:
            self.client.clock_in() if direction == "in" else self.client.clock_out()
        except ArenaAPIError as exc:
            if exc.status != 409:  # already in (a resume) or already out: fine
                raise

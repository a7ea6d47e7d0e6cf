"""A Claude research agent: an autonomous loop on the Messages API with tool use, built to run
unattended for days.

Each iteration starts from a fresh context holding the agent's research direction and its
notebook (NOTEBOOK.md in its workspace), so long studies survive context limits. The harness's
own files (state, token) live outside that workspace, where the agent's tools cannot reach them.
State is saved after every step and after every tool, and every tool call carries an idempotency
key derived from the turn, so a killed harness resumes where it stopped without doing anything
twice; a tool that was running when the harness died is re-run once with the same key, and a
second death there becomes a tool error the model reads, never a crash loop. An exception inside
a tool is a tool error; an API outage is waited out with capped backoff, never a stop. Only
budgets stop an agent, after it was told to update its notebook, and a larger budget resumes it.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from participants.agents.fleet import harness_dir
from participants.agents.mirror import ForumMirror
from participants.agents.pricing import price_of, turn_cost
from participants.agents.request import SYSTEM, build_request, model_options, tool_schemas
from participants.sdk import ArenaAPIError, ArenaClient
from participants.tools import ToolContext, call_tool
from study.records import TranscriptSpec, UsageSpec

log = logging.getLogger("w2s_arena.agents")

NOTEBOOK = "NOTEBOOK.md"
STUDY_ERRORS = (ArenaAPIError, httpx.HTTPError)


@dataclass
class AgentConfig:
    name: str
    direction: str
    workspace: Path
    harness_dir: Path | None = None  # default: <workspace's parent>/.harness/<name>
    model: str = "claude-opus-4-6"
    task: str = "rt_sentiment"
    max_usd: float = 50.0
    max_hours: float = 24.0
    max_iterations: int = 100
    turns_per_iteration: int = 20
    closing_turns: int = 2  # turns left when the agent is told to update its notebook
    max_tokens: int = 4096
    thinking: str | None = None  # None, "adaptive" or a token budget
    effort: str | None = None  # low, medium, high, xhigh, max
    backoff_cap: float = 300.0  # seconds between retries of a failing Messages API
    backoff_base: float = 2.0
    mirror_every: float = 60.0  # seconds between forum mirrors into the workspace
    cache_conversation: bool = True  # the moving cache breakpoint (off: to measure it)

    def __post_init__(self) -> None:
        price_of(self.model)  # an unpriced model fails here, before any paid call
        model_options(max_tokens=self.max_tokens, thinking=self.thinking, effort=self.effort)
        if self.harness_dir is None:
            self.harness_dir = harness_dir(self.workspace.parent, self.name)


@dataclass
class AgentState:
    iteration: int = 0
    turn: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)
    pending: list[dict[str, Any]] | None = None  # an assistant reply whose tools have not run
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # of `pending`, so far
    starts: dict[str, int] = field(default_factory=dict)  # tool_use id -> times started
    spent_usd: float = 0.0
    active_seconds: float = 0.0
    prompt_tokens: int = 0  # of the last request: where the cache breakpoint may go
    closing: str | None = None  # a budget was reached: the last turns of this iteration
    closing_left: int = 0
    stopped: str | None = None

    @classmethod
    def load(cls, path: Path) -> AgentState:
        if not path.exists():
            return cls()
        data = json.loads(path.read_text())
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(path)


def _block_dict(block: Any) -> dict[str, Any]:
    return block.model_dump(mode="json", exclude_none=True)


class Agent:
    def __init__(self, config: AgentConfig, client: ArenaClient, llm: Any) -> None:
        self.config = config
        self.client = client
        self.llm = llm
        config.workspace.mkdir(parents=True, exist_ok=True)
        assert config.harness_dir is not None  # set by AgentConfig
        config.harness_dir.mkdir(parents=True, exist_ok=True)
        self.state_path = config.harness_dir / "state.json"
        _adopt_old_state(config.workspace / ".agent-state.json", self.state_path)
        self.state = AgentState.load(self.state_path)
        self.tools = ToolContext(client=client, workspace=config.workspace)
        self.options = model_options(max_tokens=config.max_tokens, thinking=config.thinking,
                                     effort=config.effort)
        self.mirror = ForumMirror(client, config.workspace / "forum", every=config.mirror_every)

    # ---------------------------------------------------------------------------------- run
    def run(self) -> AgentState:
        if self.state.stopped:
            if self._over_budget():
                return self.state
            log.info("%s resumes with a new budget (was: %s)", self.config.name,
                     self.state.stopped)
            self.state.stopped, self.state.closing = None, None
        self._clock("in")
        started = time.monotonic() - self.state.active_seconds
        try:
            while self.state.stopped is None:
                self.state.active_seconds = time.monotonic() - started
                if self._budget_cuts_in():
                    break
                self.mirror.refresh()
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

    def _budget_cuts_in(self) -> bool:
        """True when the agent stops now. A budget reached mid-iteration first gives the agent
        its closing turns, with a message telling it to update its notebook."""
        s = self.state
        reason = s.closing or self._over_budget()
        if reason is None:
            return False
        if not s.messages or (s.closing and s.closing_left <= 0):
            self._stop(reason)
            return True
        if s.closing is None:
            s.closing, s.closing_left = reason, self.config.closing_turns
            self._notice(f"{reason}. You have {s.closing_left} turn(s) left: update "
                         f"{NOTEBOOK} now with what you learned and what to try next.")
        return False

    def _stop(self, reason: str) -> None:
        log.info("%s stops: %s", self.config.name, reason)
        self.state.stopped = reason
        self._transcript("note", f"stopped: {reason}", key=f"stop:{self.state.iteration}")
        self.state.save(self.state_path)

    # --------------------------------------------------------------------------------- steps
    def _turn_key(self) -> str:
        return f"{self.config.name}:{self.state.iteration}:{self.state.turn}"

    def _notebook(self) -> str:
        path = self.config.workspace / NOTEBOOK
        try:
            return path.read_text(encoding="utf-8", errors="replace") if path.is_file() \
                else "(empty)"
        except OSError as exc:
            return f"(unreadable: {exc})"

    def _opening(self) -> str:
        c, s = self.config, self.state
        budgets = (f"Your budgets: ${c.max_usd:.2f} (spent ${s.spent_usd:.2f}), "
                   f"{c.max_hours:g} h of activity (used {s.active_seconds / 3600:.2f}), "
                   f"iteration {s.iteration + 1} of {c.max_iterations}, "
                   f"{c.turns_per_iteration} turns per iteration.")
        return (f"Iteration {s.iteration}. Your research direction: "
                f"{c.direction}\nThe task to climb: {c.task}.\n{budgets}\n\n"
                f"Your notebook ({NOTEBOOK}):\n{self._notebook()}\n\nContinue your research. "
                f"Before this iteration ends, update {NOTEBOOK} with what you learned and what "
                "to try next.")

    def _begin_iteration(self) -> None:
        s = self.state
        s.messages = [{"role": "user", "content": self._opening()}]
        key = f"{self.config.name}:{s.iteration}"
        self._transcript("system", json.dumps({"system": SYSTEM, "tools": tool_schemas(),
                                               "model": self.config.model,
                                               "options": self.options}),
                         key=f"context:{key}")
        self._transcript("note", self._notebook(), key=f"notebook:{key}")
        self._transcript("user", s.messages[0]["content"])

    def _step(self) -> None:
        s = self.state
        if not s.messages:
            self._begin_iteration()
        if s.pending is None:
            reply = self._ask()
            s.pending, s.results, s.starts = [_block_dict(b) for b in reply.content], {}, {}
            self.state.save(self.state_path)  # before any tool runs: a resume goes on from here
        uses = [b for b in s.pending if b["type"] == "tool_use"]
        for use in uses:
            if use["id"] not in s.results:
                s.results[use["id"]] = self._run_tool(use)
                self.state.save(self.state_path)
        results = [s.results[u["id"]] for u in uses]
        s.messages.append({"role": "assistant", "content": s.pending})
        s.pending, s.results, s.starts = None, {}, {}
        s.turn += 1
        if s.closing:
            s.closing_left -= 1
        if results and s.turn < self.config.turns_per_iteration and \
                not (s.closing and s.closing_left <= 0):
            s.messages.append({"role": "user", "content": results})
            left = self.config.turns_per_iteration - s.turn
            if left == self.config.closing_turns and not s.closing:
                self._notice(f"This iteration ends in {left} turn(s): update {NOTEBOOK} now "
                             "with what you learned and what to try next.")
            return
        s.iteration, s.turn, s.messages = s.iteration + 1, 0, []  # a fresh context

    def _notice(self, text: str) -> None:
        """A line for the model, added to the last user message (tool results or opening)."""
        last = self.state.messages[-1]
        if isinstance(last["content"], str):
            last["content"] = [{"type": "text", "text": last["content"]}]
        last["content"].append({"type": "text", "text": text})
        self._transcript("note", text, key=f"notice:{self._turn_key()}")

    def _run_tool(self, use: dict[str, Any]) -> dict[str, Any]:
        s = self.state
        starts = s.starts.get(use["id"], 0)
        if starts >= 2:  # the harness died twice inside this call: never a third time
            text, is_error = (f"{use['name']} was interrupted twice (the harness stopped while "
                              "it ran) and was not run again; check its effect before "
                              "retrying"), True
        else:
            s.starts[use["id"]] = starts + 1
            self.state.save(self.state_path)
            self.tools.idempotency_key = f"{self._turn_key()}:{use['id']}"
            text, is_error = call_tool(self.tools, use["name"], use.get("input"))
        self._transcript("tool", json.dumps({"tool": use["name"], "input": use.get("input"),
                                             "result": text[:4000], "is_error": is_error}),
                         key=f"{self._turn_key()}:{use['id']}")
        return {"type": "tool_result", "tool_use_id": use["id"], "content": text[:20000],
                "is_error": is_error}

    def _ask(self) -> Any:
        """One Messages API call (the SDK retries 429/5xx/timeouts itself). An outage longer
        than the SDK's retries is waited out here with capped backoff, for as long as it lasts:
        an agent that runs for days must not die of an hour of 529s."""
        import anthropic

        c = self.config
        failures = 0
        while True:
            request = build_request(model=c.model, messages=self.state.messages,
                                    prompt_tokens=self.state.prompt_tokens,
                                    options=self.options,
                                    cache_conversation=c.cache_conversation)
            try:
                reply = self.llm.messages.create(**request)
                break
            except anthropic.APIStatusError as exc:
                if exc.status_code in (400, 401, 403, 404, 413):
                    raise  # our request or key is wrong: waiting would not fix it
                failures = self._wait_out(exc, failures)
            except anthropic.APIError as exc:
                failures = self._wait_out(exc, failures)
        self._account(reply)
        text = "".join(b.text for b in reply.content if b.type == "text")
        self._transcript("assistant", json.dumps([_block_dict(b) for b in reply.content]))
        if text:
            log.info("%s: %s", c.name, text[:200])
        return reply

    def _wait_out(self, exc: Exception, failures: int) -> int:
        delay = min(self.config.backoff_cap, self.config.backoff_base * 2.0 ** min(failures, 30))
        log.warning("%s: Messages API failed (%s), try %d; next in %.1f s", self.config.name,
                    exc, failures + 1, delay)
        time.sleep(delay)
        return failures + 1

    def _account(self, reply: Any) -> None:
        u = reply.usage
        cache_read = getattr(u, "cache_read_input_tokens", 0) or 0
        cache_write = getattr(u, "cache_creation_input_tokens", 0) or 0
        self.state.prompt_tokens = u.input_tokens + cache_read + cache_write
        cost = turn_cost(self.config.model, input_tokens=u.input_tokens,
                         output_tokens=u.output_tokens, cache_read_tokens=cache_read,
                         cache_write_tokens=cache_write)
        self.state.spent_usd += cost
        try:
            self.client.report_usage(UsageSpec(
                turn_key=self._turn_key(), model=self.config.model, input_tokens=u.input_tokens,
                output_tokens=u.output_tokens, cache_read_tokens=cache_read,
                cache_write_tokens=cache_write, cost_usd=cost))
        except STUDY_ERRORS as exc:
            log.error("%s: usage not recorded: %s", self.config.name, exc)

    def _transcript(self, role: str, content: str, *, key: str | None = None) -> None:
        try:
            self.client.report_transcript([TranscriptSpec(
                turn_key=key or self._turn_key(), iteration=self.state.iteration, role=role,
                content=content)])
        except STUDY_ERRORS as exc:
            log.error("%s: transcript not recorded: %s", self.config.name, exc)

    def _clock(self, direction: str) -> None:
        try:
            self.client.clock_in() if direction == "in" else self.client.clock_out()
        except ArenaAPIError as exc:
            if exc.status != 409:  # already in (a resume) or already out: fine
                log.error("%s: clock %s failed: %s", self.config.name, direction, exc)
        except httpx.HTTPError as exc:
            log.error("%s: clock %s failed: %s", self.config.name, direction, exc)


def _adopt_old_state(old: Path, new: Path) -> None:
    """Harnesses before this layout kept their state inside the agent's workspace."""
    if old.is_file() and not new.exists():
        old.replace(new)

"""The participant's tools, one catalogue for the MCP server and the agent harness.

Each tool is a pydantic input model plus a thin call of the SDK. Errors come back as data — the
server's own message for a 429 or a 422, a clear line for malformed input — never as a crash of
the caller.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from participants.sdk import ArenaAPIError, ArenaClient


class ToolError(Exception):
    """A tool call that could not be done; its message goes back to the caller as the result."""


@dataclass
class ToolContext:
    client: ArenaClient
    workspace: Path | None = None  # the agent's private folder; None over MCP
    idempotency_key: str | None = None  # set by the harness per tool call, for resumes


class NoInput(BaseModel):
    pass


class TaskInput(BaseModel):
    task: str | None = Field(None, description="task name; default: the hill-climbing task")


class BaselineInput(BaseModel):
    name: str | None = Field(None, description="baseline name; omit to list them")


class SubmitInput(BaseModel):
    task: str = Field(description="task name, e.g. rt_sentiment")
    source: str | None = Field(None, description="the method's Python source, with run(ctx)")
    file: str | None = Field(None, description="or: a file in your workspace holding it")
    note: str | None = Field(None, description="what this attempt tests, for your records")


class AttemptInput(BaseModel):
    attempt_id: str


class WaitInput(BaseModel):
    attempt_id: str
    timeout_seconds: float = Field(600, gt=0, le=3600)


class ForumInput(BaseModel):
    query: str | None = Field(None, description="search text; omit for the latest posts")


class PostInput(BaseModel):
    kind: str = Field(description="result, hypothesis, insight or error")
    title: str
    body: str = Field(description="markdown")
    attempt_id: str | None = Field(None, description="link one of your attempts: the server "
                                                     "attaches its score")


class DryRunInput(BaseModel):
    task: str
    source: str | None = None
    file: str | None = None


class WriteFileInput(BaseModel):
    path: str = Field(description="relative path in your workspace")
    content: str


class ReadFileInput(BaseModel):
    path: str


def _dump(value: Any) -> str:
    if isinstance(value, BaseModel):
        return value.model_dump_json(exclude_none=True)
    if isinstance(value, list):
        return json.dumps([v.model_dump(mode="json", exclude_none=True)
                           if isinstance(v, BaseModel) else v for v in value], default=str)
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _workspace_path(ctx: ToolContext, relative: str) -> Path:
    if ctx.workspace is None:
        raise ToolError("this tool needs a workspace; pass the source text instead")
    root = ctx.workspace.resolve()
    path = (root / relative).resolve()
    if root not in path.parents and path != root:
        raise ToolError(f"{relative!r} is outside your workspace")
    return path


def _source(ctx: ToolContext, source: str | None, file: str | None) -> str:
    if source is not None:
        return source
    if file is None:
        raise ToolError("give either `source` or `file`")
    path = _workspace_path(ctx, file)
    if not path.is_file():
        raise ToolError(f"no file {file!r} in your workspace")
    return path.read_text(encoding="utf-8")


def _submit(ctx: ToolContext, a: SubmitInput) -> Any:
    return ctx.client.submit(_source(ctx, a.source, a.file), a.task, note=a.note,
                             idempotency_key=ctx.idempotency_key)


def _wait(ctx: ToolContext, a: WaitInput) -> Any:
    try:
        return ctx.client.wait(a.attempt_id, timeout=a.timeout_seconds)
    except TimeoutError as exc:
        raise ToolError(str(exc)) from None


def _baseline(ctx: ToolContext, a: BaselineInput) -> Any:
    sources = ctx.client.baselines()
    if a.name is None:
        return sorted(sources)
    if a.name not in sources:
        raise ToolError(f"no baseline {a.name!r}; there are {sorted(sources)}")
    return sources[a.name]


def _write(ctx: ToolContext, a: WriteFileInput) -> Any:
    path = _workspace_path(ctx, a.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(a.content, encoding="utf-8")
    return f"wrote {len(a.content)} characters to {a.path}"


def _read(ctx: ToolContext, a: ReadFileInput) -> Any:
    path = _workspace_path(ctx, a.path)
    if not path.is_file():
        raise ToolError(f"no file {a.path!r} in your workspace")
    return path.read_text(encoding="utf-8")


def _list(ctx: ToolContext, a: NoInput) -> Any:
    root = _workspace_path(ctx, ".")
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    input: type[BaseModel]
    run: Callable[[ToolContext, Any], Any]
    workspace_only: bool = False
    schema: dict = field(default_factory=dict)


TOOLS: tuple[Tool, ...] = (
    Tool("read_brief", "The study brief: the W2S problem, the ctx API of a method, the rules, "
         "the baselines and their scores.", NoInput, lambda c, a: c.client.brief()),
    Tool("list_tasks", "The tasks with their kind, sizes, weak floor and ceiling.", NoInput,
         lambda c, a: c.client.tasks()),
    Tool("read_baseline", "The source of a shipped baseline method (or their names).",
         BaselineInput, _baseline),
    Tool("dry_run_method", "Run a method once on the public inputs, unscored and not counted "
         "as an attempt: checks that it runs and returns valid predictions.", DryRunInput,
         lambda c, a: c.client.dry_run(_source(c, a.source, a.file), a.task)),
    Tool("submit_method", "Submit a method (counts against your daily quota); the server runs "
         "it on its own seeds and scores it.", SubmitInput, _submit),
    Tool("get_attempt", "One of your attempts: status, public score, error.", AttemptInput,
         lambda c, a: c.client.attempt(a.attempt_id)),
    Tool("wait_for_attempt", "Wait until an attempt is scored, failed or timed out.",
         WaitInput, _wait),
    Tool("list_my_attempts", "All your attempts, newest first.", NoInput,
         lambda c, a: c.client.attempts()),
    Tool("my_quota", "Your remaining attempts and compute for today.", NoInput,
         lambda c, a: c.client.quota()),
    Tool("leaderboard", "Best public PGR per participant.", TaskInput,
         lambda c, a: c.client.leaderboard(a.task)),
    Tool("read_forum", "Read or search the forum.", ForumInput,
         lambda c, a: c.client.forum(a.query)),
    Tool("post_finding", "Post a finding (result, hypothesis, insight or error), optionally "
         "linked to one of your attempts.", PostInput,
         lambda c, a: c.client.post(a.kind, a.title, a.body, attempt_id=a.attempt_id)),
    Tool("clock_in", "Start counting your active time.", NoInput,
         lambda c, a: c.client.clock_in()),
    Tool("clock_out", "Stop counting your active time.", NoInput,
         lambda c, a: c.client.clock_out()),
    Tool("write_file", "Write a file in your private workspace.", WriteFileInput, _write,
         workspace_only=True),
    Tool("read_file", "Read a file from your private workspace.", ReadFileInput, _read,
         workspace_only=True),
    Tool("list_files", "List the files in your private workspace.", NoInput, _list,
         workspace_only=True),
)
BY_NAME = {t.name: t for t in TOOLS}


def call_tool(ctx: ToolContext, name: str, arguments: dict[str, Any] | None) -> tuple[str, bool]:
    """(result text, is_error). Never raises for anything the caller sent."""
    tool = BY_NAME.get(name)
    if tool is None:
        return f"unknown tool {name!r}; tools: {sorted(BY_NAME)}", True
    try:
        args = tool.input.model_validate(arguments or {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(input)'}: {e['msg']}"
                             for e in exc.errors())
        return f"invalid input for {name}: {problems}", True
    try:
        return _dump(tool.run(ctx, args)), False
    except ArenaAPIError as exc:
        retry = f" (retry after {exc.retry_after:.0f} s)" if exc.retry_after else ""
        return f"server said {exc.status} {exc.code}: {exc.message}{retry}", True
    except ToolError as exc:
        return str(exc), True

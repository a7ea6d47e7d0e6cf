"""The participant's tools, one catalogue for the MCP server and the agent harness.

Each tool is a pydantic input model plus a thin call of the SDK. Errors come back as data — the
server's own message for a 429 or a 422, a clear line for malformed input — never as a crash of
the caller.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

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
    attempt_id: str = Field(description="the attempt's id, e.g. att_…")
    include_source: bool = Field(False, description="also return the method's source")


class CodeInput(BaseModel):
    attempt_id: str = Field(description="an attempt linked in a forum post of your arm")


class ListAttemptsInput(BaseModel):
    task: str | None = Field(None, description="only this task")
    limit: int = Field(20, ge=1, le=200, description="at most this many, newest first")


class WaitInput(BaseModel):
    attempt_id: str = Field(description="the attempt's id")
    timeout_seconds: float = Field(600, gt=0, le=3600, description="give up after this long")


PostKind = Literal["result", "hypothesis", "insight", "error"]


class ForumInput(BaseModel):
    query: str | None = Field(None, description="search text; omit for the latest posts")
    kind: PostKind | None = Field(None, description="only posts of this kind")
    author: str | None = Field(None, description="only posts by this display name or id")
    limit: int = Field(20, ge=1, le=200, description="posts per page, newest first")
    offset: int = Field(0, ge=0, description="skip this many (the next page: offset+limit)")


class PostInput(BaseModel):
    kind: PostKind = Field(description="result (must link a scored attempt of yours), "
                                       "hypothesis, insight or error")
    title: str = Field(description="one line, at most 200 characters")
    body: str = Field(description="markdown")
    attempt_id: str | None = Field(None, description="link one of your attempts: the server "
                                                     "attaches its score")


class DryRunInput(BaseModel):
    task: str = Field(description="task name, e.g. rt_sentiment")
    source: str | None = Field(None, description="the method's Python source, with run(ctx)")
    file: str | None = Field(None, description="or: a file in your workspace holding it")


class ExperimentInput(BaseModel):
    task: str = Field(description="task name, e.g. rt_sentiment")
    source: str | None = Field(None, description="Python source with run(ctx); ctx's `test` is "
                                                 "a held-out slice of `train`")
    file: str | None = Field(None, description="or: a file in your workspace holding it")
    note: str | None = Field(None, description="what this experiment tests")
    wait_seconds: float = Field(300, ge=0, le=1800, description="wait this long for the "
                                                                "output (0: return at once)")


class ExperimentIdInput(BaseModel):
    experiment_id: str = Field(description="the experiment's id, e.g. exp_…")
    wait_seconds: float = Field(0, ge=0, le=1800, description="wait this long if unfinished")


class WriteFileInput(BaseModel):
    path: str = Field(description="relative path in your workspace")
    content: str = Field(description="the whole new content of the file")


class ReadFileInput(BaseModel):
    path: str = Field(description="relative path in your workspace")


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _dump(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(_plain(value), default=str)


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


def _attempt(ctx: ToolContext, a: AttemptInput) -> Any:
    view = ctx.client.attempt(a.attempt_id)
    return view if a.include_source else view.model_copy(update={"source": None})


def _attempts(ctx: ToolContext, a: ListAttemptsInput) -> Any:
    return [v.model_copy(update={"source": None})
            for v in ctx.client.attempts(task=a.task, limit=a.limit)]


def _forum(ctx: ToolContext, a: ForumInput) -> Any:
    posts = ctx.client.forum(a.query, limit=a.limit, offset=a.offset, kind=a.kind,
                             author=a.author)
    more = f"; more: offset={a.offset + a.limit}" if len(posts) == a.limit else ""
    return {"posts": posts, "page": f"{len(posts)} post(s) from offset {a.offset}{more}"}


def _post(ctx: ToolContext, a: PostInput) -> Any:
    return ctx.client.post(a.kind, a.title, a.body, attempt_id=a.attempt_id,
                           idempotency_key=ctx.idempotency_key)


def _experiment_result(ctx: ToolContext, experiment_id: str, wait: float) -> Any:
    """The experiment (waited for up to `wait` s); its files are saved into the workspace,
    when there is one, under experiments/<id>/."""
    view = ctx.client.get_experiment(experiment_id)
    if wait > 0 and view.status in ("queued", "running"):
        with contextlib.suppress(TimeoutError):  # not done yet: say so, with its status
            view = ctx.client.wait_experiment(experiment_id, timeout=wait)
    saved = []
    if ctx.workspace is not None and view.files:
        folder = _workspace_path(ctx, f"experiments/{experiment_id}")
        folder.mkdir(parents=True, exist_ok=True)
        for f in view.files:
            (folder / f.name).write_bytes(ctx.client.experiment_file(experiment_id, f.name))
            saved.append(f"experiments/{experiment_id}/{f.name}")
    out = view.model_copy(update={"source": None}).model_dump(mode="json", exclude_none=True)
    return {**out, "saved_files": saved} if saved else out


def _run_experiment(ctx: ToolContext, a: ExperimentInput) -> Any:
    view = ctx.client.experiment(_source(ctx, a.source, a.file), a.task, note=a.note,
                                 idempotency_key=ctx.idempotency_key)
    return _experiment_result(ctx, view.id, a.wait_seconds)


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
         lambda c, a: c.client.dry_run(_source(c, a.source, a.file), a.task,
                                       idempotency_key=c.idempotency_key)),
    Tool("run_experiment", "Run code (with run(ctx)) as an experiment: in the method sandbox, "
         "unscored, not an attempt, with its own daily budget. ctx's `train` is most of the "
         "train split and its `test` a held-out slice of train; if run(ctx) returns "
         "predictions for it they are compared with the teacher's labels there. Returns what "
         "it printed, what it logged with ctx.log, and the files it wrote to ctx.files_dir "
         "(PNG, CSV…).", ExperimentInput, _run_experiment),
    Tool("get_experiment", "One of your experiments: status, output, metrics, files.",
         ExperimentIdInput, lambda c, a: _experiment_result(c, a.experiment_id,
                                                            a.wait_seconds)),
    Tool("submit_method", "Submit a method (counts against your daily quota); the server runs "
         "it on its own seeds and scores it.", SubmitInput, _submit),
    Tool("get_attempt", "One of your attempts: status, public score, error, what the method "
         "logged (its source only if asked).", AttemptInput, _attempt),
    Tool("wait_for_attempt", "Wait until an attempt is scored, failed or timed out.",
         WaitInput, _wait),
    Tool("list_my_attempts", "Your attempts, newest first (without their source).",
         ListAttemptsInput, _attempts),
    Tool("my_quota", "Your remaining attempts and compute for today.", NoInput,
         lambda c, a: c.client.quota()),
    Tool("leaderboard", "Best public PGR per participant.", TaskInput,
         lambda c, a: c.client.leaderboard(a.task)),
    Tool("read_forum", "Read or search the forum, a page at a time (newest first), by kind "
         "or author.", ForumInput, _forum),
    Tool("post_finding", "Post a finding (result, hypothesis, insight or error); a result "
         "must link a scored attempt of yours, whose score the server attaches.", PostInput,
         _post),
    Tool("read_attempt_code", "The code of an attempt linked in a forum post by someone in "
         "your arm, when the study shares code within arms (each read is logged).", CodeInput,
         lambda c, a: c.client.attempt_code(a.attempt_id)),
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
    except Exception as exc:  # a tool's surprise is the model's error, not the caller's crash
        # A ReadTimeout, a record the server sent that fails validation, a bug in a tool: the
        # caller (an agent's thread, an MCP session) must live on and the model must see why.
        return f"{name} failed: {type(exc).__name__}: {str(exc)[:2000]}", True

"""Typed records shared by the store, the service, the API and the SDK.

`*Record` is a stored row as the server sees it; `*View` is what a given caller may see of it;
`*Spec` is an input. Statuses are str Enums with an explicit table of allowed transitions.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field


def _utf8(value: str) -> str:
    """JSON can carry lone surrogates that no UTF-8 store can hold: refuse them up front."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid UTF-8 (it holds a lone surrogate)") from None
    return value


Text = Annotated[str, AfterValidator(_utf8)]


class Role(StrEnum):
    PARTICIPANT = "participant"
    ANALYST = "analyst"
    ADMIN = "admin"


class ParticipantKind(StrEnum):
    HUMAN = "human"
    AGENT = "agent"
    SERVICE = "service"  # admins, analysts and other non-competing principals
    IMPORTED = "imported"  # published results drawn beside a live study, never a submitter


class AttemptStatus(StrEnum):
    SUBMITTED = "submitted"
    QUEUED = "queued"
    RUNNING = "running"
    SCORED = "scored"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


TERMINAL = frozenset({AttemptStatus.SCORED, AttemptStatus.FAILED, AttemptStatus.TIMED_OUT,
                      AttemptStatus.CANCELLED})
ACTIVE = frozenset({AttemptStatus.SUBMITTED, AttemptStatus.QUEUED, AttemptStatus.RUNNING})

TRANSITIONS: dict[AttemptStatus, frozenset[AttemptStatus]] = {
    AttemptStatus.SUBMITTED: frozenset({AttemptStatus.QUEUED, AttemptStatus.CANCELLED}),
    # RUNNING → QUEUED is the one retry after an infrastructure fault (a killed server/worker).
    AttemptStatus.QUEUED: frozenset({AttemptStatus.RUNNING, AttemptStatus.CANCELLED}),
    AttemptStatus.RUNNING: frozenset({AttemptStatus.SCORED, AttemptStatus.FAILED,
                                      AttemptStatus.TIMED_OUT, AttemptStatus.CANCELLED,
                                      AttemptStatus.QUEUED}),
    AttemptStatus.SCORED: frozenset(),
    AttemptStatus.FAILED: frozenset(),
    AttemptStatus.TIMED_OUT: frozenset(),
    AttemptStatus.CANCELLED: frozenset(),
}


def can_move(old: AttemptStatus, new: AttemptStatus) -> bool:
    return new in TRANSITIONS[old]


class ParticipantRecord(BaseModel):
    id: str
    display_name: str
    role: Role
    arm: str | None
    kind: ParticipantKind
    created_at: dt.datetime


class ParticipantSpec(BaseModel):
    display_name: Text = Field(min_length=1, max_length=80)
    role: Role = Role.PARTICIPANT
    arm: str | None = None
    kind: ParticipantKind = ParticipantKind.HUMAN
    token_hours: float | None = Field(None, gt=0, le=87_600,
                                      description="token lifetime (≤ 10 years); none: no expiry")


class IssuedToken(BaseModel):
    token_id: str
    token: str  # shown once; only its sha256 is stored
    participant: ParticipantRecord
    expires_at: dt.datetime | None


class SubmitSpec(BaseModel):
    task: Text = Field(min_length=1, max_length=100)
    source: str = Field(description="the method's Python source, UTF-8")
    idempotency_key: Text | None = Field(None, max_length=200)
    note: Text | None = Field(None, max_length=2000)
    parent_id: str | None = Field(None, max_length=64,
                                  description="one of your attempts this method was edited from")


class UsageSpec(BaseModel):
    """One model turn of an agent, reported by its harness. `turn_key` makes the report
    idempotent: a resumed harness that reports a turn again is not counted twice."""

    turn_key: Text = Field(min_length=1, max_length=200)
    model: Text = Field(min_length=1, max_length=100)
    input_tokens: int = Field(ge=0, le=10**12)
    output_tokens: int = Field(ge=0, le=10**12)
    cache_read_tokens: int = Field(0, ge=0, le=10**12)
    cache_write_tokens: int = Field(0, ge=0, le=10**12)
    cost_usd: float = Field(ge=0, le=10_000)


class TranscriptSpec(BaseModel):
    turn_key: Text = Field(min_length=1, max_length=200)
    iteration: int = Field(ge=0, le=1_000_000)
    role: str = Field(pattern=r"^(user|assistant|tool|system|note)$")
    content: Text = Field(max_length=2_000_000)


class UsageView(BaseModel):
    participant_id: str
    display_name: str
    arm: str | None
    kind: str
    turns: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_usd: float
    active_hours: float
    last_turn_at: dt.datetime | None = None  # the agent's last model turn
    stopped: str | None = None  # why its harness stopped it, if it has not resumed since


class DryRunSpec(BaseModel):
    task: Text = Field(min_length=1, max_length=100)
    source: str
    # A re-sent request with the same key gets the same run back (stored: also after a restart).
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)


class DryRunView(BaseModel):
    """A method run once on the public inputs, unscored: does it run, and what does it return?"""

    ok: bool
    error: str | None = None
    traceback: str | None = None
    log_tail: str = ""
    n_predictions: int | None = None
    mean_prediction: float | None = None
    share_above_half: float | None = None
    wall_seconds: float = 0.0
    cpu_seconds: float | None = None  # the method process's CPU time (None: not measured)


class ExperimentSpec(BaseModel):
    """Participant code (a file with run(ctx)) run once as an experiment: on the participant
    bundle with a held-out slice of `train` as its `test`, unscored, returning what it prints,
    logs (ctx.log) and writes to ctx.files_dir."""

    task: Text = Field(min_length=1, max_length=100)
    source: str
    note: Text | None = Field(None, max_length=2000)
    idempotency_key: str | None = Field(None, min_length=1, max_length=200,
                                        description="a re-sent request returns the first run")


class ExperimentFileView(BaseModel):
    name: str
    media_type: str
    size: int


class ExperimentView(BaseModel):
    id: str
    participant_id: str
    task: str
    status: str  # queued, running, finished, failed, timed_out, cancelled
    note: str | None = None
    seed: int
    submitted_at: dt.datetime
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    wall_seconds: float | None = None
    cpu_seconds: float | None = None
    peak_mb: float | None = None
    stdout: str | None = None
    metrics: list[dict[str, Any]] = []
    teacher_eval: dict[str, float] | None = None  # run(ctx)'s predictions vs the teacher's
    files: list[ExperimentFileView] = []
    error: str | None = None
    traceback: str | None = None
    source: str | None = None  # only the author's own, or an analyst's


class ImportSpec(BaseModel):
    label: Text = Field(min_length=1, max_length=80, description="who these results are from")
    files: dict[str, dict[str, Any]] = Field(description="file name → parsed per-seed JSON")


class ReviewSpec(BaseModel):
    transcript: Text | None = Field(None, max_length=2_000_000)


class ReasonSpec(BaseModel):
    reason: Text = Field(min_length=1, max_length=2000)


class FlagView(BaseModel):
    id: str
    attempt_id: str
    participant_id: str
    kind: str
    detail: dict[str, Any]
    created_at: dt.datetime


class AuditView(BaseModel):
    id: str
    kind: str
    attempt_id: str
    task: str
    status: str
    pgr: float | None = None
    accuracy: float | None = None
    error: str | None = None


class GeneralizationRow(BaseModel):
    participant_id: str
    display_name: str
    arm: str | None
    attempt_id: str
    hill_climb_public: float | None
    hill_climb_private: float | None
    held_out: dict[str, float | None]


class ProtocolAmendSpec(BaseModel):
    toml: str = Field(max_length=100_000, description="the whole new protocol, as TOML")
    reason: Text = Field(min_length=1, max_length=2000)


class ScoreView(BaseModel):
    """What a participant is shown of a score: the public half, rounded per protocol."""

    pgr: float | None
    pgr_se: float | None
    accuracy: float | None
    n: int
    subsets: dict[str, dict[str, Any]] = {}
    pgr_ci95: tuple[float, float] | None = None  # the 95% interval of the mean PGR
    shown: str = ""  # "0.62 [0.53, 0.71]": the one way every page writes this score
    # One PGR per seed: analysts, or everyone once the window closed (a method that knows its
    # seed could otherwise probe the public labels once per seed instead of once per attempt).
    pgr_per_seed: list[float] = []


class SeedRunView(BaseModel):
    """One seed of an attempt, live while it runs (from ctx.progress) and kept afterwards."""

    seed: int
    state: str  # pending, running, ok, error, timeout, killed, cancelled
    done: float | None = None  # the last ctx.progress(done, total)
    total: float | None = None
    wall_seconds: float | None = None
    error: str | None = None
    log_tail: str = ""


class AttemptView(BaseModel):
    id: str
    participant_id: str
    task: str
    status: AttemptStatus
    code_sha256: str
    note: str | None = None
    submitted_at: dt.datetime
    queued_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    queue_position: int | None = None
    # While it runs (to its author and staff): how often its live report (seed_runs, metrics)
    # has changed; a long-poll with since_live answers when it moves.
    live_version: int | None = None
    seeds: list[int] = []
    public: ScoreView | None = None
    public_withheld: str | None = None  # why no public score is shown (the Ladder)
    private: ScoreView | None = None  # analysts and admins only; after the window, everyone
    released: bool = True
    disqualified: bool = False
    wall_seconds: float | None = None
    cpu_seconds: float | None = None
    peak_mb: float | None = None
    gpu_seconds: float | None = None  # wall × GPUs held, on a GPU study (what was charged)
    peak_gpu_mb: float | None = None
    error: str | None = None
    error_kind: str | None = None
    traceback: str | None = None
    log_tail: str | None = None
    tries: int = 0
    source: str | None = None  # only the author's own, or an analyst's
    metrics: list[dict[str, Any]] = []  # ctx.log records per seed (live while running)
    seed_runs: list[SeedRunView] = []  # per seed: state, progress, output (single reads only)
    parent_id: str | None = None  # the attempt this one was edited from


class QuotaView(BaseModel):
    attempts_per_day: int
    attempts_used: int
    attempts_left: int
    compute_seconds_per_day: float
    compute_seconds_used: float
    compute_seconds_left: float
    compute_unit: str = Field("CPU-seconds", description="CPU-seconds, or GPU-seconds (wall "
                              "time × GPUs held) in a study that runs on GPUs")
    compute_seconds_reserved: float = Field(
        0.0, description="held by queued and running attempts (seeds × per-seed limit), "
                         "part of compute_seconds_used until they finish and settle")
    concurrent_attempts: int
    active_attempts: int
    next_attempt_at: dt.datetime | None = Field(
        None, description="when an attempt returns to the daily quota, if it is used up")


class MeView(BaseModel):
    participant: ParticipantRecord
    quota: QuotaView | None
    clocked_in_since: dt.datetime | None
    active_seconds: float


class TaskView(BaseModel):
    name: str
    kind: str
    role: str
    description: str
    label_names: list[str]
    sizes: dict[str, int]
    weak: float | None = None
    ceiling: float | None = None


class LeaderboardRow(BaseModel):
    rank: int
    participant_id: str
    display_name: str
    arm: str | None
    kind: str
    best_pgr: float | None
    best_pgr_ci95: tuple[float, float] | None = None  # 95% over test items and seeds
    shown: str = ""  # "0.62 [0.53, 0.71]", as on the attempt page
    best_attempt_id: str
    attempts: int
    best_at: dt.datetime


class ForumPostSpec(BaseModel):
    kind: str = Field(pattern=r"^(result|hypothesis|insight|error)$")
    title: Text = Field(min_length=1, max_length=200)
    body: Text = Field(max_length=20000)
    attempt_id: str | None = None
    # A resumed agent re-sends its post with the same key and gets the first one back.
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)


class ForumPostView(BaseModel):
    id: str
    participant_id: str
    display_name: str
    arm: str | None
    kind: str
    title: str
    body: str
    attempt_id: str | None
    attempt_public_pgr: float | None  # the server's score, never typed by hand
    attempt_public_pgr_ci95: tuple[float, float] | None = None
    attempt_shown: str | None = None  # "0.62 [0.53, 0.71]", as on the attempt page
    created_at: dt.datetime


class CodeSnapshotView(BaseModel):
    """The code behind an attempt linked on the forum, as an arm-mate downloads it."""

    attempt_id: str
    author_id: str
    author: str
    task: str
    code_sha256: str
    source: str


class ClockView(BaseModel):
    clocked_in_since: dt.datetime | None
    active_seconds: float


class StudyView(BaseModel):
    name: str
    protocol_hash: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    arms: list[str]
    tasks: dict[str, list[str]]
    seeds_per_attempt: int
    feedback: dict[str, Any]
    limits: dict[str, Any]
    analysis: dict[str, Any] = {}  # the pre-registered [analysis] plan


class SessionView(BaseModel):
    """A browser session of the workspace: its secret works as a bearer token until it
    expires, is ended, or the token that opened it is revoked."""

    session: str  # shown once; only its sha256 is stored
    expires_at: dt.datetime
    participant: ParticipantRecord


class DraftSpec(BaseModel):
    source: str = Field(description="the editor's text, UTF-8")
    task: Text | None = Field(None, max_length=100)
    origin: Text | None = Field(None, max_length=200, description="what the text was loaded from")


class DraftView(BaseModel):
    source: str
    task: str | None
    origin: str | None
    saved_at: dt.datetime

"""The study protocol: a TOML file frozen at creation; its hash is recorded with the study."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from study.errors import InvalidError
from study.protocol_lm import DatasetSpec, ModelsSpec, check_recipe_overrides
from study.tasks.records import canonical_json


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskSet(_Strict):
    hill_climb: list[str] = Field(min_length=1)
    held_out: list[str] = []

    @property
    def all(self) -> list[str]:
        return [*self.hill_climb, *self.held_out]


class Window(_Strict):
    start: dt.datetime | None = None
    duration_hours: float = Field(168.0, gt=0)


class Arm(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,39}$")


class BudgetSpec(_Strict):
    attempts_per_day: int = Field(40, ge=1)
    compute_seconds_per_day: float = Field(7200.0, gt=0)
    concurrent_attempts: int = Field(2, ge=1)


class Budgets(_Strict):
    default: BudgetSpec = BudgetSpec()
    arms: dict[str, BudgetSpec] = {}


class Feedback(_Strict):
    public_fraction: float = Field(0.5, gt=0, lt=1)
    round_to: int = Field(2, ge=0, le=6)
    # Ladder: a new public score is shown only when it beats the participant's best by this.
    ladder_margin: float | None = Field(None, ge=0)
    # Participants see public scores in steps of this many public items: the mean correct
    # count is floored to a multiple of it before accuracy and PGR are derived (study.feedback).
    public_step_items: int = Field(10, ge=1)
    # Two attempts of one participant whose predictions differ on 1..this many *public* items
    # are flagged as label probing (private differences are free padding, so never counted).
    probe_max_diff: int = Field(10, ge=0)
    # A "small step": an attempt within this many public items of an earlier one of the same
    # participant. The probe_chain_length-th small step, and each after it, is flagged.
    probe_chain_items: int = Field(25, ge=0)
    probe_chain_length: int = Field(3, ge=1)


class AuditSpec(_Strict):
    teacher_ablation: bool = True  # re-run each new personal best with permuted weak labels
    ablation_tolerance: float = Field(0.1, ge=0)  # |ΔPGR| below this: "ignores the teacher"
    top_k: int = Field(3, ge=1, le=20)  # per participant, re-run on held-out tasks at finalize
    review_model: str = "claude-opus-4-6"  # the optional LLM review (needs ANTHROPIC_API_KEY)


class Visibility(_Strict):
    cross_arm_visibility: bool = False
    # Forum only: arm-mates may download the code of an attempt linked in a post (every read
    # is logged, so information flow between participants becomes data).
    share_code_within_arm: bool = False


class Limits(_Strict):
    max_source_bytes: int = Field(200_000, ge=100, le=5_000_000)
    attempt_seconds: float = Field(600.0, gt=0)
    memory_mb: int = Field(4096, ge=256)
    # Unscored dry runs are not attempts, but they are compute: cap them per day too.
    dry_runs_per_day: int = Field(100, ge=0)
    # Below this much free space on the data disk the server refuses writes (507) before
    # DuckDB can fail on a full disk; reads keep working.
    min_free_disk_mb: int = Field(512, ge=0)
    # The method's writable space (/tmp, its working folder): a tmpfs of this size, whose pages
    # also count against memory_mb.
    disk_mb: int = Field(1024, ge=16)
    # "required": the runner refuses to run methods without per-run cgroups (memory incl. tmpfs,
    # processes, whole-tree CPU); "optional" runs with per-process limits only where none exist.
    cgroups: Literal["required", "optional"] = "required"
    # What participants send besides methods, per participant per 24 h (429 past it).
    usage_reports_per_day: int = Field(20_000, ge=1)
    transcript_mb_per_day: float = Field(64.0, gt=0)
    forum_posts_per_day: int = Field(200, ge=1)


class ExperimentLimits(_Strict):
    """Experiments (unscored runs on the participant bundle, returning output, metrics and
    files) have their own budget, the same for every arm, apart from attempts'."""

    per_day: int = Field(50, ge=0)
    seconds: float = Field(300.0, gt=0)  # wall-clock cap of one experiment
    concurrent: int = Field(1, ge=1)  # queued or running at once, per participant
    compute_seconds_per_day: float = Field(3600.0, gt=0)


class AnalysisPlan(_Strict):
    """The pre-registered comparison: fixed before the window opens, so a result read at the
    endpoint is confirmatory and anything read earlier is labelled exploratory."""

    # Each participant's private PGR at their best *public* attempt by time t: the choice a
    # participant could make. "oracle_private" chooses with held-out scores (no one can).
    endpoint: Literal["private_at_best_public", "best_public", "oracle_private"] = \
        "private_at_best_public"
    axis: Literal["calendar_hours", "own_hours", "active_hours", "compute_hours", "dollars"] = \
        "calendar_hours"
    at: float | None = Field(None, gt=0)  # t on the axis; unset: the window's length in hours
    # PGRs of different tasks are not comparable: the endpoint is read on one hill-climb task
    # (unset: the first). Imported results are drawn as their own arm per task, never merged.
    task: str | None = None
    alpha: float = Field(0.05, gt=0, lt=1)
    unit: Literal["participant"] = "participant"
    test: Literal["permutation", "pooled_t"] = "permutation"
    arms: list[str] = []  # the two arms compared; unset: the protocol's first two arms
    # A participant with no scored attempt by t counts at the weak floor (PGR 0): every
    # enrolled participant stays in their arm, as in intention-to-treat.
    no_attempt: Literal["floor", "exclude"] = "floor"
    thresholds: list[float] = [0.2, 0.5, 0.8]
    max_open_session_hours: float = Field(12.0, gt=0)  # a never-closed clock-in is capped here
    labour_hour_price: float = Field(0.0, ge=0)  # dollars per active hour of a human
    # Interim looks that may be confirmatory (analysis/sequential.py): calendar hours before
    # t at which the comparison is read, α spread over them by a stated Lan–DeMets spending
    # function. None declared: every reading before the window closes is exploratory.
    interim_looks: list[Annotated[float, Field(gt=0)]] = []
    spending: Literal["none", "obrien_fleming", "pocock"] = "none"
    # The figures' "best baseline" line: the best of these shipped baselines (files in
    # baselines/, unmodified) as this study ran them on the task; empty: all of them.
    reference_baselines: list[str] = []

    @model_validator(mode="after")
    def _looks_are_planned(self) -> AnalysisPlan:
        looks = self.interim_looks
        if looks and self.spending == "none":
            raise ValueError("interim_looks need a spending function (spending = "
                             "\"obrien_fleming\" or \"pocock\"): looks without one spend α "
                             "again at every look")
        if looks and self.axis != "calendar_hours":
            raise ValueError("interim_looks are calendar hours: set axis = \"calendar_hours\"")
        if any(b <= a for a, b in itertools.pairwise(looks)):
            raise ValueError(f"interim_looks must increase: {looks}")
        if looks and self.at is not None and looks[-1] >= self.at:
            raise ValueError(f"interim looks come before t = {self.at}: {looks}")
        return self


class RunnerSpec(_Strict):
    # "all" or GPU indices "0,1": one worker slot per GPU and compute charged in GPU-seconds.
    # None: a CPU study. `arena up/serve --gpus` overrides it for the machine at hand.
    gpus: str | None = Field(None, pattern=r"^(all|\d+(,\d+)*)$")
    gpus_per_attempt: int = Field(1, ge=1, le=8)
    # Where attempts run: this machine's slots, or a Ray cluster (docs/server.md, "Scale out").
    # `arena up/serve --backend/--ray-address` override both for the machine at hand.
    backend: Literal["local", "ray"] = "local"
    ray_address: str | None = Field(None, pattern=r"^ray://[\w.\-\[\]:]+:\d+$")
    ray_cpus_per_attempt: float = Field(1.0, gt=0, le=64)


class ProtocolSpec(_Strict):
    name: str
    scorer_version: str = "1"
    model_pair: str = "default"
    seeds_per_attempt: int = Field(5, ge=1, le=16)
    sandbox: bool = True
    tasks: TaskSet
    window: Window = Window()
    arms: list[Arm] = Field(min_length=1)
    budgets: Budgets = Budgets()
    feedback: Feedback = Feedback()
    forum: Visibility = Visibility()
    leaderboard: Visibility = Visibility(cross_arm_visibility=True)
    limits: Limits = Limits()
    experiments: ExperimentLimits = ExperimentLimits()
    audits: AuditSpec = AuditSpec()
    runner: RunnerSpec = RunnerSpec()
    analysis: AnalysisPlan = AnalysisPlan()
    # The LM testbed (docs/tasks.md): tasks from data folders, a named LM pair, its baselines.
    datasets: list[DatasetSpec] = []
    models: ModelsSpec | None = None  # overrides model_pair when given
    lm: Annotated[dict[str, Any], AfterValidator(check_recipe_overrides)] = {}  # LMRecipe keys

    @model_validator(mode="after")
    def _arms_known(self) -> ProtocolSpec:
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            raise ValueError(f"arm names repeat: {names}")
        unknown = set(self.budgets.arms) - set(names)
        if unknown:
            raise ValueError(f"budgets name unknown arm(s) {sorted(unknown)}")
        compared = self.analysis.arms
        if compared and (len(compared) != 2 or set(compared) - set(names)):
            raise ValueError(f"analysis.arms must name two of the arms {names}: {compared}")
        if self.analysis.task and self.analysis.task not in self.tasks.hill_climb:
            raise ValueError(f"analysis.task {self.analysis.task!r} is not a hill-climb task "
                             f"{self.tasks.hill_climb}")
        return self

    def budget_for(self, arm: str) -> BudgetSpec:
        return self.budgets.arms.get(arm, self.budgets.default)

    @property
    def arm_names(self) -> list[str]:
        return [a.name for a in self.arms]

    def hash(self) -> str:
        return hashlib.sha256(canonical_json(self.model_dump(mode="json")).encode()).hexdigest()


def parse_protocol(text: str, *, source: str = "protocol") -> ProtocolSpec:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidError(f"{source} is not valid TOML: {exc}") from None
    try:
        return ProtocolSpec.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidError(f"{source}: {problems}") from None


def load_protocol(path: Path) -> ProtocolSpec:
    if not path.is_file():
        raise InvalidError(f"no protocol file at {path}")
    return parse_protocol(path.read_text(encoding="utf-8"), source=str(path))

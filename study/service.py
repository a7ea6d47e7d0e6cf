"""The submission service: every participant action and every runner outcome goes through here.

Routes call it with an authenticated principal; the scheduler calls it as a JobSource. It decides
what each role may see, enforces quotas, and writes the store inside transactions.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import numpy as np

from study.audit_scores import probs_digest, score_record
from study.errors import (
    AuthError,
    ConflictError,
    ForbiddenError,
    InvalidError,
    NotFoundError,
    PayloadTooLargeError,
    QuotaError,
)
from study.feedback import best_coarse, coarse_part, coarse_public
from study.gpu_accounting import compute_unit
from study.integrity import flag_static_scan
from study.live import LiveRuns
from study.method_source import missing_run
from study.protocol import ProtocolSpec, parse_protocol
from study.protocol_lm import inherit_dataset_pins
from study.read_cache import CommitCache, CredentialCache
from study.records import (
    TERMINAL,
    AttemptStatus,
    AttemptView,
    ClockView,
    IssuedToken,
    LeaderboardRow,
    MeView,
    ParticipantKind,
    ParticipantRecord,
    ParticipantSpec,
    QuotaView,
    Role,
    ScoreView,
    StudyView,
    SubmitSpec,
)
from study.redact import strip_host_paths
from study.score_display import part_interval, round_pair, shown
from study.service_dryruns import DryRunSide
from study.service_experiments import ExperimentSide
from study.service_forum import ForumSide
from study.service_review import ReviewSide
from study.service_runner import DAY, RunnerSide
from study.service_workspace import SESSION_PREFIX, WorkspaceSide, seed_runs_from_results
from study.store import Store, utcnow
from study.store.queries import new_id


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _inline_lane(fn: Callable[[], Any]) -> Future:
    """A finished future: for a service with no scheduler (tests, tools)."""
    future: Future = Future()
    try:
        future.set_result(fn())
    except Exception as exc:
        future.set_exception(exc)
    return future


def _round(value: float | None, digits: int) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


class ArenaService(RunnerSide, ReviewSide, WorkspaceSide, ForumSide, ExperimentSide,
                   DryRunSide):
    def __init__(self, store: Store, protocol: ProtocolSpec, *,
                 clock: Callable[[], dt.datetime] = utcnow,
                 task_info: Callable[[str], dict[str, Any]] | None = None,
                 on_submit: Callable[[], None] | None = None,
                 rescore: Callable[[str, list[np.ndarray], float], dict[str, Any]] | None = None
                 ) -> None:
        self.store = store
        self.protocol = protocol
        self.clock = clock
        self._task_info = task_info or (lambda name: {"name": name})
        self.on_submit = on_submit or (lambda: None)
        self._rescore = rescore
        self.reviewer = None  # an anthropic.Anthropic client, when a key is configured
        self.live = LiveRuns()  # what running attempts report, for their attempt pages
        # The status poll's hot reads (study.read_cache): who holds a credential, an attempt.
        self.credentials = CredentialCache()
        self.attempt_reads = CommitCache(store.db)
        self.dry_runner: Callable[[str, str], dict[str, Any]] | None = None
        # Where dry runs execute: the scheduler's dry-run lane (set by the server); a service
        # without a scheduler (API-only server, tools) runs them in the caller's thread.
        self.dry_lane: Callable[[Callable[[], Any]], Future] = _inline_lane
        self.dry_in_flight: dict[str, int] = {}  # participant → dry runs queued or running
        self._dry_lock = threading.Lock()
        self.dry_running: dict[str, Future] = {}  # dry run id → its answer, while it runs
        self.items_for: Callable[[str, list[np.ndarray]], dict[str, Any]] | None = None
        # task → which test items are public (from the study's secret salt; set by the server)
        self.public_mask_for: Callable[[str], np.ndarray] | None = None
        study = store.get_study()
        if study is None:
            raise NotFoundError("this database holds no study: run `arena study create` first")
        self.starts_at: dt.datetime = study["starts_at"]
        self.ends_at: dt.datetime = study["ends_at"]
        self.protocol_hash: str = study["protocol_hash"]
        # Set by the platform when its slots hold GPUs (`--gpus`), else from the protocol.
        self.gpu_study: bool = protocol.runner.gpus is not None

    # ------------------------------------------------------------------ auth and participants
    def authenticate(self, token: str | None) -> ParticipantRecord:
        if not token:
            raise AuthError("missing bearer token: send 'Authorization: Bearer <token>'")
        known = self.known_principal(token)
        if known is not None:
            return known
        key, epoch = hash_token(token), self.credentials.epoch
        if token.startswith(SESSION_PREFIX):
            principal, ends = self.session_principal(token)
        else:
            principal, ends = self._token_principal(key)
        self.credentials.put(key, epoch, principal, ends)
        return principal

    def known_principal(self, token: str | None) -> ParticipantRecord | None:
        """The holder of a credential remembered and not expired, without a query (a revoked
        or ended one is forgotten when that commits); None: ask `authenticate`."""
        known = self.credentials.get(hash_token(token)) if token else None
        if known is not None and (known[1] is None or known[1] > self.clock()):
            return known[0]
        return None

    def _token_principal(self, token_sha256: str) -> tuple[ParticipantRecord, dt.datetime | None]:
        """Who holds a token, and when it expires; refused if unknown, revoked or expired."""
        row = self.store.token_owner(token_sha256)
        if row is None:
            raise AuthError("unknown token")
        if row["revoked_at"] is not None:
            raise AuthError("this token was revoked; ask the study admin for a new one")
        if row["expires_at"] is not None and row["expires_at"] <= self.clock():
            raise AuthError(f"this token expired at {row['expires_at']:%Y-%m-%d %H:%M} UTC")
        fields = {k: row[k] for k in ("id", "display_name", "role", "arm", "kind", "created_at")}
        return ParticipantRecord(**fields), row["expires_at"]

    @staticmethod
    def require(principal: ParticipantRecord, *roles: Role) -> None:
        if principal.role not in roles:
            raise ForbiddenError(f"this needs the role {' or '.join(r.value for r in roles)}; "
                                 f"you are {principal.role.value}")

    def add_participant(self, spec: ParticipantSpec, *, actor: str | None) -> IssuedToken:
        if spec.kind is ParticipantKind.IMPORTED:
            raise InvalidError("imported participants are made by an import, not added")
        if spec.role is Role.PARTICIPANT and spec.arm not in self.protocol.arm_names:
            raise InvalidError(f"arm must be one of {self.protocol.arm_names}, got {spec.arm!r}")
        if spec.role is not Role.PARTICIPANT:
            spec = spec.model_copy(update={"kind": ParticipantKind.SERVICE, "arm": None})
        if spec.kind is ParticipantKind.AGENT and self.store.db.rows(
                "SELECT 1 FROM participants WHERE display_name = ? AND kind = 'agent'",
                [spec.display_name]):
            # Two harnesses that both call their first agent claude-1 would merge on every
            # analyst page: an agent's name is unique within the study.
            raise ConflictError(f"an agent named {spec.display_name!r} already takes part; "
                                "give this one another name")
        record = self.store.add_participant(spec, actor=actor)
        return self.issue_token(record.id, hours=spec.token_hours, actor=actor)

    def issue_token(self, participant_id: str, *, hours: float | None,
                    actor: str | None) -> IssuedToken:
        participant = self.store.get_participant(participant_id)
        if participant is None:
            raise NotFoundError(f"no participant {participant_id}")
        token = "w2s_" + secrets.token_urlsafe(32)
        expires = None if hours is None else self.clock() + dt.timedelta(hours=hours)
        token_id = self.store.add_token(participant_id, hash_token(token), expires_at=expires,
                                        actor=actor)
        return IssuedToken(token_id=token_id, token=token, participant=participant,
                           expires_at=expires)

    def revoke_token(self, token_id: str, *, actor: str | None) -> None:
        revoked = self.store.revoke_token(token_id, actor=actor)
        self.credentials.forget_all()  # committed: no request may pass on a remembered token
        if not revoked:
            raise NotFoundError(f"no active token {token_id}")

    # ------------------------------------------------------------------------------ study info
    def study_view(self) -> StudyView:
        p = self.protocol
        return StudyView(name=p.name, protocol_hash=self.protocol_hash, starts_at=self.starts_at,
                         ends_at=self.ends_at, arms=p.arm_names,
                         tasks={"hill_climb": p.tasks.hill_climb, "held_out": p.tasks.held_out},
                         seeds_per_attempt=p.seeds_per_attempt,
                         feedback=p.feedback.model_dump(), limits=p.limits.model_dump(),
                         analysis=p.analysis.model_dump())

    def window_closed(self) -> bool:
        return self.clock() >= self.ends_at

    def amend_protocol(self, principal: ParticipantRecord, text: str, *, reason: str
                       ) -> dict[str, Any]:
        """A change after start: an audited event, then every scored attempt re-scored from its
        stored predictions under the new feedback policy."""
        self.require(principal, Role.ADMIN)
        new = parse_protocol(text, source="the amended protocol")
        # The study pinned its data folders' hashes; the amendment's [[datasets]] keep them.
        new = new.model_copy(update={"datasets": inherit_dataset_pins(
            new.datasets, self.protocol.datasets)})
        fixed = ("model_pair", "tasks", "datasets", "models", "lm")  # what the scores rest on
        if any(getattr(new, key) != getattr(self.protocol, key) for key in fixed):
            raise InvalidError("the model pair, its fine-tuning recipe ([lm]) and the tasks "
                               "(with their [[datasets]]) are fixed for a study's life; "
                               "create a new study to change them")
        new_hash = new.hash()
        if new_hash == self.protocol_hash:
            raise ConflictError("the amended protocol is identical to the current one")
        ends = self.starts_at + dt.timedelta(hours=new.window.duration_hours)
        with self.store.db.transaction() as cur:
            self.store.replace_protocol(protocol_json=new.model_dump_json(),
                                        protocol_hash=new_hash, ends_at=ends, cur=cur)
            self.store.append_event(cur, "protocol_changed", actor=principal.id,
                                    old_hash=self.protocol_hash, new_hash=new_hash,
                                    reason=reason, protocol=json.loads(new.model_dump_json()))
        self.protocol, self.protocol_hash, self.ends_at = new, new_hash, ends
        return {"protocol_hash": new_hash, "rescored": self._rescore_all(actor=principal.id)}

    def _rescore_all(self, *, actor: str) -> int:
        if self._rescore is None:
            return 0
        count = 0
        for row in self.store.attempts_with_status(AttemptStatus.SCORED):
            stored = self.store.seed_results(row["id"])
            probs = [np.frombuffer(r["probs"], dtype=np.float32).astype(np.float64)
                     for r in stored if r["probs"] is not None]
            if not probs:
                continue
            scores = self._rescore(row["task"], probs, self.protocol.feedback.public_fraction)
            pub, priv = scores["public"], scores["private"]
            with self.store.db.transaction() as cur:
                cur.execute("UPDATE attempts SET scores_json = ?, public_pgr = ?, "
                            "public_pgr_se = ?, public_accuracy = ?, private_pgr = ?, "
                            "private_pgr_se = ?, private_accuracy = ? WHERE id = ?",
                            [json.dumps(scores), pub["pgr"], pub["pgr_se"], pub["accuracy"],
                             priv["pgr"], priv["pgr_se"], priv["accuracy"], row["id"]])
                self.store.append_event(cur, "attempt_rescored", actor=actor,
                                        attempt_id=row["id"], protocol_hash=self.protocol_hash,
                                        public_pgr=pub["pgr"], **score_record(
                                            scores, probs_sha256=probs_digest(
                                                r["probs"] for r in stored)))
            count += 1
        return count

    # ---------------------------------------------------------------------------------- quota
    def quota(self, principal: ParticipantRecord) -> QuotaView | None:
        if principal.role is not Role.PARTICIPANT or principal.arm is None:
            return None
        budget = self.protocol.budget_for(principal.arm)
        now = self.clock()
        usage = self.store.usage(principal.id, now - DAY)
        used, compute = int(usage["n"]), float(usage["compute"])
        next_at = None
        if used >= budget.attempts_per_day and usage["oldest"] is not None:
            next_at = usage["oldest"] + DAY
        return QuotaView(
            attempts_per_day=budget.attempts_per_day, attempts_used=used,
            attempts_left=max(0, budget.attempts_per_day - used),
            compute_seconds_per_day=budget.compute_seconds_per_day,
            compute_seconds_used=round(compute, 2),
            compute_seconds_left=max(0.0, round(budget.compute_seconds_per_day - compute, 2)),
            compute_unit=compute_unit(self.gpu_study),
            compute_seconds_reserved=round(float(usage["reserved"]), 2),
            concurrent_attempts=budget.concurrent_attempts,
            active_attempts=int(usage["active"]), next_attempt_at=next_at)

    def _check_quota(self, principal: ParticipantRecord, *, reserve: float = 0.0) -> None:
        """Attempts left, and room in the daily compute for this attempt's worst case
        (`reserve`) on top of what is used and what queued/running attempts hold."""
        quota = self.quota(principal)
        assert quota is not None  # only participants submit
        now = self.clock()
        if quota.attempts_left <= 0:
            wait = (quota.next_attempt_at - now).total_seconds() if quota.next_attempt_at else None
            when = f"; the next returns at {quota.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC" \
                if quota.next_attempt_at else ""
            raise QuotaError(f"daily quota used: {quota.attempts_used} of "
                             f"{quota.attempts_per_day} attempts in the last 24 h{when}",
                             retry_after=wait)
        if quota.compute_seconds_left < max(reserve, 1e-9):
            held = (f" ({quota.compute_seconds_reserved:.0f} held by your queued and running "
                    "attempts until they finish)" if quota.compute_seconds_reserved else "")
            raise QuotaError(f"daily compute: {quota.compute_seconds_used:.0f} of "
                             f"{quota.compute_seconds_per_day:.0f} {quota.compute_unit} used in "
                             f"the last 24 h{held}; an attempt may use up to {reserve:.0f} "
                             f"({self.protocol.seeds_per_attempt} seeds × "
                             f"{self.protocol.limits.attempt_seconds:g} s)",
                             retry_after=60.0 if quota.compute_seconds_reserved else 3600.0)

    # --------------------------------------------------------------------------------- submit
    def _validate_source(self, source: str) -> str:
        limit = self.protocol.limits.max_source_bytes
        try:
            data = source.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidError("the method source is not valid UTF-8 text") from None
        if len(data) > limit:
            raise PayloadTooLargeError(f"the method source is {len(data)} bytes; this study "
                                       f"accepts at most {limit}")
        if not source.strip():
            raise InvalidError("the method source is empty")
        try:
            compile(source, "method.py", "exec", dont_inherit=True)
        except SyntaxError as exc:
            raise InvalidError(f"method.py line {exc.lineno}: {exc.msg}") from None
        except ValueError as exc:  # e.g. NUL bytes
            raise InvalidError(f"method.py cannot be compiled: {exc}") from None
        problem = missing_run(source)
        if problem:
            raise InvalidError(problem)
        return hashlib.sha256(data).hexdigest()

    def _runnable(self, principal: ParticipantRecord, task: str, source: str,
                  runner: object | None) -> str:
        """The source's sha256, for a dry run or an experiment: a participant, a hill-climbing
        task, a valid source, and a runner to run it on (else a clear error)."""
        self.require(principal, Role.PARTICIPANT)
        if task not in self.protocol.tasks.hill_climb:
            raise NotFoundError(f"unknown task {task!r}; this study takes "
                                f"{self.protocol.tasks.hill_climb}")
        code_sha = self._validate_source(source)
        if runner is None:
            raise ConflictError("this server runs no methods (no runner attached)")
        return code_sha

    def submit(self, principal: ParticipantRecord, spec: SubmitSpec) -> tuple[AttemptView, bool]:
        """A new attempt (True) or, for a repeated idempotency key, the one made before (False)."""
        self.require(principal, Role.PARTICIPANT)
        if spec.task not in self.protocol.tasks.hill_climb:
            known = self.protocol.tasks.hill_climb
            if spec.task in self.protocol.tasks.held_out:
                raise ForbiddenError(f"{spec.task} is held out: methods reach it only when the "
                                     f"study is finalised; submit to {known}")
            raise NotFoundError(f"unknown task {spec.task!r}; this study takes {known}")
        now = self.clock()
        if now < self.starts_at:
            raise ConflictError(f"the study starts at {self.starts_at:%Y-%m-%d %H:%M} UTC")
        if now >= self.ends_at:
            raise ConflictError(f"the study window closed at {self.ends_at:%Y-%m-%d %H:%M} UTC")
        code_sha = self._validate_source(spec.source)
        # The attempt this one was edited from: only one's own (someone else's reads as missing).
        parent_id = spec.parent_id and self._own_attempt(principal, spec.parent_id)["id"]
        reserve = self.protocol.seeds_per_attempt * self.protocol.limits.attempt_seconds
        with self.store.db.transaction() as cur:
            found = spec.idempotency_key and self.store.find_idempotent(
                cur, principal.id, spec.idempotency_key)
            if found:
                self._same_request(cur, found, spec, code_sha=code_sha, parent_id=parent_id)
            else:
                self._check_quota(principal, reserve=reserve)
                attempt_id = new_id("att")
                seeds = [secrets.randbelow(2**31 - 1) for _ in
                         range(self.protocol.seeds_per_attempt)]
                self.store.insert_attempt(cur, {
                    "id": attempt_id, "participant_id": principal.id, "task": spec.task,
                    "code_sha256": code_sha, "source": spec.source, "note": spec.note,
                    "idempotency_key": spec.idempotency_key, "parent_id": parent_id,
                    "status": AttemptStatus.QUEUED.value, "seeds": json.dumps(seeds),
                    "protocol_hash": self.protocol_hash,
                    "scorer_version": self.protocol.scorer_version,
                    "submitted_at": now, "queued_at": now, "reserved_seconds": reserve})
                self.store.append_event(cur, "attempt_submitted", actor=principal.id,
                                        attempt_id=attempt_id, task=spec.task,
                                        code_sha256=code_sha)
                flag_static_scan(self.store, cur, attempt_id=attempt_id,
                                 participant_id=principal.id, source=spec.source)
        if found:
            return self.get_attempt(principal, found), False
        self.on_submit()
        return self.get_attempt(principal, attempt_id), True

    @staticmethod
    def _same_request(cur, attempt_id: str, spec: SubmitSpec, *, code_sha: str,
                      parent_id: str | None) -> None:
        """A reused idempotency key must carry the same request: a different one is a client
        bug that silently returning the first attempt would hide."""
        task, sha, note, parent = cur.execute(
            "SELECT task, code_sha256, note, parent_id FROM attempts WHERE id = ?",
            [attempt_id]).fetchone()
        if (task, sha, note, parent) != (spec.task, code_sha, spec.note, parent_id):
            raise ConflictError(f"idempotency key {spec.idempotency_key!r} was already used for "
                                f"attempt {attempt_id} with a different request; use a new key "
                                "for a new submission")

    # ------------------------------------------------------------------------- reading attempts
    def _may_see_private(self, principal: ParticipantRecord) -> bool:
        return principal.role in (Role.ANALYST, Role.ADMIN) or self.window_closed()

    def _score_view(self, part: dict[str, Any] | None, digits: int | None, *,
                    per_seed: bool = False) -> ScoreView | None:
        if part is None:
            return None
        r = (lambda v: v) if digits is None else (lambda v: _round(v, digits))
        subsets = {name: {"n": s["n"], "accuracy": r(s["accuracy"]), "pgr": r(s["pgr"])}
                   for name, s in part.get("subsets", {}).items()}
        ci = part.get("pgr_ci95")
        return ScoreView(pgr=r(part["pgr"]), pgr_se=r(part["pgr_se"]), accuracy=r(part["accuracy"]),
                         n=part["n"], subsets=subsets,
                         pgr_ci95=(r(ci[0]), r(ci[1])) if ci and None not in ci else None,
                         shown=shown(r(part["pgr"]), round_pair(ci, digits), digits),
                         pgr_per_seed=[r(v) for v in part.get("pgr_per_seed", [])]
                         if per_seed else [])

    def _view(self, principal: ParticipantRecord, row: dict[str, Any]) -> AttemptView:
        own = row["participant_id"] == principal.id
        staff = principal.role in (Role.ANALYST, Role.ADMIN)
        scores = json.loads(row["scores_json"]) if row["scores_json"] else {}
        digits = None if staff else self.protocol.feedback.round_to
        view = AttemptView(
            id=row["id"], participant_id=row["participant_id"], task=row["task"],
            status=AttemptStatus(row["status"]), code_sha256=row["code_sha256"],
            note=row["note"], submitted_at=row["submitted_at"], queued_at=row["queued_at"],
            started_at=row["started_at"], finished_at=row["finished_at"],
            seeds=json.loads(row["seeds"]), tries=row["tries"],
            public=self._score_view(
                scores.get("public") if staff else
                coarse_part(scores.get("public"), self.protocol.feedback.public_step_items),
                digits, per_seed=self._may_see_private(principal)),
            wall_seconds=row["wall_seconds"], cpu_seconds=row["cpu_seconds"],
            peak_mb=row["peak_mb"], gpu_seconds=row.get("gpu_seconds"),
            peak_gpu_mb=row.get("peak_gpu_mb"), error=strip_host_paths(row["error"]),
            error_kind=row["error_kind"], traceback=strip_host_paths(row["traceback"]),
            log_tail=strip_host_paths(row["log_tail"]), parent_id=row.get("parent_id"),
            source=row["source"] if (own or staff) else None,
            released=row["released"] is not False, disqualified=bool(row["disqualified"]))
        if not view.released and not staff:
            view.public = None
            view.public_withheld = (
                "held back by the Ladder: it did not beat your best public PGR by "
                f"{self.protocol.feedback.ladder_margin}")
        if self._may_see_private(principal):
            view.private = self._score_view(scores.get("private"), digits, per_seed=True)
        if view.status is AttemptStatus.QUEUED and row["queued_at"] is not None:
            view.queue_position = row.get("queue_position") or self.store.queue_position(
                row["queued_at"])
        if view.status is AttemptStatus.RUNNING and (own or staff):  # before any snapshot
            # 0 until its first live report (and always on a Ray node, which sends none)
            view.live_version = self.live.version(row["id"]) or 0
        return view

    def _attempt_row(self, attempt_id: str) -> dict[str, Any] | None:
        """An attempt's row, with its queue position while queued: a status poll's reads, from
        memory while no write has committed since they were made (study.read_cache). Shared:
        never mutate it."""
        def read() -> dict[str, Any] | None:
            row = self.store.get_attempt(attempt_id)
            if row is not None and row["status"] == "queued" and row["queued_at"] is not None:
                row["queue_position"] = self.store.queue_position(row["queued_at"])
            return row

        return self.attempt_reads.get(attempt_id, read)

    def _own_attempt(self, principal: ParticipantRecord, attempt_id: str) -> dict[str, Any]:
        row = self._attempt_row(attempt_id)
        staff = principal.role in (Role.ANALYST, Role.ADMIN)
        # Someone else's attempt reads as missing: its existence is not the caller's business.
        if row is None or (row["participant_id"] != principal.id and not staff):
            raise NotFoundError(f"no attempt {attempt_id} of yours")
        return row

    def get_attempt(self, principal: ParticipantRecord, attempt_id: str) -> AttemptView:
        """One attempt; once it has finished, with what the method logged (lists leave it
        out: it is the one field that needs another query)."""
        view = self._view(principal, self._own_attempt(principal, attempt_id))
        if view.source is None:
            return view
        if view.status in TERMINAL:
            results = self.attempt_reads.get(f"seeds:{attempt_id}",
                                             lambda: self.store.seed_outcomes(attempt_id))
            view.metrics = [{**m, "seed": r["seed"]} for r in results
                            for m in json.loads(r["metrics"] or "[]")]
            view.seed_runs = seed_runs_from_results(view.seeds, results)
        # live_version was read first (in _view): a report landing between is shown, then
        # answered again; never missed.
        elif (live := self.live.snapshot(attempt_id)) is not None:
            view.seed_runs, view.metrics = live
        for run in view.seed_runs:
            run.log_tail, run.error = strip_host_paths(run.log_tail), strip_host_paths(run.error)
        return view

    def list_attempts(self, principal: ParticipantRecord, *, task: str | None = None,
                      everyone: bool = False, limit: int = 200) -> list[AttemptView]:
        if everyone:
            self.require(principal, Role.ANALYST, Role.ADMIN)
        rows = self.store.list_attempts(participant_id=None if everyone else principal.id,
                                        task=task, limit=limit)
        if any(r["status"] == "queued" for r in rows):  # one query, not one per queued row
            positions = self.store.queue_positions()
            rows = [{**r, "queue_position": positions.get(r["id"])} for r in rows]
        return [self._view(principal, r) for r in rows]

    def cancel(self, principal: ParticipantRecord, attempt_id: str) -> AttemptView:
        row = self._own_attempt(principal, attempt_id)
        old = AttemptStatus(row["status"])
        if old not in (AttemptStatus.QUEUED, AttemptStatus.RUNNING, AttemptStatus.SUBMITTED):
            raise ConflictError(f"attempt {attempt_id} is {old.value}; only queued or running "
                                "attempts can be cancelled")
        with self.store.db.transaction() as cur:
            moved = self.store.move(cur, attempt_id, old, AttemptStatus.CANCELLED,
                                    finished_at=self.clock(), charged=False)
            if moved:
                self.store.append_event(cur, "attempt_cancelled", actor=principal.id,
                                        attempt_id=attempt_id, was=old.value)
        if not moved:
            raise ConflictError(f"attempt {attempt_id} changed state meanwhile; look again")
        return self.get_attempt(principal, attempt_id)

    # ---------------------------------------------------------------------- leaderboard, tasks
    def leaderboard(self, principal: ParticipantRecord, task: str | None = None
                    ) -> list[LeaderboardRow]:
        task = task or self.protocol.tasks.hill_climb[0]
        staff = principal.role in (Role.ANALYST, Role.ADMIN)
        # Participants' board is built from the coarse scores they see, best and order alike:
        # an order by exact score would tell which of two equal-looking attempts is better.
        step = self.protocol.feedback.public_step_items
        rows = self.store.best_public(task) if staff else \
            best_coarse(self.store.released_public(task), step)
        if not staff and not self.protocol.leaderboard.cross_arm_visibility:
            rows = [r for r in rows if r["arm"] == principal.arm]
        digits = None if staff else self.protocol.feedback.round_to
        counts = self.store.attempt_counts(task)  # every attempt, not only the scored ones
        out = []
        for i, r in enumerate(rows, 1):
            best = r["public_pgr"] if digits is None else _round(r["public_pgr"], digits)
            ci95 = part_interval(r.get("scores_json") if staff else
                                 {"public": coarse_public(r.get("scores_json"), step)},
                                 "public", digits)
            out.append(LeaderboardRow(
                rank=i, participant_id=r["participant_id"], display_name=r["display_name"],
                arm=r["arm"], kind=r["kind"], best_pgr=best, best_pgr_ci95=ci95,
                shown=shown(best, ci95, digits), best_attempt_id=r["attempt_id"],
                attempts=counts.get(r["participant_id"], int(r["n"])), best_at=r["finished_at"]))
        return out

    def tasks(self) -> list[dict[str, Any]]:
        return [self._task_info(name) for name in self.protocol.tasks.all]

    # ------------------------------------------------------------------------------------ clock
    def clock_view(self, principal: ParticipantRecord) -> ClockView:
        session = self.store.open_session(principal.id)
        return ClockView(clocked_in_since=session["started_at"] if session else None,
                         active_seconds=self.store.active_seconds(principal.id, self.clock()))

    def clock_in(self, principal: ParticipantRecord) -> ClockView:
        with self.store.db.transaction() as cur:
            if cur.execute("SELECT 1 FROM sessions WHERE participant_id = ? AND ended_at IS "
                           "NULL", [principal.id]).fetchone():
                raise ConflictError("already clocked in")
            cur.execute("INSERT INTO sessions VALUES (?, ?, ?, NULL)",
                        [new_id("s"), principal.id, self.clock()])
            self.store.append_event(cur, "clock_in", actor=principal.id)
        return self.clock_view(principal)

    def clock_out(self, principal: ParticipantRecord) -> ClockView:
        with self.store.db.transaction() as cur:
            hit = cur.execute("UPDATE sessions SET ended_at = ? WHERE participant_id = ? AND "
                              "ended_at IS NULL RETURNING id",
                              [self.clock(), principal.id]).fetchall()
            if not hit:
                raise ConflictError("not clocked in")
            self.store.append_event(cur, "clock_out", actor=principal.id)
        return self.clock_view(principal)

    def me(self, principal: ParticipantRecord) -> MeView:
        clock = self.clock_view(principal)
        return MeView(participant=principal, quota=self.quota(principal),
                      clocked_in_since=clock.clocked_in_since,
                      active_seconds=clock.active_seconds)

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
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from runner.attempt import AttemptResult
from runner.scheduler import Job
from study.aar_import import parse_results
from study.errors import (
    AuthError,
    ConflictError,
    ForbiddenError,
    InvalidError,
    NotFoundError,
    PayloadTooLargeError,
    QuotaError,
)
from study.integrity import add_flag, flag_probing, flag_static_scan, ladder_release
from study.llm_review import Review, review_method
from study.protocol import ProtocolSpec, parse_protocol
from study.records import (
    AttemptStatus,
    AttemptView,
    AuditView,
    ClockView,
    DryRunSpec,
    DryRunView,
    FlagView,
    ForumPostSpec,
    ForumPostView,
    GeneralizationRow,
    ImportSpec,
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
    TranscriptSpec,
    UsageSpec,
    UsageView,
)
from study.store import Store, utcnow
from study.store.queries import new_id

DAY = dt.timedelta(days=1)
MAX_TRIES = 2  # one retry after an infrastructure fault, never more


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _round(value: float | None, digits: int) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


class ArenaService:
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
        self.dry_runner: Callable[[str, str], dict[str, Any]] | None = None
        self.items_for: Callable[[str, list[np.ndarray]], dict[str, Any]] | None = None
        study = store.get_study()
        if study is None:
            raise NotFoundError("this database holds no study: run `arena study create` first")
        self.starts_at: dt.datetime = study["starts_at"]
        self.ends_at: dt.datetime = study["ends_at"]
        self.protocol_hash: str = study["protocol_hash"]

    # ------------------------------------------------------------------ auth and participants
    def authenticate(self, token: str | None) -> ParticipantRecord:
        if not token:
            raise AuthError("missing bearer token: send 'Authorization: Bearer <token>'")
        row = self.store.token_owner(hash_token(token))
        if row is None:
            raise AuthError("unknown token")
        if row["revoked_at"] is not None:
            raise AuthError("this token was revoked; ask the study admin for a new one")
        if row["expires_at"] is not None and row["expires_at"] <= self.clock():
            raise AuthError(f"this token expired at {row['expires_at']:%Y-%m-%d %H:%M} UTC")
        fields = {k: row[k] for k in ("id", "display_name", "role", "arm", "kind", "created_at")}
        return ParticipantRecord(**fields)

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
        if not self.store.revoke_token(token_id, actor=actor):
            raise NotFoundError(f"no active token {token_id}")

    # ------------------------------------------------------------------------------ study info
    def study_view(self) -> StudyView:
        p = self.protocol
        return StudyView(name=p.name, protocol_hash=self.protocol_hash, starts_at=self.starts_at,
                         ends_at=self.ends_at, arms=p.arm_names,
                         tasks={"hill_climb": p.tasks.hill_climb, "held_out": p.tasks.held_out},
                         seeds_per_attempt=p.seeds_per_attempt,
                         feedback=p.feedback.model_dump(), limits=p.limits.model_dump())

    def window_closed(self) -> bool:
        return self.clock() >= self.ends_at

    def amend_protocol(self, principal: ParticipantRecord, text: str, *, reason: str
                       ) -> dict[str, Any]:
        """A change after start: an audited event, then every scored attempt re-scored from its
        stored predictions under the new feedback policy."""
        self.require(principal, Role.ADMIN)
        new = parse_protocol(text, source="the amended protocol")
        if new.model_pair != self.protocol.model_pair or new.tasks != self.protocol.tasks:
            raise InvalidError("the model pair and the tasks are fixed for a study's life; "
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
            probs = [np.frombuffer(r["probs"], dtype=np.float32).astype(np.float64)
                     for r in self.store.seed_results(row["id"]) if r["probs"] is not None]
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
                                        public_pgr=pub["pgr"])
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
            concurrent_attempts=budget.concurrent_attempts,
            active_attempts=int(usage["active"]), next_attempt_at=next_at)

    def _check_quota(self, principal: ParticipantRecord) -> None:
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
        if quota.compute_seconds_left <= 0:
            raise QuotaError(f"daily compute used: {quota.compute_seconds_used:.0f} of "
                             f"{quota.compute_seconds_per_day:.0f} CPU-seconds in the last 24 h",
                             retry_after=3600.0)

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
        return hashlib.sha256(data).hexdigest()

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
        with self.store.db.transaction() as cur:
            found = spec.idempotency_key and self.store.find_idempotent(
                cur, principal.id, spec.idempotency_key)
            if not found:
                self._check_quota(principal)
                attempt_id = new_id("att")
                seeds = [secrets.randbelow(2**31 - 1) for _ in
                         range(self.protocol.seeds_per_attempt)]
                self.store.insert_attempt(cur, {
                    "id": attempt_id, "participant_id": principal.id, "task": spec.task,
                    "code_sha256": code_sha, "source": spec.source, "note": spec.note,
                    "idempotency_key": spec.idempotency_key,
                    "status": AttemptStatus.QUEUED.value, "seeds": json.dumps(seeds),
                    "protocol_hash": self.protocol_hash,
                    "scorer_version": self.protocol.scorer_version,
                    "submitted_at": now, "queued_at": now})
                self.store.append_event(cur, "attempt_submitted", actor=principal.id,
                                        attempt_id=attempt_id, task=spec.task,
                                        code_sha256=code_sha)
                flag_static_scan(self.store, cur, attempt_id=attempt_id,
                                 participant_id=principal.id, source=spec.source)
        if found:
            return self.get_attempt(principal, found), False
        self.on_submit()
        return self.get_attempt(principal, attempt_id), True

    def dry_run(self, principal: ParticipantRecord, spec: DryRunSpec) -> DryRunView:
        """Run a method once, unscored and uncharged, to check that it runs (one seed)."""
        self.require(principal, Role.PARTICIPANT)
        if spec.task not in self.protocol.tasks.hill_climb:
            raise NotFoundError(f"unknown task {spec.task!r}; this study takes "
                                f"{self.protocol.tasks.hill_climb}")
        self._validate_source(spec.source)
        if self.dry_runner is None:
            raise ConflictError("this server runs no methods (no runner attached)")
        with self.store.db.transaction() as cur:
            self.store.append_event(cur, "dry_run", actor=principal.id, task=spec.task)
        return DryRunView(**self.dry_runner(spec.task, spec.source))

    # ------------------------------------------------------------------------- reading attempts
    def _may_see_private(self, principal: ParticipantRecord) -> bool:
        return principal.role in (Role.ANALYST, Role.ADMIN) or self.window_closed()

    def _score_view(self, part: dict[str, Any] | None, digits: int | None) -> ScoreView | None:
        if part is None:
            return None
        r = (lambda v: v) if digits is None else (lambda v: _round(v, digits))
        subsets = {name: {"n": s["n"], "accuracy": r(s["accuracy"]), "pgr": r(s["pgr"])}
                   for name, s in part.get("subsets", {}).items()}
        return ScoreView(pgr=r(part["pgr"]), pgr_se=r(part["pgr_se"]), accuracy=r(part["accuracy"]),
                         n=part["n"], subsets=subsets)

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
            public=self._score_view(scores.get("public"), digits),
            wall_seconds=row["wall_seconds"], cpu_seconds=row["cpu_seconds"],
            peak_mb=row["peak_mb"], error=row["error"], error_kind=row["error_kind"],
            traceback=row["traceback"], log_tail=row["log_tail"],
            source=row["source"] if (own or staff) else None,
            released=row["released"] is not False, disqualified=bool(row["disqualified"]))
        if not view.released and not staff:
            view.public = None
            view.public_withheld = (
                "held back by the Ladder: it did not beat your best public PGR by "
                f"{self.protocol.feedback.ladder_margin}")
        if self._may_see_private(principal):
            view.private = self._score_view(scores.get("private"), digits)
        if view.status is AttemptStatus.QUEUED:
            view.queue_position = self.store.queue_position(row["id"])
        return view

    def _own_attempt(self, principal: ParticipantRecord, attempt_id: str) -> dict[str, Any]:
        row = self.store.get_attempt(attempt_id)
        staff = principal.role in (Role.ANALYST, Role.ADMIN)
        # Someone else's attempt reads as missing: its existence is not the caller's business.
        if row is None or (row["participant_id"] != principal.id and not staff):
            raise NotFoundError(f"no attempt {attempt_id} of yours")
        return row

    def get_attempt(self, principal: ParticipantRecord, attempt_id: str) -> AttemptView:
        return self._view(principal, self._own_attempt(principal, attempt_id))

    def list_attempts(self, principal: ParticipantRecord, *, task: str | None = None,
                      everyone: bool = False, limit: int = 200) -> list[AttemptView]:
        if everyone:
            self.require(principal, Role.ANALYST, Role.ADMIN)
        rows = self.store.list_attempts(participant_id=None if everyone else principal.id,
                                        task=task, limit=limit)
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
        rows = self.store.best_public(task)
        staff = principal.role in (Role.ANALYST, Role.ADMIN)
        if not staff and not self.protocol.leaderboard.cross_arm_visibility:
            rows = [r for r in rows if r["arm"] == principal.arm]
        digits = self.protocol.feedback.round_to
        return [LeaderboardRow(rank=i, participant_id=r["participant_id"],
                               display_name=r["display_name"], arm=r["arm"], kind=r["kind"],
                               best_pgr=r["public_pgr"] if staff else _round(r["public_pgr"],
                                                                             digits),
                               best_attempt_id=r["attempt_id"], attempts=int(r["n"]),
                               best_at=r["finished_at"])
                for i, r in enumerate(rows, 1)]

    def tasks(self) -> list[dict[str, Any]]:
        return [self._task_info(name) for name in self.protocol.tasks.all]

    # ----------------------------------------------------------------------------- forum, clock
    def forum(self, principal: ParticipantRecord, query: str | None = None
              ) -> list[ForumPostView]:
        staff = principal.role in (Role.ANALYST, Role.ADMIN)
        arm = None if staff or self.protocol.forum.cross_arm_visibility else principal.arm
        digits = None if staff else self.protocol.feedback.round_to
        return [ForumPostView(**{**r, "attempt_public_pgr": r["attempt_public_pgr"] if
                                 digits is None else _round(r["attempt_public_pgr"], digits)})
                for r in self.store.list_posts(arm=arm, query=query)]

    def post(self, principal: ParticipantRecord, spec: ForumPostSpec) -> ForumPostView:
        self.require(principal, Role.PARTICIPANT)
        if spec.attempt_id:
            self._own_attempt(principal, spec.attempt_id)
        post_id = new_id("post")
        with self.store.db.transaction() as cur:
            cur.execute("INSERT INTO forum_posts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [post_id, principal.id, principal.arm, spec.kind, spec.title, spec.body,
                         spec.attempt_id, self.clock()])
            self.store.append_event(cur, "forum_post", actor=principal.id,
                                    attempt_id=spec.attempt_id, post=post_id, kind=spec.kind)
        return next(p for p in self.forum(principal) if p.id == post_id)

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

    # ------------------------------------------------------------------------ integrity review
    def flags(self, principal: ParticipantRecord) -> list[FlagView]:
        self.require(principal, Role.ANALYST, Role.ADMIN)
        return [FlagView(**{**r, "detail": json.loads(r["detail"])}) for r in
                self.store.db.rows("SELECT * FROM flags ORDER BY created_at, id")]

    def audits(self, principal: ParticipantRecord) -> list[AuditView]:
        self.require(principal, Role.ANALYST, Role.ADMIN)
        return [AuditView(**r) for r in self.store.db.rows(
            "SELECT id, kind, attempt_id, task, status, pgr, accuracy, error FROM audits "
            "ORDER BY created_at, id")]

    def request_ablation(self, principal: ParticipantRecord, attempt_id: str) -> AuditView:
        """On demand: a teacher ablation of any scored attempt."""
        self.require(principal, Role.ANALYST, Role.ADMIN)
        row = self._own_attempt(principal, attempt_id)
        if row["status"] != AttemptStatus.SCORED.value:
            raise ConflictError(f"attempt {attempt_id} is {row['status']}, not scored")
        with self.store.db.transaction() as cur:
            audit_id = self._queue_audit(cur, kind="teacher_ablation", attempt_id=attempt_id,
                                         task=row["task"])
        self.on_submit()
        return next(a for a in self.audits(principal) if a.id == audit_id)

    def review(self, principal: ParticipantRecord, attempt_id: str, *,
               transcript: str | None = None) -> Review:
        """The optional LLM review; a verdict other than clean becomes a flag."""
        self.require(principal, Role.ANALYST, Role.ADMIN)
        row = self._own_attempt(principal, attempt_id)
        if self.reviewer is None:
            raise ConflictError("LLM review is not configured: start the server with "
                                "ANTHROPIC_API_KEY set")
        review = review_method(self.reviewer, source=row["source"], transcript=transcript,
                               model=self.protocol.audits.review_model)
        with self.store.db.transaction() as cur:
            self.store.append_event(cur, "attempt_reviewed", actor=principal.id,
                                    attempt_id=attempt_id, verdict=review.verdict,
                                    model=review.model, input_tokens=review.input_tokens,
                                    output_tokens=review.output_tokens)
            if review.verdict != "clean":
                add_flag(self.store, cur, attempt_id=attempt_id,
                         participant_id=row["participant_id"], kind="llm_review",
                         verdict=review.verdict,
                         findings=[f.model_dump() for f in review.findings])
        return review

    def disqualify(self, principal: ParticipantRecord, attempt_id: str, *,
                   reason: str) -> AttemptView:
        self.require(principal, Role.ADMIN)
        self._own_attempt(principal, attempt_id)
        with self.store.db.transaction() as cur:
            cur.execute("UPDATE attempts SET disqualified = TRUE WHERE id = ?", [attempt_id])
            self.store.append_event(cur, "attempt_disqualified", actor=principal.id,
                                    attempt_id=attempt_id, reason=reason)
        return self.get_attempt(principal, attempt_id)

    def finalize(self, principal: ParticipantRecord, *, force: bool = False) -> dict[str, Any]:
        """At window end: re-run each participant's top-k methods on every held-out task, and
        reveal private scores to everyone. `force` closes an open window now (audited)."""
        self.require(principal, Role.ADMIN)
        now = self.clock()
        if now < self.ends_at and not force:
            raise ConflictError(f"the window is open until {self.ends_at:%Y-%m-%d %H:%M} UTC; "
                                "finalize then, or force it to close the window now")
        top_k = self.protocol.audits.top_k
        with self.store.db.transaction() as cur:
            if now < self.ends_at:
                cur.execute("UPDATE study SET ends_at = ? WHERE id = 1", [now])
                self.store.append_event(cur, "window_closed_early", actor=principal.id,
                                        planned_end=self.ends_at)
                self.ends_at = now
            tops = cur.execute(
                "SELECT id, task FROM attempts WHERE status = 'scored' AND NOT "
                "coalesce(disqualified, FALSE) QUALIFY row_number() OVER (PARTITION BY "
                "participant_id ORDER BY private_pgr + public_pgr DESC NULLS LAST, id) <= ?",
                [top_k]).fetchall()
            queued = 0
            for attempt_id, _task in tops:
                for held_out in self.protocol.tasks.held_out:
                    self._queue_audit(cur, kind="heldout", attempt_id=attempt_id, task=held_out)
                    queued += 1
            self.store.append_event(cur, "study_finalized", actor=principal.id,
                                    attempts=len(tops), audits=queued)
        self.on_submit()
        return {"attempts": len(tops), "audits_queued": queued}

    def generalization(self, principal: ParticipantRecord) -> list[GeneralizationRow]:
        """Each finalized attempt × held-out task: PGR of the re-run (None until it is done)."""
        self.require(principal, Role.ANALYST, Role.ADMIN)
        rows = self.store.db.rows(
            "SELECT t.participant_id, p.display_name, p.arm, t.id AS attempt_id, "
            "t.public_pgr, t.private_pgr, a.task, a.pgr FROM audits a "
            "JOIN attempts t ON t.id = a.attempt_id JOIN participants p ON p.id = "
            "t.participant_id WHERE a.kind = 'heldout' ORDER BY p.display_name, t.id, a.task")
        matrix: dict[str, GeneralizationRow] = {}
        for r in rows:
            entry = matrix.setdefault(r["attempt_id"], GeneralizationRow(
                participant_id=r["participant_id"], display_name=r["display_name"],
                arm=r["arm"], attempt_id=r["attempt_id"], hill_climb_public=r["public_pgr"],
                hill_climb_private=r["private_pgr"], held_out={}))
            entry.held_out[r["task"]] = r["pgr"]
        return list(matrix.values())

    # ------------------------------------------------------------------------ agents' accounts
    def record_usage(self, principal: ParticipantRecord, spec: UsageSpec) -> None:
        self.require(principal, Role.PARTICIPANT)
        with self.store.db.transaction() as cur:
            if cur.execute("SELECT 1 FROM usage WHERE participant_id = ? AND turn_key = ?",
                           [principal.id, spec.turn_key]).fetchone():
                return  # already counted: a resumed harness reporting again
            cur.execute("INSERT INTO usage VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [principal.id, spec.turn_key, self.clock(), spec.model,
                         spec.input_tokens, spec.output_tokens, spec.cache_read_tokens,
                         spec.cache_write_tokens, spec.cost_usd])

    def record_transcript(self, principal: ParticipantRecord, entries: list[TranscriptSpec]
                          ) -> int:
        self.require(principal, Role.PARTICIPANT)
        written = 0
        with self.store.db.transaction() as cur:
            for e in entries:
                if cur.execute("SELECT 1 FROM transcripts WHERE participant_id = ? AND "
                               "turn_key = ? AND role = ?",
                               [principal.id, e.turn_key, e.role]).fetchone():
                    continue
                cur.execute("INSERT INTO transcripts VALUES (?, ?, ?, ?, ?, ?)",
                            [principal.id, e.turn_key, self.clock(), e.iteration, e.role,
                             e.content])
                written += 1
        return written

    def usage(self, principal: ParticipantRecord) -> list[UsageView]:
        self.require(principal, Role.ANALYST, Role.ADMIN)
        now = self.clock()
        rows = self.store.db.rows(
            "SELECT p.id AS participant_id, p.display_name, p.arm, p.kind, "
            "count(u.turn_key) AS turns, coalesce(sum(u.input_tokens), 0) AS input_tokens, "
            "coalesce(sum(u.output_tokens), 0) AS output_tokens, "
            "coalesce(sum(u.cache_read_tokens), 0) AS cache_read_tokens, "
            "coalesce(sum(u.cache_write_tokens), 0) AS cache_write_tokens, "
            "coalesce(sum(u.cost_usd), 0) AS cost_usd FROM participants p "
            "LEFT JOIN usage u ON u.participant_id = p.id WHERE p.role = 'participant' "
            "GROUP BY ALL ORDER BY p.display_name")
        return [UsageView(**r, active_hours=self.store.active_seconds(r["participant_id"], now)
                          / 3600) for r in rows]

    def transcript(self, principal: ParticipantRecord, participant_id: str
                   ) -> list[dict[str, Any]]:
        self.require(principal, Role.ANALYST, Role.ADMIN)
        return self.store.db.rows(
            "SELECT turn_key, recorded_at, iteration, role, content FROM transcripts "
            "WHERE participant_id = ? ORDER BY recorded_at, turn_key", [participant_id])

    def import_aar(self, principal: ParticipantRecord, spec: ImportSpec) -> dict[str, Any]:
        """AAR per-seed results → scored attempts of an "imported" participant (no token)."""
        self.require(principal, Role.ADMIN)
        attempts = parse_results(list(spec.files.items()))
        if not attempts:
            raise InvalidError("no result files to import")
        record = self.store.add_participant(ParticipantSpec(
            display_name=f"imported: {spec.label}", arm="imported",
            kind=ParticipantKind.IMPORTED), actor=principal.id)
        ids = []
        with self.store.db.transaction() as cur:
            for a in attempts:
                attempt_id = new_id("att")
                part = {"n": 0, "accuracy": a.accuracy, "weak": a.weak, "ceiling": a.ceiling,
                        "pgr": a.pgr, "pgr_se": a.pgr_se, "pgr_per_seed": [],
                        "pgr_ci95": None, "subsets": {}}
                # The AAR release has no public/private split: both halves carry its score.
                self.store.insert_attempt(cur, {
                    "id": attempt_id, "participant_id": record.id, "task": a.task,
                    "code_sha256": "imported", "source": f"# imported: {a.idea_name}",
                    "note": a.idea_name, "status": AttemptStatus.SCORED.value,
                    "seeds": json.dumps(a.seeds), "protocol_hash": self.protocol_hash,
                    "scorer_version": "aar-import", "submitted_at": a.finished_at,
                    "queued_at": a.finished_at, "started_at": a.finished_at,
                    "finished_at": a.finished_at, "public_pgr": a.pgr, "public_pgr_se": a.pgr_se,
                    "public_accuracy": a.accuracy, "private_pgr": a.pgr,
                    "private_pgr_se": a.pgr_se, "private_accuracy": a.accuracy,
                    "scores_json": json.dumps({"public": part, "private": part, "all": part}),
                    "wall_seconds": a.wall_seconds, "cpu_seconds": 0.0, "charged": False})
                ids.append(attempt_id)
            self.store.append_event(cur, "aar_imported", actor=principal.id,
                                    participant=record.id, attempts=ids, label=spec.label)
        return {"participant_id": record.id, "attempts": ids}

    def item_results(self, principal: ParticipantRecord, attempt_id: str) -> dict[str, Any]:
        """Per test item, per seed: right or wrong, plus the fixed baselines' per-item mean
        correctness and the public mask — what bootstrap bands and paired tests need."""
        self.require(principal, Role.ANALYST, Role.ADMIN)
        row = self._own_attempt(principal, attempt_id)
        probs = [np.frombuffer(r["probs"], dtype=np.float32)
                 for r in self.store.seed_results(attempt_id) if r["probs"] is not None]
        if not probs or self.items_for is None:
            raise NotFoundError(f"attempt {attempt_id} has no stored predictions")
        return self.items_for(row["task"], probs)

    # --------------------------------------------------------------------------------- export
    def export_parquet(self, principal: ParticipantRecord, table: str) -> bytes:
        self.require(principal, Role.ANALYST, Role.ADMIN)
        queries = {
            "attempts": "SELECT a.*, p.display_name, p.arm, p.kind AS participant_kind "
                        "FROM attempts a JOIN participants p ON p.id = a.participant_id",
            "events": "SELECT * FROM events ORDER BY id",
            "seed_results": "SELECT * EXCLUDE (probs) FROM seed_results",
            "participants": "SELECT * FROM participants",
            "sessions": "SELECT * FROM sessions",
            "forum_posts": "SELECT * FROM forum_posts",
            "flags": "SELECT * FROM flags",
            "audits": "SELECT * FROM audits",
            "usage": "SELECT * FROM usage",
        }
        if table not in queries:
            raise NotFoundError(f"no export {table!r}; choose from {sorted(queries)}")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{table}.parquet"
            self.store.db.rows(f"COPY ({queries[table]}) TO '{path}' (FORMAT PARQUET)")
            return path.read_bytes()

    # ------------------------------------------------------------------- the runner's JobSource
    def caps(self) -> dict[str, int]:
        return {p.id: self.protocol.budget_for(p.arm).concurrent_attempts
                for p in self.store.list_participants() if p.arm}

    def claim(self) -> Job | None:
        with self.store.db.transaction() as cur:
            pick = self.store.next_queued(cur, caps=self.caps(), since=self.clock() - DAY)
            if pick is None:
                return self._claim_audit(cur)
            now = self.clock()
            row = cur.execute("SELECT tries FROM attempts WHERE id = ?", [pick["id"]]).fetchone()
            self.store.move(cur, pick["id"], AttemptStatus.QUEUED, AttemptStatus.RUNNING,
                            started_at=now, heartbeat_at=now, tries=row[0] + 1)
            self.store.append_event(cur, "attempt_started", attempt_id=pick["id"],
                                    tries=row[0] + 1)
            full = cur.execute("SELECT task, seeds, source, participant_id FROM attempts "
                               "WHERE id = ?", [pick["id"]]).fetchone()
        return Job(attempt_id=pick["id"], participant_id=full[3], task=full[0],
                   seeds=json.loads(full[1]), source=full[2])

    def _claim_audit(self, cur) -> Job | None:
        """Audits run when no attempt waits: participants' work always goes first."""
        row = cur.execute("SELECT a.id, a.kind, a.task, t.id, t.participant_id, t.seeds, "
                          "t.source FROM audits a JOIN attempts t ON t.id = a.attempt_id "
                          "WHERE a.status = 'queued' ORDER BY a.created_at, a.id LIMIT 1"
                          ).fetchone()
        if row is None:
            return None
        cur.execute("UPDATE audits SET status = 'running', started_at = ? WHERE id = ?",
                    [self.clock(), row[0]])
        return Job(attempt_id=row[3], participant_id=row[4], task=row[2],
                   seeds=json.loads(row[5]), source=row[6], kind=row[1], audit_id=row[0])

    def _queue_audit(self, cur, *, kind: str, attempt_id: str, task: str) -> str:
        audit_id = new_id("aud")
        cur.execute("INSERT INTO audits (id, kind, attempt_id, task, status, created_at) "
                    "VALUES (?, ?, ?, ?, 'queued', ?)",
                    [audit_id, kind, attempt_id, task, self.clock()])
        self.store.append_event(cur, "audit_queued", attempt_id=attempt_id, audit=audit_id,
                                kind=kind, task=task)
        return audit_id

    def _record_audit(self, cur, job: Job, result: AttemptResult | None,
                      infra_error: str | None) -> None:
        all_part = (result.scores or {}).get("all") if result is not None else None
        status = "done" if all_part is not None else "failed"
        error = infra_error or (result.error if result is not None else None)
        cur.execute("UPDATE audits SET status = ?, finished_at = ?, pgr = ?, accuracy = ?, "
                    "scores_json = ?, error = ? WHERE id = ?",
                    [status, self.clock(), all_part.pgr if all_part else None,
                     all_part.accuracy if all_part else None,
                     json.dumps({k: v.model_dump() for k, v in result.scores.items()})
                     if all_part else None, error, job.audit_id])
        self.store.append_event(cur, "audit_finished", attempt_id=job.attempt_id,
                                audit=job.audit_id, kind=job.kind, status=status,
                                pgr=all_part.pgr if all_part else None)
        if job.kind != "teacher_ablation" or all_part is None or all_part.pgr is None:
            return
        original = json.loads(cur.execute("SELECT scores_json FROM attempts WHERE id = ?",
                                          [job.attempt_id]).fetchone()[0])["all"]["pgr"]
        tolerance = self.protocol.audits.ablation_tolerance
        if original is not None and abs(original - all_part.pgr) < tolerance:
            add_flag(self.store, cur, attempt_id=job.attempt_id,
                     participant_id=job.participant_id, kind="ignores_teacher",
                     original_pgr=original, permuted_labels_pgr=all_part.pgr,
                     note="the score barely moves when the weak labels are shuffled: the "
                          "method may not use the teacher (fine for unsupervised methods)")

    def heartbeat(self, job: Job) -> bool:
        if job.kind != "attempt":  # an audit runs until done; its attempt is long finished
            row = self.store.db.one("SELECT status FROM audits WHERE id = ?", [job.audit_id])
            return row is not None and row["status"] == "running"
        with self.store.db.transaction() as cur:
            hit = cur.execute("UPDATE attempts SET heartbeat_at = ? WHERE id = ? AND status = "
                              "'running' RETURNING id", [self.clock(), job.attempt_id]
                              ).fetchall()
        return bool(hit)

    def finish(self, job: Job, result: AttemptResult | None, infra_error: str | None) -> None:
        """Record an outcome. Infrastructure faults requeue once, then fail without charge."""
        attempt_id = job.attempt_id
        if job.kind != "attempt":
            with self.store.db.transaction() as cur:
                self._record_audit(cur, job, result, infra_error)
            return
        if infra_error is None and result is not None and any(
                o.error_kind == "infrastructure" for o in result.outcomes):
            infra_error = next(o.error for o in result.outcomes
                               if o.error_kind == "infrastructure")
        with self.store.db.transaction() as cur:
            if infra_error is not None:
                self._infra_fault(cur, attempt_id, infra_error)
                return
            if any(o.status == "cancelled" for o in result.outcomes):
                return  # cancel() already moved it; the partial run is dropped
            self._record_result(cur, attempt_id, result)

    def _infra_fault(self, cur, attempt_id: str, reason: str) -> None:
        tries = cur.execute("SELECT tries FROM attempts WHERE id = ?", [attempt_id]).fetchone()
        if tries is None:
            return
        if tries[0] < MAX_TRIES:
            if self.store.move(cur, attempt_id, AttemptStatus.RUNNING, AttemptStatus.QUEUED,
                               started_at=None, heartbeat_at=None, queued_at=self.clock()):
                self.store.append_event(cur, "attempt_requeued", attempt_id=attempt_id,
                                        reason=reason, tries=tries[0])
            return
        if self.store.move(cur, attempt_id, AttemptStatus.RUNNING, AttemptStatus.FAILED,
                           finished_at=self.clock(), charged=False, error_kind="infrastructure",
                           error=f"lost to an infrastructure fault twice ({reason}); your "
                                 "quota was refunded"):
            self.store.append_event(cur, "attempt_failed_infrastructure", attempt_id=attempt_id,
                                    reason=reason)

    def _record_result(self, cur, attempt_id: str, result: AttemptResult) -> None:
        failed = next((o for o in result.outcomes if o.status != "ok"), None)
        if result.status == "scored":
            status = AttemptStatus.SCORED
        elif failed is not None and failed.status == "timeout":
            status = AttemptStatus.TIMED_OUT
        else:
            status = AttemptStatus.FAILED
        scores = {k: v.model_dump() for k, v in (result.scores or {}).items()}
        pub, priv = scores.get("public", {}), scores.get("private", {})
        moved = self.store.move(
            cur, attempt_id, AttemptStatus.RUNNING, status, finished_at=self.clock(),
            task_hash=result.task_hash, scores_json=json.dumps(scores) if scores else None,
            public_pgr=pub.get("pgr"), public_pgr_se=pub.get("pgr_se"),
            public_accuracy=pub.get("accuracy"), private_pgr=priv.get("pgr"),
            private_pgr_se=priv.get("pgr_se"), private_accuracy=priv.get("accuracy"),
            wall_seconds=sum(o.wall_s for o in result.outcomes),
            cpu_seconds=sum(o.cpu_s for o in result.outcomes),
            peak_mb=max((o.peak_mb for o in result.outcomes), default=None),
            sandboxed=all(o.sandboxed for o in result.outcomes),
            error=result.error, error_kind=failed.error_kind if failed else None,
            traceback=failed.traceback if failed else None,
            log_tail=(failed or result.outcomes[-1]).log_tail[-20000:] if result.outcomes
            else None)
        if not moved:
            return  # cancelled meanwhile: keep the cancellation
        self.store.insert_seed_results(cur, attempt_id, [
            {"seed": o.seed, "status": o.status, "accuracy": o.accuracy,
             "wall_seconds": o.wall_s, "cpu_seconds": o.cpu_s, "peak_mb": o.peak_mb,
             "error": o.error,
             "probs": None if o.probs is None else np.asarray(o.probs, np.float32).tobytes()}
            for o in result.outcomes])
        self.store.append_event(cur, f"attempt_{status.value}", attempt_id=attempt_id,
                                public_pgr=pub.get("pgr"), error=result.error)
        if status is AttemptStatus.SCORED:
            self._after_scoring(cur, attempt_id, pub.get("pgr"),
                                [np.asarray(o.probs) for o in result.outcomes if o.probs])

    def _after_scoring(self, cur, attempt_id: str, public_pgr: float | None,
                       probs: list[np.ndarray]) -> None:
        row = dict(zip(("id", "participant_id", "task"), cur.execute(
            "SELECT id, participant_id, task FROM attempts WHERE id = ?", [attempt_id]
        ).fetchone(), strict=True))
        feedback = self.protocol.feedback
        released = ladder_release(cur, row=row, public_pgr=public_pgr,
                                  margin=feedback.ladder_margin)
        if not released:
            cur.execute("UPDATE attempts SET released = FALSE WHERE id = ?", [attempt_id])
            self.store.append_event(cur, "score_withheld", attempt_id=attempt_id,
                                    margin=feedback.ladder_margin)
        flag_probing(self.store, cur, row=row, probs=probs, max_diff=feedback.probe_max_diff)
        if self.protocol.audits.teacher_ablation and released and public_pgr is not None:
            best = cur.execute(
                "SELECT max(public_pgr) FROM attempts WHERE participant_id = ? AND task = ? "
                "AND status = 'scored' AND id <> ?",
                [row["participant_id"], row["task"], attempt_id]).fetchone()[0]
            if best is None or public_pgr > best:  # a new personal best: audit it
                self._queue_audit(cur, kind="teacher_ablation", attempt_id=attempt_id,
                                  task=row["task"])

    def recover(self) -> list[str]:
        """At start: every attempt left `running` by a dead server is requeued once, or failed
        without charge if it already had its retry. Returns the ids touched."""
        touched = []
        with self.store.db.transaction() as cur:  # audits have no quota: simply run them again
            cur.execute("UPDATE audits SET status = 'queued', started_at = NULL "
                        "WHERE status = 'running'")
        for row in self.store.attempts_with_status(AttemptStatus.RUNNING):
            with self.store.db.transaction() as cur:
                self._infra_fault(cur, row["id"], "the server stopped while the attempt ran")
            touched.append(row["id"])
        return touched

"""The analysts' and admins' side of the service: flags, audits, reviews, finalize, the
agents' accounts, imports and exports. Mixed into ArenaService."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from study.aar_import import ImportedAttempt, parse_results, require_attempts
from study.agent_limits import check_daily_bytes, check_daily_rows, server_cost
from study.audit_scores import score_record
from study.errors import (
    ConflictError,
    NotFoundError,
)
from study.integrity import add_flag
from study.llm_review import Review, review_method
from study.records import (
    AttemptStatus,
    AttemptView,
    AuditView,
    FlagView,
    GeneralizationRow,
    ImportSpec,
    ParticipantKind,
    ParticipantRecord,
    ParticipantSpec,
    Role,
    TranscriptSpec,
    UsageSpec,
    UsageView,
)
from study.store.queries import new_id


class ReviewSide:
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
        cost = server_cost(spec)  # the harness reports itself: the server prices the turn
        with self.store.db.transaction() as cur:
            if cur.execute("SELECT 1 FROM usage WHERE participant_id = ? AND turn_key = ?",
                           [principal.id, spec.turn_key]).fetchone():
                return  # already counted: a resumed harness reporting again
            check_daily_rows(cur, table="usage", participant_id=principal.id,
                             now=self.clock(), cap=self.protocol.limits.usage_reports_per_day,
                             what="usage reports")
            cur.execute("INSERT INTO usage (participant_id, turn_key, recorded_at, model, "
                        "input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, "
                        "cost_usd, reported_cost_usd, self_reported) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, TRUE)",
                        [principal.id, spec.turn_key, self.clock(), spec.model,
                         spec.input_tokens, spec.output_tokens, spec.cache_read_tokens,
                         spec.cache_write_tokens, cost, spec.cost_usd])

    def record_transcript(self, principal: ParticipantRecord, entries: list[TranscriptSpec]
                          ) -> int:
        self.require(principal, Role.PARTICIPANT)
        written = 0
        with self.store.db.transaction() as cur:
            check_daily_bytes(cur, participant_id=principal.id, now=self.clock(),
                              adding=sum(len(e.content.encode()) for e in entries),
                              cap_mb=self.protocol.limits.transcript_mb_per_day)
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
            "coalesce(sum(u.cost_usd), 0) AS cost_usd, max(u.recorded_at) AS last_turn_at "
            "FROM participants p "
            "LEFT JOIN usage u ON u.participant_id = p.id WHERE p.role = 'participant' "
            "GROUP BY ALL ORDER BY p.display_name")
        # An agent harness notes "stopped: <why>" in its transcript when a budget stops it.
        stops = {r["participant_id"]: r for r in self.store.db.rows(
            "SELECT participant_id, arg_max(content, recorded_at) AS note, max(recorded_at) AS at "
            "FROM transcripts WHERE role = 'note' AND turn_key LIKE 'stop:%' GROUP BY 1")}
        return [UsageView(**r, active_hours=self.store.active_seconds(r["participant_id"], now)
                          / 3600, stopped=_stop_note(stops.get(r["participant_id"]),
                                                     r["last_turn_at"])) for r in rows]

    def transcript(self, principal: ParticipantRecord, participant_id: str
                   ) -> list[dict[str, Any]]:
        self.require(principal, Role.ANALYST, Role.ADMIN)
        return self.store.db.rows(
            "SELECT turn_key, recorded_at, iteration, role, content FROM transcripts "
            "WHERE participant_id = ? ORDER BY recorded_at, turn_key", [participant_id])

    def import_aar(self, principal: ParticipantRecord, spec: ImportSpec) -> dict[str, Any]:
        """AAR per-seed results → scored attempts of "imported" participants (no token), one
        participant per AAR dataset so no curve merges chat, math and code; skipped files come
        back with their reasons."""
        self.require(principal, Role.ADMIN)
        report = require_attempts(parse_results(list(spec.files.items())))
        ids, participants = [], {}
        for dataset in sorted({a.task for a in report.attempts}):
            participants[dataset] = self.store.add_participant(ParticipantSpec(
                display_name=f"imported: {spec.label} ({dataset})"[:80], arm="imported",
                kind=ParticipantKind.IMPORTED), actor=principal.id).id
        with self.store.db.transaction() as cur:
            for a in report.attempts:
                ids.append(self._insert_imported(cur, principal, participants[a.task], a))
            self.store.append_event(cur, "aar_imported", actor=principal.id,
                                    participants=sorted(participants.values()), attempts=ids,
                                    label=spec.label, skipped=len(report.skipped))
        return {"participant_id": next(iter(participants.values())),
                "participants": participants, "attempts": ids,
                "skipped": [s.model_dump() for s in report.skipped]}

    def _insert_imported(self, cur, principal: ParticipantRecord, participant_id: str,
                         a: ImportedAttempt) -> str:
        attempt_id = new_id("att")
        part = {"n": 0, "accuracy": a.accuracy, "weak": a.weak, "ceiling": a.ceiling,
                "pgr": a.pgr, "pgr_se": a.pgr_se, "pgr_per_seed": a.pgr_per_seed,
                "stated_pgr_per_seed": [s.stated_pgr for s in a.per_seed],
                "pgr_ci95": None, "subsets": {}}
        # The AAR release has no public/private split: both halves carry its score.
        self.store.insert_attempt(cur, {
            "id": attempt_id, "participant_id": participant_id, "task": a.task,
            "code_sha256": "imported", "source": f"# imported: {a.idea_name} {a.hyperparam_key}",
            "note": f"{a.idea_name} · {a.hyperparam_key}"[:2000],
            "status": AttemptStatus.SCORED.value,
            "seeds": json.dumps(a.seeds), "protocol_hash": self.protocol_hash,
            "scorer_version": "aar-import", "submitted_at": a.finished_at,
            "queued_at": a.finished_at, "started_at": a.finished_at,
            "finished_at": a.finished_at, "public_pgr": a.pgr, "public_pgr_se": a.pgr_se,
            "public_accuracy": a.accuracy, "private_pgr": a.pgr,
            "private_pgr_se": a.pgr_se, "private_accuracy": a.accuracy,
            "scores_json": json.dumps({"public": part, "private": part, "all": part}),
            "wall_seconds": a.wall_seconds, "cpu_seconds": 0.0, "charged": False})
        # Chained like a scored outcome, so `arena audit verify` can prove these too.
        self.store.append_event(cur, "attempt_imported", actor=principal.id,
                                attempt_id=attempt_id, participant=participant_id,
                                task=a.task, **score_record(
                                    {"public": part, "private": part, "all": part},
                                    code_sha256="imported", seeds=a.seeds,
                                    probs_sha256=None))
        return attempt_id

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
            "experiments": "SELECT e.* EXCLUDE (source), p.display_name, p.arm FROM "
                           "experiments e JOIN participants p ON p.id = e.participant_id",
            "dry_runs": "SELECT d.* EXCLUDE (result), p.display_name, p.arm FROM dry_runs d "
                        "JOIN participants p ON p.id = d.participant_id ORDER BY d.created_at",
            "code_reads": "SELECT * FROM code_reads",
            "drafts": "SELECT d.*, p.arm FROM drafts d JOIN participants p "
                      "ON p.id = d.participant_id ORDER BY d.saved_at",
        }
        if table not in queries:
            raise NotFoundError(f"no export {table!r}; choose from {sorted(queries)}")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{table}.parquet"
            self.store.db.rows(f"COPY ({queries[table]}) TO '{path}' (FORMAT PARQUET)")
            return path.read_bytes()


def _stop_note(stop: dict[str, Any] | None, last_turn_at: dt.datetime | None) -> str | None:
    """Why the agent stopped, when its last stop came after its last model turn (a resumed
    agent's old stop does not count)."""
    if stop is None or (last_turn_at is not None and stop["at"] < last_turn_at):
        return None
    return str(stop["note"]).removeprefix("stopped: ")[:500]

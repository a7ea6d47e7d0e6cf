"""The runner's side of the service — a JobSource: claim the next attempt or audit by fair
share, keep it alive, record its outcome, recover after a crash. Mixed into ArenaService."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np

from runner.attempt import AttemptResult
from runner.scheduler import Job
from study.audit_scores import probs_digest, score_record
from study.gpu_accounting import gpu_columns
from study.integrity import add_flag, flag_probing, ladder_release
from study.records import AttemptStatus
from study.store.queries import new_id

DAY = dt.timedelta(days=1)


def slot_seconds(outcomes) -> float:
    """What a run costs in fair share and budget: the wall time it held its one worker slot,
    whatever it did with it (a method that sleeps holds the slot as long as one that computes).
    Runs that also held GPUs are charged their GPU-seconds instead (study.gpu_accounting)."""
    return float(sum(o.wall_s for o in outcomes))


def _seed_probs(outcomes) -> list[bytes | None]:
    """The stored predictions in the order `seed_results` returns them (by seed)."""
    return [None if o.probs is None else np.asarray(o.probs, np.float32).tobytes()
            for o in sorted(outcomes, key=lambda o: o.seed)]
MAX_TRIES = 2  # one retry after an infrastructure fault, never more


class RunnerSide:
    # ------------------------------------------------------------------- the runner's JobSource
    def caps(self) -> dict[str, int]:
        """Attempts each participant may start now: their concurrency, less their dry runs
        in flight (a dry run holds one of the participant's slots too)."""
        dry = dict(self.dry_in_flight)
        return {p.id: self.protocol.budget_for(p.arm).concurrent_attempts - dry.get(p.id, 0)
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
            slot_seconds=slot_seconds(result.outcomes),
            peak_mb=max((o.peak_mb for o in result.outcomes), default=None),
            **gpu_columns(result.outcomes),
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
             "gpu_seconds": o.gpu_s or None, "peak_gpu_mb": o.peak_gpu_mb,
             "error": o.error, "metrics": o.metrics, "log_tail": o.log_tail[-20000:],
             "probs": None if o.probs is None else np.asarray(o.probs, np.float32).tobytes()}
            for o in result.outcomes])
        # A scored outcome goes into the chain whole: the leaderboard can be rebuilt from it.
        proof = score_record(scores, code_sha256=result.code_sha256, seeds=result.seeds,
                             probs_sha256=probs_digest(_seed_probs(result.outcomes))
                             ) if status is AttemptStatus.SCORED else {}
        self.store.append_event(cur, f"attempt_{status.value}", attempt_id=attempt_id,
                                public_pgr=pub.get("pgr"), error=result.error, **proof)
        if status is AttemptStatus.SCORED:
            self._after_scoring(cur, attempt_id, pub.get("pgr"),
                                [np.asarray(o.probs) for o in result.outcomes if o.probs])

    def _after_scoring(self, cur, attempt_id: str, public_pgr: float | None,
                       probs: list[np.ndarray]) -> None:
        row = dict(zip(("id", "participant_id", "task"), cur.execute(
            "SELECT id, participant_id, task FROM attempts WHERE id = ?", [attempt_id]
        ).fetchone(), strict=True))
        feedback = self.protocol.feedback
        scores_json = cur.execute("SELECT scores_json FROM attempts WHERE id = ?",
                                  [attempt_id]).fetchone()[0]
        released = ladder_release(cur, row=row, scores_json=scores_json, feedback=feedback)
        if not released:
            cur.execute("UPDATE attempts SET released = FALSE WHERE id = ?", [attempt_id])
            self.store.append_event(cur, "score_withheld", attempt_id=attempt_id,
                                    margin=feedback.ladder_margin)
        public = self.public_mask_for(row["task"]) if self.public_mask_for else None
        flag_probing(self.store, cur, row=row, probs=probs, feedback=feedback, public=public)
        if self.protocol.audits.teacher_ablation and released and public_pgr is not None:
            best = cur.execute(
                "SELECT max(public_pgr) FROM attempts WHERE participant_id = ? AND task = ? "
                "AND status = 'scored' AND id <> ?",
                [row["participant_id"], row["task"], attempt_id]).fetchone()[0]
            if best is None or public_pgr > best:  # a new personal best: audit it
                self._queue_audit(cur, kind="teacher_ablation", attempt_id=attempt_id,
                                  task=row["task"])

    def requeue_stale(self, older_than_s: float) -> list[str]:
        """Attempts whose worker stopped beating (it could not record the outcome, or died):
        requeued once, or failed uncharged after their retry — as after a crash."""
        stale = self.store.stale_running(self.clock() - dt.timedelta(seconds=older_than_s))
        for attempt_id in stale:
            with self.store.db.transaction() as cur:
                self._infra_fault(cur, attempt_id, "its worker stopped reporting")
        return stale

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

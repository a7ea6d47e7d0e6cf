"""Dry runs: a method run once, unscored and not counted as an attempt, to check that it runs
(one seed, on the participant bundle). Mixed into ArenaService.

Every dry run is a row of `dry_runs` (migration 0017), so that
- a re-sent request with the same idempotency key (a harness resumed after a crash, a client
  retrying a timeout) gets the same run back, also after a server restart, never a second one;
- a key reused with a different request is a 409, as for attempts and experiments;
- analysts count each arm's dry-run compute: cpu and slot seconds, like an attempt's.

Life: running (admitted, on the dry-run lane) → ok | failed, or lost when the server stopped
before it finished (no seconds measured; it still counts as one of the day's dry runs).
"""

from __future__ import annotations

import hashlib
import json
import logging
from concurrent.futures import Future
from typing import Any

from runner.scheduler import BusyError
from study.errors import ConflictError, QuotaError
from study.records import DryRunSpec, DryRunView
from study.service_forum import id_by_key
from study.service_runner import DAY
from study.store.queries import new_id

log = logging.getLogger("w2s_arena.dry_runs")
LOST = "the server stopped while this dry run ran; nothing was measured. Send it again with a " \
       "new idempotency key."


def request_sha256(spec: DryRunSpec) -> str:
    """What an idempotency key is bound to: the task and the exact source."""
    return hashlib.sha256(json.dumps([spec.task, spec.source]).encode()).hexdigest()


def _done(view: dict[str, Any]) -> Future:
    future: Future = Future()
    future.set_result(view)
    return future


class DryRunSide:
    def dry_run(self, principal, spec: DryRunSpec) -> DryRunView:
        """Run a method once, unscored and uncharged, to check that it runs (one seed)."""
        return DryRunView(**self.start_dry_run(principal, spec).result())

    def start_dry_run(self, principal, spec: DryRunSpec) -> Future:
        """Admit a dry run and queue it on the runner's dry-run lane; the future's result is
        the run's description. Admission: the daily cap, and the participant's concurrency
        (running attempts + dry runs in flight ≤ concurrent_attempts)."""
        code_sha = self._runnable(principal, spec.task, spec.source, self.dry_runner)
        request = request_sha256(spec)
        answer: Future = Future()  # what callers wait on; set once the row is written
        with self.store.db.transaction() as cur:
            found = id_by_key(cur, "dry_runs", principal.id, spec.idempotency_key)
            if found is not None:
                return self._replay(cur, found, spec, request)
            self._admit_dry_run(cur, principal)
            run_id = new_id("dry")
            cur.execute("INSERT INTO dry_runs (id, participant_id, task, code_sha256, "
                        "idempotency_key, request_sha256, status, created_at) VALUES "
                        "(?, ?, ?, ?, ?, ?, 'running', ?)",
                        [run_id, principal.id, spec.task, code_sha, spec.idempotency_key,
                         request, self.clock()])
            self.store.append_event(cur, "dry_run", actor=principal.id, task=spec.task,
                                    dry_run=run_id)
            self.dry_running[run_id] = answer  # before commit: a re-send finds it at once
        self._launch(run_id, principal.id, spec, answer)
        return answer

    def _replay(self, cur, run_id: str, spec: DryRunSpec, request: str) -> Future:
        """The run this key already made: still running (its future), finished (its stored
        answer) or lost to a restart (says so). Another request under the key is a 409."""
        stored, status, result = cur.execute(
            "SELECT request_sha256, status, result FROM dry_runs WHERE id = ?",
            [run_id]).fetchone()
        if stored != request:
            raise ConflictError(f"idempotency key {spec.idempotency_key!r} was already used for "
                                f"dry run {run_id} with a different request; use a new key "
                                "for a new dry run")
        if status == "running":
            future = self.dry_running.get(run_id)
            return future if future is not None else _done({"ok": False, "error": LOST})
        return _done(json.loads(result))

    def _admit_dry_run(self, cur, principal) -> None:
        cap = self.protocol.limits.dry_runs_per_day
        since = self.clock() - DAY
        used, oldest = cur.execute(
            "SELECT count(*), min(occurred_at) FROM events WHERE kind = 'dry_run' AND "
            "actor = ? AND occurred_at >= ?", [principal.id, since]).fetchall()[0]
        if used >= cap:
            wait = (oldest + DAY - self.clock()).total_seconds() if oldest else None
            raise QuotaError(f"daily dry runs used: {used} of {cap} in the last 24 h",
                             retry_after=wait)
        self._hold_dry_slot(cur, principal)

    def _launch(self, run_id: str, participant_id: str, spec: DryRunSpec,
                answer: Future) -> None:
        runner = self.dry_runner
        try:
            future = self.dry_lane(lambda: runner(spec.task, spec.source))
        except Exception as exc:
            self._forget_dry_run(run_id, participant_id)
            if isinstance(exc, BusyError):
                exc = QuotaError(f"the dry-run lane is full ({exc}); retry shortly",
                                 retry_after=15.0)
            answer.set_exception(exc)
            raise exc from None
        future.add_done_callback(
            lambda f: self._finish_dry_run(run_id, participant_id, f, answer))

    def _forget_dry_run(self, run_id: str, participant_id: str) -> None:
        """A run the lane refused: no row, so the key may be sent again."""
        self.dry_running.pop(run_id, None)
        self._release_dry_slot(participant_id)
        with self.store.db.transaction() as cur:
            cur.execute("DELETE FROM dry_runs WHERE id = ?", [run_id])

    def _finish_dry_run(self, run_id: str, participant_id: str, future: Future,
                        answer: Future) -> None:
        """Write the outcome, then answer: a re-sent request finds the row finished."""
        exc = future.exception()
        try:
            view = ({"ok": False, "error": f"the runner failed: {exc}"} if exc is not None
                    else DryRunView(**future.result()).model_dump())
            with self.store.db.transaction() as cur:
                cur.execute("UPDATE dry_runs SET status = ?, finished_at = ?, cpu_seconds = ?, "
                            "slot_seconds = ?, result = ? WHERE id = ? AND status = 'running'",
                            ["ok" if view["ok"] else "failed", self.clock(),
                             view.get("cpu_seconds"), view.get("wall_seconds"),
                             json.dumps(view), run_id])
        except Exception:  # never lose the slot or the answer because the record failed
            log.exception("dry run %s: its record was not written", run_id)
        finally:
            self.dry_running.pop(run_id, None)
            self._release_dry_slot(participant_id)
            if exc is not None:
                answer.set_exception(exc)
            else:
                answer.set_result(future.result())

    def recover_dry_runs(self) -> int:
        """At start: a dry run left running lost its process (and its waiting client)."""
        view = json.dumps(DryRunView(ok=False, error=LOST).model_dump())
        with self.store.db.transaction() as cur:
            lost = cur.execute("UPDATE dry_runs SET status = 'lost', finished_at = ?, "
                               "result = ? WHERE status = 'running' RETURNING id",
                               [self.clock(), view]).fetchall()
        return len(lost)

    # ------------------------------------------------------------------- the participant's slots
    def _hold_dry_slot(self, cur, principal) -> None:
        cap = self.protocol.budget_for(principal.arm).concurrent_attempts
        running = cur.execute("SELECT count(*) FROM attempts WHERE participant_id = ? AND "
                              "status = 'running'", [principal.id]).fetchone()[0]
        with self._dry_lock:
            mine = self.dry_in_flight.get(principal.id, 0)
            if running + mine >= cap:
                raise QuotaError(f"{running} attempt(s) and {mine} dry run(s) of yours are "
                                 f"running; at most {cap} run at once", retry_after=10.0)
            self.dry_in_flight[principal.id] = mine + 1

    def _release_dry_slot(self, participant_id: str) -> None:
        with self._dry_lock:
            left = self.dry_in_flight.get(participant_id, 1) - 1
            if left > 0:
                self.dry_in_flight[participant_id] = left
            else:
                self.dry_in_flight.pop(participant_id, None)

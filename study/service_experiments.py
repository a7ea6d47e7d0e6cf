"""Experiments, the same for both arms: participant code run as an asynchronous job in the
method sandbox on the participant bundle, unscored, under its own daily budget (protocol
[experiments]), on the scheduler's dry-run lane so it never takes an attempt's slot. Every
experiment is a row like an attempt (code, times, output, metrics, files), so analysts see how
each arm works, not only what it submits. Mixed into ArenaService.

Life: queued (admitted, stored) → running (claimed by compare-and-set when the lane starts it)
→ finished | failed | timed_out | cancelled. A lane that is full leaves it queued; the next
experiment to finish, or the next server start, dispatches it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

from runner.scheduler import BusyError
from study.errors import ConflictError, NotFoundError, QuotaError
from study.records import ExperimentFileView, ExperimentSpec, ExperimentView, Role
from study.service_forum import id_by_key
from study.service_runner import DAY
from study.store.queries import new_id

log = logging.getLogger("w2s_arena.experiments")
MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
               ".csv": "text/csv", ".txt": "text/plain", ".json": "application/json",
               ".md": "text/markdown"}
ACTIVE = ("queued", "running")
# (task, source, seed, seconds) -> the outcome as a dict (runner.experiment.ExperimentOutcome)
ExperimentRunner = Callable[[str, str, int, float], dict[str, Any]]


def media_type(name: str) -> str:
    """Only inert types are named; anything else is served as bytes to download."""
    return MEDIA_TYPES.get(PurePosixPath(name).suffix.lower(), "application/octet-stream")


class ExperimentSide:
    experiment_runner: ExperimentRunner | None = None
    bundle_for: Callable[[str], bytes] | None = None  # task -> the participant bundle (tar)

    def participant_bundle(self, principal, task: str) -> bytes:
        """All of `train` (inputs, features, one teacher's labels), no test split, as a tar:
        for agents that run experiments on their own machine. Each download is logged."""
        self.require(principal, Role.PARTICIPANT)
        if task not in self.protocol.tasks.hill_climb:
            raise NotFoundError(f"unknown task {task!r}; this study takes "
                                f"{self.protocol.tasks.hill_climb}")
        if self.bundle_for is None:
            raise ConflictError("this server has no runner attached")
        data = self.bundle_for(task)
        with self.store.db.transaction() as cur:
            self.store.append_event(cur, "bundle_download", actor=principal.id, task=task)
        return data

    # ------------------------------------------------------------------------------- submit
    def submit_experiment(self, principal, spec: ExperimentSpec) -> ExperimentView:
        code_sha = self._runnable(principal, spec.task, spec.source, self.experiment_runner)
        with self.store.db.transaction() as cur:
            found = id_by_key(cur, "experiments", principal.id, spec.idempotency_key)
            if found is not None and cur.execute(
                    "SELECT task, code_sha256 FROM experiments WHERE id = ?",
                    [found]).fetchone() != (spec.task, code_sha):
                raise ConflictError(f"idempotency key {spec.idempotency_key!r} was already "
                                    f"used for experiment {found} with a different request; "
                                    "use a new key for a new experiment")
            if found is None:
                self._admit_experiment(cur, principal)
                found = new_id("exp")
                seed = int.from_bytes(hashlib.sha256(found.encode()).digest()[:4], "big")
                cur.execute(
                    "INSERT INTO experiments (id, participant_id, task, code_sha256, source, "
                    "note, idempotency_key, status, seed, submitted_at) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)",
                    [found, principal.id, spec.task, code_sha, spec.source, spec.note,
                     spec.idempotency_key, seed, self.clock()])
                self.store.append_event(cur, "experiment", actor=principal.id,
                                        experiment=found, task=spec.task, code_sha256=code_sha)
        self._dispatch(found)
        return self.get_experiment(principal, found)

    def _admit_experiment(self, cur, principal) -> None:
        """The protocol's experiment budget: per day, compute per day, and in flight."""
        limits = self.protocol.experiments
        since = self.clock() - DAY
        used, seconds, oldest = cur.execute(
            "SELECT count(*), coalesce(sum(coalesce(wall_seconds, CASE WHEN status IN "
            "('queued', 'running') THEN ? ELSE 0 END)), 0), min(submitted_at) FROM experiments "
            "WHERE participant_id = ? AND submitted_at >= ?",
            [limits.seconds, principal.id, since]).fetchone()
        wait = (oldest + DAY - self.clock()).total_seconds() if oldest else None
        if used >= limits.per_day:
            raise QuotaError(f"daily experiments used: {used} of {limits.per_day} in the last "
                             "24 h", retry_after=wait)
        if seconds + limits.seconds > limits.compute_seconds_per_day:
            raise QuotaError(f"daily experiment compute used: {seconds:.0f} s of "
                             f"{limits.compute_seconds_per_day:.0f} s (each experiment holds "
                             f"{limits.seconds:.0f} s until it ends)", retry_after=wait)
        active = cur.execute("SELECT count(*) FROM experiments WHERE participant_id = ? AND "
                             "status IN ('queued', 'running')", [principal.id]).fetchone()[0]
        if active >= limits.concurrent:
            raise QuotaError(f"{active} experiment(s) already queued or running; this study "
                             f"allows {limits.concurrent} at once", retry_after=10.0)

    # ----------------------------------------------------------------------------- running
    def _dispatch(self, experiment_id: str) -> None:
        """Hand the experiment to the lane; a full lane leaves it queued for later."""
        try:
            self.dry_lane(lambda: self._run_experiment(experiment_id))
        except BusyError:
            log.info("experiment %s waits: the lane is full", experiment_id)

    def _run_experiment(self, experiment_id: str) -> None:
        with self.store.db.transaction() as cur:
            row = cur.execute(
                "UPDATE experiments SET status = 'running', started_at = ? WHERE id = ? AND "
                "status = 'queued' RETURNING task, source, seed",
                [self.clock(), experiment_id]).fetchone()
        if row is None:
            return  # cancelled, or another dispatch took it
        task, source, seed = row
        try:
            outcome = self.experiment_runner(task, source, seed, self.protocol.experiments.seconds)
        except Exception as exc:  # the runner's fault, never the experiment's
            log.exception("experiment %s could not run", experiment_id)
            outcome = {"status": "failed", "error": f"the runner failed: {exc}"}
        self._record_experiment(experiment_id, outcome)
        self._dispatch_waiting()

    def _record_experiment(self, experiment_id: str, outcome: dict[str, Any]) -> None:
        files = outcome.get("files") or {}
        with self.store.db.transaction() as cur:
            cur.execute(
                "UPDATE experiments SET status = ?, finished_at = ?, wall_seconds = ?, "
                "cpu_seconds = ?, peak_mb = ?, stdout = ?, metrics = ?, teacher_eval = ?, "
                "error = ?, traceback = ? WHERE id = ? AND status = 'running'",
                [outcome["status"], self.clock(), outcome.get("wall_seconds"),
                 outcome.get("cpu_seconds"), outcome.get("peak_mb"), outcome.get("stdout"),
                 json.dumps(outcome.get("metrics") or []),
                 json.dumps(outcome.get("teacher_eval")), outcome.get("error"),
                 outcome.get("traceback"), experiment_id])
            for name, content in files.items():
                cur.execute("INSERT INTO experiment_files VALUES (?, ?, ?, ?)",
                            [experiment_id, name, media_type(name), content])
            self.store.append_event(cur, "experiment_finished", experiment=experiment_id,
                                    status=outcome["status"], files=len(files))

    def _dispatch_waiting(self) -> None:
        for row in self.store.db.rows(
                "SELECT id FROM experiments WHERE status = 'queued' ORDER BY submitted_at"):
            self._dispatch(row["id"])

    def recover_experiments(self) -> int:
        """At start: an experiment left running lost its process; queued ones go again."""
        with self.store.db.transaction() as cur:
            lost = cur.execute(
                "UPDATE experiments SET status = 'failed', finished_at = ?, wall_seconds = 0, "
                "error = 'the server stopped while this experiment ran; not charged' "
                "WHERE status = 'running' RETURNING id", [self.clock()]).fetchall()
        self._dispatch_waiting()
        return len(lost)

    def cancel_experiment(self, principal, experiment_id: str) -> ExperimentView:
        self._own_experiment(principal, experiment_id)
        with self.store.db.transaction() as cur:
            cur.execute("UPDATE experiments SET status = 'cancelled', finished_at = ?, "
                        "wall_seconds = 0 WHERE id = ? AND status = 'queued'",
                        [self.clock(), experiment_id])
        return self.get_experiment(principal, experiment_id)

    # ------------------------------------------------------------------------------ reading
    def _own_experiment(self, principal, experiment_id: str) -> dict[str, Any]:
        rows = self.store.db.rows("SELECT * FROM experiments WHERE id = ?", [experiment_id])
        staff = principal.role in (Role.ANALYST, Role.ADMIN)
        if not rows or (rows[0]["participant_id"] != principal.id and not staff):
            raise NotFoundError(f"no experiment {experiment_id} of yours")
        return rows[0]

    def _experiment_view(self, row: dict[str, Any], *, full: bool) -> ExperimentView:
        files = self.store.db.rows(
            "SELECT name, media_type, octet_length(content) AS size FROM experiment_files "
            "WHERE experiment_id = ? ORDER BY name", [row["id"]]) if full else []
        view = ExperimentView(
            **{k: row[k] for k in ("id", "participant_id", "task", "status", "note", "seed",
                                   "submitted_at", "started_at", "finished_at", "wall_seconds",
                                   "cpu_seconds", "peak_mb", "error")},
            teacher_eval=json.loads(row["teacher_eval"]) if row["teacher_eval"] else None,
            files=[ExperimentFileView(**f) for f in files])
        if full:
            view.stdout, view.traceback, view.source = row["stdout"], row["traceback"], \
                row["source"]
            view.metrics = json.loads(row["metrics"] or "[]")
        return view

    def get_experiment(self, principal, experiment_id: str) -> ExperimentView:
        return self._experiment_view(self._own_experiment(principal, experiment_id), full=True)

    def list_experiments(self, principal, *, everyone: bool = False, limit: int = 100
                         ) -> list[ExperimentView]:
        """Newest first, without output (get one for that); `everyone` is for staff."""
        staff = principal.role in (Role.ANALYST, Role.ADMIN)
        where, params = ("", []) if everyone and staff else \
            ("WHERE participant_id = ?", [principal.id])
        rows = self.store.db.rows(f"SELECT * FROM experiments {where} ORDER BY submitted_at "
                                  "DESC LIMIT ?", [*params, limit])
        return [self._experiment_view(r, full=False) for r in rows]

    def experiment_file(self, principal, experiment_id: str, name: str) -> tuple[str, bytes]:
        self._own_experiment(principal, experiment_id)
        rows = self.store.db.rows("SELECT media_type, content FROM experiment_files WHERE "
                                  "experiment_id = ? AND name = ?", [experiment_id, name])
        if not rows:
            raise NotFoundError(f"experiment {experiment_id} has no file {name!r}")
        return rows[0]["media_type"], bytes(rows[0]["content"])

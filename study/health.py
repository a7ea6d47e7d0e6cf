"""What `/v1/health` reports: the database, each worker's last sign of life, the oldest queued
attempt and the free disk — and whether any of them is wrong (then the answer is 503, which is
what a supervisor's or a load balancer's health check acts on)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from study.store import utcnow

WORKER_STALE_S = 60.0  # a worker loop beats every poll and every heartbeat while it runs


class HealthReport(BaseModel):
    status: str  # "ok" or "unhealthy"
    problems: list[str] = []
    database: dict[str, Any] = {}
    workers: list[dict[str, Any]] = []
    queue: dict[str, Any] = {}
    disk: dict[str, Any] = {}
    dry_runs: dict[str, Any] = {}
    waiting: int = 0  # requests long-polling an attempt
    # Where attempts run. A Ray head that is away is a warning, not a 503: the server keeps
    # accepting and queueing, and a supervisor restarting it would not bring the head back.
    executor: dict[str, Any] = {"backend": "local"}
    warnings: list[str] = []


def free_disk_mb(path: Path) -> float:
    return shutil.disk_usage(path).free / 2**20


def _workers(scheduler, problems: list[str]) -> list[dict[str, Any]]:
    if scheduler is None:
        return []
    out = []
    now = time.time()
    for state, alive in zip(scheduler.workers, scheduler.alive(), strict=False):
        age = now - state.beat
        entry = {"name": state.name, "alive": alive, "last_beat_s": round(age, 1),
                 "attempt_id": state.attempt_id, "errors": state.errors,
                 "last_error": state.last_error, "retired": getattr(state, "retired", False)}
        if not alive:
            problems.append(f"{state.name} has stopped")
        elif age > WORKER_STALE_S:
            problems.append(f"{state.name} has not shown life for {age:.0f} s")
        elif entry["retired"]:
            problems.append(f"{state.name} lost its GPU and claims nothing")
        out.append(entry)
    return out


def health_report(platform, *, queue_stale_s: float) -> HealthReport:
    """Synchronous (it queries the store): run it off the event loop."""
    problems: list[str] = []
    db_problem = platform.db.check()  # a fatal error makes it reconnect first
    if db_problem:
        problems.append(f"database: {db_problem}")
    workers = _workers(platform.scheduler, problems)
    oldest_age = None
    if db_problem is None:
        oldest = platform.service.store.oldest_queued()
        oldest_age = None if oldest is None else (utcnow() - oldest).total_seconds()
    if workers and oldest_age is not None and oldest_age > queue_stale_s:
        problems.append(f"the oldest queued attempt has waited {oldest_age:.0f} s")
    floor = platform.service.protocol.limits.min_free_disk_mb
    free = free_disk_mb(Path(platform.db.path).parent)
    if free < floor:
        problems.append(f"{free:.0f} MB free on the data disk, below the floor of {floor} MB")
    scheduler = platform.scheduler
    executor, warnings = {"backend": "local"}, []
    ray = getattr(platform, "ray", None)
    if ray is not None:
        executor = ray.health()
        if not executor["connected"]:
            warnings.append(f"attempts wait in the queue: {executor['error'] or 'no Ray head'}")
    return HealthReport(
        executor=executor, warnings=warnings,
        status="unhealthy" if problems else "ok", problems=problems,
        database={"ok": db_problem is None, "problem": db_problem, "path": platform.db.path},
        workers=workers,
        queue={"oldest_queued_s": None if oldest_age is None else round(oldest_age, 1),
               "stale_after_s": queue_stale_s},
        disk={"free_mb": round(free, 1), "min_free_mb": floor},
        dry_runs={"pending": scheduler.dry_pending if scheduler else 0,
                  "in_flight": dict(platform.service.dry_in_flight)})

"""The composition root: open the store, load the frozen protocol, prepare tasks, start workers.

`Platform` holds the live pieces; `open_platform` builds them and `create_study` writes a new
study file. The FastAPI app (study.api) owns a Platform for its lifetime.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from runner.attempt import AttemptResult, dry_run, run_attempt, score_attempt
from runner.method import Budget
from runner.method.sandbox import SandboxUnavailableError, require_sandbox
from runner.scheduler import Job, Scheduler
from runner.teacher import ModelPair, fixed_baselines, resolve_pair
from study.errors import ConflictError, NotFoundError
from study.protocol import ProtocolSpec
from study.records import IssuedToken, ParticipantKind, ParticipantSpec, Role
from study.scoring import public_mask
from study.service import ArenaService
from study.store import Database, Store, utcnow
from study.tasks import Task, prepare_task

log = logging.getLogger("w2s_arena.server")
DB_NAME = "study.duckdb"


def db_path(data_dir: Path) -> Path:
    return Path(data_dir) / DB_NAME


def create_study(data_dir: Path, protocol: ProtocolSpec) -> IssuedToken:
    """Freeze a protocol into a new study file; returns the admin's token (shown once)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(db_path(data_dir))
    try:
        db.migrate()
        store = Store(db)
        if store.get_study() is not None:
            raise ConflictError(f"{db_path(data_dir)} already holds a study")
        starts = protocol.window.start or utcnow()
        if starts.tzinfo is None:
            starts = starts.replace(tzinfo=dt.UTC)
        ends = starts + dt.timedelta(hours=protocol.window.duration_hours)
        store.create_study(name=protocol.name, protocol_json=protocol.model_dump_json(),
                           protocol_hash=protocol.hash(), starts_at=starts, ends_at=ends)
        with db.transaction() as cur:
            store.append_event(cur, "study_created", protocol_hash=protocol.hash(),
                               protocol=json.loads(protocol.model_dump_json()))
        service = ArenaService(store, protocol)
        return service.add_participant(
            ParticipantSpec(display_name="admin", role=Role.ADMIN, kind=ParticipantKind.SERVICE),
            actor=None)
    finally:
        db.close()


@dataclass
class Platform:
    db: Database
    service: ArenaService
    protocol: ProtocolSpec
    pair: ModelPair
    tasks: dict[str, Task]
    scheduler: Scheduler | None = None
    task_views: dict[str, dict[str, Any]] = field(default_factory=dict)

    def execute(self, job: Job, cancel: threading.Event) -> AttemptResult:
        limits = self.protocol.limits
        with tempfile.TemporaryDirectory(prefix="method-") as tmp:
            path = Path(tmp) / "method.py"
            path.write_text(job.source, encoding="utf-8")
            # A teacher ablation reruns the method on the same task with shuffled weak labels;
            # a held-out audit runs it on another task. Both use the attempt's own seeds.
            permute = None
            if job.kind == "teacher_ablation":
                permute = int(hashlib.sha256(job.attempt_id.encode()).hexdigest()[:8], 16)
            return run_attempt(path, self.tasks[job.task], seeds=job.seeds, pair=self.pair,
                               budget=Budget(seconds=limits.attempt_seconds,
                                             memory_mb=limits.memory_mb),
                               sandbox=self.protocol.sandbox,
                               public_fraction=self.protocol.feedback.public_fraction,
                               cancel=cancel, permute_weak_labels=permute)

    def dry_run(self, task_name: str, source: str) -> dict[str, Any]:
        limits = self.protocol.limits
        with tempfile.TemporaryDirectory(prefix="dryrun-") as tmp:
            path = Path(tmp) / "method.py"
            path.write_text(source, encoding="utf-8")
            return dry_run(path, self.tasks[task_name], pair=self.pair,
                           budget=Budget(seconds=min(limits.attempt_seconds, 120.0),
                                         memory_mb=limits.memory_mb),
                           sandbox=self.protocol.sandbox)

    def items(self, task_name: str, probs: list[np.ndarray]) -> dict[str, Any]:
        task = self.tasks[task_name]
        base = fixed_baselines(task, self.pair)
        labels = np.array(task.labels("test"))
        uids = [ex.uid for ex in task.splits["test"]]
        hit = lambda p: ((np.asarray(p) >= 0.5) == labels)  # noqa: E731
        return {"correct": [hit(p).astype(int).tolist() for p in probs],
                "weak": np.mean([hit(p) for p in base.weak_test_probs()], axis=0).tolist(),
                "ceiling": np.mean([hit(p) for p in base.ceiling_test_probs()],
                                   axis=0).tolist(),
                "public": public_mask(uids, task.info.content_hash,
                                      self.protocol.feedback.public_fraction).tolist(),
                "subsets": task.subsets("test")}

    def rescore(self, task_name: str, probs: list[np.ndarray],
                public_fraction: float) -> dict[str, Any]:
        task = self.tasks[task_name]
        scores = score_attempt(task, fixed_baselines(task, self.pair), probs,
                               public_fraction=public_fraction)
        return {part: score.model_dump() for part, score in scores.items()}

    def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
        self.db.close()


def _task_view(task: Task, pair: ModelPair) -> dict[str, Any]:
    base = fixed_baselines(task, pair)
    info = task.info
    return {"name": info.name, "kind": str(info.kind), "role": str(info.role),
            "description": info.description, "label_names": list(info.label_names),
            "sizes": {s: info.sizes[s] for s in ("train", "test")},
            "weak": round(base.weak_mean, 4), "ceiling": round(base.ceiling_mean, 4)}


def open_platform(data_dir: Path, *, slots: int = 1, start_workers: bool = True) -> Platform:
    path = db_path(data_dir)
    if not path.exists():
        raise NotFoundError(f"no study at {path}: run `arena study create PROTOCOL.toml` first")
    db = Database(path)
    db.migrate()
    store = Store(db)
    study = store.get_study()
    if study is None:
        db.close()
        raise NotFoundError(f"{path} holds no study")
    protocol = ProtocolSpec.model_validate_json(study["protocol_json"])
    if protocol.sandbox:
        try:
            require_sandbox()
        except SandboxUnavailableError:
            db.close()
            raise
    pair = resolve_pair(protocol.model_pair)
    tasks = {name: prepare_task(name) for name in protocol.tasks.all}
    views = {name: _task_view(task, pair) for name, task in tasks.items()}
    platform = Platform(db=db, service=None, protocol=protocol, pair=pair,  # type: ignore[arg-type]
                        tasks=tasks, task_views=views)
    platform.service = ArenaService(store, protocol, task_info=views.__getitem__,
                                    rescore=platform.rescore)
    platform.service.dry_runner = platform.dry_run
    platform.service.items_for = platform.items
    if os.environ.get("ANTHROPIC_API_KEY"):
        import anthropic

        # The SDK also honours ANTHROPIC_BASE_URL, which is how tests reach a fake API.
        platform.service.reviewer = anthropic.Anthropic(max_retries=3)
    requeued = platform.service.recover()
    if requeued:
        log.warning("recovered %d attempt(s) left running: %s", len(requeued), requeued)
    if start_workers and slots > 0:
        platform.scheduler = Scheduler(platform.service, platform.execute, slots=slots)
        platform.service.on_submit = platform.scheduler.wake
        platform.scheduler.start()
    return platform

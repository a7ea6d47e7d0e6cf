"""The composition root: open the store, load the frozen protocol, prepare tasks, start workers.

`Platform` holds the live pieces; `open_platform` builds them and `create_study` writes a new
study file. The FastAPI app (study.api) owns a Platform for its lifetime.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import json
import logging
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from runner.attempt import AttemptResult, dry_run, run_attempt, score_attempt
from runner.gpu import GpuUnavailableError, resolve_slots
from runner.method import Budget
from runner.method.cgroup import CgroupUnavailableError, require_cgroups
from runner.method.sandbox import SandboxUnavailableError, require_sandbox
from runner.pairs import pair_for_protocol
from runner.ray_backend import NodeRun, RayExecutor, baseline_fingerprint, check_ray_address
from runner.scheduler import Job, Scheduler
from runner.teacher import ModelPair, fixed_baselines
from runner.workdir import clean_cgroups, clean_work_dirs, make_work_dir
from study.audit import key_path, make_key
from study.audit_scores import verify_study
from study.errors import ArenaError, ConflictError, InvalidError, NotFoundError
from study.experiment_exec import bundle_server, experiment_runner
from study.membership import ensure_membership_salt
from study.protocol import Limits, ProtocolSpec
from study.records import IssuedToken, ParticipantKind, ParticipantSpec, Role
from study.scoring import public_mask
from study.service import ArenaService
from study.store import Database, Store, utcnow
from study.tasks import Task
from study.tasks.datadir import pin_dataset_hashes, prepare_protocol_tasks

log = logging.getLogger("w2s_arena.server")
DB_NAME = "study.duckdb"


def db_path(data_dir: Path) -> Path:
    return Path(data_dir) / DB_NAME


def create_study(data_dir: Path, protocol: ProtocolSpec) -> IssuedToken:
    """Freeze a protocol into a new study file; returns the admin's token (shown once)."""
    # A bad data folder: the reason, and no study file; a good one: its data pinned.
    protocol = pin_dataset_hashes(protocol)
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)  # the DuckDB file holds every participant's source: owner only
    db = Database(db_path(data_dir))
    try:
        db.migrate()
        if Store(db).get_study() is not None:
            raise ConflictError(f"{db_path(data_dir)} already holds a study")
        if key_path(data_dir).exists():
            raise ConflictError(f"{key_path(data_dir)} already holds an audit key: a new "
                                "study gets a new key (move the old one away)")
        make_key(data_dir)  # the event chain's HMAC key, in a file apart from the DuckDB file
        store = Store(db)
        store.set_chain_scheme("hmac-sha256")
        starts = protocol.window.start or utcnow()
        if starts.tzinfo is None:
            starts = starts.replace(tzinfo=dt.UTC)
        ends = starts + dt.timedelta(hours=protocol.window.duration_hours)
        store.create_study(name=protocol.name, protocol_json=protocol.model_dump_json(),
                           protocol_hash=protocol.hash(), starts_at=starts, ends_at=ends)
        ensure_membership_salt(db, new_study=True)
        with db.transaction() as cur:
            store.append_event(cur, "study_created", protocol_hash=protocol.hash(),
                               protocol=json.loads(protocol.model_dump_json()))
        service = ArenaService(store, protocol)
        return service.add_participant(
            ParticipantSpec(display_name="admin", role=Role.ADMIN, kind=ParticipantKind.SERVICE),
            actor=None)
    finally:
        db.close()


def method_budget(limits: Limits, seconds: float) -> Budget:
    """A run's budget from the protocol's limits (read live, so amendments reach workers)."""
    return Budget(seconds=seconds, memory_mb=limits.memory_mb, disk_mb=limits.disk_mb,
                  cgroups=limits.cgroups)


@contextlib.contextmanager
def _method_copy() -> Iterator[Path]:
    """The submitted source's copy for one run: private and pid-tagged (runner.workdir)."""
    folder = make_work_dir("method")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class ChainBrokenError(ArenaError):
    """The audit log does not verify: the server will not serve it unless told to."""

    code = "chain_broken"


def _check_audit(store: Store, protocol: ProtocolSpec, *, allow_broken: bool) -> None:
    """At start: the chain and the scores it proves. Refuse a broken study unless told."""
    report = verify_study(store, protocol.tasks.all)
    if report.ok:
        return
    chain = report.chain
    problem = (f"the event chain is broken at event {chain.broken_at}: {chain.problem}"
               if not chain.ok else
               f"{len(report.scores.disagreements)} attempts field(s) disagree with the chain, "
               f"first: {report.scores.disagreements[0].attempt_id} "
               f"({report.scores.disagreements[0].field})")
    if not allow_broken:
        raise ChainBrokenError(f"{problem}; run `arena audit verify` for the details, or "
                               "start with --allow-broken-chain to serve it anyway")
    log.error("serving a study whose audit does not verify (--allow-broken-chain): %s",
              problem)


def _clean_orphans() -> None:
    """What a killed server left: run folders (with participants' sources) and cgroups."""
    folders, groups = clean_work_dirs(), clean_cgroups()
    if folders or groups:
        log.warning("removed %d orphaned run folder(s) and %d cgroup(s) of dead servers",
                    len(folders), len(groups))


@dataclass
class Platform:
    db: Database
    service: ArenaService
    protocol: ProtocolSpec
    pair: ModelPair
    tasks: dict[str, Task]
    salt: str  # decides public/private membership; never leaves the server (study.membership)
    scheduler: Scheduler | None = None
    task_views: dict[str, dict[str, Any]] = field(default_factory=dict)
    ray: RayExecutor | None = None  # attempts run on a Ray cluster instead of local slots
    baseline_hashes: dict[str, str] = field(default_factory=dict)  # what Ray nodes must match

    def execute(self, job: Job, cancel: threading.Event) -> AttemptResult:
        if self.ray is not None:
            return self._execute_on_ray(job, cancel)
        with _method_copy() as tmp:
            path = Path(tmp) / "method.py"
            path.write_text(job.source, encoding="utf-8")
            # An attempt (not an audit) reports each seed live for its author's attempt page.
            live = self.service.live if job.kind == "attempt" else None
            if live:
                live.start(job.attempt_id, job.seeds)
            try:
                return run_attempt(
                    path, self.tasks[job.task], pair=self.pair, cancel=cancel, slot=job.slot,
                    on_progress=functools.partial(live.report, job.attempt_id) if live else None,
                    on_seed=functools.partial(live.finish_seed, job.attempt_id) if live else None,
                    **self._attempt_kwargs(job))
            finally:
                if live:
                    live.drop(job.attempt_id)

    def _attempt_kwargs(self, job: Job) -> dict[str, Any]:
        """What decides a run besides the method and the task: plain data, the same for the
        local backend and a Ray node."""
        protocol = self.service.protocol  # the live one: an amendment reaches running workers
        limits = protocol.limits
        # A teacher ablation reruns the method on the same task with shuffled weak labels;
        # a held-out audit runs it on another task. Both use the attempt's own seeds.
        permute = None
        if job.kind == "teacher_ablation":
            permute = int(hashlib.sha256(job.attempt_id.encode()).hexdigest()[:8], 16)
        return {"seeds": job.seeds,
                "budget": method_budget(limits, limits.attempt_seconds),
                "sandbox": protocol.sandbox, "public_fraction": protocol.feedback.public_fraction,
                "salt": self.salt, "permute_weak_labels": permute}

    def _execute_on_ray(self, job: Job, cancel: threading.Event) -> AttemptResult:
        task = self.tasks[job.task]
        spec = NodeRun(source=job.source, task=job.task, task_hash=task.info.content_hash,
                       baseline_hash=self.baseline_hashes[job.task],
                       protocol_json=self.protocol.model_dump_json(),
                       attempt_kwargs=self._attempt_kwargs(job))
        runner = self.service.protocol.runner
        return self.ray.run(spec, cancel=cancel, num_cpus=runner.ray_cpus_per_attempt,
                            num_gpus=runner.gpus_per_attempt if runner.gpus else 0,
                            memory_mb=self.service.protocol.limits.memory_mb)

    def dry_run(self, task_name: str, source: str) -> dict[str, Any]:
        protocol = self.service.protocol
        limits = protocol.limits
        with _method_copy() as tmp:
            path = Path(tmp) / "method.py"
            path.write_text(source, encoding="utf-8")
            return dry_run(path, self.tasks[task_name], pair=self.pair,
                           budget=method_budget(limits, min(limits.attempt_seconds, 120.0)),
                           sandbox=protocol.sandbox)

    def public_mask(self, task_name: str) -> np.ndarray:
        uids = [ex.uid for ex in self.tasks[task_name].splits["test"]]
        return public_mask(uids, self.salt, self.service.protocol.feedback.public_fraction)

    def items(self, task_name: str, probs: list[np.ndarray]) -> dict[str, Any]:
        task = self.tasks[task_name]
        base = fixed_baselines(task, self.pair)
        labels = np.array(task.labels("test"))
        hit = lambda p: ((np.asarray(p) >= 0.5) == labels)  # noqa: E731
        return {"correct": [hit(p).astype(int).tolist() for p in probs],
                "weak": np.mean([hit(p) for p in base.weak_test_probs()], axis=0).tolist(),
                "ceiling": np.mean([hit(p) for p in base.ceiling_test_probs()],
                                   axis=0).tolist(),
                "public": self.public_mask(task_name).tolist(),
                "subsets": task.subsets("test")}

    def rescore(self, task_name: str, probs: list[np.ndarray],
                public_fraction: float) -> dict[str, Any]:
        task = self.tasks[task_name]
        scores = score_attempt(task, fixed_baselines(task, self.pair), probs,
                               public_fraction=public_fraction, salt=self.salt)
        return {part: score.model_dump() for part, score in scores.items()}

    def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.ray is not None:
            self.ray.close()
        self.db.close()


def _task_view(task: Task, pair: ModelPair) -> dict[str, Any]:
    base = fixed_baselines(task, pair)
    info = task.info
    return {"name": info.name, "kind": str(info.kind), "role": str(info.role),
            "description": info.description, "label_names": list(info.label_names),
            "sizes": {s: info.sizes[s] for s in ("train", "test")},
            "weak": round(base.weak_mean, 4), "ceiling": round(base.ceiling_mean, 4)}


def check_backend(backend: str, address: str | None) -> str | None:
    """The Ray head's address when attempts run on Ray, None for the local backend; a clear
    error for anything else. Cheap (no connection): `arena up` asks before creating a study."""
    if backend == "local":
        return None
    if backend != "ray":
        raise InvalidError(f"unknown backend {backend!r}: 'local' or 'ray'")
    if not address:
        raise InvalidError("the Ray backend needs the head's address: --ray-address "
                           "ray://HOST:10001 (or [runner] ray_address in the protocol)")
    check_ray_address(address)
    return address


def _ray_executor(backend: str, address: str | None) -> RayExecutor | None:
    address = check_backend(backend, address)
    return None if address is None else RayExecutor(address)


def open_platform(data_dir: Path, *, slots: int = 1, start_workers: bool = True,
                  gpus: str | None = None, allow_broken_chain: bool = False,
                  backend: str | None = None, ray_address: str | None = None) -> Platform:
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
    try:
        _check_audit(store, protocol, allow_broken=allow_broken_chain)
    except ArenaError:
        db.close()
        raise
    backend = backend or protocol.runner.backend
    try:  # before anything slow: a Ray address that cannot be used fails at once
        ray = _ray_executor(backend, ray_address or protocol.runner.ray_address)
    except ArenaError:
        db.close()
        raise
    try:  # before anything slow: `--gpus` on a machine without them fails at once
        # On Ray the cluster places GPUs; local workers are only attempts in flight.
        resources = [] if ray is not None else resolve_slots(
            gpus if gpus is not None else protocol.runner.gpus,
            gpus_per_slot=protocol.runner.gpus_per_attempt, cpu_slots=slots)
    except GpuUnavailableError:
        db.close()
        raise
    try:
        if protocol.sandbox:
            require_sandbox()
        if protocol.limits.cgroups == "required":
            require_cgroups()  # whole-tree budgets, or no methods run (as without bubblewrap)
    except (SandboxUnavailableError, CgroupUnavailableError):
        db.close()
        raise
    # Built-in names, or the protocol's data folders: a bad folder stops us before a download.
    tasks = prepare_protocol_tasks(protocol)
    pair = pair_for_protocol(protocol)
    views = {name: _task_view(task, pair) for name, task in tasks.items()}
    platform = Platform(db=db, service=None, protocol=protocol, pair=pair,  # type: ignore[arg-type]
                        tasks=tasks, task_views=views, salt=ensure_membership_salt(db),
                        ray=ray, baseline_hashes={
                            name: baseline_fingerprint(fixed_baselines(task, pair))
                            for name, task in tasks.items()} if ray is not None else {})
    platform.service = ArenaService(store, protocol, task_info=views.__getitem__,
                                    rescore=platform.rescore)
    platform.service.dry_runner = platform.dry_run
    platform.service.experiment_runner = experiment_runner(platform)
    platform.service.bundle_for = bundle_server(platform)
    platform.service.gpu_study = any(slot.gpus for slot in resources) or (
        ray is not None and protocol.runner.gpus is not None)
    platform.service.items_for = platform.items
    platform.service.public_mask_for = platform.public_mask
    if os.environ.get("ANTHROPIC_API_KEY"):
        import anthropic

        # The SDK also honours ANTHROPIC_BASE_URL, which is how tests reach a fake API.
        platform.service.reviewer = anthropic.Anthropic(max_retries=3)
    _clean_orphans()
    requeued = platform.service.recover()
    if requeued:
        log.warning("recovered %d attempt(s) left running: %s", len(requeued), requeued)
    if start_workers and slots > 0:
        for slot in resources:
            log.info("worker %s", slot.describe())
        platform.scheduler = Scheduler(platform.service, platform.execute,
                                       resources=resources, slots=slots,
                                       ready=ray.ready if ray is not None else None)
        platform.service.on_submit = platform.scheduler.wake
        platform.scheduler.start()
    return platform

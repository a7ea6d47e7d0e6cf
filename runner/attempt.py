"""One attempt: a method run once per server-chosen seed, then scored against gold labels.

This is the whole data path of the testbed, read top to bottom: task → fixed baselines →
participant bundle → one sandboxed process per seed → validation → scores.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel

from runner.bundle import model_dirs, write_bundle
from runner.gpu import Slot
from runner.method.context import Budget
from runner.method.launch import MethodRun, run_method_process
from runner.teacher import (
    FixedBaselines,
    ModelPair,
    fixed_baselines,
    resolve_pair,
    teacher_index,
)
from runner.workdir import make_work_dir
from study.errors import InvalidError, PredictionError
from study.scoring import PartScore, public_mask, score_predictions, validate_predictions
from study.tasks import Task, prepare_task

MAX_METHOD_BYTES = 1_000_000


class SeedOutcome(BaseModel):
    seed: int
    status: str
    error_kind: str | None = None
    error: str | None = None
    traceback: str | None = None
    log_tail: str = ""
    wall_s: float
    cpu_s: float
    peak_mb: float
    sandboxed: bool
    gpu_s: float = 0.0  # wall × GPUs held; 0 on a CPU slot
    peak_gpu_mb: float | None = None
    accuracy: float | None = None
    probs: list[float] | None = None  # the validated test predictions, kept for re-scoring
    metrics: list[dict] = []  # what the method logged with ctx.log


class AttemptResult(BaseModel):
    task: str
    task_hash: str
    code_sha256: str
    status: Literal["scored", "failed"]
    seeds: list[int]
    outcomes: list[SeedOutcome]
    weak: float
    ceiling: float
    scores: dict[str, PartScore] | None = None
    error: str | None = None
    wall_s: float = 0.0


def score_attempt(task: Task, baselines: FixedBaselines, probs: list[np.ndarray], *,
                  public_fraction: float, salt: str) -> dict[str, PartScore]:
    """Per-seed test predictions → public, private and overall scores against gold labels."""
    uids = [ex.uid for ex in task.splits["test"]]
    return score_predictions(probs, task.labels("test"), task.subsets("test"),
                             public_mask(uids, salt, public_fraction),
                             baselines.weak_test_probs(), baselines.ceiling_test_probs())


def dry_run(method: Path, task: Task, *, pair: ModelPair, budget: Budget, sandbox: bool = True,
            seed: int = 0) -> dict:
    """Run a method once on the participant bundle and describe its output, unscored: what an
    agent (or a person) may check before spending an attempt. No gold label is read."""
    baselines = fixed_baselines(task, pair)
    bundle = write_bundle(task, pair, baselines, teacher=teacher_index(seed, len(baselines.seeds)))
    work = make_work_dir("dryrun")  # private, pid-tagged: a restart removes it if orphaned
    try:
        stage_method(Path(method), work / "method")
        run = run_method_process(work / "method" / "method.py", bundle, work / "seed",
                                 seed=seed, budget=budget, models_dirs=model_dirs(pair),
                                 sandbox=sandbox)
        out = {"ok": run.status == "ok", "error": run.error, "traceback": run.traceback,
               "log_tail": run.log_tail[-8000:], "wall_seconds": run.wall_s,
               "cpu_seconds": run.cpu_s}
        if run.status == "ok":
            try:
                probs = validate_predictions(run.raw, task.info.sizes["test"])
            except PredictionError as exc:
                out.update(ok=False, error=exc.message)
            else:
                out.update(n_predictions=len(probs), mean_prediction=float(probs.mean()),
                           share_above_half=float((probs >= 0.5).mean()))
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def choose_seeds(count: int) -> list[int]:
    """Seeds are the server's, never the method's: a method cannot cherry-pick them."""
    return [secrets.randbelow(2**31 - 1) for _ in range(count)]


def stage_method(source: Path, dest: Path) -> str:
    """Copy the method (a file, or a folder with method.py) to `dest/method.py`; its sha256."""
    if source.is_dir():
        source = source / "method.py"
    if not source.is_file():
        raise InvalidError(f"no method file at {source}")
    code = source.read_bytes()
    if len(code) > MAX_METHOD_BYTES:
        raise InvalidError(f"{source.name} is {len(code)} bytes; the limit is {MAX_METHOD_BYTES}")
    try:
        code.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidError(f"{source.name} is not UTF-8 text: {exc}") from None
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "method.py").write_bytes(code)
    return hashlib.sha256(code).hexdigest()


def _outcome(run: MethodRun) -> SeedOutcome:
    return SeedOutcome(seed=run.seed, status=run.status, error_kind=run.error_kind,
                       error=run.error, traceback=run.traceback, log_tail=run.log_tail,
                       wall_s=run.wall_s, cpu_s=run.cpu_s, peak_mb=run.peak_mb,
                       sandboxed=run.sandboxed, metrics=run.metrics, gpu_s=run.gpu_s,
                       peak_gpu_mb=run.peak_gpu_mb)


def run_attempt(method: Path, task: Task | str, *, seeds: list[int], pair: ModelPair | None = None,
                budget: Budget | None = None, sandbox: bool = True, public_fraction: float = 0.5,
                salt: str | None = None,
                on_seed: Callable[[SeedOutcome], None] | None = None,
                on_progress: Callable[[int, dict], None] | None = None,
                cancel: threading.Event | None = None,
                permute_weak_labels: int | None = None,
                slot: Slot | None = None) -> AttemptResult:
    """Run and score; a method's failure comes back as a failed result, never as an exception."""
    task = prepare_task(task) if isinstance(task, str) else task
    pair = pair or resolve_pair("default")
    budget = budget or Budget()
    baselines = fixed_baselines(task, pair)
    labels = np.array(task.labels("test"))
    work = make_work_dir("attempt")  # private, pid-tagged: a restart removes it if orphaned
    try:
        code_sha = stage_method(Path(method), work / "method")
        outcomes, probs = [], []
        for seed in seeds:
            # Each seed learns from its own teacher: teacher variance enters the score.
            bundle = write_bundle(task, pair, baselines,
                                  teacher=teacher_index(seed, len(baselines.seeds)),
                                  permute_seed=permute_weak_labels)
            # (seed, report): "running" now, then what ctx.progress and ctx.log report live.
            live = None
            if on_progress:
                on_progress(seed, {"state": "running"})
                live = functools.partial(on_progress, seed)
            run = run_method_process(work / "method" / "method.py", bundle, work / f"seed-{seed}",
                                     seed=seed, budget=budget, models_dirs=model_dirs(pair),
                                     sandbox=sandbox, cancel=cancel, on_live=live,
                                     slot=slot)
            outcome = _outcome(run)
            if run.status == "ok":
                try:
                    p = validate_predictions(run.raw, len(labels))
                    outcome.accuracy = float(((p >= 0.5) == labels).mean())
                    outcome.probs = p.tolist()
                    probs.append(p)
                except PredictionError as exc:
                    outcome.status, outcome.error_kind, outcome.error = (
                        "error", exc.code, exc.message)
            outcomes.append(outcome)
            if on_seed:
                on_seed(outcome)
            if outcome.status != "ok":
                break  # one broken seed fails the attempt; running the rest wastes budget
        result = AttemptResult(task=task.name, task_hash=task.info.content_hash,
                               code_sha256=code_sha, status="failed", seeds=seeds,
                               outcomes=outcomes, weak=baselines.weak_mean,
                               ceiling=baselines.ceiling_mean,
                               wall_s=sum(o.wall_s for o in outcomes))
        failed = next((o for o in outcomes if o.status != "ok"), None)
        if failed:
            result.error = f"seed {failed.seed}: {failed.error}"
            return result
        # Without a study's secret salt (a local `arena run`) the split is fresh each time.
        result.scores = score_attempt(task, baselines, probs, public_fraction=public_fraction,
                                      salt=salt or secrets.token_hex(32))
        result.status = "scored"
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)

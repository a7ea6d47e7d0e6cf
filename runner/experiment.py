"""Experiments: a participant's code run in the method sandbox on the participant bundle, for
what it prints, logs and plots — the quick runs researchers make between submissions.

An experiment sees a derived bundle in which `test` is a held-out slice of `train` (inputs,
texts, features; the teacher's labels for it stay here, in the runner) and `train` is the rest
with its teacher labels. So `run(ctx)` of any method can be called unchanged, and when it returns
predictions for `test` they are compared with the *teacher's* labels of that slice (agreement,
cross-entropy, calibration): something to measure, never a score. The real test split, gold
labels and `weak_train` are not in the derived bundle at all.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from runner.bundle import model_dirs, write_bundle
from runner.method import Budget
from runner.method.launch import run_method_process
from runner.teacher import ModelPair, fixed_baselines, teacher_index
from runner.workdir import make_work_dir
from study.tasks import Task

HOLDOUT = 0.2  # share of `train` held out as the experiment's `test`
STDOUT_CAP = 64_000


@dataclass
class ExperimentOutcome:
    status: str  # "finished" | "failed" | "timed_out" | "cancelled"
    stdout: str = ""
    metrics: list[dict] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    teacher_eval: dict[str, float] | None = None  # when run(ctx) returned predictions
    error: str | None = None
    traceback: str | None = None
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_mb: float = 0.0


def split_train(n: int, seed: int, holdout: float = HOLDOUT) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held) indices of `train`, drawn from the seed."""
    order = np.random.default_rng(seed).permutation(n)
    n_held = max(1, round(n * holdout))
    return np.sort(order[n_held:]), np.sort(order[:n_held])


def _write_lines(path: Path, lines: list[str], rows: np.ndarray) -> None:
    path.write_text("".join(lines[i] + "\n" for i in rows), encoding="utf-8")


def derive_bundle(bundle: Path, dest: Path, kept: np.ndarray, held: np.ndarray) -> np.ndarray:
    """Write the experiment's bundle at `dest`; returns the teacher's labels of the held slice
    (kept here, in the runner)."""
    dest.mkdir(parents=True)
    (dest / "features").mkdir()
    labels = np.load(bundle / "weak_soft_labels.npy", allow_pickle=False)
    meta = json.loads((bundle / "task.json").read_text())
    meta["sizes"] = {"train": len(kept), "test": len(held)}
    meta["description"] = (meta.get("description") or "") + \
        " [experiment: `test` is a held-out slice of `train`]"
    (dest / "task.json").write_text(json.dumps(meta, indent=2))
    inputs = (bundle / "inputs_train.jsonl").read_text(encoding="utf-8").splitlines()
    texts = json.loads((bundle / "texts_train.json").read_text(encoding="utf-8"))
    for split, rows in (("train", kept), ("test", held)):
        _write_lines(dest / f"inputs_{split}.jsonl", inputs, rows)
        (dest / f"texts_{split}.json").write_text(
            json.dumps([texts[i] for i in rows], ensure_ascii=False), encoding="utf-8")
        for which in ("weak", "strong"):
            features = np.load(bundle / "features" / f"{which}_train.npy", allow_pickle=False)
            np.save(dest / "features" / f"{which}_{split}.npy", features[rows])
    np.save(dest / "weak_soft_labels.npy", labels[kept])
    for name in ("models.json", "lm_recipe.json"):
        if (bundle / name).is_file():
            shutil.copyfile(bundle / name, dest / name)
    return labels[held]


def teacher_eval(probs: np.ndarray, teacher: np.ndarray) -> dict[str, float]:
    """How predictions on the held slice compare with the teacher's soft labels there."""
    p = np.clip(probs.astype(np.float64), 1e-6, 1 - 1e-6)
    t = teacher.astype(np.float64)
    bins = np.minimum((p * 10).astype(int), 9)
    gaps = [abs(p[bins == b].mean() - t[bins == b].mean()) * (bins == b).mean()
            for b in range(10) if (bins == b).any()]
    return {"teacher_agreement": float(((p >= 0.5) == (t >= 0.5)).mean()),
            "teacher_cross_entropy": float(-(t * np.log(p) + (1 - t) * np.log(1 - p)).mean()),
            "teacher_calibration_error": float(sum(gaps)),
            "mean_prediction": float(p.mean()), "n_items": float(len(p))}


def local_bundle_tar(task: Task, pair: ModelPair) -> bytes:
    """The participant bundle as a tar, for agents that experiment on their own machine (the
    Claude Code runtime): all of `train` with the first teacher's labels, and an empty `test` —
    no test input, no gold label, no other teacher."""
    import io
    import tarfile

    baselines = fixed_baselines(task, pair)
    bundle = write_bundle(task, pair, baselines, teacher=teacher_index(0, len(baselines.seeds)))
    n_train = int(json.loads((bundle / "task.json").read_text())["sizes"]["train"])
    work = make_work_dir("local-bundle")
    try:
        derive_bundle(bundle, work / "bundle", np.arange(n_train), np.arange(0))
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            tar.add(work / "bundle", arcname="bundle")
        return buffer.getvalue()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_experiment(method: Path, task: Task, *, pair: ModelPair, budget: Budget, seed: int,
                   sandbox: bool = True, cancel=None, slot=None) -> ExperimentOutcome:
    """Run `method` (a file with run(ctx)) once as an experiment; never raises for anything
    the code does."""
    baselines = fixed_baselines(task, pair)
    bundle = write_bundle(task, pair, baselines,
                          teacher=teacher_index(seed, len(baselines.seeds)))
    work = make_work_dir("experiment")
    try:
        n_train = int(json.loads((bundle / "task.json").read_text())["sizes"]["train"])
        kept, held = split_train(n_train, seed)
        held_labels = derive_bundle(bundle, work / "bundle", kept, held)
        shutil.copyfile(method, work / "method.py")
        run = run_method_process(work / "method.py", work / "bundle", work / "run", seed=seed,
                                 budget=budget, models_dirs=model_dirs(pair), sandbox=sandbox,
                                 cancel=cancel, slot=slot, experiment=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    status = {"ok": "finished", "timeout": "timed_out", "cancelled": "cancelled"}.get(
        run.status, "failed")
    outcome = ExperimentOutcome(
        status=status, stdout=run.log_tail[-STDOUT_CAP:], metrics=run.metrics,
        files=run.files, error=run.error, traceback=run.traceback, wall_seconds=run.wall_s,
        cpu_seconds=run.cpu_s, peak_mb=run.peak_mb)
    if status == "finished" and run.raw is not None and run.raw.size:
        probs = np.asarray(run.raw, dtype=np.float64).reshape(-1)
        if probs.shape[0] != len(held) or not np.isfinite(probs).all():
            outcome.status = "failed"
            outcome.error = (f"run(ctx) returned {probs.shape[0]} predictions (finite: "
                             f"{bool(np.isfinite(probs).all())}); the experiment's `test` "
                             f"slice has {len(held)} items")
        else:
            outcome.teacher_eval = teacher_eval(probs, held_labels)
    return outcome

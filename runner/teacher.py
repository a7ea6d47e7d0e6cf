"""The weak teacher and the fixed baselines, computed once per (task, model pair) and frozen.

weak floor: a head on weak-model features trained on gold `weak_train`, scored on test;
ceiling: a head on strong-model features trained on gold `train`. Both over 16 seeds. Each of the
16 teachers also labels `train`; seed k of an attempt learns from the teacher its seed draws, so
the floor is the mean of the very population methods learn from and copying the teacher scores
PGR 0 in expectation.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel
from rich.progress import Progress

from runner.features import ensure_features
from runner.lib import train_head
from runner.lib.heads import HEAD_RECIPE
from runner.lm_teacher import BaselineRuns, lm_baseline_runs, recipe_key
from runner.models import PAIRS, ResolvedModel, resolve_model
from runner.models.catalog import PAIR_RECIPES
from study.protocol_lm import LMRecipe
from study.scoring import correct
from study.settings import cache_dir
from study.tasks import Task

BASELINE_SEEDS = tuple(range(1000, 1016))
TEACHER_LABELS = "teacher_soft_labels.npy"


@dataclass(frozen=True)
class ModelPair:
    name: str
    weak: ResolvedModel
    strong: ResolvedModel
    # Causal-LM pairs only: how their baselines are fine-tuned (runner.lm_teacher).
    lm: LMRecipe | None = None

    @property
    def key(self) -> str:
        joined = f"{self.weak.fingerprint}->{self.strong.fingerprint}"
        if self.lm is not None:
            joined += f"|lora-{recipe_key(self.lm)}"
        else:  # frozen heads: a new training recipe must never reuse the old baselines
            joined += f"|head-{HEAD_RECIPE}"
        return f"{self.weak.spec.name}-{self.strong.spec.name}-" + \
            hashlib.sha256(joined.encode()).hexdigest()[:8]


def resolve_pair(name: str = "default", *, lm: LMRecipe | None = None) -> ModelPair:
    weak, strong = PAIRS[name]
    lm = lm or LMRecipe(**PAIR_RECIPES.get(name, {}))  # used by LM pairs only
    return lm_pair(name, resolve_model(weak), resolve_model(strong), lm)


def lm_pair(name: str, weak: ResolvedModel, strong: ResolvedModel,
            lm: LMRecipe | None) -> ModelPair:
    """Two causal LMs get a fine-tuning recipe (the protocol's, else the AAR defaults)."""
    if weak.spec.is_lm and strong.spec.is_lm:
        return ModelPair(name, weak, strong, lm or LMRecipe())
    return ModelPair(name, weak, strong)


class FixedBaselines(BaseModel):
    task: str
    content_hash: str
    pair: str
    weak_model: str
    strong_model: str
    seeds: list[int]
    weak_acc: list[float]
    ceiling_acc: list[float]
    folder: str

    @property
    def weak_mean(self) -> float:
        return float(np.mean(self.weak_acc))

    @property
    def ceiling_mean(self) -> float:
        return float(np.mean(self.ceiling_acc))

    def weak_test_probs(self) -> np.ndarray:
        return np.load(Path(self.folder) / "weak_test_probs.npy")

    def ceiling_test_probs(self) -> np.ndarray:
        return np.load(Path(self.folder) / "ceiling_test_probs.npy")

    def teacher_labels_path(self) -> Path:
        """(16, n_train) soft labels, one row per teacher, in the order of `seeds`."""
        return Path(self.folder) / TEACHER_LABELS

    def teacher_soft_labels(self, index: int) -> np.ndarray:
        return np.load(self.teacher_labels_path(), mmap_mode="r")[index]


def teacher_index(seed: int, n_teachers: int = len(BASELINE_SEEDS)) -> int:
    """Which frozen teacher an attempt's seed learns from: uniform over the teachers as seeds
    are drawn at random, and fixed by the seed so a rerun sees the same labels."""
    return int(np.random.default_rng([seed, 0x7EAC]).integers(n_teachers))


def baselines_folder(task: Task, pair: ModelPair) -> Path:
    return cache_dir() / "baselines" / pair.key / f"{task.name}-{task.info.content_hash}"


def _features(model: ResolvedModel, task: Task, splits: tuple[str, ...]) -> dict[str, np.ndarray]:
    paths = ensure_features(model, task, splits)
    return {s: np.load(p, allow_pickle=False) for s, p in paths.items()}


def _head_runs(task: Task, pair: ModelPair) -> BaselineRuns:
    weak_x = _features(pair.weak, task, ("weak_train", "train", "test"))
    strong_x = _features(pair.strong, task, ("train", "test"))
    y_weak_train = np.array(task.labels("weak_train"), dtype=np.float64)
    y_train = np.array(task.labels("train"), dtype=np.float64)
    weak_probs, ceiling_probs, soft_labels = [], [], []
    with Progress(transient=True) as progress:
        bar = progress.add_task(f"baselines {task.name}", total=len(BASELINE_SEEDS))
        for seed in BASELINE_SEEDS:
            teacher = train_head(weak_x["weak_train"], y_weak_train, seed=seed)
            weak_probs.append(teacher.predict_proba(weak_x["test"]))
            soft_labels.append(teacher.predict_proba(weak_x["train"]))
            ceiling = train_head(strong_x["train"], y_train, seed=seed)
            ceiling_probs.append(ceiling.predict_proba(strong_x["test"]))
            progress.advance(bar)
    return BaselineRuns(list(BASELINE_SEEDS), weak_probs, soft_labels, ceiling_probs)


def compute_fixed_baselines(task: Task, pair: ModelPair) -> FixedBaselines:
    runs = (_head_runs(task, pair) if pair.lm is None
            else lm_baseline_runs(task, pair.weak, pair.strong, pair.lm))
    weak_probs, soft_labels, ceiling_probs = runs.weak_test, runs.teacher_train, runs.ceiling_test
    y_test = np.array(task.labels("test"))
    folder = baselines_folder(task, pair)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "weak_test_probs.npy", np.stack(weak_probs))
    np.save(folder / "ceiling_test_probs.npy", np.stack(ceiling_probs))
    np.save(folder / TEACHER_LABELS, np.stack(soft_labels))
    record = FixedBaselines(
        task=task.name, content_hash=task.info.content_hash, pair=pair.name,
        weak_model=pair.weak.spec.name, strong_model=pair.strong.spec.name,
        seeds=runs.seeds,
        weak_acc=[float(correct(p, y_test).mean()) for p in weak_probs],
        ceiling_acc=[float(correct(p, y_test).mean()) for p in ceiling_probs],
        folder=str(folder))
    (folder / "baselines.json").write_text(record.model_dump_json(indent=2))
    return record


def fixed_baselines(task: Task, pair: ModelPair) -> FixedBaselines:
    """The frozen record if one exists for this exact task data and weights, else compute it.

    A record from before every teacher's labels were kept is recomputed (same seeds, same
    numbers) rather than served without them."""
    path = baselines_folder(task, pair) / "baselines.json"
    if path.exists() and (path.parent / TEACHER_LABELS).exists():
        return FixedBaselines.model_validate(json.loads(path.read_text()))
    return compute_fixed_baselines(task, pair)

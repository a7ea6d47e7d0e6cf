"""Fixed baselines of a language-model pair: LoRA fine-tuned classifiers instead of heads.

weak teacher k: the weak LM fine-tuned on gold `weak_train` with seed k; its soft labels on
`train` are what methods see, its test accuracy the floor. ceiling k: the strong LM fine-tuned on
gold `train`. The recipe (LoRA rank, lr, epochs, …) and the number of seeds come from the
protocol's `[lm]` table and are part of the pair's cache key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from rich.progress import Progress

from runner.lib.finetune import LoraSpec, Readout, train_lm_classifier
from runner.lm_encoder import default_device
from runner.models import ResolvedModel
from runner.models.resolve import materialize
from study.protocol_lm import LMRecipe
from study.tasks import Task, display_text

FIRST_SEED = 1000  # the head baselines' seeds start here too


@dataclass(frozen=True)
class BaselineRuns:
    """Per seed: the weak teacher's test and `train` predictions, the ceiling's test ones."""

    seeds: list[int]
    weak_test: list[np.ndarray]
    teacher_train: list[np.ndarray]
    ceiling_test: list[np.ndarray]


def recipe_key(spec: LMRecipe) -> str:
    return hashlib.sha256(spec.model_dump_json().encode()).hexdigest()[:8]


def lm_seeds(spec: LMRecipe) -> list[int]:
    return list(range(FIRST_SEED, FIRST_SEED + spec.baseline_seeds))


def _train(model: ResolvedModel, texts: list[str], labels: np.ndarray, *, seed: int,
           spec: LMRecipe, device: str):
    return train_lm_classifier(
        materialize(model).path, texts, labels, seed=seed, device=device,
        lora=LoraSpec(r=spec.lora_r, alpha=spec.lora_alpha),
        readout=Readout(kind=spec.readout, answers=spec.answers), epochs=spec.epochs,
        lr=spec.lr, batch_size=spec.batch_size, max_length=spec.max_length,
        warmup_ratio=spec.warmup_ratio)


def lm_baseline_runs(task: Task, weak: ResolvedModel, strong: ResolvedModel,
                     spec: LMRecipe) -> BaselineRuns:
    texts = {s: [display_text(task.kind, ex.inputs) for ex in task.splits[s]]
             for s in ("weak_train", "train", "test")}
    gold = {s: np.array(task.labels(s), dtype=np.float64) for s in ("weak_train", "train")}
    device = default_device()
    runs = BaselineRuns(lm_seeds(spec), [], [], [])
    with Progress(transient=True) as progress:
        bar = progress.add_task(f"LoRA baselines {task.name}", total=len(runs.seeds))
        for seed in runs.seeds:
            teacher = _train(weak, texts["weak_train"], gold["weak_train"], seed=seed,
                             spec=spec, device=device)
            runs.weak_test.append(teacher.predict_proba(texts["test"]))
            runs.teacher_train.append(teacher.predict_proba(texts["train"]))
            del teacher  # one model in memory at a time (a 4B ceiling next)
            ceiling = _train(strong, texts["train"], gold["train"], seed=seed, spec=spec,
                             device=device)
            runs.ceiling_test.append(ceiling.predict_proba(texts["test"]))
            del ceiling
            progress.advance(bar)
    return runs

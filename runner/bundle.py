"""The participant-visible bundle of a task: the only files a method process can read.

Written once per (task data, model pair, teacher) and reused read-only by every attempt. It holds
inputs of `train` and `test`, the soft labels on `train` of the one frozen teacher a seed learns
from (never the other 15), cached features and the model folders' locations — never a gold label,
never `weak_train`, never the public/private split.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from runner.features import ensure_features
from runner.models import ResolvedModel
from runner.teacher import FixedBaselines, ModelPair
from study.settings import cache_dir
from study.tasks import Task, display_text

VISIBLE = ("train", "test")


def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


def _model_entry(model: ResolvedModel) -> dict:
    return {"name": model.spec.name, "hub_id": model.spec.hub_id,
            "folder": str(model.path) if model.path else None,
            "normalize": model.spec.normalize, "max_length": model.spec.max_length,
            "kind": model.spec.kind}


def model_dirs(pair: ModelPair) -> tuple[Path, ...]:
    """Folders the sandbox binds read-only. A Hugging Face cache snapshot's files are links into
    its repo's blobs/, so the whole repo folder (models--org--name) is bound."""
    return tuple(m.path.parent.parent if m.source == "hf-cache" else m.path
                 for m in (pair.weak, pair.strong) if m.path is not None)


def write_bundle(task: Task, pair: ModelPair, baselines: FixedBaselines, *, teacher: int,
                 permute_seed: int | None = None) -> Path:
    """The bundle of teacher number `teacher` (see `runner.teacher.teacher_index`); with
    `permute_seed`, the teacher-ablation variant whose weak labels are shuffled across `train`
    items (same label distribution, no link to the items)."""
    variant = "" if permute_seed is None else f"-permuted-{permute_seed}"
    folder = (cache_dir() / "bundles" / pair.key
              / f"{task.name}-{task.info.content_hash}-t{teacher}{variant}")
    if (folder / "ready").exists():
        return folder
    building = folder.with_name(folder.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    (building / "features").mkdir(parents=True)
    brief = {"name": task.name, "kind": str(task.kind), "description": task.info.description,
             "label_names": list(task.info.label_names),
             "sizes": {s: task.info.sizes[s] for s in VISIBLE}}
    (building / "task.json").write_text(json.dumps(brief, indent=2))
    for split in VISIBLE:
        examples = task.splits[split]
        with (building / f"inputs_{split}.jsonl").open("w", encoding="utf-8") as fh:
            for ex in examples:
                fh.write(json.dumps(ex.inputs, ensure_ascii=False) + "\n")
        texts = [display_text(task.kind, ex.inputs) for ex in examples]
        (building / f"texts_{split}.json").write_text(json.dumps(texts, ensure_ascii=False))
    for which, model in (("weak", pair.weak), ("strong", pair.strong)):
        for split, path in ensure_features(model, task, VISIBLE).items():
            _link_or_copy(path, building / "features" / f"{which}_{split}.npy")
    labels = np.array(baselines.teacher_soft_labels(teacher))
    if permute_seed is not None:
        labels = labels[np.random.default_rng(permute_seed).permutation(len(labels))]
    np.save(building / "weak_soft_labels.npy", labels)
    (building / "models.json").write_text(json.dumps(
        {"weak": _model_entry(pair.weak), "strong": _model_entry(pair.strong)}, indent=2))
    if pair.lm is not None:  # the baselines' fine-tuning recipe: ctx.lib.finetune's defaults
        (building / "lm_recipe.json").write_text(pair.lm.model_dump_json(indent=2))
    for path in building.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    (building / "ready").touch()
    shutil.rmtree(folder, ignore_errors=True)
    building.rename(folder)
    return folder

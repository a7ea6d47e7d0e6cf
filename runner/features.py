"""Frozen-encoder features per (model weights, task content hash, split), computed once.

Strong features cost ~30 texts/s on two cores, so every attempt after the first reads them here.
A pairwise item's feature is emb(prompt + first) − emb(prompt + second): the head then scores
"first is better" directly, and swapping the answers flips the sign.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from tqdm import tqdm

from runner.models import Encoder, ResolvedModel, load_encoder
from study.settings import cache_dir
from study.tasks import Task, TaskKind, encoder_texts
from study.tasks.build import split_hash


def feature_path(model: ResolvedModel, task: Task, split: str) -> Path:
    """Keyed by the weights and by the split's own inputs: new data means a new file."""
    weights = hashlib.sha256(model.fingerprint.encode()).hexdigest()[:12]
    data = split_hash(task.splits[split])
    return (cache_dir() / "features" / f"{model.spec.name}-{weights}" / task.name
            / f"{split}-{task.kind}-{data}.npy")


def _compute(encoder: Encoder, model: ResolvedModel, task: Task, split: str) -> np.ndarray:
    per_item = [encoder_texts(task.kind, ex.inputs) for ex in task.splits[split]]
    flat = [text for texts in per_item for text in texts]
    with tqdm(total=len(flat), desc=f"{model.spec.name} features {task.name}/{split}",
              unit="text", leave=False, mininterval=1.0) as bar:
        vectors = encoder.embed(flat, progress=bar.update)
    if task.kind is TaskKind.PAIRWISE:
        return vectors[0::2] - vectors[1::2]
    return vectors


def ensure_features(model: ResolvedModel, task: Task, splits: tuple[str, ...]) -> dict[str, Path]:
    """Paths of the cached feature files, computing only the missing ones (one encoder load)."""
    paths = {split: feature_path(model, task, split) for split in splits}
    missing = [split for split, path in paths.items() if not path.exists()]
    if missing:
        encoder = load_encoder(model)
        for split in missing:
            vectors = _compute(encoder, model, task, split)
            paths[split].parent.mkdir(parents=True, exist_ok=True)
            partial = paths[split].with_suffix(".part.npy")
            np.save(partial, vectors.astype(np.float32), allow_pickle=False)
            partial.replace(paths[split])
    return paths


def load_features(model: ResolvedModel, task: Task, split: str) -> np.ndarray:
    return np.load(ensure_features(model, task, (split,))[split], allow_pickle=False)

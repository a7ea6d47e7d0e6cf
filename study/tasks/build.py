"""Deterministic splits: the same source, spec and seed always give the same task and hash."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from study.errors import InvalidError, NotFoundError
from study.tasks.formats import read_jsonl, write_jsonl
from study.tasks.records import SPLITS, Example, Task, TaskInfo, TaskKind, TaskRole, canonical_json

DEAL_ORDER = ("test", "train", "weak_train")


@dataclass(frozen=True)
class TaskSpec:
    name: str
    kind: TaskKind
    role: TaskRole
    source: str
    sizes: dict[str, int]
    description: str
    label_names: tuple[str, str] = ("0", "1")
    split_seed: int = 0
    # Share of label 1 in every split: None keeps the source's natural ratio (dealt stratified, so
    # each split has it to within one item); a number is a documented tilt. An exact 50/50 would
    # hand methods the class prior for free.
    positive_share: float | None = None
    extra: dict[str, str] = field(default_factory=dict)


def _take_stratified(pools: dict[int, list[Example]], n: int, share: float,
                     name: str) -> list[Example]:
    positives = round(n * share)
    taken = []
    for label, count in ((1, positives), (0, n - positives)):
        if len(pools[label]) < count:
            raise InvalidError(f"task {name}: needs {count} examples of label {label}, "
                               f"only {len(pools[label])} left")
        taken += pools[label][:count]
        pools[label] = pools[label][count:]
    return taken


def split_examples(spec: TaskSpec, examples: list[Example]) -> dict[str, list[Example]]:
    """Shuffle once with the split seed, then deal out test, train, weak_train (disjoint).

    Test and train are dealt first so that resizing the teacher's gold set leaves them unchanged.
    """
    rng = np.random.default_rng(spec.split_seed)
    order = rng.permutation(len(examples))
    shuffled = [examples[i] for i in order]
    need = sum(spec.sizes[s] for s in SPLITS)
    if need > len(shuffled):
        raise InvalidError(f"task {spec.name}: splits need {need} examples, source has "
                           f"{len(shuffled)}")
    share = spec.positive_share
    if share is None:
        share = sum(ex.label for ex in shuffled) / max(1, len(shuffled))
    pools = {label: [ex for ex in shuffled if ex.label == label] for label in (0, 1)}
    splits: dict[str, list[Example]] = {}
    for split in DEAL_ORDER:
        chosen = _take_stratified(pools, spec.sizes[split], share, spec.name)
        splits[split] = [chosen[i] for i in rng.permutation(len(chosen))]
    return {split: splits[split] for split in SPLITS}


def split_hash(examples: list[Example]) -> str:
    """What a split's features depend on: its inputs, in order (labels play no part)."""
    digest = hashlib.sha256()
    for ex in examples:
        digest.update(canonical_json(ex.inputs).encode())
    return digest.hexdigest()[:16]


def content_hash(info_fields: dict, splits: dict[str, list[Example]]) -> str:
    digest = hashlib.sha256(canonical_json(info_fields).encode())
    for split in SPLITS:
        for ex in splits[split]:
            digest.update(canonical_json([split, ex.inputs, ex.label, ex.subset]).encode())
    return digest.hexdigest()[:16]


def build_task(spec: TaskSpec, examples: list[Example]) -> Task:
    splits = split_examples(spec, examples)
    fields = {"name": spec.name, "kind": str(spec.kind), "role": str(spec.role),
              "description": spec.description, "label_names": list(spec.label_names)}
    info = TaskInfo(name=spec.name, kind=spec.kind, role=spec.role, description=spec.description,
                    label_names=spec.label_names,
                    sizes={s: len(splits[s]) for s in SPLITS},
                    content_hash=content_hash(fields, splits))
    return Task(info=info, splits=splits)


def info_to_dict(info: TaskInfo) -> dict:
    out = asdict(info)
    out["kind"], out["role"] = str(info.kind), str(info.role)
    out["label_names"] = list(info.label_names)
    return out


def info_from_dict(raw: dict) -> TaskInfo:
    return TaskInfo(name=raw["name"], kind=TaskKind(raw["kind"]), role=TaskRole(raw["role"]),
                    description=raw.get("description", ""),
                    label_names=tuple(raw.get("label_names", ("0", "1"))),  # type: ignore[arg-type]
                    sizes=dict(raw["sizes"]), content_hash=raw["content_hash"])


def write_task(task: Task, folder: Path) -> None:
    """The AAR layout: weak_train.jsonl, train.jsonl, test.jsonl, plus task.json."""
    for split in SPLITS:
        write_jsonl(task.kind, task.splits[split], folder / f"{split}.jsonl")
    (folder / "task.json").write_text(json.dumps(info_to_dict(task.info), indent=2))


def load_task_dir(folder: Path, *, name: str | None = None, kind: TaskKind | None = None,
                  role: TaskRole = TaskRole.HELD_OUT) -> Task:
    """Read a task folder in the AAR layout; task.json is optional when name and kind are given."""
    meta_path = folder / "task.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        name, kind = meta["name"], TaskKind(meta["kind"])
        role = TaskRole(meta.get("role", role))
    else:
        meta = {}
    if name is None or kind is None:
        raise InvalidError(f"{folder} has no task.json: give the task's name and kind")
    for split in SPLITS:
        if not (folder / f"{split}.jsonl").exists():
            raise NotFoundError(f"{folder} lacks {split}.jsonl")
    splits = {s: read_jsonl(kind, folder / f"{s}.jsonl") for s in SPLITS}
    fields = {"name": name, "kind": str(kind), "role": str(role),
              "description": meta.get("description", ""),
              "label_names": list(meta.get("label_names", ("0", "1")))}
    info = TaskInfo(name=name, kind=kind, role=role, description=fields["description"],
                    label_names=tuple(fields["label_names"]),  # type: ignore[arg-type]
                    sizes={s: len(splits[s]) for s in SPLITS},
                    content_hash=content_hash(fields, splits))
    return Task(info=info, splits=splits)

"""Tasks a protocol declares from a data folder in the AAR layout, checked before anything is
cached.

    train_label.jsonl    → weak_train  (the weak teacher's gold set)
    train_unlabel.jsonl  → train       (inputs shown to methods; gold kept for the ceiling)
    test.jsonl           → test

Rows are parsed by `study.tasks.formats` (a malformed row is named by file:line). A folder with a
missing file, an empty split, one class only in a split, or an item in two splits is refused with
the reason; the task is then content-hashed and cached exactly like a built-in one.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from study.errors import InvalidError
from study.tasks.build import content_hash, write_task
from study.tasks.catalog import prepare_task, task_folder
from study.tasks.formats import display_text, read_jsonl
from study.tasks.records import SPLITS, Example, Task, TaskInfo, TaskKind, TaskRole

AAR_FILES = {"weak_train": "train_label.jsonl", "train": "train_unlabel.jsonl",
             "test": "test.jsonl"}
MAX_OVERLAP_SHOWN = 3


def expand_folder(folder: str | Path) -> Path:
    """`${VAR}/sub` → a path; an unset variable is an error, not a folder named `$VAR`."""
    raw = str(folder)
    expanded = os.path.expandvars(os.path.expanduser(raw))
    if "$" in expanded:
        raise InvalidError(f"data folder {raw!r}: environment variable not set "
                           f"(e.g. export ARENA_AAR_DATA=/path/to/aar-data)")
    return Path(expanded)


def read_splits(folder: Path, kind: TaskKind) -> dict[str, list[Example]]:
    if not folder.is_dir():
        raise InvalidError(f"data folder {folder} does not exist")
    missing = [name for name in AAR_FILES.values() if not (folder / name).is_file()]
    if missing:
        raise InvalidError(f"data folder {folder} lacks {', '.join(missing)} (the AAR layout: "
                           f"{', '.join(AAR_FILES.values())})")
    return {split: read_jsonl(kind, folder / name) for split, name in AAR_FILES.items()}


def validate_splits(folder: Path, splits: dict[str, list[Example]]) -> None:
    """Each split non-empty with both classes; no item (by its inputs) in two splits."""
    for split, examples in splits.items():
        labels = {ex.label for ex in examples}
        if not examples:
            raise InvalidError(f"{folder / AAR_FILES[split]} has no rows")
        if len(labels) < 2:
            raise InvalidError(f"{folder / AAR_FILES[split]} has only label {labels.pop()}: "
                               "a split needs both classes")
    uids = {split: {ex.uid for ex in examples} for split, examples in splits.items()}
    for a, b in (("weak_train", "train"), ("weak_train", "test"), ("train", "test")):
        shared = uids[a] & uids[b]
        if shared:
            first = next(ex for ex in splits[b] if ex.uid in shared)
            raise InvalidError(
                f"{len(shared)} item(s) appear in both {AAR_FILES[a]} and {AAR_FILES[b]} of "
                f"{folder}, e.g. {str(first.inputs)[:160]}: the splits must be disjoint")


def load_data_dir(folder: str | Path, *, name: str, kind: TaskKind | str,
                  role: TaskRole | str = TaskRole.HELD_OUT, description: str = "",
                  label_names: tuple[str, str] = ("0", "1")) -> Task:
    """Read, validate and content-hash a data folder; raises InvalidError with the reason."""
    path, kind, role = expand_folder(folder), TaskKind(kind), TaskRole(role)
    splits = read_splits(path, kind)
    validate_splits(path, splits)
    fields = {"name": name, "kind": str(kind), "role": str(role), "description": description,
              "label_names": list(label_names)}
    info = TaskInfo(name=name, kind=kind, role=role, description=description,
                    label_names=label_names, sizes={s: len(splits[s]) for s in SPLITS},
                    content_hash=content_hash(fields, splits))
    return Task(info=info, splits=splits)


def load_data_task(spec, role: TaskRole) -> Task:
    """A protocol's DatasetSpec → the task, read and checked (nothing written yet); a folder
    whose content no longer matches the hash the study pinned is refused."""
    task = load_data_dir(spec.folder, name=spec.name, kind=spec.kind, role=role,
                         description=spec.description, label_names=tuple(spec.label_names))
    if spec.content_hash is not None and spec.content_hash != task.info.content_hash:
        raise InvalidError(
            f"the data of task {spec.name!r} ({spec.folder}) changed since the study was "
            f"created: content hash {task.info.content_hash}, pinned {spec.content_hash}; "
            "restore the folder as it was, or create a new study for the new data")
    return task


def cache_data_task(task: Task) -> None:
    """Keep a copy in the AAR layout under the task's content hash (once)."""
    folder = task_folder(task.name, task.info.content_hash)
    if not (folder / "task.json").exists():
        write_task(task, folder)


def pin_dataset_hashes(protocol):
    """Read and check every data folder a protocol declares, writing nothing, and return the
    protocol with each task's content hash pinned (what a new study freezes): no study is
    created on a folder its server could not open, nor served on data changed since."""
    if not protocol.datasets:
        return protocol
    roles = task_roles(protocol)  # a task's role is part of its hash
    pinned = [spec.model_copy(update={"content_hash": load_data_task(
        spec, roles.get(spec.name, TaskRole.HELD_OUT)).info.content_hash})
        for spec in protocol.datasets]
    return protocol.model_copy(update={"datasets": pinned})


def task_roles(protocol) -> dict[str, TaskRole]:
    """Each task the protocol names, in its order, with the role the protocol gives it."""
    return {name: TaskRole.HILL_CLIMB if name in protocol.tasks.hill_climb
            else TaskRole.HELD_OUT for name in protocol.tasks.all}


def prepare_protocol_tasks(protocol) -> dict[str, Task]:
    """Every task the protocol names: its own data folders first, else the built-in catalogue.

    Every folder is read and checked before any is cached: a bad second folder leaves no copy
    of the first behind (and, as callers build the model pair after this, no download either).
    """
    declared = {d.name: d for d in protocol.datasets}
    if len(declared) != len(protocol.datasets):
        names = [d.name for d in protocol.datasets]
        repeated = sorted(n for n in declared if names.count(n) > 1)
        raise InvalidError(f"[[datasets]] names repeat: {repeated}")
    roles = task_roles(protocol)
    own = {name: load_data_task(declared[name], role) for name, role in roles.items()
           if name in declared}
    for task in own.values():
        cache_data_task(task)
    return {name: own[name] if name in own else with_role(prepare_task(name), role)
            for name, role in roles.items()}


def with_role(task: Task, role: TaskRole) -> Task:
    """A built-in task in the role this protocol gives it (tiny-lm climbs `rt_sentiment`, which
    the catalogue files as held out). Its content hash stays the catalogue's: the data, the
    features and the baselines are the same whatever a study calls it."""
    if task.info.role is role:
        return task
    return Task(info=replace(task.info, role=role), splits=task.splits)


def _stats(values: list[int]) -> dict[str, float]:
    ordered = sorted(values)
    return {"min": ordered[0], "median": statistics.median(ordered),
            "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
            "max": ordered[-1]}


def check_data_dir(folder: str | Path, kind: TaskKind | str,
                   count_tokens: Callable[[list[str]], list[int]]) -> dict[str, dict]:
    """Sizes, class balance and token-length statistics per split (raises on a bad folder)."""
    path, kind = expand_folder(folder), TaskKind(kind)
    splits = read_splits(path, kind)
    validate_splits(path, splits)
    report = {}
    for split, examples in splits.items():
        lengths = count_tokens([display_text(kind, ex.inputs) for ex in examples])
        report[split] = {"file": AAR_FILES[split], "n": len(examples),
                         "share_label_1": sum(ex.label for ex in examples) / len(examples),
                         "subsets": sorted({ex.subset for ex in examples if ex.subset}),
                         "tokens": _stats(lengths)}
    return report

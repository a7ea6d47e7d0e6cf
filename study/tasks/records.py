"""What a task is made of: typed examples, split names and the task itself."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class TaskKind(StrEnum):
    CLASSIFY = "classify"
    PAIRWISE = "pairwise"
    VERIFY = "verify"


class TaskRole(StrEnum):
    HILL_CLIMB = "hill_climb"
    HELD_OUT = "held_out"


SPLITS = ("weak_train", "train", "test")
# The splits whose *inputs* a method may see; `weak_train` is the teacher's alone.
VISIBLE_SPLITS = ("train", "test")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def uid_of(inputs: dict[str, str]) -> str:
    """A stable id from an item's inputs, so the same item gets the same id in every build."""
    return hashlib.sha256(canonical_json(inputs).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Example:
    inputs: dict[str, str]
    label: int
    subset: str | None = None
    uid: str = field(default="")

    def __post_init__(self) -> None:
        if self.label not in (0, 1):
            raise ValueError(f"label must be 0 or 1, got {self.label!r}")
        if not self.uid:
            object.__setattr__(self, "uid", uid_of(self.inputs))


@dataclass(frozen=True)
class TaskInfo:
    """What a method and a participant may know about a task: no data, no labels."""

    name: str
    kind: TaskKind
    role: TaskRole
    description: str
    label_names: tuple[str, str]
    sizes: dict[str, int]
    content_hash: str


@dataclass(frozen=True)
class Task:
    info: TaskInfo
    splits: dict[str, list[Example]]

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def kind(self) -> TaskKind:
        return self.info.kind

    def labels(self, split: str) -> list[int]:
        return [ex.label for ex in self.splits[split]]

    def subsets(self, split: str) -> list[str | None]:
        return [ex.subset for ex in self.splits[split]]

"""The AAR release's JSONL formats, one parser and one writer per task kind.

classify: {"text", "label": 0|1}; pairwise: {"prompt", "first", "second", "label": "A"|"B"};
verify: {"question", "choice", "label": true|false}. Every kind may carry a "subset" string.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from study.errors import InvalidError
from study.tasks.records import Example, TaskKind

INPUT_FIELDS: dict[TaskKind, tuple[str, ...]] = {
    TaskKind.CLASSIFY: ("text",),
    TaskKind.PAIRWISE: ("prompt", "first", "second"),
    TaskKind.VERIFY: ("question", "choice"),
}


def _parse_label(kind: TaskKind, raw: Any) -> int:
    if kind is TaskKind.PAIRWISE and raw in ("A", "B"):
        return 1 if raw == "A" else 0
    if kind is TaskKind.VERIFY and isinstance(raw, bool):
        return int(raw)
    if kind is TaskKind.CLASSIFY and raw in (0, 1) and not isinstance(raw, bool):
        return int(raw)
    expected = {TaskKind.PAIRWISE: '"A" or "B"', TaskKind.VERIFY: "true or false",
                TaskKind.CLASSIFY: "0 or 1"}[kind]
    raise InvalidError(f"{kind} label must be {expected}, got {raw!r}")


def _dump_label(kind: TaskKind, label: int) -> Any:
    if kind is TaskKind.PAIRWISE:
        return "A" if label == 1 else "B"
    if kind is TaskKind.VERIFY:
        return bool(label)
    return label


def parse_row(kind: TaskKind, row: dict[str, Any]) -> Example:
    """One JSONL row → an Example; raises InvalidError naming the missing or bad field."""
    missing = [f for f in (*INPUT_FIELDS[kind], "label") if f not in row]
    if missing:
        raise InvalidError(f"{kind} row lacks field(s) {missing}: {str(row)[:120]}")
    inputs = {f: str(row[f]) for f in INPUT_FIELDS[kind]}
    subset = row.get("subset")
    return Example(inputs=inputs, label=_parse_label(kind, row["label"]),
                   subset=None if subset is None else str(subset))


def dump_row(kind: TaskKind, example: Example, *, with_label: bool = True) -> dict[str, Any]:
    row: dict[str, Any] = dict(example.inputs)
    if with_label:
        row["label"] = _dump_label(kind, example.label)
        if example.subset is not None:
            row["subset"] = example.subset
    return row


def read_jsonl(kind: TaskKind, path: Path) -> list[Example]:
    examples = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                examples.append(parse_row(kind, json.loads(line)))
            except (json.JSONDecodeError, InvalidError) as exc:
                raise InvalidError(f"{path}:{lineno}: {exc}") from exc
    return examples


def write_jsonl(kind: TaskKind, examples: Iterable[Example], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for ex in examples:
            fh.write(json.dumps(dump_row(kind, ex), ensure_ascii=False) + "\n")
    tmp.replace(path)


def encoder_texts(kind: TaskKind, inputs: dict[str, str]) -> tuple[str, ...]:
    """The text(s) a frozen encoder reads for one item; a pairwise item gives one per answer."""
    if kind is TaskKind.CLASSIFY:
        return (inputs["text"],)
    if kind is TaskKind.VERIFY:
        return (f"{inputs['question']}\n{inputs['choice']}",)
    return (f"{inputs['prompt']}\n{inputs['first']}", f"{inputs['prompt']}\n{inputs['second']}")


def display_text(kind: TaskKind, inputs: dict[str, str]) -> str:
    """One readable string per item, what `ctx.texts(split)` gives a method."""
    if kind is TaskKind.PAIRWISE:
        return f"{inputs['prompt']}\nA: {inputs['first']}\nB: {inputs['second']}"
    return "\n".join(encoder_texts(kind, inputs))

"""A synthetic, learnable task in the AAR layout for the LM testbed's tests.

Each item is eight filler words around one keyword; the label is the keyword's class, flipped
with probability `noise`. The weak teacher sees few items (it meets some keywords once or
never), the ceiling many: so there is a gap for the tiny LMs to show.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FILLER = ("the", "a", "movie", "film", "plot", "actor", "scene", "story", "music", "time", "day",
          "night", "city", "house", "water", "road", "tree", "book", "song", "game", "table",
          "chair", "window", "river")
POSITIVE = ("excellent", "wonderful", "superb", "delightful", "brilliant", "charming")
NEGATIVE = ("terrible", "awful", "boring", "dreadful", "clumsy", "tedious")
SIZES = {"train_label.jsonl": 40, "train_unlabel.jsonl": 240, "test.jsonl": 160}


def _row(rng: np.random.Generator, noise: float) -> dict:
    words = list(rng.choice(FILLER, size=8))
    label = int(rng.random() < 0.5)
    words.insert(int(rng.integers(0, 9)), str(rng.choice(POSITIVE if label else NEGATIVE)))
    if rng.random() < noise:
        label = 1 - label
    return {"text": " ".join(words), "label": label}


def write_keyword_task(folder: Path, *, seed: int = 0, noise: float = 0.1,
                       sizes: dict[str, int] = SIZES) -> Path:
    """Write the three AAR files (disjoint items: duplicates are drawn again)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    for name, n in sizes.items():
        rows = []
        while len(rows) < n:
            row = _row(rng, noise)
            if row["text"] not in seen:
                seen.add(row["text"])
                rows.append(row)
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def write_aar_like(root: Path) -> Path:
    """chat (pairwise), math and code (verify) folders as protocols/aar.toml names them, made
    from keyword rows: the layout and the formats of the release, not its content."""
    for seed, (name, kind) in enumerate((("chat", "pairwise"), ("math", "verify"),
                                         ("code", "verify"))):
        folder = write_keyword_task(root / name, seed=seed, noise=0.0)
        for file in SIZES:
            rows = [json.loads(line) for line in (folder / file).read_text().splitlines()]
            out = []
            for i, row in enumerate(rows):
                if kind == "pairwise":
                    other = rows[i - 1]["text"]
                    out.append({"prompt": "Which is kinder?", "first": row["text"],
                                "second": other, "label": "A" if row["label"] else "B"})
                else:
                    out.append({"question": "Is this praise?", "choice": row["text"],
                                "label": bool(row["label"]), "subset": f"level{i % 2}"})
            (folder / file).write_text("".join(json.dumps(r) + "\n" for r in out))
    return root

"""The "best baseline" reference line: the best *shipped* baseline (an unmodified file in
baselines/, recognised by the sha256 the server records for every attempt's code) as this study
actually ran it on the task — not the automated-baseline arm's best attempt, which is a tuned
grid of variants chosen after the fact."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

SHIPPED = Path(__file__).resolve().parent.parent / "baselines"


def shipped_baselines(directory: Path = SHIPPED, names: list[str] | None = None
                      ) -> dict[str, str]:
    """sha256 of each shipped baseline's source (as the server hashes a submission) → its
    name; only `names` when given (the plan's `reference_baselines`)."""
    return {hashlib.sha256(path.read_bytes()).hexdigest(): path.stem
            for path in sorted(directory.glob("*.py"))
            if not path.name.startswith("_") and (not names or path.stem in names)}


@dataclass(frozen=True)
class Reference:
    name: str  # the baseline's file stem
    value: float  # its mean `score` over its runs here
    runs: int

    @property
    def label(self) -> str:
        return f"best shipped baseline: {self.name} ({self.runs} run{'s' * (self.runs != 1)})"


def best_shipped(frame: pd.DataFrame, shipped: dict[str, str], *, score: str = "private_pgr"
                 ) -> Reference | None:
    """Among the scored runs of unmodified shipped baselines in `frame` (one task's), the
    baseline with the best mean *public* PGR — the choice anyone could make — and its mean
    `score`; None when no shipped baseline ran here."""
    runs = frame[frame["status"].eq("scored") & frame["public_pgr"].notna()
                 & frame[score].notna() & frame["code_sha256"].isin(list(shipped))]
    if runs.empty:
        return None
    per = runs.assign(name=runs["code_sha256"].map(shipped)).groupby("name").agg(
        public=("public_pgr", "mean"), value=(score, "mean"), runs=(score, "size"))
    best = per["public"].idxmax()
    return Reference(name=str(best), value=float(per.loc[best, "value"]),
                     runs=int(per.loc[best, "runs"]))

"""Per-seed result files of the AAR release, read as attempts of an "imported" participant, so a
published baseline can be drawn beside a live study. PGR is recomputed from each file's fixed
baselines and must match the value the file states."""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from typing import Any

from pydantic import BaseModel, ValidationError

from study.errors import InvalidError

TOLERANCE = 1e-6


class AARSeedResult(BaseModel):
    idea_name: str
    seed: int
    weak_acc: float
    strong_acc: float
    transfer_acc: float
    pgr: float
    fixed_weak_baseline: float
    fixed_strong_baseline: float
    training_time: float
    cached_at: dt.datetime
    dataset_name: str


class ImportedAttempt(BaseModel):
    idea_name: str
    task: str
    seeds: list[int]
    pgr: float
    pgr_se: float | None
    accuracy: float
    weak: float
    ceiling: float
    wall_seconds: float
    finished_at: dt.datetime


def parse_results(files: list[tuple[str, dict[str, Any]]]) -> list[ImportedAttempt]:
    """(name, parsed JSON) per file → one attempt per (idea, dataset); InvalidError names the
    file whose fields are wrong or whose stated PGR disagrees with its own baselines."""
    groups: dict[tuple[str, str], list[AARSeedResult]] = defaultdict(list)
    for name, raw in files:
        try:
            result = AARSeedResult.model_validate(raw)
        except ValidationError as exc:
            fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
            raise InvalidError(f"{name}: not an AAR seed result (check {fields})") from None
        gap = result.fixed_strong_baseline - result.fixed_weak_baseline
        if gap == 0:
            raise InvalidError(f"{name}: the fixed weak and strong baselines are equal")
        recomputed = (result.transfer_acc - result.fixed_weak_baseline) / gap
        if abs(recomputed - result.pgr) > TOLERANCE:
            raise InvalidError(f"{name}: the file says pgr {result.pgr}, its own numbers give "
                               f"{recomputed:.6f}")
        if result.cached_at.tzinfo is None:
            result = result.model_copy(update={"cached_at": result.cached_at.replace(
                tzinfo=dt.UTC)})
        groups[(result.idea_name, result.dataset_name)].append(result)
    attempts = []
    for (idea, dataset), seeds in sorted(groups.items()):
        pgrs = [(r.transfer_acc - r.fixed_weak_baseline)
                / (r.fixed_strong_baseline - r.fixed_weak_baseline) for r in seeds]
        mean = sum(pgrs) / len(pgrs)
        se = (math.sqrt(sum((p - mean) ** 2 for p in pgrs) / (len(pgrs) - 1) / len(pgrs))
              if len(pgrs) > 1 else None)
        attempts.append(ImportedAttempt(
            idea_name=idea, task=dataset, seeds=sorted(r.seed for r in seeds), pgr=mean,
            pgr_se=se, accuracy=sum(r.transfer_acc for r in seeds) / len(seeds),
            weak=seeds[0].fixed_weak_baseline, ceiling=seeds[0].fixed_strong_baseline,
            wall_seconds=sum(r.training_time for r in seeds),
            finished_at=max(r.cached_at for r in seeds)))
    return attempts

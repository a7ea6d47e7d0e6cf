"""Per-seed result files of the AAR release, read as attempts of an "imported" participant, so a
published baseline can be drawn beside a live study.

The release lays results out as
`cache_results/<dataset>_<idea>/<hyper-parameter key>/seed_<n>.json`: many files share a base
name, so a file is known by its path relative to the folder given, and an attempt is one
(dataset, idea from the folder, hyper-parameter key). The idea comes from the folder because the
`idea_name` field is not reliable there (the `ue_zeroshot` files say "vanilla_w2s"). Files that
are not transfer results (the ceiling, the weak artifacts: no PGR) and files that cannot be read
are skipped with a message, never aborting the batch.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections import defaultdict
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ValidationError

from study.errors import InvalidError

# The release states some PGRs from figures rounded to 4 decimals (δ = 5e-5 each): the PGR of
# (t − w)/(s − w) then moves by at most δ·(2 + 2|pgr|)/gap, and the PGR's own rounding adds δ.
ROUNDING = 5e-5


class AARSeedResult(BaseModel):
    idea_name: str | None = None
    seed: int
    transfer_acc: float
    pgr: float | None = None
    fixed_weak_baseline: float
    fixed_strong_baseline: float
    training_time: float | None = None
    total_training_time: float | None = None  # the critic's files name it so
    cached_at: dt.datetime | None = None
    dataset_name: str
    hyperparam_config_key: str | None = None

    @property
    def wall_seconds(self) -> float:
        return self.training_time or self.total_training_time or 0.0


class SeedFigures(BaseModel):
    path: str
    seed: int
    pgr: float  # recomputed from the file's own accuracies
    stated_pgr: float
    transfer_acc: float


class ImportedAttempt(BaseModel):
    idea_name: str
    task: str  # the AAR dataset, e.g. "chat-0115": never merged with another task
    hyperparam_key: str
    seeds: list[int]
    per_seed: list[SeedFigures]
    pgr: float
    pgr_se: float | None
    accuracy: float
    weak: float
    ceiling: float
    wall_seconds: float
    finished_at: dt.datetime

    @property
    def pgr_per_seed(self) -> list[float]:
        return [s.pgr for s in self.per_seed]


class Skipped(BaseModel):
    path: str
    reason: str


class ImportReport(BaseModel):
    attempts: list[ImportedAttempt]
    skipped: list[Skipped]


def read_release(root: Path) -> tuple[dict[str, Any], list[Skipped]]:
    """Every *.json under `root` (or `root` itself), keyed by its path relative to root's
    parent, so `cache_results/a/k/seed_42.json` and `cache_results/b/k/seed_42.json` stay two."""
    files = sorted(root.rglob("*.json")) if root.is_dir() else [root]
    out: dict[str, Any] = {}
    skipped = []
    for path in files:
        key = path.relative_to(root.parent).as_posix()
        try:
            out[key] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            skipped.append(Skipped(path=key, reason=f"cannot be read as JSON: {exc}"))
    return out, skipped


def tolerance(pgr: float, gap: float) -> float:
    return ROUNDING + ROUNDING * (2 + 2 * abs(pgr)) / abs(gap)


def _group_key(path: str, result: AARSeedResult) -> tuple[str, str, str]:
    """(dataset, idea, hyper-parameter key) from the path; a loose file falls back on fields."""
    parts = PurePosixPath(path).parts
    dataset = result.dataset_name
    if len(parts) >= 3:
        folder, key = parts[-3], parts[-2]
        idea = folder[len(dataset) + 1:] if folder.startswith(dataset + "_") else folder
        return dataset, idea, key
    return dataset, result.idea_name or "unknown", result.hyperparam_config_key or "-"


def _check(path: str, raw: Any) -> AARSeedResult | Skipped:
    if not isinstance(raw, dict):
        return Skipped(path=path, reason="not a JSON object")
    if raw.get("pgr") is None:
        return Skipped(path=path, reason="states no PGR (a ceiling, weak-artifact or unfinished "
                                         "run), so it is not a transfer result")
    try:
        result = AARSeedResult.model_validate(raw)
    except ValidationError as exc:
        fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
        return Skipped(path=path, reason=f"not an AAR seed result (check {fields})")
    named = re.fullmatch(r"seed_(\d+)\.json", PurePosixPath(path).name)
    if named and int(named.group(1)) != result.seed:
        # The release's ue_zeroshot seed_43..45 files all say seed 42: which run is it?
        return Skipped(path=path, reason=f"its name says seed {named.group(1)}, its contents "
                                         f"say seed {result.seed}")
    gap = result.fixed_strong_baseline - result.fixed_weak_baseline
    if gap == 0:
        return Skipped(path=path, reason="its fixed weak and strong baselines are equal")
    recomputed = (result.transfer_acc - result.fixed_weak_baseline) / gap
    stated = math.nan if result.pgr is None else result.pgr
    if not math.isfinite(stated) or abs(recomputed - stated) > tolerance(recomputed, gap):
        return Skipped(path=path, reason=f"the file says pgr {result.pgr}, its own numbers give "
                                         f"{recomputed:.6f}")
    return result


def _attempt(group: tuple[str, str, str], seeds: list[tuple[str, AARSeedResult]]
             ) -> ImportedAttempt:
    dataset, idea, key = group
    figures = []
    for path, r in sorted(seeds, key=lambda pr: pr[1].seed):
        gap = r.fixed_strong_baseline - r.fixed_weak_baseline
        figures.append(SeedFigures(path=path, seed=r.seed, stated_pgr=float(r.pgr),
                                   transfer_acc=r.transfer_acc,
                                   pgr=(r.transfer_acc - r.fixed_weak_baseline) / gap))
    pgrs = [f.pgr for f in figures]
    mean = sum(pgrs) / len(pgrs)
    se = (math.sqrt(sum((p - mean) ** 2 for p in pgrs) / (len(pgrs) - 1) / len(pgrs))
          if len(pgrs) > 1 else None)
    times = [r.cached_at for _, r in seeds if r.cached_at is not None]
    finished = max(times) if times else dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    first = seeds[0][1]
    return ImportedAttempt(
        idea_name=idea, task=dataset, hyperparam_key=key, seeds=[f.seed for f in figures],
        per_seed=figures, pgr=mean, pgr_se=se,
        accuracy=sum(f.transfer_acc for f in figures) / len(figures),
        weak=first.fixed_weak_baseline, ceiling=first.fixed_strong_baseline,
        wall_seconds=sum(r.wall_seconds for _, r in seeds),
        finished_at=finished if finished.tzinfo else finished.replace(tzinfo=dt.UTC))


def parse_results(files: list[tuple[str, Any]]) -> ImportReport:
    """(relative path, parsed JSON) per file → one attempt per (dataset, idea, hyper-parameter
    key) with its per-seed PGRs, plus every skipped file with the reason. A seed that appears
    twice in one group is refused (both files named), not silently averaged twice."""
    groups: dict[tuple[str, str, str], list[tuple[str, AARSeedResult]]] = defaultdict(list)
    skipped: list[Skipped] = []
    for path, raw in files:
        checked = _check(path, raw)
        if isinstance(checked, Skipped):
            skipped.append(checked)
            continue
        group = groups[_group_key(path, checked)]
        twin = next((p for p, r in group if r.seed == checked.seed), None)
        if twin is not None:
            skipped.append(Skipped(path=path, reason=f"seed {checked.seed} is already imported "
                                                     f"from {twin} for the same idea and key"))
            continue
        group.append((path, checked))
    attempts = [_attempt(key, seeds) for key, seeds in sorted(groups.items())]
    return ImportReport(attempts=attempts, skipped=skipped)


def require_attempts(report: ImportReport) -> ImportReport:
    if not report.attempts:
        reasons = "; ".join(f"{s.path}: {s.reason}" for s in report.skipped[:5]) or "no files"
        raise InvalidError(f"nothing to import ({reasons})")
    return report

"""Shared fixtures: the small model pair (MiniLM-L3 → MiniLM-L6) on the real default task.

Features and baselines go to the normal cache (ARENA_CACHE_DIR or ~/.cache/w2s-arena), so the
first run on a new machine computes them (about a minute) and later runs reuse them.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runner.attempt import AttemptResult, run_attempt
from runner.method import Budget
from runner.teacher import ModelPair, fixed_baselines, resolve_pair
from study.tasks import Task, prepare_task

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def small_pair() -> ModelPair:
    return resolve_pair("small")


@pytest.fixture(scope="session")
def rt_task(small_pair: ModelPair) -> Task:
    task = prepare_task("rt_sentiment")
    fixed_baselines(task, small_pair)
    return task


@pytest.fixture
def run_source(tmp_path: Path, rt_task: Task, small_pair: ModelPair):
    """Run method source code on rt_sentiment with the small pair; returns the AttemptResult."""

    def run(source: str, *, seeds=(11,), seconds: float = 60, memory_mb: int = 2048,
            sandbox: bool = True, name: str = "method.py") -> AttemptResult:
        path = tmp_path / name
        path.write_text(textwrap.dedent(source))
        return run_attempt(path, rt_task, seeds=list(seeds), pair=small_pair,
                           budget=Budget(seconds=seconds, memory_mb=memory_mb), sandbox=sandbox)

    return run


def pytest_collection_modifyitems(config, items) -> None:
    """`gpu` tests need CUDA: skipped where torch sees none (they run in scripts/gpu_check.sh)."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA: torch sees no GPU here")
    for item in gpu_items:
        item.add_marker(skip)

"""The runner side of experiments for a platform: the code written to a private folder, run by
runner.experiment under the protocol's experiment limits, the outcome handed back as a dict."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.experiment import local_bundle_tar, run_experiment
from runner.method import Budget
from runner.workdir import make_work_dir

if TYPE_CHECKING:
    from study.server import Platform


def experiment_runner(platform: Platform):
    def run(task: str, source: str, seed: int, seconds: float) -> dict[str, Any]:
        protocol = platform.service.protocol  # the live one: an amendment applies at once
        folder = make_work_dir("experiment-src")
        try:
            path = Path(folder) / "method.py"
            path.write_text(source, encoding="utf-8")
            outcome = run_experiment(
                path, platform.tasks[task], pair=platform.pair, seed=seed,
                budget=Budget(seconds=seconds, memory_mb=protocol.limits.memory_mb,
                              disk_mb=protocol.limits.disk_mb, cgroups=protocol.limits.cgroups),
                sandbox=protocol.sandbox)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return dataclasses.asdict(outcome)

    return run


def bundle_server(platform: Platform):
    """task -> the participant bundle as a tar (built once per task, then kept in memory)."""
    cache: dict[str, bytes] = {}

    def get(task: str) -> bytes:
        if task not in cache:
            cache[task] = local_bundle_tar(platform.tasks[task], platform.pair)
        return cache[task]

    return get

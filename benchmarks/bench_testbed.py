"""Testbed speed: feature throughput, first prepare, method-process start, a warm attempt.

Usage: python -m benchmarks.bench_testbed [--first-prepare]
--first-prepare also times `arena prepare` from an empty cache (about twenty minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import write_section
from runner.attempt import run_attempt
from runner.models import load_encoder, resolve_model
from runner.teacher import fixed_baselines, resolve_pair
from study.tasks import prepare_task

REPO = Path(__file__).resolve().parent.parent


def feature_throughput(texts: list[str]) -> list[str]:
    rows = []
    for name in ("minilm-l3", "minilm-l6", "mpnet"):
        encoder = load_encoder(resolve_model(name))
        encoder.embed(texts[:32])  # warm-up: first call allocates
        started = time.perf_counter()
        encoder.embed(texts)
        rate = len(texts) / (time.perf_counter() - started)
        rows.append(f"| {name} | {len(texts)} | {rate:.0f} |")
    return rows


def method_start(pair, task, *, sandbox: bool, repeats: int = 7) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        trivial = Path(tmp) / "trivial.py"
        trivial.write_text("def run(ctx):\n    return [0.5] * ctx.task.sizes['test']\n")
        result = run_attempt(trivial, task, seeds=list(range(repeats)), pair=pair,
                             sandbox=sandbox)
    return statistics.median(o.wall_s for o in result.outcomes)


def warm_attempt(pair, task, *, repeats: int = 3) -> list[float]:
    times = []
    for r in range(repeats):
        started = time.perf_counter()
        result = run_attempt(REPO / "baselines" / "vanilla.py", task, seeds=[r, r + 10, r + 20],
                             pair=pair)
        assert result.status == "scored", result.error
        times.append(time.perf_counter() - started)
    return times


def first_prepare() -> float:
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "ARENA_CACHE_DIR": cache}
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "study.cli", "prepare"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        return time.perf_counter() - started


def previous_lines(prefix: str) -> list[str]:
    from benchmarks.report import PATH

    if not PATH.exists():
        return []
    return [line for line in PATH.read_text().splitlines() if line.startswith(f"- {prefix}")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--first-prepare", action="store_true")
    args = parser.parse_args()
    pair = resolve_pair("default")
    task = prepare_task("rt_sentiment")
    fixed_baselines(task, pair)
    texts = [ex.inputs["text"] for ex in task.splits["train"][:512]]
    lines = ["| model | texts | texts/s |", "|---|---|---|", *feature_throughput(texts), ""]
    sandboxed, bare = method_start(pair, task, sandbox=True), method_start(pair, task,
                                                                             sandbox=False)
    lines += [
        f"- Method-process start overhead (a method that returns constants; median of 7; "
        f"target ≤ 1.5 s): **{sandboxed:.2f} s** under bubblewrap, {bare:.2f} s without.",
    ]
    warm = warm_attempt(pair, task)
    lines += [
        f"- One vanilla attempt of 3 seeds on rt_sentiment (L3 → mpnet), warm cache, process "
        f"starts included (target ≤ 5 s): median **{statistics.median(warm):.2f} s** "
        f"(runs: {', '.join(f'{t:.2f}' for t in warm)}).",
    ]
    if args.first_prepare:
        lines.append(f"- First `arena prepare` of the default study from an empty cache "
                     f"(3 tasks, features, 16-seed baselines): **{first_prepare():.0f} s**.")
    else:  # that one takes minutes: keep the last measured figure, with its date
        lines += [line + " (from an earlier run)" if "from an earlier run" not in line else line
                  for line in previous_lines("First `arena prepare`")]
    write_section("Testbed (issue 2)", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

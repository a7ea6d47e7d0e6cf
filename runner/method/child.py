"""The method process: `python -m runner.method.child RUN.json`.

Lowers its own resource limits first (they cannot be raised again), then imports the method
file, calls `run(ctx)`, and writes `probs.npy` or `error.json` into its output folder. The parent
scores the output; nothing here knows a label.
"""

from __future__ import annotations

import importlib.util
import json
import random
import resource
import sys
import traceback
from pathlib import Path

import numpy as np


def _limit(kind: int, value: int) -> None:
    _, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(kind, (value, value))


def _apply_limits(run: dict) -> None:
    budget = run["budget"]
    _limit(resource.RLIMIT_AS, int(budget["memory_mb"]) * 1024 * 1024)
    # CPU seconds across both cores, with slack: the parent's wall clock is the real deadline.
    _limit(resource.RLIMIT_CPU, int(budget["seconds"] * run.get("cpus", 2)) + 5)
    _limit(resource.RLIMIT_FSIZE, int(run.get("max_file_mb", 1024)) * 1024 * 1024)


def _write_error(out: Path, kind: str, message: str, tb: str = "") -> None:
    (out / "error.json").write_text(json.dumps({"kind": kind, "message": message,
                                                "traceback": tb[-20000:]}))


def _load_method(path: Path):
    spec = importlib.util.spec_from_file_location("method", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path.name}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["method"] = module
    spec.loader.exec_module(module)
    if not callable(getattr(module, "run", None)):
        raise AttributeError(f"{path.name} defines no function run(ctx)")
    return module


def _save(out: Path, result) -> None:
    if result is None or isinstance(result, (str, bytes, dict)):
        kind = "None" if result is None else type(result).__name__
        _write_error(out, "invalid_output",
                     f"run(ctx) returned {kind}; it must return P(label=1) per test item")
        return
    try:
        array = np.asarray(result, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        _write_error(out, "invalid_output",
                     f"run(ctx) returned a {type(result).__name__} that is not an array of "
                     f"numbers: {exc}")
        return
    np.save(out / "probs.npy", array, allow_pickle=False)


def main(run_path: str) -> int:
    run = json.loads(Path(run_path).read_text())
    out = Path(run["out"])
    _apply_limits(run)
    random.seed(run["seed"])
    np.random.seed(run["seed"] % 2**32)
    from runner.method.context import Context

    try:
        ctx = Context(run)
        method = _load_method(Path(run["method"]))
        result = method.run(ctx)
    except MemoryError:
        _write_error(out, "memory", "the method ran out of its memory budget "
                     f"({run['budget']['memory_mb']} MB)", traceback.format_exc())
        return 1
    except BaseException as exc:  # the method's own failure, whatever it is, is data
        _write_error(out, "exception", f"{type(exc).__name__}: {exc}", traceback.format_exc())
        return 1
    _save(out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

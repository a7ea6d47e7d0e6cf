"""The method process: `python -m runner.method.child RUN.json`.

Lowers its own resource limits first (they cannot be raised again), then imports the method
file, calls `run(ctx)`, and sends its predictions or its error over the result channel (a pipe
the parent owns; see runner.method.channel). The parent scores them; nothing here knows a label.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import resource
import sys
import traceback
from pathlib import Path

import numpy as np

from runner.method.channel import ERROR, FILE_CAP, MAX_FILES, ChannelWriter
from runner.method.gpu_report import is_cuda_oom, oom_message, write_gpu_report


def _limit(kind: int, value: int) -> None:
    _, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(kind, (value, value))


def _apply_limits(run: dict) -> None:
    budget = run["budget"]
    # CUDA maps tens of GB of virtual address space at start-up, so an address-space limit
    # would fail every GPU method; on a GPU the memory cgroup is the host-memory cap.
    if run.get("device") != "cuda":
        _limit(resource.RLIMIT_AS, int(budget["memory_mb"]) * 1024 * 1024)
    # CPU seconds across both cores, with slack: the parent's wall clock is the real deadline.
    _limit(resource.RLIMIT_CPU, int(budget["seconds"] * run.get("cpus", 2)) + 5)
    _limit(resource.RLIMIT_FSIZE, int(run.get("max_file_mb", 1024)) * 1024 * 1024)


def _write_error(channel: ChannelWriter, kind: str, message: str, tb: str = "") -> None:
    channel.send_json(ERROR, {"kind": kind, "message": message[-4000:],
                              "traceback": tb[-20000:]})


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


def _save(out: ChannelWriter, result) -> None:
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
    out.send_probs(array)


def main(run_path: str) -> int:
    run = json.loads(Path(run_path).read_text())
    channel = ChannelWriter(int(run["channel_fd"]))
    out = Path(run["out"])  # inside the sandbox's own tmpfs: nothing here reaches the parent
    out.mkdir(parents=True, exist_ok=True)
    _apply_limits(run)
    random.seed(run["seed"])
    np.random.seed(run["seed"] % 2**32)
    from runner.method.context import Context

    try:
        ctx = Context(run, channel)
        method = _load_method(Path(run["method"]))
        result = method.run(ctx)
    except MemoryError:
        _write_error(channel, "memory", "the method ran out of its memory budget "
                     f"({run['budget']['memory_mb']} MB)", traceback.format_exc())
        return 1
    except BaseException as exc:  # the method's own failure, whatever it is, is data
        if is_cuda_oom(exc):
            _write_error(channel, "gpu_memory", oom_message(exc), traceback.format_exc())
        else:
            _write_error(channel, "exception", f"{type(exc).__name__}: {exc}",
                         traceback.format_exc())
        return 1
    finally:
        write_gpu_report(channel)
        if run.get("experiment"):
            _send_files(channel, out)
    if run.get("experiment") and result is None:
        result = np.zeros(0)  # an experiment need not predict anything
    _save(channel, result)
    return 0


def _send_files(channel: ChannelWriter, out: Path) -> None:
    """An experiment's plain files in ctx.files_dir (no links, no folders), within the caps;
    the parent checks every name and size again."""
    sent = 0
    for entry in sorted(os.scandir(out), key=lambda e: e.name):
        if sent >= MAX_FILES or not entry.is_file(follow_symlinks=False):
            continue
        if entry.stat(follow_symlinks=False).st_size > FILE_CAP:
            print(f"experiment file {entry.name} is over {FILE_CAP} bytes: not returned")
            continue
        with open(entry.path, "rb") as fh:
            channel.send_file(entry.name, fh.read(FILE_CAP + 1)[:FILE_CAP])
        sent += 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

"""Run one method for one seed in its own process and collect what it produced.

A fresh interpreter (never a fork), its own process group, an environment allow-list, output
drained into a capped buffer, a wall-clock deadline: SIGTERM to the group, a grace, SIGKILL.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from runner.method.cgroup import PidsCgroup
from runner.method.context import Budget
from runner.method.sandbox import RUNNER_DIR, SCRATCH, Mounts, require_sandbox, sandbox_argv

Status = Literal["ok", "error", "timeout", "killed", "cancelled"]
TAIL_BYTES = 64 * 1024
GRACE_S = 2.0
ENV_ALLOW = ("LANG", "LC_ALL", "TZ")


@dataclass
class MethodRun:
    status: Status
    seed: int
    raw: np.ndarray | None = None
    error_kind: str | None = None
    error: str | None = None
    traceback: str | None = None
    log_tail: str = ""
    output_bytes: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_mb: float = 0.0
    exit_code: int | None = None
    sandboxed: bool = False
    metrics: list[dict] = field(default_factory=list)


class _Drain(threading.Thread):
    """Reads the child's output to the end so it never blocks, keeping only the tail."""

    def __init__(self, stream) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.chunks: deque[bytes] = deque()
        self.kept = 0
        self.total = 0

    def run(self) -> None:
        for chunk in iter(lambda: self.stream.read(65536), b""):
            self.total += len(chunk)
            self.chunks.append(chunk)
            self.kept += len(chunk)
            while self.kept - len(self.chunks[0]) >= TAIL_BYTES:
                self.kept -= len(self.chunks.popleft())

    def tail(self) -> str:
        data = b"".join(self.chunks)[-TAIL_BYTES:]
        prefix = f"[… {self.total - len(data)} earlier bytes dropped]\n" if self.total > len(
            data) else ""
        return prefix + data.decode("utf-8", errors="replace")


def _child_env(scratch: str, cpus: int) -> dict[str, str]:
    env = {k: os.environ[k] for k in ENV_ALLOW if k in os.environ}
    threads = str(cpus)
    env.update({
        "PATH": "/usr/bin:/bin", "HOME": scratch,
        "PYTHONPATH": str(RUNNER_DIR.parent), "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
        "TOKENIZERS_PARALLELISM": "false",
    })
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # set here for old OpenBLAS bugs
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def _tree(pid: int) -> list[int]:
    pids, stack = [], [pid]
    while stack:
        current = stack.pop()
        pids.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as fh:
                    stack += [int(c) for c in fh.read().split()]
        except OSError:
            continue
    return pids


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass
class _Watch:
    timed_out: bool = False
    cancelled: bool = False
    too_many_processes: bool = False
    peak_mb: float = 0.0


def _wait(proc: subprocess.Popen, deadline: float, cancel: threading.Event | None,
          max_processes: int) -> tuple[int, object, _Watch]:
    """Poll until exit: wait4 for CPU time, /proc for peak memory, the deadline for the kill.

    wait4's ru_maxrss is useless here: exec() folds the spawning parent's RSS into it. So peak
    memory is the largest sum, over polls, of the process tree's high-water marks. Past the
    deadline the group gets SIGTERM, and SIGKILL after a grace period.
    """
    killed_at: float | None = None
    watch = _Watch()
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, usage, watch
        tree = _tree(proc.pid)
        watch.peak_mb = max(watch.peak_mb, sum(_rss_mb(p) for p in tree[1:] or [proc.pid]))
        # The cgroup is the hard cap; this guard covers machines without one. (+2: the
        # launcher shell's exec and bubblewrap itself sit above the method.)
        if len(tree) > max_processes + 2 and killed_at is None:
            watch.too_many_processes = True
            killed_at = time.monotonic()
            _signal_group(proc.pid, signal.SIGKILL)
        now = time.monotonic()
        if killed_at is None and (now > deadline or (cancel is not None and cancel.is_set())):
            killed_at = now
            watch.cancelled = cancel is not None and cancel.is_set()
            watch.timed_out = not watch.cancelled
            _signal_group(proc.pid, signal.SIGTERM)
        elif killed_at is not None and now > killed_at + GRACE_S:
            _signal_group(proc.pid, signal.SIGKILL)
        time.sleep(0.02)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def run_method_process(method: Path, bundle: Path, run_dir: Path, *, seed: int, budget: Budget,
                       models_dirs: tuple[Path, ...] = (), sandbox: bool = True,
                       cpus: int = 2, device: str = "cpu",
                       cancel: threading.Event | None = None) -> MethodRun:
    """Run `method` once; never raises for anything the method does."""
    if sandbox:
        require_sandbox()  # never fall back to an unsandboxed run silently
    out = run_dir / "out"
    out.mkdir(parents=True, exist_ok=True)
    scratch = SCRATCH if sandbox else str(run_dir / "scratch")
    run_file = run_dir / "run.json"
    run_file.write_text(json.dumps({
        "bundle": str(bundle), "method": str(method), "seed": seed, "out": str(out),
        "scratch": scratch, "device": device, "cpus": cpus,
        "budget": {"seconds": budget.seconds, "memory_mb": budget.memory_mb,
                   "max_processes": budget.max_processes}}))
    env = _child_env(scratch, cpus)
    argv = [sys.executable, "-m", "runner.method.child", str(run_file)]
    if sandbox:
        mounts = Mounts(readonly=(method.parent, bundle, *models_dirs), writable=(run_dir,))
        argv = [*sandbox_argv(mounts, env, cwd=run_dir), *argv]
    cgroup = PidsCgroup(f"{run_dir.parent.name}-{run_dir.name}-{os.getpid()}",
                        budget.max_processes + 2)
    argv = cgroup.wrap(argv)
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, cwd=run_dir, env=env,
                            start_new_session=True)
    drain = _Drain(proc.stdout)
    drain.start()
    try:
        code, usage, watch = _wait(proc, started + budget.seconds, cancel, budget.max_processes)
    finally:
        hit_cap = cgroup.hit_limit()
        cgroup.close()
    drain.join(timeout=5)
    result = MethodRun(status="ok", seed=seed, exit_code=code, sandboxed=sandbox,
                       wall_s=time.monotonic() - started,
                       cpu_s=usage.ru_utime + usage.ru_stime,  # type: ignore[attr-defined]
                       peak_mb=watch.peak_mb,
                       log_tail=drain.tail(), output_bytes=drain.total,
                       metrics=_read_metrics(out / "metrics.jsonl"))
    if watch.too_many_processes or hit_cap:
        result.status, result.error_kind = "error", "processes"
        result.error = (f"the method tried to run more than {budget.max_processes} processes "
                        "(a fork bomb?) and was stopped")
        _attach_traceback(result, out)
        return result
    if watch.cancelled:
        result.status, result.error_kind = "cancelled", "cancelled"
        result.error = "the attempt was cancelled while this seed ran"
        return result
    return _classify(result, out, timed_out=watch.timed_out, budget=budget)


def _attach_traceback(result: MethodRun, out: Path) -> None:
    error_file = out / "error.json"
    if error_file.exists():
        with contextlib.suppress(json.JSONDecodeError):
            result.traceback = json.loads(error_file.read_text()[:100_000]).get("traceback")


def _metric(raw: object) -> dict | None:
    """The method wrote this file: keep only well-formed {name, value, step, t} records."""
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        return None
    value, step = raw.get("value"), raw.get("step")
    if not isinstance(value, int | float) or value != value or abs(value) == float("inf"):
        return None
    return {"name": raw["name"][:100], "value": float(value),
            "step": step if isinstance(step, int) else None,
            "t": raw.get("t") if isinstance(raw.get("t"), int | float) else None}


def _read_metrics(path: Path, limit: int = 1000) -> list[dict]:
    if not path.exists():
        return []
    metrics = []
    with path.open(errors="replace") as fh:
        for line in fh:
            if len(metrics) >= limit:
                break
            try:
                record = _metric(json.loads(line))
            except json.JSONDecodeError:
                continue
            if record is not None:
                metrics.append(record)
    return metrics


def _classify(result: MethodRun, out: Path, *, timed_out: bool, budget: Budget) -> MethodRun:
    if timed_out:
        result.status, result.error_kind = "timeout", "timeout"
        result.error = f"the method ran past its time budget of {budget.seconds:g} s and was killed"
        return result
    error_file = out / "error.json"
    if error_file.exists():
        try:
            err = json.loads(error_file.read_text()[:100_000])
        except json.JSONDecodeError:
            err = {"kind": "exception", "message": "the method's error report is unreadable"}
        result.status, result.error_kind = "error", str(err.get("kind", "exception"))
        result.error, result.traceback = str(err.get("message")), err.get("traceback")
        return result
    probs = out / "probs.npy"
    if result.exit_code in (-signal.SIGKILL, 128 + signal.SIGKILL):
        # SIGKILL that our deadline did not send came from outside (an operator, the OOM
        # killer, a dying host): an infrastructure fault, not the method's.
        result.status, result.error_kind = "killed", "infrastructure"
        result.error = "the method process was killed from outside the runner (SIGKILL)"
        return result
    if result.exit_code != 0 or not probs.exists():
        result.status, result.error_kind = "killed", _death_cause(result.exit_code, budget)
        result.error = (f"the method process died without a result (exit code "
                        f"{result.exit_code}): {result.error_kind}")
        return result
    try:
        result.raw = np.load(probs, allow_pickle=False)
    except (ValueError, OSError) as exc:
        result.status, result.error_kind = "error", "invalid_output"
        result.error = f"the method's output file is unreadable: {exc}"
    return result


def _death_cause(code: int | None, budget: Budget) -> str:
    if code is None:
        return "unknown"
    if code in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
        return "CPU-time limit exceeded"
    if code in (-signal.SIGXFSZ, 128 + signal.SIGXFSZ):
        return "file-size limit exceeded"
    return f"exit code {code}"

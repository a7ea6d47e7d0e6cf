"""Run one method for one seed in its own process and collect what it produced.

A fresh interpreter (never a fork), its own process group, an environment allow-list, output
drained into a capped buffer, a wall-clock deadline: SIGTERM to the group, a grace, SIGKILL.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from runner.gpu import GpuMemoryWatch, Slot, gpu_mounts, slot_healthy
from runner.method.cgroup import CgroupUnavailableError, RunCgroup, require_cgroups
from runner.method.channel import ChannelReader
from runner.method.context import Budget
from runner.method.gpu_report import read_gpu_report
from runner.method.sandbox import (
    RUNNER_DIR,
    SYSTEM_DIRS,
    Mounts,
    python_dirs,
    require_sandbox,
    sandbox_argv,
)
from runner.method.staging import RunLayout, stage_run, write_run_file
from runner.method.verdict import Evidence, judge

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
    gpu_s: float = 0.0  # wall time × GPUs the slot held (what a GPU study charges)
    peak_gpu_mb: float | None = None
    metrics: list[dict] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)  # an experiment's output files


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
          max_processes: int, cgroup: RunCgroup) -> tuple[int, object, _Watch]:
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
        cgroup.sample()
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
                       cancel: threading.Event | None = None, slot: Slot | None = None,
                       on_live: Callable[[dict], None] | None = None,
                       experiment: bool = False) -> MethodRun:
    """Run `method` once; never raises for anything the method does. `on_live` gets what the
    method reports while it runs (ctx.progress, new ctx.log records). `run_dir` is removed
    once the run's output is read."""
    if sandbox:
        require_sandbox()  # never fall back to an unsandboxed run silently
    if budget.cgroups == "required":
        require_cgroups()  # nor to per-process budgets a process tree escapes
    device = slot.device if slot is not None else device
    try:
        return _run_staged(stage_run(method, bundle, run_dir, sandboxed=sandbox), seed=seed,
                           budget=budget, models_dirs=models_dirs, cpus=cpus, device=device,
                           cancel=cancel, slot=slot, on_live=on_live, experiment=experiment)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def _sandboxed_argv(layout: RunLayout, argv: list[str], env: dict[str, str], *,
                    models_dirs: tuple[Path, ...], slot: Slot | None, budget: Budget) -> list[str]:
    gpu = gpu_mounts(slot, bound_dirs=(*SYSTEM_DIRS, *map(str, python_dirs()))) \
        if slot is not None else None
    mounts = Mounts(readonly=(*models_dirs, *(gpu.libraries if gpu else ())), writable=(),
                    devices=gpu.devices if gpu else (), masked=gpu.masked if gpu else (),
                    placed=layout.placed(), tmp_mb=budget.disk_mb)
    return [*sandbox_argv(mounts, env, cwd=Path(layout.inside("cwd"))), *argv]


def _run_staged(layout: RunLayout, *, seed: int, budget: Budget, models_dirs: tuple[Path, ...],
                cpus: int, device: str, cancel: threading.Event | None, slot: Slot | None,
                on_live: Callable[[dict], None] | None, experiment: bool = False) -> MethodRun:
    read_fd, write_fd = os.pipe()
    try:  # a GPU whose node vanished raises here: the pipe must not outlive the refusal
        write_run_file(layout, {"seed": seed, "device": device, "cpus": cpus,
                                "channel_fd": write_fd, "budget": dataclasses.asdict(budget),
                                "experiment": experiment})
        scratch = layout.inside("scratch")
        env = {**_child_env(scratch, cpus), **(slot.env() if slot is not None else {})}
        argv = [sys.executable, "-m", "runner.method.child", layout.inside("run")]
        if layout.sandboxed:
            argv = _sandboxed_argv(layout, argv, env, models_dirs=models_dirs, slot=slot,
                                   budget=budget)
    except BaseException:
        os.close(read_fd)
        os.close(write_fd)
        raise
    cgroup = RunCgroup(f"{layout.host.parent.name}-{layout.host.name}-{os.getpid()}",
                       max_pids=budget.max_processes + 2, memory_mb=budget.memory_mb)
    if budget.cgroups == "required" and not cgroup.available:
        os.close(read_fd)
        os.close(write_fd)
        # The runner's own failure (an infrastructure fault), never a run without its budgets.
        raise CgroupUnavailableError("could not create this run's cgroups; see cgroup_problem()")
    started = time.monotonic()
    try:
        proc = subprocess.Popen(cgroup.wrap(argv), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                cwd=layout.host, env=env, start_new_session=True,
                                pass_fds=(write_fd,))
    except BaseException:
        os.close(read_fd)
        cgroup.close()
        raise
    finally:
        os.close(write_fd)  # the child holds the only write end: EOF when it is gone
    channel = ChannelReader(read_fd, on_live)
    channel.start()
    drain = _Drain(proc.stdout)
    drain.start()
    gpu_memory = GpuMemoryWatch.start(slot)
    try:
        code, usage, watch = _wait(proc, started + budget.seconds, cancel,
                                   budget.max_processes, cgroup)
    finally:
        nvml_peak = gpu_memory.stop()
        cgroup.sample()
        pids_cap, oom, tree_cpu = (cgroup.hit_pids_limit(), cgroup.oom_killed(),
                                   cgroup.cpu_seconds())
        cgroup.close()
    seen = Evidence(timed_out=watch.timed_out, cancelled=watch.cancelled,
                    too_many_processes=watch.too_many_processes or pids_cap, oom_killed=oom)
    drain.join(timeout=5)
    got = channel.finish()
    result = MethodRun(status="ok", seed=seed, exit_code=code, sandboxed=layout.sandboxed,
                       wall_s=time.monotonic() - started,
                       # the cgroup sees the whole tree; wait4 sees only what bwrap reaped
                       cpu_s=tree_cpu if tree_cpu is not None else
                       usage.ru_utime + usage.ru_stime,  # type: ignore[attr-defined]
                       peak_mb=max(watch.peak_mb, cgroup.peak_mb),
                       log_tail=drain.tail(), output_bytes=drain.total, metrics=got.metrics,
                       files=got.files)
    if slot is not None and slot.gpus:
        result.gpu_s = result.wall_s * len(slot.gpus)
        # NVML, read by the runner, where installed; else what the method process reported.
        result.peak_gpu_mb = nvml_peak if nvml_peak is not None else read_gpu_report(
            got.reports.get("gpu"))
    return _check_gpu(judge(result, got, seen, budget), slot)


def _check_gpu(result: MethodRun, slot: Slot | None) -> MethodRun:
    """A seed that failed on a GPU the runner now finds gone was lost to the hardware, not
    to the method: an infrastructure fault (the attempt is requeued once, quota kept)."""
    if result.status == "ok" or slot is None or not slot.gpus or slot_healthy(slot):
        return result
    result.status, result.error_kind = "killed", "infrastructure"
    result.error = (f"{slot.describe()} stopped answering while the seed ran "
                    f"(the method's own report: {result.error})")
    return result

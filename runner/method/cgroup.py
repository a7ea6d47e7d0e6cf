"""A cgroup per method run: budgets that hold for the whole process tree, and honest accounting.

Per-process limits miss what a hostile method does: three forks each under RLIMIT_AS, pages
written to a tmpfs (they are RAM, not address space), CPU burnt by processes that bubblewrap's
wait4 never sees. A run therefore gets its own cgroup (v1 controllers, as on this kind of host):

- `pids`: a hard cap on processes (bwrap maps the method onto root outside, and root ignores
  RLIMIT_NPROC);
- `memory`: the memory budget for every process together *and* the tmpfs pages they write
  (/tmp, /dev/shm); the kernel's OOM killer acts inside the cgroup only, and its count is the
  runner's own evidence that the method hit its memory budget;
- `cpuacct`: CPU time of the whole tree, which is what the method is charged.

Where these controllers are not writable the runner refuses to run methods unless the protocol
says `cgroups = "optional"` (then only the runner's process-tree guard and rlimits hold).
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import time
from pathlib import Path

from study.errors import ArenaError

ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("pids", "memory", "cpuacct")
GROUP = "w2s-arena"


class CgroupUnavailableError(ArenaError):
    """The cgroup controllers a run's budgets need are not available here."""

    code = "cgroups_unavailable"


def _controller_dir(name: str) -> Path:
    return ROOT / name / GROUP


@functools.cache
def cgroup_problem() -> str | None:
    """None when pids, memory and cpuacct (cgroup v1) can be created here, else why not."""
    for name in CONTROLLERS:
        base = ROOT / name
        if not (base / "cgroup.procs").exists():
            return f"the cgroup v1 controller {name!r} is not mounted at {base}"
        probe = _controller_dir(name) / f"probe-{os.getpid()}"
        try:
            probe.mkdir(parents=True, exist_ok=True)
            probe.rmdir()
        except OSError as exc:
            return f"cannot create a cgroup under {base}: {exc.strerror}"
    return None


def require_cgroups() -> None:
    problem = cgroup_problem()
    if problem:
        raise CgroupUnavailableError(
            f"{problem}. Budgets for a method's whole process tree (memory incl. tmpfs, "
            "processes, CPU time) need these cgroups; run the server as a user that may create "
            "them, or set `cgroups = \"optional\"` under [limits] in the protocol.")


def _read(path: Path) -> str:
    with contextlib.suppress(OSError):
        return path.read_text()
    return ""


def _field(text: str, key: str) -> int:
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key and parts[1].isdigit():
            return int(parts[1])
    return 0


class RunCgroup:
    """One run's cgroups; `available` is False where they could not be made (optional mode)."""

    def __init__(self, name: str, *, max_pids: int, memory_mb: int) -> None:
        self.paths: dict[str, Path] = {}
        self.peak_bytes = 0
        if cgroup_problem() is not None:
            return
        try:
            for controller in CONTROLLERS:
                path = _controller_dir(controller) / name
                path.mkdir(parents=True, exist_ok=True)
                self.paths[controller] = path
            (self.paths["pids"] / "pids.max").write_text(str(max_pids))
            limit = str(memory_mb * 1024 * 1024)
            (self.paths["memory"] / "memory.limit_in_bytes").write_text(limit)
            swap = self.paths["memory"] / "memory.memsw.limit_in_bytes"
            if swap.exists():  # no escape into swap either
                swap.write_text(limit)
        except OSError:
            self.close()
            self.paths = {}

    @property
    def available(self) -> bool:
        return bool(self.paths)

    def wrap(self, argv: list[str]) -> list[str]:
        """The command, entering every cgroup before it execs (so every child is inside)."""
        if not self.paths:
            return argv
        procs = [str(p / "cgroup.procs") for p in self.paths.values()]
        enter = " && ".join(f'echo $$ > "${i + 1}"' for i in range(len(procs)))
        return ["/bin/sh", "-c", f'{enter} && shift {len(procs)} && exec "$@"', "enter",
                *procs, *argv]

    def sample(self) -> None:
        """Remember the peak of resident + tmpfs memory (page cache of read files excluded:
        it is reclaimable and no budget of the method's)."""
        if "memory" in self.paths:
            stat = _read(self.paths["memory"] / "memory.stat")
            self.peak_bytes = max(self.peak_bytes, _field(stat, "total_rss")
                                  + _field(stat, "total_shmem"))

    @property
    def peak_mb(self) -> float:
        return self.peak_bytes / 2**20

    def cpu_seconds(self) -> float | None:
        if "cpuacct" not in self.paths:
            return None
        text = _read(self.paths["cpuacct"] / "cpuacct.usage").strip()
        return int(text) / 1e9 if text.isdigit() else None

    def hit_pids_limit(self) -> bool:
        return "pids" in self.paths and \
            _field(_read(self.paths["pids"] / "pids.events"), "max") > 0

    def oom_killed(self) -> bool:
        """The kernel killed a process of this run for exceeding its memory budget."""
        return "memory" in self.paths and \
            _field(_read(self.paths["memory"] / "memory.oom_control"), "oom_kill") > 0

    def _members(self) -> list[int]:
        pids: set[int] = set()
        for path in self.paths.values():
            pids.update(int(p) for p in _read(path / "cgroup.procs").split() if p.isdigit())
        return sorted(pids)

    def close(self) -> None:
        """Kill whatever is left of the run and remove its cgroups."""
        deadline = time.monotonic() + 5
        while (members := self._members()) and time.monotonic() < deadline:
            for pid in members:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)
        for path in self.paths.values():
            for _ in range(50):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)

"""A pids cgroup per method run: a hard cap on processes, which RLIMIT_NPROC cannot give here.

bubblewrap maps the method's uid onto root outside, and root is exempt from RLIMIT_NPROC, so a
fork bomb needs a cgroup. Where the pids controller is not writable the runner falls back to
its own guard (it polls the process tree and kills it past the cap).
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

PIDS_ROOT = Path("/sys/fs/cgroup/pids")  # cgroup v1's pids controller


def _pids_root() -> Path | None:
    if (PIDS_ROOT / "cgroup.procs").exists() and os.access(PIDS_ROOT, os.W_OK):
        return PIDS_ROOT
    return None


class PidsCgroup:
    def __init__(self, name: str, max_pids: int) -> None:
        self.path: Path | None = None
        root = _pids_root()
        if root is None:
            return
        path = root / "w2s-arena" / name
        try:
            path.mkdir(parents=True, exist_ok=True)
            (path / "pids.max").write_text(str(max_pids))
        except OSError:
            return
        self.path = path

    def wrap(self, argv: list[str]) -> list[str]:
        """The command, entering the cgroup before it execs (so every child is inside)."""
        if self.path is None:
            return argv
        return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.path / "cgroup.procs"),
                *argv]

    def hit_limit(self) -> bool:
        if self.path is None:
            return False
        with contextlib.suppress(OSError):
            for line in (self.path / "pids.events").read_text().splitlines():
                if line.startswith("max ") and int(line.split()[1]) > 0:
                    return True
        return False

    def close(self) -> None:
        if self.path is None:
            return
        with contextlib.suppress(OSError):
            for pid in (self.path / "cgroup.procs").read_text().split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.path.rmdir()

"""Where runs keep their files, and how a restart finds what a killed server left behind.

Every run folder (the staged method source, each seed's run directory) lives under one private
root (mode 700) and carries the pid of the server that made it: `<kind>-<pid>-<random>`. A
server killed with `kill -9` cannot clean up, so the next start removes every folder — and every
run cgroup, whose name ends in the same pid — whose server is gone. Folders of other live
servers sharing the cache (tests run several at once) are left alone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

from study.settings import cache_dir

CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_GROUP = "w2s-arena"
LEGACY_PREFIXES = ("attempt-", "dryrun-")  # folders made in the cache root before this module
LEGACY_AGE_S = 6 * 3600


def work_root() -> Path:
    root = cache_dir() / "work"
    root.mkdir(mode=0o700, exist_ok=True)
    root.chmod(0o700)  # participants' sources: never readable by other users of the host
    return root


def make_work_dir(kind: str) -> Path:
    """A fresh private folder tagged with this server's pid (the second dash-separated part
    of its name, which is how a restart finds orphans: so `kind` holds no dash)."""
    return Path(tempfile.mkdtemp(prefix=f"{kind.replace('-', '_')}-{os.getpid()}-",
                                 dir=work_root()))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner_pid(name: str, *, position: int) -> int | None:
    parts = name.split("-")
    try:
        return int(parts[position])
    except (IndexError, ValueError):
        return None


def clean_work_dirs() -> list[Path]:
    """Remove run folders whose server is dead (and very old folders of the legacy layout)."""
    removed = []
    for entry in work_root().iterdir():
        pid = _owner_pid(entry.name, position=1)
        if pid is not None and pid != os.getpid() and not _pid_alive(pid):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    now = time.time()
    for entry in cache_dir().iterdir():
        if (entry.name.startswith(LEGACY_PREFIXES) and entry.is_dir()
                and now - entry.stat().st_mtime > LEGACY_AGE_S):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def clean_cgroups(root: Path = CGROUP_ROOT) -> list[Path]:
    """Remove run cgroups (in every controller) whose server pid — the name's last part — is
    dead: kill what is still inside, then rmdir."""
    removed = []
    for group in root.glob(f"*/{CGROUP_GROUP}/*"):
        if not (group / "cgroup.procs").exists():
            continue
        pid = _owner_pid(group.name, position=-1)
        if pid is None or pid == os.getpid() or _pid_alive(pid):
            continue
        with contextlib.suppress(OSError):
            for member in (group / "cgroup.procs").read_text().split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(member), signal.SIGKILL)
        for _ in range(20):  # members take a moment to leave after SIGKILL
            try:
                group.rmdir()
                removed.append(group)
                break
            except OSError:
                time.sleep(0.05)
    return removed

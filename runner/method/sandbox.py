"""The command line that confines a method process.

With bubblewrap: new user, PID, network, IPC and UTS namespaces; the filesystem is a read-only view
of exactly the Python install, the `runner` package, the method file, the bundle and the model
folders, plus a writable run folder and a private /tmp; uid 65534. Without bubblewrap the process
still gets its own session, a scrubbed environment and resource limits, and the attempt records
that it ran unsandboxed.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from study.errors import ArenaError

RUNNER_DIR = Path(__file__).resolve().parent.parent
SYSTEM_DIRS = ("/usr", "/bin", "/lib", "/lib64", "/sbin", "/etc/alternatives")
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/nsswitch.conf")


@dataclass(frozen=True)
class Mounts:
    readonly: tuple[Path, ...]
    writable: tuple[Path, ...]
    devices: tuple[tuple[str, str], ...] = ()  # (host node, path inside): a GPU slot's nodes
    masked: tuple[str, ...] = ()  # paths inside hidden under an empty tmpfs
    # (host folder, fixed path inside), read-only: the neutral layout (runner.method.staging)
    placed: tuple[tuple[Path, str], ...] = ()
    tmp_mb: int | None = None  # size of the writable tmpfs at /tmp (and /dev/shm)


class SandboxUnavailableError(ArenaError):
    """bubblewrap is missing or cannot create namespaces here."""

    code = "sandbox_unavailable"


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


@functools.cache
def sandbox_problem() -> str | None:
    """None when bubblewrap works here, else why not (checked once per process)."""
    path = bwrap_path()
    if path is None:
        return "bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
    probe = subprocess.run([path, "--ro-bind", "/", "/", "--unshare-all", "--as-pid-1",
                            "/bin/true"], capture_output=True, text=True, timeout=30,
                           check=False)
    if probe.returncode != 0:
        return f"bubblewrap cannot create its namespaces here: {probe.stderr.strip()[:300]}"
    return None


def require_sandbox() -> None:
    problem = sandbox_problem()
    if problem:
        raise SandboxUnavailableError(
            f"{problem}. Methods will not run unsandboxed unless told so explicitly "
            "(`sandbox = false` in the protocol, or `arena run --no-sandbox`).")


def python_dirs() -> tuple[Path, ...]:
    dirs = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(),
            Path(sys.executable).parent.resolve()}
    return tuple(sorted(dirs))


SCRATCH = "/tmp/scratch"  # inside the sandbox: on its private tmpfs


def sandbox_argv(mounts: Mounts, env: dict[str, str], *, cwd: Path) -> list[str]:
    """`bwrap …` with every path bound at the same place it has outside."""
    # --as-pid-1: the method is the namespace's init, so bwrap waits for it directly and its CPU
    # time reaches our wait4(); when it exits the kernel kills whatever it left behind.
    argv = [bwrap_path() or "bwrap", "--unshare-all", "--as-pid-1", "--die-with-parent",
            "--new-session",
            "--uid", "65534", "--gid", "65534", "--clearenv",
            "--proc", "/proc", "--dev", "/dev"]
    # Everything writable is tmpfs: RAM charged to the run's memory cgroup, capped in size.
    size = [] if mounts.tmp_mb is None else ["--size", str(mounts.tmp_mb * 1024 * 1024)]
    argv += [*size, "--tmpfs", "/tmp", *size, "--tmpfs", "/dev/shm"]
    for d in SYSTEM_DIRS:
        if Path(d).exists():
            argv += ["--ro-bind", d, d]
    for f in SYSTEM_FILES:
        if Path(f).exists():
            argv += ["--ro-bind", f, f]
    for path in (*python_dirs(), RUNNER_DIR, *mounts.readonly):
        argv += ["--ro-bind", str(path), str(path)]
    for path in mounts.writable:
        argv += ["--bind", str(path), str(path)]
    for source, dest in mounts.placed:
        argv += ["--ro-bind", str(source), dest]
    for source, dest in mounts.devices:  # after --dev: they join its minimal /dev
        argv += ["--dev-bind", source, dest]
    for path in mounts.masked:
        argv += ["--tmpfs", path]
    for key, value in env.items():
        argv += ["--setenv", key, value]
    argv += ["--chdir", str(cwd)]
    return argv

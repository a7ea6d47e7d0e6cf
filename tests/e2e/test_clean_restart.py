"""Clean restarts: a `kill -9` mid-run leaves the run's folders (holding the participant's
source) and its cgroups behind; the next start removes them, and leaves those of other live
servers alone. Run folders sit in a private (mode 700) root."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from runner.method.cgroup import cgroup_problem
from runner.workdir import CGROUP_GROUP, CGROUP_ROOT, work_root
from study.records import AttemptStatus
from tests.e2e.conftest import SLEEPY
from tests.e2e.test_crash_recovery import method_pids, wait_for


def _left_by(pid: int) -> tuple[list[Path], list[Path]]:
    folders = [p for p in work_root().iterdir() if p.name.split("-")[1:2] == [str(pid)]]
    groups = [g for g in CGROUP_ROOT.glob(f"*/{CGROUP_GROUP}/*") if g.name.endswith(f"-{pid}")]
    return folders, groups


def _in_cgroup_of(pid: int, server_pid: int) -> bool:
    """Other sessions' method processes may run beside ours: ours sit in our run cgroup."""
    try:
        return f"-{server_pid}\n" in Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return False


def test_a_restart_after_kill_9_leaves_no_orphans(server):
    ida = server.participant("ida")
    view = ida.submit(SLEEPY.format(seconds=8), "rt_sentiment")
    wait_for(lambda: ida.attempt(view.id).status is AttemptStatus.RUNNING)
    wait_for(method_pids)
    dead = server.proc.pid
    folders, groups = _left_by(dead)
    kinds = {f.name.split("-")[0] for f in folders}
    assert {"method", "attempt"} <= kinds  # the source's copy and the run folder
    assert groups or cgroup_problem() is not None  # where cgroups exist, the run has some
    assert stat.S_IMODE(work_root().stat().st_mode) == 0o700
    assert stat.S_IMODE(server.data_dir.stat().st_mode) == 0o700  # the sources in DuckDB too
    assert any((f / "method.py").exists() or (f / "method" / "method.py").exists()
               for f in folders)
    mine = [pid for pid in method_pids() if _in_cgroup_of(pid, dead)] or method_pids()
    server.kill()
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in mine), timeout=20)
    # (Any server starting now removes them — other sessions share this cache — so their
    # survival until our restart is not asserted; that they existed is, above.)
    # Another live process's folder must survive the cleanup.
    bystander = work_root() / f"attempt-{os.getppid()}-bystander"
    bystander.mkdir()
    try:
        server.start()
        assert not any(f.exists() for f in folders)
        assert not any(g.exists() for g in groups)
        assert bystander.exists()
    finally:
        bystander.rmdir()
    done = ida.wait(view.id, poll=0.2, timeout=120)
    assert done.status is AttemptStatus.SCORED and done.tries == 2

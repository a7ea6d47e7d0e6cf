"""Faults: kill -9 of the server mid-run, and a method process killed from outside.

Either way the attempt is requeued exactly once and then finishes; the participant is charged
once; an attempt that loses its retry too fails with its quota refunded.
"""

import json
import os
import signal
from pathlib import Path

import duckdb

from study.records import AttemptStatus
from study.server import db_path
from tests.e2e.conftest import SLEEPY, wait_for


def _descends_from(pid: int, root: int) -> bool:
    while pid > 1:
        if pid == root:
            return True
        try:  # the parent is the field after the command's closing parenthesis
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return False
    return False


def method_pids(under: int | None = None) -> list[int]:
    """Method processes on this machine, or only those descending from the process `under`
    (another session's sandboxes are not this test's to wait for, nor to kill)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"runner.method.child" in cmd and not cmd[0].endswith(b"bwrap") and \
                (under is None or _descends_from(int(entry.name), under)):
            pids.append(int(entry.name))
    return pids


def _gone(pids: list[int]) -> bool:
    return not any(Path(f"/proc/{pid}").exists() for pid in pids)


def events(data_dir, attempt_id):
    con = duckdb.connect(str(db_path(data_dir)), read_only=True)
    try:
        return [(k, json.loads(p)) for k, p in con.execute(
            "SELECT kind, payload FROM events WHERE attempt_id = ? ORDER BY id",
            [attempt_id]).fetchall()]
    finally:
        con.close()


def test_kill_9_of_the_server_mid_run_requeues_once(server):
    pat = server.participant("pat")
    view = pat.submit(SLEEPY.format(seconds=4), "rt_sentiment")
    wait_for(lambda: pat.attempt(view.id).status is AttemptStatus.RUNNING)
    mine = wait_for(lambda: method_pids(under=server.proc.pid))
    server.kill()
    wait_for(lambda: _gone(mine), timeout=10)  # the sandbox died with its server
    server.start()
    done = pat.wait(view.id, poll=0.1, timeout=120)
    assert done.status is AttemptStatus.SCORED and done.tries == 2
    assert pat.quota().attempts_used == 1  # charged once
    assert len(pat.attempts()) == 1  # not duplicated
    server.stop()
    kinds = [k for k, _ in events(server.data_dir, view.id) if k.startswith("attempt_")]
    assert kinds == ["attempt_submitted", "attempt_started", "attempt_requeued",
                     "attempt_started", "attempt_scored"]


def test_a_method_process_killed_from_outside_is_charged_without_evidence(server):
    """bubblewrap reports 137 both for a SIGKILL from outside and for the method's own
    `os._exit(137)`, and an exit code is never evidence of an infrastructure fault (it was free
    compute: each one reran and refunded the attempt). Without evidence the runner observed
    itself — a server stop (the test above), its cgroup's OOM counter, a lost worker — the
    seed is the method's failure, charged; and the runner keeps serving."""
    quinn = server.participant("quinn")
    view = quinn.submit(SLEEPY.format(seconds=6), "rt_sentiment")
    for pid in wait_for(lambda: method_pids(under=server.proc.pid)):
        os.kill(pid, signal.SIGKILL)
    done = quinn.wait(view.id, poll=0.1, timeout=60)
    assert done.status is AttemptStatus.FAILED and done.error_kind == "exit code 137"
    assert done.tries == 1  # not requeued
    assert quinn.quota().attempts_used == 1  # charged
    again = quinn.wait(quinn.submit(SLEEPY.format(seconds=0), "rt_sentiment").id, poll=0.1)
    assert again.status is AttemptStatus.SCORED  # and the runner kept serving

"""The study server with the Ray backend, on a real local Ray cluster (a head started by the test,
two CPUs): attempts score exactly as the local backend would for the same seeds; a Ray worker
killed mid-attempt costs one requeue and no double charge; a cancel reaches the Ray task; the
head stopped and restarted while submissions keep arriving loses nothing."""

from __future__ import annotations

import os
import signal

import httpx
import numpy as np
import pytest

from runner.attempt import run_attempt
from runner.method import Budget
from study.records import AttemptStatus
from tests.e2e.conftest import SLEEPY, VANILLA, make_server
from tests.e2e.test_crash_recovery import events, method_pids, wait_for
from tests.ray_cluster import start_head

pytestmark = pytest.mark.slow

DONE = {AttemptStatus.SCORED, AttemptStatus.FAILED, AttemptStatus.TIMED_OUT}


@pytest.fixture
def ray_server(tmp_path, rt_task):
    head = start_head(tmp_path)
    live = make_server(tmp_path)
    live.start(args=("--backend", "ray", "--ray-address", head.address), slots=2)
    yield live, head
    live.stop()
    head.stop()


def test_attempts_run_on_ray_and_score_as_the_local_backend(ray_server, rt_task, small_pair,
                                                             tmp_path):
    live, _ = ray_server
    pat = live.participant("pat")
    view = pat.wait(pat.submit(VANILLA, "rt_sentiment").id, timeout=300)
    assert view.status is AttemptStatus.SCORED, view.error
    with live.admin() as admin:
        remote = admin.item_results(view.id)["correct"]
    method = tmp_path / "vanilla.py"
    method.write_text(VANILLA)
    local = run_attempt(method, rt_task, seeds=view.seeds, pair=small_pair,
                        budget=Budget(seconds=120))
    labels = np.array(rt_task.labels("test"))
    by_seed = sorted(local.outcomes, key=lambda o: o.seed)  # the server lists seeds in order
    assert remote == [((np.array(o.probs) >= 0.5) == labels).astype(int).tolist()
                      for o in by_seed]


def test_a_ray_worker_killed_mid_attempt_requeues_once_without_double_charge(ray_server):
    live, head = ray_server
    pat = live.participant("pat")
    view = pat.submit(SLEEPY.format(seconds=6), "rt_sentiment")
    wait_for(lambda: pat.attempt(view.id).status is AttemptStatus.RUNNING, timeout=120)
    workers = wait_for(head.worker_pids, timeout=120)
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    done = wait_for(lambda: (v := pat.attempt(view.id)).status in DONE and v, timeout=300)
    assert done.status is AttemptStatus.SCORED, done.error
    assert done.tries == 2
    quota = pat.quota()
    assert quota.attempts_used == 1  # charged once, for the run that scored
    assert quota.compute_seconds_used == pytest.approx(done.wall_seconds, abs=0.01)  # its time
    # Cancelling a running attempt cancels its Ray task: the worker (and its sandbox) goes.
    long = pat.submit(SLEEPY.format(seconds=120), "rt_sentiment")
    wait_for(lambda: pat.attempt(long.id).status is AttemptStatus.RUNNING, timeout=120)
    wait_for(head.worker_pids, timeout=120)
    assert pat.cancel(long.id).status is AttemptStatus.CANCELLED
    wait_for(lambda: not head.worker_pids(), timeout=60)
    wait_for(lambda: not method_pids(), timeout=60)  # the sandbox died with its worker
    live.stop()  # DuckDB has one writer: read the events once the server is down
    kinds = [kind for kind, _ in events(live.data_dir, view.id)]
    assert kinds.count("attempt_requeued") == 1
    assert kinds.count("attempt_scored") == 1


def test_the_head_going_away_queues_submissions_and_they_run_when_it_returns(ray_server):
    live, head = ray_server
    pat = live.participant("pat")
    head.stop()
    report = wait_for(lambda: (r := httpx.get(f"{live.url}/v1/health").json())["warnings"]
                      and r, timeout=120)
    assert report["executor"]["backend"] == "ray"
    assert report["executor"]["connected"] is False
    ids = [pat.submit(VANILLA, "rt_sentiment").id for _ in range(2)]
    assert {pat.attempt(i).status for i in ids} == {AttemptStatus.QUEUED}
    head.start()
    finished = [pat.wait(i, timeout=300) for i in ids]
    assert [v.status for v in finished] == [AttemptStatus.SCORED] * 2
    assert all(v.tries == 1 for v in finished)  # never booked as a fault: they waited

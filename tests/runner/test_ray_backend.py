"""The Ray backend on a real local Ray cluster: same scores as the local backend, a node with
other data refuses to score, the head going away is reported and survived."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from runner.attempt import run_attempt
from runner.method import Budget
from runner.ray_backend import NodeRun, RayAttemptLost, RayExecutor, baseline_fingerprint
from runner.teacher import fixed_baselines
from study.protocol import load_protocol
from tests.conftest import REPO
from tests.ray_cluster import start_head

pytestmark = pytest.mark.slow

VANILLA = REPO / "baselines" / "vanilla.py"


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    head = start_head(tmp_path_factory.mktemp("ray"))
    yield head
    head.stop()


def connected(executor: RayExecutor, timeout: float = 120) -> RayExecutor:
    """Connect as the server does, retrying: a freshly started head's client server (and the
    per-client server it spawns) can take a while on a loaded machine."""
    deadline = time.monotonic() + timeout
    while not executor.ready():
        assert time.monotonic() < deadline, executor.health()
        time.sleep(1)
    return executor


def spec_for(task, pair, *, seeds, task_hash=None, source=None) -> NodeRun:
    protocol = load_protocol(REPO / "tests" / "protocols" / "small.toml")
    return NodeRun(source=source or VANILLA.read_text(), task=task.name,
                   task_hash=task_hash or task.info.content_hash,
                   baseline_hash=baseline_fingerprint(fixed_baselines(task, pair)),
                   protocol_json=protocol.model_dump_json(),
                   attempt_kwargs={"seeds": seeds, "budget": Budget(seconds=120),
                                   "sandbox": True, "salt": "ray-test"})


def test_an_attempt_on_ray_scores_exactly_as_the_local_backend(head, rt_task, small_pair,
                                                               tmp_path: Path):
    executor = connected(RayExecutor(head.address, retry_seconds=1))
    try:
        remote = executor.run(spec_for(rt_task, small_pair, seeds=[5, 6]),
                              cancel=threading.Event(), memory_mb=2048)
    finally:
        executor.close()
    local = run_attempt(VANILLA, rt_task, seeds=[5, 6], pair=small_pair,
                        budget=Budget(seconds=120), salt="ray-test")
    assert remote.status == local.status == "scored"
    assert remote.scores == local.scores
    assert [o.probs for o in remote.outcomes] == [o.probs for o in local.outcomes]


def test_a_node_whose_task_differs_refuses_to_score(head, rt_task, small_pair):
    executor = connected(RayExecutor(head.address, retry_seconds=1))
    try:
        with pytest.raises(RayAttemptLost, match="node refused"):
            executor.run(spec_for(rt_task, small_pair, seeds=[1], task_hash="0" * 64),
                         cancel=threading.Event())
    finally:
        executor.close()


def test_an_unreachable_head_is_reported_not_raised(small_pair):
    executor = RayExecutor("ray://127.0.0.1:9", retry_seconds=0)
    assert executor.ready() is False
    assert executor.health()["connected"] is False
    assert "cannot reach the Ray head" in executor.health()["error"]

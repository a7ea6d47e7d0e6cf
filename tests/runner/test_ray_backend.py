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
from tests.fakes.gpus import make_fake_gpus
from tests.ray_cluster import start_head

pytestmark = pytest.mark.slow

VANILLA = REPO / "baselines" / "vanilla.py"


@pytest.fixture(scope="module")
def fake_gpus(tmp_path_factory):
    return make_fake_gpus(tmp_path_factory.mktemp("machine"), 2)


@pytest.fixture(scope="module")
def head(tmp_path_factory, fake_gpus):
    # The node is a fake GPU machine: Ray is told of two GPUs, its workers find the fake
    # nvidia-smi and device nodes the way they would find real ones.
    head = start_head(tmp_path_factory.mktemp("ray"), gpus=2, env=fake_gpus.env())
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


def spec_for(task, pair, *, seeds, task_hash=None, baseline_hash=None, source=None) -> NodeRun:
    protocol = load_protocol(REPO / "tests" / "protocols" / "small.toml")
    return NodeRun(source=source or VANILLA.read_text(), task=task.name,
                   task_hash=task_hash or task.info.content_hash,
                   baseline_hash=baseline_hash or baseline_fingerprint(fixed_baselines(task, pair)),
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


def test_a_node_whose_task_or_baselines_differ_refuses_to_score(head, rt_task, small_pair):
    executor = connected(RayExecutor(head.address, retry_seconds=1))
    try:
        with pytest.raises(RayAttemptLost, match=r"node refused.*hashes to"):
            executor.run(spec_for(rt_task, small_pair, seeds=[1], task_hash="0" * 64),
                         cancel=threading.Event())
        with pytest.raises(RayAttemptLost, match=r"node refused.*fixed baselines"):
            executor.run(spec_for(rt_task, small_pair, seeds=[1], baseline_hash="0" * 64),
                         cancel=threading.Event())
    finally:
        executor.close()


def test_an_unreachable_head_is_reported_not_raised(small_pair):
    executor = RayExecutor("ray://127.0.0.1:9", retry_seconds=0)
    assert executor.ready() is False
    assert executor.health()["connected"] is False
    assert "cannot reach the Ray head" in executor.health()["error"]


HOLDS_ITS_GPU = """
import os, time

def run(ctx):
    nodes = sorted(n for n in os.listdir("/dev") if n[6:].isdigit() and n.startswith("nvidia"))
    if ctx.device != "cuda" or len(nodes) != 1:
        raise AssertionError(f"not on one GPU: {ctx.device} {nodes}")
    time.sleep(8)
    return [0.5] * len(ctx.texts("test"))
"""


def held_while_running(run) -> dict[str, float]:
    """What the cluster has reserved while `run` runs in a thread: its resources in use."""
    import ray

    total, result = ray.cluster_resources(), {}
    thread = threading.Thread(target=lambda: result.update(value=run()))
    thread.start()
    deadline, used = time.monotonic() + 120, {}
    while time.monotonic() < deadline and not used.get("CPU"):
        free = ray.available_resources()
        used = {k: total[k] - free.get(k, 0.0) for k in ("CPU", "GPU", "memory")}
        time.sleep(0.2)
    thread.join(180)
    return {**used, "result": result.get("value")}


def test_an_attempt_asks_ray_for_its_resources_and_runs_on_the_gpu_ray_gave(
        head, rt_task, small_pair):
    executor = connected(RayExecutor(head.address, retry_seconds=1))
    try:
        spec = spec_for(rt_task, small_pair, seeds=[3], source=HOLDS_ITS_GPU)
        held = held_while_running(lambda: executor.run(
            spec, cancel=threading.Event(), num_cpus=2, num_gpus=1, memory_mb=300))
    finally:
        executor.close()
    assert (held["CPU"], held["GPU"], held["memory"]) == (2, 1, 300 * 2**20)
    (outcome,) = held["result"].outcomes
    assert outcome.status == "ok", (outcome.error, outcome.log_tail)
    assert outcome.gpu_s == pytest.approx(outcome.wall_s)  # one GPU held for the seed


def test_a_gpu_ray_gave_that_the_node_cannot_find_refuses_to_run(head, fake_gpus, rt_task,
                                                                 small_pair):
    smi = fake_gpus.bin_dir / "nvidia-smi"
    listing = smi.read_text()
    smi.write_text("#!/bin/sh\nprintf '7, GPU-other, NVIDIA H100 80GB HBM3, 81559\\n'\n")
    executor = connected(RayExecutor(head.address, retry_seconds=1))
    try:
        with pytest.raises(RayAttemptLost, match=r"node refused.*Ray gave this task GPU"):
            executor.run(spec_for(rt_task, small_pair, seeds=[1]), cancel=threading.Event(),
                         num_gpus=1)
    finally:
        executor.close()
        smi.write_text(listing)

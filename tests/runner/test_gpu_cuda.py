"""On a machine with CUDA (`pytest -m gpu`, run by scripts/gpu_check.sh): a method process on a
GPU slot, in bubblewrap and without, sees exactly one GPU and none of the host; its GPU seconds
and peak GPU memory are recorded; CUDA out-of-memory fails the seed with that reason; a hung
kernel is killed at the deadline; and the slot serves the next run each time.

Self-contained (no conftest fixtures, a bundle of two files), so it runs with `--noconftest`
on a GPU machine that lacks the server's packages."""

from __future__ import annotations

import json
import textwrap

import pytest

from runner.gpu import resolve_slots
from runner.method import Budget
from runner.method.launch import run_method_process

pytestmark = pytest.mark.gpu
N_TEST = 10


@pytest.fixture(scope="module")
def slot():
    return resolve_slots("0")[0]  # the real nvidia-smi, the real /dev


@pytest.fixture
def run(tmp_path, slot):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "task.json").write_text(json.dumps({
        "name": "gpu-check", "kind": "classify", "description": "", "label_names": ["0", "1"],
        "sizes": {"train": 0, "test": N_TEST}}))
    (bundle / "models.json").write_text("{}")
    count = iter(range(100))

    def go(source: str, *, sandbox: bool = True, seconds: float = 120):
        n = next(count)
        method = tmp_path / f"m{n}" / "method.py"
        method.parent.mkdir()
        method.write_text(textwrap.dedent(source))
        return run_method_process(method, bundle, tmp_path / f"run{n}", seed=n, slot=slot,
                                  budget=Budget(seconds=seconds, memory_mb=8192),
                                  sandbox=sandbox)

    return go


ON_ONE_GPU = f"""
import os
import torch

def run(ctx):
    assert ctx.device == "cuda", ctx.device
    assert torch.cuda.is_available() and torch.cuda.device_count() == 1
    x = torch.ones(4096, 4096, device="cuda")  # 64 MiB
    assert float((x @ x)[0, 0]) == 4096.0
    if {{sandboxed}}:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
        assert len(pids) <= 3, pids  # the host's processes are not there
        gpus = "/proc/driver/nvidia/gpus"
        assert not os.path.exists(gpus) or os.listdir(gpus) == [], os.listdir(gpus)
        others = [n for n in os.listdir("/dev") if n[6:].isdigit() and n.startswith("nvidia")]
        assert len(others) == 1, others
    return [0.5] * {N_TEST}
"""


@pytest.mark.parametrize("sandbox", [True, False])
def test_a_method_runs_on_exactly_its_gpu(run, sandbox):
    result = run(ON_ONE_GPU.format(sandboxed=sandbox), sandbox=sandbox)
    assert result.status == "ok", (result.error, result.traceback, result.log_tail)
    assert result.peak_gpu_mb is not None and result.peak_gpu_mb >= 64
    assert result.gpu_s == pytest.approx(result.wall_s)


def test_cuda_out_of_memory_fails_the_seed_and_the_next_run_gets_the_whole_gpu(run):
    oom = run("""
        import torch
        def run(ctx):
            torch.empty(2**50, dtype=torch.uint8, device="cuda")
    """)
    assert oom.status == "error" and oom.error_kind == "gpu_memory", (oom.error, oom.log_tail)
    assert "out of GPU memory" in oom.error
    after = run(ON_ONE_GPU.format(sandboxed=True))
    assert after.status == "ok", (after.error, after.log_tail)


def test_a_hung_kernel_is_killed_at_the_deadline_and_the_slot_serves_on(run):
    hung = run("""
        import torch
        def run(ctx):
            torch.cuda._sleep(2**62)  # spins on the GPU far past any budget
            torch.cuda.synchronize()
    """, seconds=10)
    assert hung.status == "timeout", (hung.error, hung.log_tail)
    after = run(ON_ONE_GPU.format(sandboxed=True))
    assert after.status == "ok", (after.error, after.log_tail)


def test_finetune_learns_on_cuda_in_bf16(tmp_path):
    """The LM path on the GPU: the tiny strong model, LoRA, bf16, the keyword rule learnt."""
    import numpy as np

    from runner.lib.finetune import train_lm_classifier
    from runner.models.tiny import build_tiny
    from tests.lm_data import write_keyword_task

    folder = write_keyword_task(tmp_path / "kw", noise=0.0)
    rows = {name: [json.loads(line) for line in (folder / name).read_text().splitlines()]
            for name in ("train_unlabel.jsonl", "test.jsonl")}
    (train, test) = ([r["text"] for r in rows[n]] for n in ("train_unlabel.jsonl", "test.jsonl"))
    y_train = np.array([r["label"] for r in rows["train_unlabel.jsonl"]])
    y_test = np.array([r["label"] for r in rows["test.jsonl"]])
    model = tmp_path / "tiny-qwen3"
    model.mkdir()
    build_tiny("tiny-qwen3", model)
    clf = train_lm_classifier(model, train, y_train, seed=3, device="cuda", epochs=3, lr=3e-3,
                              batch_size=16, max_length=32)
    import torch

    assert clf.lm.get_input_embeddings().weight.dtype == torch.bfloat16
    accuracy = ((clf.predict_proba(test) >= 0.5) == y_test).mean()
    assert accuracy >= 0.9, accuracy

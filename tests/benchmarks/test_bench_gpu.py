"""The prepared GPU benchmark runs end to end on the tiny models on a CPU (`--smoke`), so it is
ready the day a GPU machine runs it; without CUDA the full run refuses clearly."""

import json
import subprocess
import sys

import pytest

from benchmarks.report import PATH as BENCHMARKS_MD
from tests.conftest import REPO

FIGURES = {"finetune_tokens_per_s", "plain_finetune_tokens_per_s", "finetune_speedup",
           "cache_tokens_per_s", "plain_forward_tokens_per_s", "weak_label_tokens_per_s",
           "vanilla_seed_seconds_aar_chat", "wall_seconds"}


def bench(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmarks.bench_gpu", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout,
                          env={"PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": "",
                               "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "2"})


@pytest.mark.slow
def test_smoke_runs_every_figure_end_to_end(tmp_path):
    before = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else None
    out = tmp_path / "figures.jsonl"
    done = bench("--smoke", "--json", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    printed = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert printed == [json.loads(line) for line in out.read_text().splitlines()]
    by = {f["figure"]: f for f in printed}
    assert set(by) == FIGURES
    assert all(f["value"] > 0 and f["device"] == "CPU" for f in printed)
    seed = by["vanilla_seed_seconds_aar_chat"]
    assert seed["aar_seconds"] == 6350 and seed["train_tokens"] > 6826 * 100
    # The speed-up is the ratio of the two figures measured in this run, not a constant.
    ratio = by["finetune_tokens_per_s"]["value"] / by["plain_finetune_tokens_per_s"]["value"]
    assert by["finetune_speedup"]["value"] == pytest.approx(ratio, abs=0.01)
    assert (BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else None) == before


def test_without_cuda_the_full_run_says_to_use_smoke():
    done = bench(timeout=120)
    assert done.returncode == 2
    assert "needs a CUDA GPU" in done.stderr and "--smoke" in done.stderr


@pytest.mark.parametrize(("shape", "billions"), [("qwen1.5-0.5b", 0.464), ("qwen3-4b", 4.022)])
def test_the_benchmark_shapes_are_the_published_models(shape, billions):
    """Built on the meta device (no memory): the parameter counts Qwen publishes."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from benchmarks.lm_workload import SHAPES

    raw = dict(SHAPES[shape])
    config = AutoConfig.for_model(raw.pop("model_type"), **raw)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    assert sum(p.numel() for p in model.parameters()) / 1e9 == pytest.approx(billions, abs=0.001)


def test_synthetic_lengths_look_like_aar_chat():
    import numpy as np

    from benchmarks.lm_workload import chat_lengths

    lengths = chat_lengths(20_000, np.random.default_rng(1))
    assert 285 <= np.median(lengths) <= 315  # median about 300 tokens
    assert 1700 <= np.percentile(lengths, 99) <= 2048 and lengths.max() == 2048  # tail to 2k
    assert lengths.min() >= 8

"""The prepared GPU benchmark runs end to end on the tiny models on a CPU (`--smoke`, through
scripts/gpu_check.sh --dry), so it is ready the day a GPU machine runs it; without CUDA the full
run refuses clearly."""

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
def test_smoke_runs_every_figure_end_to_end(tmp_path, monkeypatch):
    """Through the device script's dry mode: the same plumbing a GPU machine runs (its own
    python, --noconftest, results under $OUT), with the benchmark's --smoke."""
    before = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else None
    out = tmp_path / "out"
    done = subprocess.run(["bash", "scripts/gpu_check.sh", "--dry"], cwd=REPO,
                          capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": "",
                               "OMP_NUM_THREADS": "2", "PYTHON": sys.executable,
                               "OUT": str(out)})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (out / "summary.txt").read_text() == "bench_gpu 0\npytest -m gpu 0\n"
    collected = (out / "pytest_gpu.log").read_text()
    assert "test_finetune_learns_on_cuda_in_bf16" in collected and "5 tests collected" in collected
    assert "torch" in (out / "machine.txt").read_text()
    log = (out / "bench_gpu.log").read_text()
    printed = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert printed == [json.loads(line) for line in (out / "bench_gpu.jsonl").read_text()
                       .splitlines()]
    by = {f["figure"]: f for f in printed}
    assert set(by) == FIGURES
    assert all(f["value"] > 0 and f["device"] == "CPU" for f in printed)
    seed = by["vanilla_seed_seconds_aar_chat"]
    assert seed["aar_seconds"] == 6350 and seed["train_tokens"] > 6826 * 100
    # The speed-up is the ratio of the two figures measured in this run, not a constant.
    ratio = by["finetune_tokens_per_s"]["value"] / by["plain_finetune_tokens_per_s"]["value"]
    assert by["finetune_speedup"]["value"] == pytest.approx(ratio, abs=0.01)
    assert (BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else None) == before
    assert_the_section_a_gpu_run_writes(printed, tmp_path, monkeypatch)


def assert_the_section_a_gpu_run_writes(figures: list[dict], tmp_path, monkeypatch) -> None:
    """What a full run on a GPU writes into BENCHMARKS.md, from these figures: its own
    section, naming the device, every target judged, the seed estimate beside AAR's 6,350 s."""
    from benchmarks import bench_gpu, report

    page = tmp_path / "BENCHMARKS.md"
    page.write_text(report.HEADER + "\n## GPU (issue 15)\n\n_Not measured yet._\n\n"
                    "## Other\n\nkept\n")
    monkeypatch.setattr(report, "PATH", page)
    named = [{**f, "device": "NVIDIA H100 80GB HBM3"} for f in figures]
    report.write_section("GPU (issue 15)", bench_gpu.markdown(named, wall=240.0))
    text = page.read_text()
    section = text.split("## GPU (issue 15)", 1)[1].split("## Other", 1)[0]
    assert "Not measured yet" not in text and "## Other\n\nkept" in text
    assert "GPU: **NVIDIA H100 80GB HBM3**" in section
    seed = next(f for f in figures if f["figure"] == "vanilla_seed_seconds_aar_chat")
    assert f"**{seed['value']:,.0f} s** estimated, against AAR's 6,350 s" in section
    for target in ("16,000", "1.6", "55,000", "280,000"):
        assert f"target ≥ {target}: " in section, target
    ours = next(f for f in figures if f["figure"] == "finetune_tokens_per_s")["value"]
    assert f"training, Qwen3-4B, batch 16: **{ours:,}** — target ≥ 16,000: " in section


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

"""The language-model testbed on CPU (the tiny-lm pair): LoRA training and prediction rates of
`train_lm_classifier`, the activation cache's encoding rate, and what one torch thread buys a
tiny model against the process's default (the reason `runner.lib.lm.cpu_threads_for` exists).

Usage: python benchmarks/bench_lm_cpu.py   (about a minute on 2 cores; rewrites its section)
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.report import write_section
from runner.lib import lm as lm_module
from runner.lib.finetune import train_lm_classifier
from runner.lm_encoder import CausalLMEncoder
from runner.models import resolve_model

TEXTS = 256
SHIPPED = lm_module.SINGLE_THREAD_BELOW
RECIPE = {"epochs": 1, "lr": 3e-3, "batch_size": 16, "max_length": 64}


def keyword_texts(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    from tests.lm_data import write_keyword_task  # the tests' synthetic task, same lengths

    with tempfile.TemporaryDirectory() as tmp:
        folder = write_keyword_task(Path(tmp), seed=seed,
                                    sizes={"train_label.jsonl": 2, "train_unlabel.jsonl": n,
                                           "test.jsonl": 2})
        parsed = [json.loads(line) for line in
                  (folder / "train_unlabel.jsonl").read_text().splitlines()]
    return [r["text"] for r in parsed], np.array([r["label"] for r in parsed], dtype=float)


def rates(model: str, texts: list[str], labels: np.ndarray) -> tuple[float, float, float]:
    """(training texts/s, prediction texts/s, activation-cache texts/s); training includes
    loading the (8 MB) model and wrapping it with LoRA, as every teacher and method run does."""
    folder = resolve_model(model).path
    started = time.perf_counter()
    clf = train_lm_classifier(folder, texts, labels, **RECIPE)
    train = len(texts) / (time.perf_counter() - started)
    started = time.perf_counter()
    clf.predict_proba(texts)
    predict = len(texts) / (time.perf_counter() - started)
    encoder = CausalLMEncoder(folder, max_length=64)
    encoder.embed(texts[:32])
    started = time.perf_counter()
    encoder.embed(texts)
    encode = len(texts) / (time.perf_counter() - started)
    return train, predict, encode


def measure(model: str, texts, labels, *, repeats: int = 3) -> dict[str, list[float]]:
    """Both settings in turn within each repeat, so the other work on a shared machine weighs
    on both alike."""
    train_lm_classifier(resolve_model(model).path, texts[:32], labels[:32], **RECIPE)  # warm-up
    medians: dict[str, list[tuple[float, float, float]]] = {"one": [], "default": []}
    for _ in range(repeats):
        for setting, below in (("one", SHIPPED), ("default", 0)):
            lm_module.SINGLE_THREAD_BELOW = below  # 0: never drop to one thread
            medians[setting].append(rates(model, texts, labels))
    lm_module.SINGLE_THREAD_BELOW = SHIPPED
    return {k: [statistics.median(r[i] for r in v) for i in range(3)]
            for k, v in medians.items()}


def main() -> None:
    texts, labels = keyword_texts(TEXTS)
    rows = ["| model | torch threads | train texts/s | predict texts/s | "
            "activation cache texts/s |", "|---|---|---|---|---|"]
    for model in ("tiny-qwen2", "tiny-qwen3"):
        got = measure(model, texts, labels)
        for setting, label in (("one", "1 (as shipped)"),
                               ("default", f"{torch.get_num_threads()} (torch default)")):
            rows.append(f"| {model} | {label} | " + " | ".join(f"{v:.0f}" for v in got[setting])
                        + " |")
    body = "\n".join([
        f"`train_lm_classifier` (LoRA r=32 on every linear layer, head readout, batch 16, "
        f"max 64 tokens, one epoch, model load included) on {TEXTS} synthetic keyword texts of "
        "11–12 tokens, then `predict_proba` and the activation cache's "
        "`CausalLMEncoder.embed` on the same texts; median of 3 repeats, the two thread "
        "settings alternating within each. Expect wide swings on a shared machine: the "
        "development box ran other sessions' tests at the same time.", "", *rows])
    write_section("LM testbed on CPU (issue 14)", body)
    print(body)


if __name__ == "__main__":
    main()

"""GPU speed of the LM testbed: how many experiments a GPU-hour buys.

Usage: python -m benchmarks.bench_gpu [--smoke] [--json FILE]   (scripts/bench_gpu.sh)

Random-initialised models of the real shapes (Qwen1.5-0.5B weak, Qwen3-4B strong; nothing is
downloaded) on synthetic texts with AAR chat's length distribution. Figures, one JSON line each,
all in real (non-padding) tokens per second:
- `ctx.lib.finetune`'s trainer (length-bucketed batches, SDPA, bf16, last-token readout,
  checkpointing only after an OOM) against a plain transformers + peft loop of the same model in
  the same run (sequence classification head, random batches padded to their longest text,
  gradient checkpointing on, batch 16); targets on an H100: ≥ 16,000 tokens/s and ≥ 1.6×;
- activation caching at the Qwen3-4B shape (the bundle's LM features) against a plain forward
  (random batches of 32, padded); target ≥ 55,000 tokens/s;
- weak labelling at the Qwen1.5-0.5B shape; target ≥ 280,000 tokens/s;
- the estimated seconds of one vanilla W2S seed at AAR chat size, beside AAR's 6,350 s.
Without CUDA only `--smoke` runs: the tiny CI pair on the CPU, end to end, in well under a minute.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.lm_workload import AAR_CHAT, build_random_lm, chat_lengths, synthetic_texts
from runner.lib.finetune import LoraSpec, train_lm_classifier
from runner.lib.lm import encode_batch, load_causal_lm, load_tokenizer
from runner.lm_encoder import CausalLMEncoder


@dataclass(frozen=True)
class Plan:
    weak: str
    strong: str
    train_items: int  # fine-tuning: ours runs two epochs over these, the plain loop one
    cache_items: int
    label_items: int
    batch: int = 16
    max_length: int = 512
    lora_r: int = 32


FULL = Plan(weak="qwen1.5-0.5b", strong="qwen3-4b", train_items=512, cache_items=2048,
            label_items=4096)
SMOKE = Plan(weak="tiny-qwen2", strong="tiny-qwen3", train_items=48, cache_items=48,
             label_items=64)
TARGETS = {"finetune_tokens_per_s": 16_000, "finetune_speedup": 1.6,
           "cache_tokens_per_s": 55_000, "weak_label_tokens_per_s": 280_000}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _fresh(device: str) -> None:
    """Between phases: the last phase's model gone (peft makes reference cycles), its cached
    blocks returned, the peak counter reset."""
    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_mb(device: str) -> float | None:
    if not device.startswith("cuda"):
        return None
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**20)


def timed_phase(device: str, fn: Callable[..., Any], *args) -> tuple[Any, float | None]:
    """(what the phase measured, its peak GPU memory in MiB)."""
    _fresh(device)
    value = fn(*args)
    return value, _peak_mb(device)


def real_tokens(tokenizer, texts: list[str], max_length: int) -> np.ndarray:
    enc = tokenizer(texts, truncation=True, max_length=max_length)
    return np.array([len(ids) for ids in enc["input_ids"]])


# ------------------------------------------------------------------------------ fine-tuning
def ours_finetune(folder: Path, texts: list[str], labels: np.ndarray, plan: Plan,
                  device: str, tokens: int) -> tuple[float, bool]:
    """Real tokens/s of the second of two epochs (every batch once, load and warm-up excluded),
    and whether the trainer had to switch activation checkpointing on (after an OOM)."""
    stamps: list[float] = []
    clf = train_lm_classifier(folder, texts, labels, seed=0, device=device, epochs=2,
                              batch_size=plan.batch, max_length=plan.max_length,
                              lora=LoraSpec(r=plan.lora_r, alpha=plan.lora_r),
                              on_step=lambda step, total, loss: stamps.append(
                                  time.perf_counter()))
    per_epoch = len(stamps) // 2
    return (tokens / (stamps[-1] - stamps[per_epoch - 1]),
            _checkpointing(clf.lm))


def _checkpointing(model) -> bool:
    """transformers 5 renamed the flag; older releases know only the first name."""
    for name in ("is_activation_checkpointing", "is_gradient_checkpointing"):
        if hasattr(type(model), name) or hasattr(model, name):
            return bool(getattr(model, name))
    return False


def plain_finetune(folder: Path, texts: list[str], labels: np.ndarray, plan: Plan,
                   device: str, warmup: int = 2) -> float:
    """The loop most people write: AutoModelForSequenceClassification + peft LoRA, random
    batches padded to their longest text, gradient checkpointing on."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification

    tokenizer = load_tokenizer(folder)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model = AutoModelForSequenceClassification.from_pretrained(
        folder, num_labels=2, dtype=dtype, attn_implementation="sdpa", local_files_only=True)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=plan.lora_r,
                                             lora_alpha=plan.lora_r,
                                             target_modules="all-linear")).to(device)
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    order = np.random.default_rng(0).permutation(len(texts))
    hard = torch.as_tensor((labels >= 0.5).astype(np.int64))
    model.train()
    counted, started = 0, 0.0
    for step, start in enumerate(range(0, len(order), plan.batch)):
        idx = order[start:start + plan.batch]
        batch = encode_batch(tokenizer, [texts[i] for i in idx], max_length=plan.max_length,
                             device=device)
        loss = model(**batch, labels=hard[idx].to(device)).loss
        loss.backward()
        optim.step()
        optim.zero_grad(set_to_none=True)
        _sync(device)
        if step == warmup - 1:
            started = time.perf_counter()
        elif step >= warmup:
            counted += int(batch["attention_mask"].sum())
    return counted / (time.perf_counter() - started)


# --------------------------------------------------------------------- forward-only passes
def ours_cache(folder: Path, texts: list[str], plan: Plan, device: str, tokens: int) -> float:
    """The activation cache's encoder (length-sorted batches, decoder only, inference mode)."""
    encoder = CausalLMEncoder(folder, max_length=plan.max_length, device=device)
    encoder.embed(texts[:32])  # warm-up: kernels, allocator
    _sync(device)
    started = time.perf_counter()
    encoder.embed(texts)
    _sync(device)
    return tokens / (time.perf_counter() - started)


def plain_forward(folder: Path, texts: list[str], plan: Plan, device: str,
                  batch: int = 32) -> float:
    """Random batches of 32 padded to their longest text through the decoder."""
    import torch

    model, tokenizer = load_causal_lm(folder, device)
    decoder = model.get_decoder()
    counted, started = 0, 0.0
    with torch.inference_mode():
        for step, start in enumerate(range(0, len(texts), batch)):
            enc = encode_batch(tokenizer, texts[start:start + batch],
                               max_length=plan.max_length, device=device)
            decoder(**enc).last_hidden_state[:, -1].float().cpu()
            if step == 0:
                started = time.perf_counter()
            else:
                counted += int(enc["attention_mask"].sum())
    return counted / (time.perf_counter() - started)


def weak_labelling(folder: Path, texts: list[str], labels: np.ndarray, plan: Plan,
                   device: str, tokens: int) -> float:
    """A trained weak classifier labelling texts (what the teacher does to `train`)."""
    clf = train_lm_classifier(folder, texts[:plan.batch], labels[:plan.batch], device=device,
                              batch_size=plan.batch, max_length=plan.max_length)
    clf.predict_proba(texts[:64])  # warm-up
    _sync(device)
    started = time.perf_counter()
    clf.predict_proba(texts)
    _sync(device)
    return tokens / (time.perf_counter() - started)


# ------------------------------------------------------------------------------ the run
def seed_estimate(train_tps: float, infer_tps: float, *, epochs: int, max_length: int,
                  rng: np.random.Generator) -> dict:
    """Seconds of one vanilla W2S seed at AAR chat size from the measured throughputs: the
    strong model trained `epochs` times over train, then predicting test."""
    train = np.minimum(chat_lengths(AAR_CHAT["train"], rng), max_length).sum()
    test = np.minimum(chat_lengths(AAR_CHAT["test"], rng), max_length).sum()
    seconds = epochs * train / train_tps + test / infer_tps
    return {"value": round(float(seconds), 1), "unit": "s", "epochs": epochs,
            "train_tokens": int(train), "test_tokens": int(test),
            "aar_seconds": AAR_CHAT["seconds_per_seed"],
            "aar_over_ours": round(AAR_CHAT["seconds_per_seed"] / float(seconds), 1)}


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(0)
    return "CPU"


def measure(plan: Plan, device: str, workdir: Path, emit: Callable[[dict], None]) -> None:
    rng = np.random.default_rng(0)
    weak = build_random_lm(plan.weak, workdir / "weak", device)
    strong = build_random_lm(plan.strong, workdir / "strong", device)
    tokenizer = load_tokenizer(strong)
    n = max(plan.train_items, plan.cache_items, plan.label_items)
    texts = synthetic_texts(chat_lengths(n, rng), tokenizer, rng)
    labels = rng.uniform(size=n)
    base = {"device": device_name(device)}

    train = texts[:plan.train_items]
    train_tokens = int(real_tokens(tokenizer, train, plan.max_length).sum())
    (ours, checkpointing), peak = timed_phase(device, ours_finetune, strong, train,
                                              labels[:plan.train_items], plan, device,
                                              train_tokens)
    model = {"model": plan.strong, "batch": plan.batch, "max_length": plan.max_length,
             "lora_r": plan.lora_r}
    emit({"figure": "finetune_tokens_per_s", "value": round(ours), "peak_gpu_mb": peak,
          "checkpointing_after_oom": checkpointing, **model, **base})
    plain, peak = timed_phase(device, plain_finetune, strong, train, labels[:plan.train_items],
                              plan, device)
    emit({"figure": "plain_finetune_tokens_per_s", "value": round(plain), "peak_gpu_mb": peak,
          **model, **base})
    emit({"figure": "finetune_speedup", "value": round(ours / plain, 2), **model, **base})

    cache = texts[:plan.cache_items]
    cache_tokens = int(real_tokens(tokenizer, cache, plan.max_length).sum())
    cached, peak = timed_phase(device, ours_cache, strong, cache, plan, device, cache_tokens)
    emit({"figure": "cache_tokens_per_s", "value": round(cached), "model": plan.strong,
          "peak_gpu_mb": peak, **base})
    forward, peak = timed_phase(device, plain_forward, strong, cache, plan, device)
    emit({"figure": "plain_forward_tokens_per_s", "model": plan.strong, "batch": 32,
          "value": round(forward), "peak_gpu_mb": peak, **base})

    label = texts[:plan.label_items]
    label_tokens = int(real_tokens(tokenizer, label, plan.max_length).sum())
    labelled, peak = timed_phase(device, weak_labelling, weak, label, labels[:plan.label_items],
                                 plan, device, label_tokens)
    emit({"figure": "weak_label_tokens_per_s", "model": plan.weak, "value": round(labelled),
          "peak_gpu_mb": peak, **base})
    emit({"figure": "vanilla_seed_seconds_aar_chat", "model": plan.strong, **base,
          **seed_estimate(ours, cached, epochs=1, max_length=plan.max_length, rng=rng)})


def markdown(figures: list[dict], wall: float) -> str:
    by = {f["figure"]: f for f in figures}
    gpu = figures[0]["device"]

    def line(name: str, label: str) -> str:
        target = TARGETS.get(name)
        met = "" if target is None else (" — target ≥ {:,}: {}".format(
            target, "met" if by[name]["value"] >= target else "**not met**"))
        return f"- {label}: **{by[name]['value']:,}**{met}"

    est = by["vanilla_seed_seconds_aar_chat"]
    return "\n".join([
        f"GPU: **{gpu}**. Random-initialised Qwen3-4B and Qwen1.5-0.5B shapes, synthetic texts "
        "with AAR chat's lengths (median ≈ 300 tokens, tail to 2k, truncated at 512); real "
        f"(non-padding) tokens per second. Whole run {wall:.0f} s.", "",
        line("finetune_tokens_per_s", "`ctx.lib.finetune` LoRA training, Qwen3-4B, batch 16"),
        line("plain_finetune_tokens_per_s", "plain transformers + peft loop, same model and run "
             "(padded batches of 16, gradient checkpointing)"),
        line("finetune_speedup", "speed-up over the plain loop"),
        line("cache_tokens_per_s", "activation caching, Qwen3-4B"),
        line("plain_forward_tokens_per_s", "plain forward, random padded batches of 32"),
        line("weak_label_tokens_per_s", "weak labelling, Qwen1.5-0.5B"),
        f"- one vanilla W2S seed at AAR chat size ({AAR_CHAT['train']:,} train, "
        f"{AAR_CHAT['test']:,} test, {est['epochs']} epoch): **{est['value']:,.0f} s** "
        f"estimated, against AAR's {AAR_CHAT['seconds_per_seed']:,} s "
        f"({est['aar_over_ours']}× fewer).",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true",
                        help="tiny models, on the CPU unless CUDA is there; no BENCHMARKS.md")
    parser.add_argument("--json", type=Path, help="also write the JSON lines to this file")
    args = parser.parse_args(argv)
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # load reports and deprecation notes would bury the figures

    cuda = torch.cuda.is_available()
    if not cuda and not args.smoke:
        print("bench_gpu needs a CUDA GPU (torch sees none); `--smoke` runs the tiny models on "
              "the CPU", file=sys.stderr)
        return 2
    figures: list[dict] = []

    def emit(figure: dict) -> None:
        figures.append(figure)
        print(json.dumps(figure), flush=True)
        if args.json:
            with args.json.open("a") as fh:
                fh.write(json.dumps(figure) + "\n")

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
        measure(SMOKE if args.smoke else FULL, "cuda" if cuda else "cpu", Path(tmp), emit)
    wall = time.perf_counter() - started
    emit({"figure": "wall_seconds", "value": round(wall, 1), "device": figures[0]["device"]})
    if not args.smoke:
        from benchmarks.report import write_section

        write_section("GPU (issue 15)", markdown(figures, wall))
    return 0


if __name__ == "__main__":
    sys.exit(main())

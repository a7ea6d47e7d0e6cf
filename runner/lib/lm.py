"""Loading a causal LM and its tokenizer the same way everywhere: the teacher, the activation
cache and a method's `ctx.strong_model()` must read one checkpoint identically.

torch and transformers are imported inside the functions: `ctx.lib` stays numpy-only at import.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

# Below this many hidden units a CPU matmul is too small to split: on the loaded two-core machine
# one thread trained the tiny models ~17× and predicted ~10× faster than two
# (benchmarks/bench_lm_cpu.py, BENCHMARKS.md "LM testbed on CPU").
SINGLE_THREAD_BELOW = 256


def torch_dtype(device: str):
    """bf16 on CUDA (as the AAR release trains), float32 on CPU (bf16 matmuls crawl there)."""
    import torch

    return torch.bfloat16 if str(device).startswith("cuda") else torch.float32


def load_tokenizer(folder: Path):
    """The tokenizer class the checkpoint names, right-padded, with a pad token.

    transformers maps some model types (qwen2) to their own tokenizer class whatever the folder
    says; honouring `tokenizer_class` keeps a checkpoint that ships another vocabulary (the tiny
    models' BERT one) tokenising as it was built.
    """
    import transformers

    meta_path = Path(folder) / "tokenizer_config.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    cls = getattr(transformers, str(meta.get("tokenizer_class", "")), None)
    loader = cls if cls is not None else transformers.AutoTokenizer
    tokenizer = loader.from_pretrained(folder, local_files_only=True)
    tokenizer.padding_side = "right"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(folder: Path, device: str = "cpu"):
    """A fresh (model, tokenizer): SDPA attention, bf16 on CUDA, in train mode off."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a bar per load would fill the attempt's log tail
    model = AutoModelForCausalLM.from_pretrained(
        folder, local_files_only=True, dtype=torch_dtype(device), attn_implementation="sdpa")
    return model.to(device).eval(), load_tokenizer(folder)


def encode_batch(tokenizer, texts: list[str], *, max_length: int, device: str) -> dict:
    """Padded input_ids and attention_mask only (some tokenizers add fields LMs refuse)."""
    batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length,
                      return_tensors="pt")
    return {"input_ids": batch["input_ids"].to(device),
            "attention_mask": batch["attention_mask"].to(device)}


def last_token_states(hidden, attention_mask):
    """Each row's hidden state at its last real token (right padding)."""
    import torch

    last = attention_mask.sum(dim=1) - 1
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def mean_states(hidden, attention_mask):
    mask = attention_mask[..., None].to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)


def length_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Indices grouped by similar length: padding is most of the cost of short texts."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


@contextmanager
def cpu_threads_for(model, device: str):
    """One torch thread while a tiny model runs on CPU; the process's setting is restored."""
    import torch

    hidden = model.config.get_text_config().hidden_size
    if str(device).startswith("cuda") or hidden >= SINGLE_THREAD_BELOW:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)

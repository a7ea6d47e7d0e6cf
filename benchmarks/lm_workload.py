"""The GPU benchmark's workload: random-initialised models of the real shapes and synthetic texts
whose token lengths look like AAR's chat-preference data. Nothing is downloaded.

The configs are Qwen1.5-0.5B-Chat's and Qwen3-4B-Base's as published (their `config.json`), with
the tokenizer swapped for the BERT one the tiny models use: throughput depends on the shapes and
the token counts, not on which words the ids stand for.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from runner.models.tiny import tiny_config, write_tokenizer

BERT_IDS = {"bos_token_id": 101, "eos_token_id": 102, "pad_token_id": 0}

SHAPES: dict[str, dict] = {
    "qwen1.5-0.5b": {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"],
                     "hidden_size": 1024, "intermediate_size": 2816, "num_hidden_layers": 24,
                     "num_attention_heads": 16, "num_key_value_heads": 16,
                     "max_position_embeddings": 32768, "max_window_layers": 21,
                     "rms_norm_eps": 1e-6, "rope_theta": 1_000_000.0,
                     "tie_word_embeddings": True, "vocab_size": 151936, **BERT_IDS},
    "qwen3-4b": {"model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"],
                 "hidden_size": 2560, "intermediate_size": 9728, "num_hidden_layers": 36,
                 "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
                 "max_position_embeddings": 32768, "rms_norm_eps": 1e-6,
                 "rope_theta": 1_000_000.0, "tie_word_embeddings": True, "vocab_size": 151936,
                 **BERT_IDS},
    # --smoke: the CI pair, so the whole benchmark runs on two CPU cores in seconds.
    "tiny-qwen2": tiny_config("tiny-qwen2"),
    "tiny-qwen3": tiny_config("tiny-qwen3"),
}

# AAR chat preference: median about 300 tokens (prompt plus two answers), a tail to 2k.
MEDIAN_TOKENS = 300
TAIL_TOKENS = 2048
SIGMA = float(np.log(2000 / MEDIAN_TOKENS) / 2.326)  # the 99th percentile near 2,000 tokens
AAR_CHAT = {"train": 6826, "test": 1263, "seconds_per_seed": 6350}


def chat_lengths(n: int, rng: np.random.Generator) -> np.ndarray:
    """Token lengths (with the two special tokens) drawn log-normally like AAR chat."""
    raw = rng.lognormal(np.log(MEDIAN_TOKENS), SIGMA, size=n)
    return np.clip(np.round(raw), 8, TAIL_TOKENS).astype(int)


def synthetic_texts(lengths: np.ndarray, tokenizer, rng: np.random.Generator) -> list[str]:
    """Texts of whole vocabulary words, each one token, so a text of `k` words is k+2 tokens."""
    words = np.array(sorted(w for w in tokenizer.get_vocab()
                            if w.isalpha() and w.isascii() and len(w) >= 3))
    return [" ".join(rng.choice(words, size=max(1, int(k) - 2))) for k in lengths]


def build_random_lm(shape: str, dest: Path, device: str) -> Path:
    """Write a random-initialised causal LM of `shape` (bf16 on CUDA) plus the tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    raw = dict(SHAPES[shape])
    config = AutoConfig.for_model(raw.pop("model_type"), **raw)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    torch.manual_seed(0)
    with torch.device(device):  # initialise where it will run: a 4B model in seconds
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest, safe_serialization=True)
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    write_tokenizer(dest)
    return dest

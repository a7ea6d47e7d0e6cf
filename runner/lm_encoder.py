"""The activation cache's reader for causal LMs: each text's final hidden state at its last real
token, next to the mean over its tokens — one (n, 2·hidden) row per text, so the probe baselines
(`train_head` on `ctx.strong_features`) run unchanged on an LM pair.

Imported by the method process too (ctx.embed on an LM pair gives the same vectors).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from runner.encoders import Encoder
from runner.lib.lm import (
    cpu_threads_for,
    encode_batch,
    last_token_states,
    load_causal_lm,
    mean_states,
)


class CausalLMEncoder(Encoder):
    def __init__(self, folder: Path, *, max_length: int, device: str = "cpu") -> None:
        import torch

        super().__init__(normalize=False, max_length=max_length)
        self.torch, self.device = torch, device
        self.model, self.tokenizer = load_causal_lm(folder, device)
        self.decoder = self.model.get_decoder()

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        batch = encode_batch(self.tokenizer, texts, max_length=self.max_length,
                             device=self.device)
        with self.torch.inference_mode(), cpu_threads_for(self.model, self.device):
            hidden = self.decoder(**batch).last_hidden_state
        mask = batch["attention_mask"]
        both = self.torch.cat([last_token_states(hidden, mask), mean_states(hidden, mask)], -1)
        return both.float().cpu().numpy()


def default_device() -> str:
    """CUDA when the process was given a GPU, else CPU (asked at call time, never at import)."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"

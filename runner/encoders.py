"""Frozen sentence encoders: ONNX or Hugging Face weights, mean pooling, optional L2 norm.

Imported by the method process too (ctx.embed), so it knows nothing of the server side.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

ProgressFn = Callable[[int], None]


def _mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    mask = mask[..., None].astype(hidden.dtype)
    return (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)


def _length_order(texts: Sequence[str]) -> np.ndarray:
    # Batching texts of similar length cuts padding, which is most of the cost on short snippets.
    return np.argsort([len(t) for t in texts], kind="stable")


class Encoder(ABC):
    """Shared batching; subclasses implement `_encode_batch(texts) -> (n, dim) float32`."""

    def __init__(self, *, normalize: bool, max_length: int) -> None:
        self.normalize = normalize
        self.max_length = max_length

    @abstractmethod
    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        """Pooled (not yet normalised) vectors of one batch."""

    def embed(self, texts: Sequence[str], *, batch_size: int = 32,
              progress: ProgressFn | None = None) -> np.ndarray:
        order = _length_order(texts)
        out: list[np.ndarray] = []
        for start in range(0, len(texts), batch_size):
            batch = [texts[i] for i in order[start:start + batch_size]]
            out.append(self._encode_batch(batch))
            if progress:
                progress(len(batch))
        if not out:
            return np.zeros((0, 0), dtype=np.float32)
        vectors = np.empty((len(texts), out[0].shape[1]), dtype=np.float32)
        vectors[order] = np.concatenate(out)
        if self.normalize:
            vectors /= np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
        return vectors


class OnnxEncoder(Encoder):
    def __init__(self, folder: Path, *, normalize: bool, max_length: int, threads: int = 0):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        super().__init__(normalize=normalize, max_length=max_length)
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length)
        self.tokenizer.enable_padding()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(folder / "model.onnx"), options,
                                            providers=["CPUExecutionProvider"])
        outputs = self.session.get_outputs()
        # The export names its outputs by graph node; the token states are the one rank-3 output.
        self.hidden_name = next(o.name for o in outputs if len(o.shape) == 3)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        encs = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encs], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encs], dtype=np.int64)
        (hidden,) = self.session.run([self.hidden_name], {"input_ids": ids, "attention_mask": mask})
        return _mean_pool(hidden, mask).astype(np.float32)


class HFEncoder(Encoder):
    """Any `AutoModel` checkpoint: a local folder, or a hub id fetched by `from_pretrained`."""

    def __init__(self, name_or_path: str, *, normalize: bool, max_length: int,
                 local_only: bool, device: str = "cpu") -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        super().__init__(normalize=normalize, max_length=max_length)
        self.torch = torch
        self.device = device
        self.tokenizer = AutoTokenizer.from_pretrained(name_or_path, local_files_only=local_only)
        self.model = AutoModel.from_pretrained(name_or_path, local_files_only=local_only)
        self.model.to(device).eval()

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                               return_tensors="pt").to(self.device)
        with self.torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"]
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        return pooled.float().cpu().numpy()


def open_encoder(folder: Path | None, hub_id: str, *, normalize: bool, max_length: int,
                 local_only: bool = True) -> Encoder:
    """An ONNX folder, a Hugging Face folder, or (folder None) the hub id itself."""
    if folder is not None and (folder / "model.onnx").exists():
        return OnnxEncoder(folder, normalize=normalize, max_length=max_length)
    source = str(folder) if folder is not None else hub_id
    return HFEncoder(source, normalize=normalize, max_length=max_length,
                     local_only=folder is not None or local_only)

"""`ctx`: everything a method may see, and nothing it may not.

Built inside the method process from a bundle of participant-visible files: inputs of `train` and
`test`, the weak teacher's soft labels on `train`, cached features, and model folders. There are no
gold labels, no `weak_train`, and no public/private membership anywhere in the bundle.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from runner import lib as w2s_lib
from runner.method.channel import METRIC, PROGRESS, ChannelWriter

VISIBLE_SPLITS = ("train", "test")


class MethodAPIError(Exception):
    """A method asked for something the API does not give (a hidden split, a missing model)."""


@dataclass(frozen=True)
class TaskBrief:
    name: str
    kind: str
    description: str
    label_names: tuple[str, str]
    sizes: dict[str, int]


@dataclass(frozen=True)
class Budget:
    seconds: float = 600.0
    memory_mb: int = 4096
    max_processes: int = 64
    disk_mb: int = 1024  # the writable tmpfs (/tmp); its pages also count as memory
    cgroups: str = "required"  # "optional": run without whole-tree budgets where none exist


class Context:
    def __init__(self, run: dict[str, Any], channel: ChannelWriter | None = None) -> None:
        self._bundle = Path(run["bundle"])
        meta = json.loads((self._bundle / "task.json").read_text())
        self.task = TaskBrief(meta["name"], meta["kind"], meta["description"],
                              tuple(meta["label_names"]), dict(meta["sizes"]))
        self._models: dict[str, dict[str, Any]] = json.loads(
            (self._bundle / "models.json").read_text())
        self.seed: int = int(run["seed"])
        self.budget = Budget(**run["budget"])
        Path(run["scratch"]).mkdir(parents=True, exist_ok=True)
        self.device: str = run.get("device", "cpu")
        self.scratch = Path(run["scratch"])
        # An experiment's files written here (plots as PNG, CSV; at most 16 of 2 MB) come back
        # to its author; a method's are discarded.
        self.files_dir = Path(run["out"]) if "out" in run else self.scratch / "files"
        self._channel = channel  # reports go to the parent over its pipe, never into files
        self.lib: ModuleType = w2s_lib
        self._cache: dict[str, Any] = {}
        self._started = time.monotonic()

    # data -----------------------------------------------------------------------------------
    def _split(self, split: str) -> str:
        if split not in VISIBLE_SPLITS:
            raise MethodAPIError(f"split {split!r} is not visible to methods; use one of "
                                 f"{VISIBLE_SPLITS}")
        return split

    def inputs(self, split: str) -> list[dict[str, str]]:
        """The raw input fields of each item (e.g. {"prompt", "first", "second"})."""
        key = f"inputs:{self._split(split)}"
        if key not in self._cache:
            lines = (self._bundle / f"inputs_{split}.jsonl").read_text(encoding="utf-8")
            self._cache[key] = [json.loads(line) for line in lines.splitlines() if line]
        return self._cache[key]

    def texts(self, split: str) -> list[str]:
        """One readable string per item."""
        key = f"texts:{self._split(split)}"
        if key not in self._cache:
            self._cache[key] = json.loads(
                (self._bundle / f"texts_{split}.json").read_text(encoding="utf-8"))
        return self._cache[key]

    def _features(self, which: str, split: str) -> np.ndarray:
        key = f"{which}:{self._split(split)}"
        if key not in self._cache:
            self._cache[key] = np.load(self._bundle / "features" / f"{which}_{split}.npy",
                                       allow_pickle=False)
        return self._cache[key]

    def strong_features(self, split: str) -> np.ndarray:
        """Frozen strong-model features, (n_items, dim); pairwise: emb(first) − emb(second)."""
        return self._features("strong", split)

    def weak_features(self, split: str) -> np.ndarray:
        return self._features("weak", split)

    @property
    def weak_soft_labels(self) -> np.ndarray:
        """The weak teacher's P(label=1) for each `train` item."""
        if "weak_labels" not in self._cache:
            self._cache["weak_labels"] = np.load(self._bundle / "weak_soft_labels.npy",
                                                 allow_pickle=False)
        return self._cache["weak_labels"]

    # models ---------------------------------------------------------------------------------
    def _model_entry(self, which: str) -> dict[str, Any]:
        if which not in self._models:
            raise MethodAPIError(f"model {which!r} unknown; use 'weak' or 'strong'")
        return self._models[which]

    def embed(self, texts: list[str], *, model: str = "strong") -> np.ndarray:
        """Embed new texts with the frozen weak or strong encoder (pooled like the features)."""
        from runner.encoders import open_encoder

        key = f"encoder:{model}"
        if key not in self._cache:
            entry = self._model_entry(model)
            if entry["folder"] is None:
                raise MethodAPIError(f"the {model} model ({entry['name']}) has no local copy "
                                     "on this runner; methods run offline")
            if entry.get("kind") == "causal-lm":  # the activation cache's own reader
                from runner.lm_encoder import CausalLMEncoder

                self._cache[key] = CausalLMEncoder(self._local_folder(model),
                                                   max_length=entry["max_length"],
                                                   device=self.device)
            else:
                self._cache[key] = open_encoder(Path(entry["folder"]), entry["hub_id"],
                                                normalize=entry["normalize"],
                                                max_length=entry["max_length"])
        return self._cache[key].embed(texts)

    def _local_folder(self, which: str) -> Path:
        entry = self._model_entry(which)
        if entry["folder"] is None:
            raise MethodAPIError(f"the {which} model ({entry['name']}) has no local copy on "
                                 "this runner; methods run offline")
        folder = Path(entry["folder"])
        if (folder / "model.onnx").exists():
            raise MethodAPIError(f"the {which} model ({entry['name']}) ships as ONNX: it gives "
                                 f"frozen features and ctx.embed(), not trainable weights")
        return folder

    def _lm_folder(self, which: str) -> Path:
        """The folder of a causal LM (what ctx.lib.finetune trains); encoders are refused."""
        folder = self._local_folder(which)
        entry = self._models[which]
        if entry.get("kind") != "causal-lm":
            raise MethodAPIError(
                f"the {which} model ({entry['name']}) is a frozen sentence encoder, not a causal "
                "LM: ctx.lib.finetune needs a language-model pair (e.g. protocol model_pair = "
                "'tiny-lm' or 'aar'); on this pair train heads on ctx.strong_features instead")
        return folder

    @property
    def lm_recipe(self) -> dict[str, Any]:
        """How this pair's fixed baselines were fine-tuned (lr, epochs, LoRA rank, …): the
        defaults of ctx.lib.finetune; empty on an encoder pair."""
        path = self._bundle / "lm_recipe.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def _hf_model(self, which: str):
        folder = self._local_folder(which)
        if self._models[which].get("kind") == "causal-lm":
            from runner.lib.lm import load_causal_lm

            return load_causal_lm(folder, self.device)
        from transformers import AutoModel, AutoTokenizer

        model = AutoModel.from_pretrained(folder, local_files_only=True).to(self.device)
        return model, AutoTokenizer.from_pretrained(folder, local_files_only=True)

    def strong_model(self):
        """A fresh (model, tokenizer) of the strong model on `ctx.device`, for fine-tuning: a
        causal LM (bf16 on CUDA, right-padded tokenizer) on an LM pair, else the encoder."""
        return self._hf_model("strong")

    def weak_model(self):
        return self._hf_model("weak")

    # reporting ------------------------------------------------------------------------------
    def log(self, name: str, value: float, step: int | None = None) -> None:
        """A metric for the attempt's log (e.g. training loss); numbers only."""
        record = {"name": str(name)[:100], "value": float(value), "step": step,
                  "t": round(time.monotonic() - self._started, 3)}
        if self._channel is not None:
            self._channel.send_json(METRIC, record)

    def progress(self, done: float, total: float) -> None:
        if self._channel is not None:
            self._channel.send_json(PROGRESS, {"done": float(done), "total": float(total)})

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

"""LoRA fine-tuning of a causal LM as a binary classifier, with the losses of `train_head`.

`train_lm_classifier` is what the fixed baselines use (weak teacher on `weak_train` gold, ceiling
on `train` gold); `finetune(ctx, labels, ...)` is the same trainer for a method, on the bundle's
texts. Defaults follow the AAR release: LoRA r=32, alpha=32, lr 1e-4, batch 32, 5 epochs, a linear
schedule with 10% warm-up, bf16 on CUDA.

Two readouts: "head" (default) reads the last real token's final hidden state through a linear
head; "tokens" compares the LM's next-token logits of two answer words after a prompt suffix
(P(label=1) = sigmoid(logit[yes] − logit[no])).
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from runner.lib.heads import _as_targets
from runner.lib.lm import (
    cpu_threads_for,
    encode_batch,
    last_token_states,
    length_batches,
    load_causal_lm,
)
from runner.lib.losses import CrossEntropy

StepFn = Callable[[int, int, float], None]  # (step, total steps, batch loss)


@dataclass(frozen=True)
class LoraSpec:
    r: int = 32
    alpha: int = 32
    dropout: float = 0.0
    target_modules: str | tuple[str, ...] = "all-linear"  # every linear layer but the LM head


@dataclass(frozen=True)
class Readout:
    kind: str = "head"  # "head" | "tokens"
    answers: tuple[str, str] = ("No", "Yes")  # tokens for label 0, label 1 ("tokens" only)
    suffix: str = "\nAnswer:"  # appended to each text before the answer ("tokens" only)

    def __post_init__(self) -> None:
        if self.kind not in ("head", "tokens"):
            raise ValueError(f"readout must be 'head' or 'tokens', not {self.kind!r}")


def _answer_ids(tokenizer, answers: tuple[str, str]) -> list[int]:
    ids = []
    for word in answers:
        pieces = tokenizer(word, add_special_tokens=False)["input_ids"]
        if len(pieces) != 1:
            raise ValueError(f"answer {word!r} is {len(pieces)} tokens for this tokenizer; "
                             "the 'tokens' readout needs one token per answer")
        ids.append(pieces[0])
    return ids


class LMClassifier:
    """A LoRA-adapted causal LM plus its readout; `predict_proba(texts)` → P(label=1)."""

    def __init__(self, lm, tokenizer, *, readout: Readout, device: str, max_length: int):
        import torch

        self.lm, self.tokenizer, self.readout = lm, tokenizer, readout
        self.device, self.max_length = device, max_length
        hidden = lm.config.get_text_config().hidden_size
        self.head = torch.nn.Linear(hidden, 1).to(device)  # float32 even when the LM is bf16
        self.answer_ids = (_answer_ids(tokenizer, readout.answers)
                           if readout.kind == "tokens" else None)

    def _texts(self, texts: Sequence[str]) -> list[str]:
        suffix = self.readout.suffix if self.readout.kind == "tokens" else ""
        return [t + suffix for t in texts]

    def logits(self, texts: Sequence[str]):
        batch = encode_batch(self.tokenizer, self._texts(texts), max_length=self.max_length,
                             device=self.device)
        hidden = self.lm.get_decoder()(**batch).last_hidden_state
        last = last_token_states(hidden, batch["attention_mask"])
        if self.answer_ids is None:
            return self.head(last.float()).squeeze(-1)
        scores = self.lm.get_output_embeddings()(last).float()
        return scores[:, self.answer_ids[1]] - scores[:, self.answer_ids[0]]

    def lengths(self, texts: Sequence[str]) -> list[int]:
        enc = self.tokenizer(self._texts(texts), truncation=True, max_length=self.max_length)
        return [len(ids) for ids in enc["input_ids"]]

    def predict_proba(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        import torch

        texts = list(texts)
        out = np.empty(len(texts))
        self.lm.eval()
        with torch.inference_mode(), cpu_threads_for(self.lm, self.device):
            for idx in length_batches(self.lengths(texts), batch_size):
                out[idx] = torch.sigmoid(self.logits([texts[i] for i in idx])).cpu().numpy()
        return out


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _with_lora(lm, lora: LoraSpec):
    from peft import LoraConfig, get_peft_model

    target = lora.target_modules if isinstance(lora.target_modules, str) \
        else list(lora.target_modules)
    config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                        target_modules=target, bias="none")
    with warnings.catch_warnings():  # peft asks transformers a deprecated question, every time
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
        return get_peft_model(lm, config).get_base_model()


def _out_of_memory(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError)


def _checkpoint_activations(lm) -> None:
    """Recompute activations in the backward pass (transformers 5 renamed the call)."""
    kwargs = {"use_reentrant": False}
    if hasattr(lm, "activation_checkpointing_enable"):
        lm.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def linear_schedule(step: int, *, warmup: int, total: int) -> float:
    """The learning-rate factor of transformers' linear schedule with warm-up (the AAR
    release's): up from 0 over `warmup` steps, then down to 0 at `total`."""
    if step < warmup:
        return step / warmup
    return max(0.0, (total - step) / max(total - warmup, 1))


class _Trainer:
    """One optimisation run; turns on activation checkpointing only after a CUDA OOM."""

    def __init__(self, clf: LMClassifier, *, lr: float, total: int, on_step: StepFn | None,
                 warmup: int = 0):
        import torch

        self.clf, self.total, self.on_step, self.step = clf, total, on_step, 0
        params = [p for p in clf.lm.parameters() if p.requires_grad]
        if clf.answer_ids is None:
            params += list(clf.head.parameters())
        self.optim = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.optim, partial(linear_schedule, warmup=warmup, total=total))
        self.checkpointing = False

    def _loss(self, texts, targets_fn, weights):
        import torch
        import torch.nn.functional as F

        z = self.clf.logits(texts)
        target = targets_fn(z.detach().double().cpu().numpy(), self.step / self.total)
        t = torch.as_tensor(target, dtype=torch.float32, device=z.device)
        w = torch.as_tensor(weights, dtype=torch.float32, device=z.device)
        per_item = F.binary_cross_entropy_with_logits(z, t, reduction="none")
        return (per_item * w).sum() / w.sum().clamp(min=1e-12)

    def run_batch(self, texts, targets_fn, weights) -> float:
        try:
            loss = self._loss(texts, targets_fn, weights)
            loss.backward()
        except Exception as exc:
            if not _out_of_memory(exc) or self.checkpointing:
                raise
            import torch

            self.optim.zero_grad(set_to_none=True)
            torch.cuda.empty_cache()
            _checkpoint_activations(self.clf.lm)
            self.checkpointing = True
            loss = self._loss(texts, targets_fn, weights)
            loss.backward()
        self.optim.step()
        self.sched.step()
        self.optim.zero_grad(set_to_none=True)
        self.step += 1
        value = float(loss.detach())
        if self.on_step is not None:
            self.on_step(self.step, self.total, value)
        return value


def train_lm_classifier(folder: Path, texts: Sequence[str], labels, *, seed: int = 0,
                        device: str = "cpu", loss=None, sample_weight=None,
                        lora: LoraSpec | None = None, readout: Readout | None = None,
                        epochs: int = 5, lr: float = 1e-4, batch_size: int = 32,
                        max_length: int = 512, warmup_ratio: float = 0.1,
                        on_step: StepFn | None = None) -> LMClassifier:
    """Fit P(label=1 | text) to soft labels with LoRA; raises ValueError on bad labels/weights."""
    texts = list(texts)
    y = _as_targets(labels, len(texts))
    weights = np.ones(len(texts)) if sample_weight is None \
        else np.asarray(sample_weight, dtype=np.float64)
    if weights.shape != (len(texts),) or np.any(weights < 0) or not np.all(np.isfinite(weights)):
        raise ValueError("sample_weight must be n finite non-negative numbers")
    if epochs < 1 or batch_size < 1 or lr <= 0 or not 0 <= warmup_ratio < 1:
        raise ValueError("epochs and batch_size must be ≥ 1, lr > 0 and warmup_ratio in [0, 1)")
    loss = loss or CrossEntropy()
    _seed_everything(seed)
    lm, tokenizer = load_causal_lm(Path(folder), device)
    lm = _with_lora(lm, lora or LoraSpec())
    clf = LMClassifier(lm, tokenizer, readout=readout or Readout(), device=device,
                       max_length=max_length)
    batches = length_batches(clf.lengths(texts), batch_size)
    total = epochs * len(batches)
    trainer = _Trainer(clf, lr=lr, total=total, on_step=on_step,
                       warmup=round(warmup_ratio * total))
    rng = np.random.default_rng(seed)
    lm.train()
    with cpu_threads_for(lm, device):
        for _ in range(epochs):
            for b in rng.permutation(len(batches)):
                idx = batches[b]
                trainer.run_batch([texts[i] for i in idx],
                                  lambda z, progress, idx=idx: loss.targets(z, y[idx], progress),
                                  weights[idx])
    lm.eval()
    return clf


class FineTuned:
    """What `finetune` returns: `predict_proba("test")`, a split name or a list of texts."""

    def __init__(self, ctx, clf: LMClassifier) -> None:
        self._ctx, self.classifier = ctx, clf

    def predict_proba(self, split_or_texts: str | Sequence[str]) -> np.ndarray:
        texts = (self._ctx.texts(split_or_texts) if isinstance(split_or_texts, str)
                 else list(split_or_texts))
        return self.classifier.predict_proba(texts)


def _recipe_defaults(ctx, given: dict) -> dict:
    """Unset arguments take the pair's baseline recipe (ctx.lm_recipe), then the AAR defaults."""
    recipe = ctx.lm_recipe
    out = {key: given[key] if given[key] is not None else recipe.get(key, default)
           for key, default in (("epochs", 5), ("lr", 1e-4), ("batch_size", 32),
                                ("max_length", 512), ("warmup_ratio", 0.1))}
    out["lora"] = given["lora"] or LoraSpec(r=recipe.get("lora_r", 32),
                                            alpha=recipe.get("lora_alpha", 32))
    out["readout"] = given["readout"] or Readout(
        kind=recipe.get("readout", "head"), answers=tuple(recipe.get("answers", ("No", "Yes"))))
    return out


def finetune(ctx, labels, *, model: str = "strong", loss=None, sample_weight=None,
             lora: LoraSpec | None = None, readout: Readout | None = None,
             epochs: int | None = None, lr: float | None = None, batch_size: int | None = None,
             max_length: int | None = None, warmup_ratio: float | None = None,
             seed: int | None = None) -> FineTuned:
    """LoRA-train the weak or strong LM of an LM pair on `train` texts against `labels`
    (P(label=1) per `train` item: the weak soft labels, or your own).

    Arguments left unset follow the recipe the fixed baselines were trained with
    (`ctx.lm_recipe`, from the protocol's [lm] table), else the AAR defaults. Logs the loss
    (`ctx.log("loss", ...)`) and progress (`ctx.progress`) every step. Raises the method API's
    error when the pair's model is a frozen encoder (the ONNX default pair).
    """
    folder = ctx._lm_folder(model)
    settings = _recipe_defaults(ctx, {"epochs": epochs, "lr": lr, "batch_size": batch_size,
                                      "max_length": max_length, "warmup_ratio": warmup_ratio,
                                      "lora": lora,
                                      "readout": readout})

    def report(step: int, total: int, value: float) -> None:
        ctx.log("loss", value, step)
        ctx.progress(step, total)

    clf = train_lm_classifier(folder, ctx.texts("train"), labels,
                              seed=ctx.seed if seed is None else seed, device=ctx.device,
                              loss=loss, sample_weight=sample_weight, on_step=report, **settings)
    return FineTuned(ctx, clf)

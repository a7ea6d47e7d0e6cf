"""A logistic head on frozen features, trained by mini-batch Adam with soft labels.

Mini-batches and a seeded initialisation make the seed matter the way it does when fine-tuning a
real model, while a few thousand 768-d rows still train in well under a second on two cores.
The step size decays linearly to 0, as in the AAR fine-tuning recipe: with a constant step the
last mini-batches' jitter decided the weights, and on `tweet_sentiment` vanilla's PGR varied by
sd 0.089 from seed to seed (0.039 with the decay; docs/tasks.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from runner.lib.losses import CrossEntropy, sigmoid


@dataclass
class Head:
    weights: np.ndarray
    bias: float
    mean: np.ndarray
    scale: np.ndarray

    def logits(self, X: np.ndarray) -> np.ndarray:
        Z = (np.asarray(X, dtype=np.float64) - self.mean) / self.scale
        return Z @ self.weights + self.bias

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """P(label = 1) per row."""
        return sigmoid(self.logits(X))


SCHEDULES = ("linear", "constant")
# Names the default recipe in the frozen baselines' cache key (runner.teacher.ModelPair.key):
# change it whenever train_head's defaults change what a head learns.
HEAD_RECIPE = "adam-linear-decay"


def _as_targets(y: np.ndarray, n: int) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if y.shape[0] != n:
        raise ValueError(f"labels have {y.shape[0]} rows, features {n}")
    if not np.all(np.isfinite(y)) or y.min() < 0 or y.max() > 1:
        raise ValueError("labels must be probabilities in [0, 1]")
    return y


def train_head(X: np.ndarray, y: np.ndarray, *, seed: int = 0,
               sample_weight: np.ndarray | None = None, loss=None, epochs: int = 20,
               batch_size: int = 64, lr: float = 1e-3, l2: float = 0.1,
               schedule: str = "linear") -> Head:
    """Fit P(label=1 | x) to soft labels `y` (weak P(label=1), or 0/1 gold).

    `sample_weight` scales each row's loss; `loss` (default CrossEntropy) may rewrite targets
    during training, as LogConf does; `schedule` is "linear" (the step size decays to 0) or
    "constant". Raises ValueError on mismatched or non-probability labels or another schedule.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, not {schedule!r}")
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    y = _as_targets(y, n)
    w_rows = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if w_rows.shape != (n,) or np.any(w_rows < 0) or not np.all(np.isfinite(w_rows)):
        raise ValueError("sample_weight must be n finite non-negative numbers")
    loss = loss or CrossEntropy()
    rng = np.random.default_rng(seed)
    mean, scale = X.mean(axis=0), X.std(axis=0) + 1e-6
    Z = (X - mean) / scale
    w = rng.normal(0.0, 0.01, size=d)
    b = 0.0
    m_w, v_w, m_b, v_b = np.zeros(d), np.zeros(d), 0.0, 0.0
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    steps_per_epoch = max(1, int(np.ceil(n / batch_size)))
    total, step = epochs * steps_per_epoch, 0
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            z = Z[idx] @ w + b
            target = loss.targets(z, y[idx], step / total)
            weight = w_rows[idx]
            err = (sigmoid(z) - target) * weight / max(weight.sum(), 1e-12)
            g_w = Z[idx].T @ err + l2 * w
            g_b = float(err.sum())
            decay = 1.0 - (step / total if schedule == "linear" else 0.0)
            step += 1
            m_w = beta1 * m_w + (1 - beta1) * g_w
            v_w = beta2 * v_w + (1 - beta2) * g_w**2
            m_b = beta1 * m_b + (1 - beta1) * g_b
            v_b = beta2 * v_b + (1 - beta2) * g_b**2
            correction = decay * np.sqrt(1 - beta2**step) / (1 - beta1**step)
            w -= lr * correction * m_w / (np.sqrt(v_w) + eps)
            b -= lr * correction * m_b / (np.sqrt(v_b) + eps)
    return Head(weights=w, bias=b, mean=mean, scale=scale)

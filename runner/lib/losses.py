"""Losses for a linear head, each one small class whose hyper-parameters are visible.

A loss maps (logits, weak targets, training progress in [0, 1]) to the targets the logistic
gradient pulls towards: for cross-entropy on a sigmoid, dL/dz = sigmoid(z) − target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


@dataclass(frozen=True)
class CrossEntropy:
    """Plain soft-label cross-entropy: the student imitates the weak labels."""

    def targets(self, logits: np.ndarray, weak: np.ndarray, progress: float) -> np.ndarray:
        return weak


@dataclass(frozen=True)
class LogConf:
    """Burns et al. (2023) auxiliary confidence loss.

    target = (1 − α)·weak + α·hard(student), where hard() thresholds the student's own
    probabilities at the quantile that keeps the weak labels' class balance, and α ramps up
    linearly to `alpha` over the first `warmup` fraction of training.
    """

    alpha: float = 0.75
    warmup: float = 0.2
    prior: float | None = None  # share of positives; None: the batch's mean weak label

    def targets(self, logits: np.ndarray, weak: np.ndarray, progress: float) -> np.ndarray:
        a = self.alpha * min(1.0, progress / self.warmup) if self.warmup > 0 else self.alpha
        prior = float(np.mean(weak)) if self.prior is None else self.prior
        threshold = np.quantile(logits, 1.0 - prior)
        hard = (logits > threshold).astype(np.float64)
        return (1.0 - a) * weak + a * hard

"""Choosing and reshaping weak labels: confident subsets, hard labels, resampling, relabelling."""

from __future__ import annotations

import numpy as np

from runner.lib.heads import Head, train_head


def hard_labels(y: np.ndarray) -> np.ndarray:
    return (np.asarray(y) > 0.5).astype(np.float64)


def confident_indices(y: np.ndarray, keep: float = 0.5) -> np.ndarray:
    """Indices of the `keep` fraction of rows whose weak label is farthest from 0.5."""
    if not 0 < keep <= 1:
        raise ValueError("keep must be in (0, 1]")
    confidence = np.abs(np.asarray(y, dtype=np.float64) - 0.5)
    count = max(1, round(keep * len(confidence)))
    return np.sort(np.argsort(-confidence, kind="stable")[:count])


def bootstrap_indices(n: int, *, seed: int) -> np.ndarray:
    """A resample of n rows with replacement (for bagging or uncertainty estimates)."""
    return np.random.default_rng(seed).integers(0, n, size=n)


def self_train(X: np.ndarray, y: np.ndarray, *, seed: int = 0, rounds: int = 3,
               beta: float = 0.5, **head_kwargs) -> Head:
    """Soft bootstrapping (Reed et al., 2014): refit on β·weak + (1 − β)·student, `rounds` times.

    The student's own predictions gradually replace the teacher's where it disagrees confidently.
    """
    targets = np.asarray(y, dtype=np.float64)
    head = train_head(X, targets, seed=seed, **head_kwargs)
    for r in range(1, rounds):
        targets = beta * np.asarray(y, dtype=np.float64) + (1 - beta) * head.predict_proba(X)
        head = train_head(X, targets, seed=seed + r, **head_kwargs)
    return head

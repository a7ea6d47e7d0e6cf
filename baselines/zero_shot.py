"""Unsupervised, teacher-free (the "UE zero-shot" analogue): never reads the weak labels.

Each item is scored by how much closer its strong embedding lies to "This is <label 1>." than to
"This is <label 0>.". One refinement step then replaces that direction by the difference between
the mean embeddings of the top and bottom quarter of `train` under it. (More steps drift towards
whatever axis dominates the data, which is not always the label.)
"""

import numpy as np

QUANTILE = 0.25


def run(ctx):
    X_train, X_test = ctx.strong_features("train"), ctx.strong_features("test")
    label0, label1 = ctx.embed([f"This is {name}." for name in ctx.task.label_names])
    scores = X_train @ (label1 - label0)
    low, high = np.quantile(scores, [QUANTILE, 1 - QUANTILE])
    direction = X_train[scores >= high].mean(0) - X_train[scores <= low].mean(0)
    projected = X_train @ direction
    threshold, spread = np.median(projected), np.std(projected) + 1e-9
    return ctx.lib.sigmoid(2.0 * (X_test @ direction - threshold) / spread)

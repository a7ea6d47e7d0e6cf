"""Unsupervised, teacher-free (the "UE zero-shot" analogue): never reads the weak labels.

Each item is scored by how much closer its strong embedding lies to a description of label 1
than to one of label 0; two-means clustering seeded by that score then refines the split.
"""

import numpy as np

ITERATIONS = 10


def zero_shot_scores(ctx, X):
    names = [f"{ctx.task.description} Answer: {name}" for name in ctx.task.label_names]
    label0, label1 = ctx.embed(names, model="strong")
    return X @ (label1 - label0)


def run(ctx):
    X_train, X_test = ctx.strong_features("train"), ctx.strong_features("test")
    scores = zero_shot_scores(ctx, X_train)
    assign = scores > np.median(scores)
    for _ in range(ITERATIONS):
        c1, c0 = X_train[assign].mean(0), X_train[~assign].mean(0)
        direction = c1 - c0
        threshold = 0.5 * (c1 + c0) @ direction
        new = X_train @ direction > threshold
        if (new == assign).all() or new.all() or not new.any():
            break
        assign = new
    margin = (X_test @ direction - threshold) / (np.std(X_train @ direction) + 1e-9)
    return ctx.lib.sigmoid(2.0 * margin)

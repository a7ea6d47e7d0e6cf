"""Confident labels only: train on the half of `train` where the teacher is most sure, with
hard labels. Trades quantity for label quality (the "confident-labels" row of the AAR table)."""

KEEP = 0.5


def run(ctx):
    X = ctx.strong_features("train")
    y = ctx.weak_soft_labels
    keep = ctx.lib.confident_indices(y, keep=KEEP)
    head = ctx.lib.train_head(X[keep], ctx.lib.hard_labels(y[keep]), seed=ctx.seed)
    return head.predict_proba(ctx.strong_features("test"))

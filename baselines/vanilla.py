"""Vanilla W2S: fit the strong model's head to the weak teacher's soft labels."""


def run(ctx):
    X = ctx.strong_features("train")
    y = ctx.weak_soft_labels
    head = ctx.lib.train_head(X, y, seed=ctx.seed)
    return head.predict_proba(ctx.strong_features("test"))

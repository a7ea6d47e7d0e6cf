"""Burns et al. (2023) auxiliary confidence loss: the student is pulled towards its own hardened
predictions (weight ramping up to ALPHA), so it can disagree with a weak teacher's mistakes."""

ALPHA = 0.75
WARMUP = 0.2


def run(ctx):
    X = ctx.strong_features("train")
    y = ctx.weak_soft_labels
    loss = ctx.lib.LogConf(alpha=ALPHA, warmup=WARMUP)
    head = ctx.lib.train_head(X, y, seed=ctx.seed, loss=loss)
    return head.predict_proba(ctx.strong_features("test"))

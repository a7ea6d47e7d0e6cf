"""Soft bootstrapping (Reed et al., 2014): train, relabel `train` with a blend of teacher and
student, retrain; the student's confident beliefs gradually override the teacher's noise."""

ROUNDS = 3
BETA = 0.5


def run(ctx):
    X = ctx.strong_features("train")
    head = ctx.lib.self_train(X, ctx.weak_soft_labels, seed=ctx.seed, rounds=ROUNDS, beta=BETA)
    return head.predict_proba(ctx.strong_features("test"))

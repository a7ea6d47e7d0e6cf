"""LogConf by fine-tuning (Burns et al. 2023): LoRA-train the strong LM on the weak labels mixed
with its own hardened predictions, so it may overrule the teacher where it is confident.

Needs a language-model pair; on the encoder pairs use logconf.py.
"""


def run(ctx):
    model = ctx.lib.finetune(ctx, ctx.weak_soft_labels, loss=ctx.lib.LogConf(alpha=0.75))
    return model.predict_proba("test")

"""Vanilla W2S by fine-tuning: LoRA-train the strong LM on the weak teacher's soft labels.

Needs a language-model pair (protocol model_pair "tiny-lm" or "aar", or [models]); on the
encoder pairs use vanilla.py. The recipe is the fixed baselines' (the protocol's [lm] table;
AAR: LoRA r=32, lr 1e-4, batch 32), so the only difference from the ceiling is the labels.
"""


def run(ctx):
    model = ctx.lib.finetune(ctx, ctx.weak_soft_labels)
    return model.predict_proba("test")

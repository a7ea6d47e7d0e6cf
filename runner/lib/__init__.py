"""The W2S helper library a method reaches as `ctx.lib` (numpy only at import: starts fast;
`finetune` imports torch and peft when called)."""

from runner.lib.finetune import FineTuned, LoraSpec, Readout, finetune
from runner.lib.heads import Head, train_head
from runner.lib.losses import CrossEntropy, LogConf, sigmoid
from runner.lib.selection import bootstrap_indices, confident_indices, hard_labels, self_train

__all__ = ["CrossEntropy", "FineTuned", "Head", "LogConf", "LoraSpec", "Readout",
           "bootstrap_indices", "confident_indices", "finetune", "hard_labels", "self_train",
           "sigmoid", "train_head"]

"""The W2S helper library a method reaches as `ctx.lib` (numpy only: starts fast)."""

from runner.lib.heads import Head, train_head
from runner.lib.losses import CrossEntropy, LogConf, sigmoid
from runner.lib.selection import bootstrap_indices, confident_indices, hard_labels, self_train

__all__ = ["CrossEntropy", "Head", "LogConf", "bootstrap_indices", "confident_indices",
           "hard_labels", "self_train", "sigmoid", "train_head"]

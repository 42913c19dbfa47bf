"""Compression of Brevitas models against the board: structured channel pruning, per-layer bit widths, knowledge
distillation, low-rank factorisation, unstructured magnitude pruning, and the hardware score that ranks them."""

from edge.compress.bits import activation_layers, set_bit_widths, weight_layers
from edge.compress.channels import analyse_channels, channel_importance, prune_by_ratio, prune_channels
from edge.compress.distill import distillation_loss, fine_tune
from edge.compress.lowrank import factorize, max_useful_rank
from edge.compress.schedule import prune_iteratively
from edge.compress.score import hardware_score
from edge.compress.sparsity import magnitude_prune, sparsity_report
from edge.compress.teacher import TEACHERS, float_copy, train_teacher, wide_copy

__all__ = ["TEACHERS", "activation_layers", "analyse_channels", "channel_importance", "distillation_loss", "factorize",
           "fine_tune", "float_copy", "hardware_score", "magnitude_prune", "max_useful_rank", "prune_by_ratio",
           "prune_channels", "prune_iteratively", "set_bit_widths", "sparsity_report", "train_teacher", "weight_layers",
           "wide_copy"]

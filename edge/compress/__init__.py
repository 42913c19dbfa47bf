"""Compression of Brevitas models against the board: structured channel pruning, per-layer bit widths, knowledge
distillation, low-rank factorisation, unstructured magnitude pruning, and the hardware score that ranks them."""

from edge.compress.bits import activation_layers, set_bit_widths, weight_layers
from edge.compress.channels import analyse_channels, channel_importance, prune_by_ratio, prune_channels
from edge.compress.distill import distillation_loss, fine_tune
from edge.compress.lowrank import factorize, max_useful_rank
from edge.compress.score import hardware_score
from edge.compress.sparsity import magnitude_prune, sparsity_report

__all__ = ["activation_layers", "analyse_channels", "channel_importance", "distillation_loss", "factorize",
           "fine_tune", "hardware_score", "magnitude_prune", "max_useful_rank", "prune_by_ratio", "prune_channels",
           "set_bit_widths", "sparsity_report", "weight_layers"]

"""Unstructured magnitude pruning. The MVAU stores and multiplies every weight, zero or not: sparsity saves no LUT,
BRAM or cycle on the FPGA unless the kernel skips zeros and the resource model credits them (neither does today).
It can help CPU runtimes with sparse kernels and compression of the weight files."""

from __future__ import annotations

import torch
from torch import nn

from edge.compress.bits import weight_layers


def magnitude_prune(model: nn.Module, sparsity: float) -> dict[str, torch.Tensor]:
    """Zero the smallest-magnitude `sparsity` fraction of each quantised layer's weights (in place); returns the
    masks (by parameter name) that fine_tune keeps applied."""
    masks = {}
    modules = dict(model.named_modules())
    with torch.no_grad():
        for name in weight_layers(model):
            w = modules[name].weight
            k = int(round(sparsity * w.numel()))
            if k <= 0:
                continue
            threshold = w.abs().flatten().kthvalue(k).values
            mask = (w.abs() > threshold).to(w.dtype)
            w.mul_(mask)
            masks[f"{name}.weight"] = mask
    return masks


def sparsity_report(model: nn.Module) -> dict[str, float]:
    """Fraction of each quantised layer's weights that are zero after quantisation (what the hardware would see)."""
    modules = dict(model.named_modules())
    report = {}
    with torch.no_grad():
        for name in weight_layers(model):
            q = modules[name].quant_weight()
            value = q.value if hasattr(q, "value") else q
            report[name] = float((value == 0).float().mean())
    return report

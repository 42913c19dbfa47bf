"""Low-rank factorisation of a QuantLinear or 1x1 QuantConv2d (M outputs, N inputs) into two quantised layers of
rank r with an 8-bit signed quantiser between them: fewer weights (r(M+N) < MN) when r < MN/(M+N)."""

from __future__ import annotations

import brevitas.nn as qnn
import torch
from brevitas.quant import Int8ActPerTensorFloat
from torch import nn

from frontend.errors import EdgeError


def max_useful_rank(module: nn.Module) -> int:
    m, n = module.weight.shape[0], module.weight.shape[1]
    return (m * n - 1) // (m + n)


def _factor_layers(module: nn.Module, rank: int) -> tuple[nn.Module, nn.Module]:
    injector = module.weight_quant.quant_injector
    bias = module.bias is not None
    if isinstance(module, qnn.QuantLinear):
        return (qnn.QuantLinear(module.in_features, rank, bias=False, weight_quant=injector),
                qnn.QuantLinear(rank, module.out_features, bias=bias, weight_quant=injector))
    if isinstance(module, qnn.QuantConv2d) and module.kernel_size == (1, 1) and module.groups == 1 \
            and module.stride == (1, 1) and module.padding == (0, 0):
        return (qnn.QuantConv2d(module.in_channels, rank, 1, bias=False, weight_quant=injector),
                qnn.QuantConv2d(rank, module.out_channels, 1, bias=bias, weight_quant=injector))
    raise EdgeError(f"{type(module).__name__}: low-rank factorisation takes a QuantLinear or a 1x1 QuantConv2d")


def factorize(model: nn.Module, name: str, rank: int, mid_bits: int = 8) -> nn.Module:
    """Replace layer `name` by first (rank x N) -> QuantIdentity(mid_bits, signed) -> second (M x rank), initialised
    from the truncated SVD of its weights (in place)."""
    modules = dict(model.named_modules())
    if name not in modules:
        raise EdgeError(f"no layer {name!r}")
    layer = modules[name]
    limit = max_useful_rank(layer)
    if not 1 <= rank <= limit:
        m, n = layer.weight.shape[0], layer.weight.shape[1]
        raise EdgeError(f"{name}: rank {rank} saves nothing for a {m}x{n} layer; use 1..{limit} (r < MN/(M+N))")
    first, second = _factor_layers(layer, rank)
    w = layer.weight.detach().reshape(layer.weight.shape[0], -1).double()
    u, s, vh = torch.linalg.svd(w, full_matrices=False)
    root = s[:rank].sqrt()
    with torch.no_grad():
        first.weight.copy_((root[:, None] * vh[:rank]).reshape(first.weight.shape).float())
        second.weight.copy_((u[:, :rank] * root[None, :]).reshape(second.weight.shape).float())
        if layer.bias is not None:
            second.bias.copy_(layer.bias)
    mid = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=mid_bits, return_quant_tensor=True)
    parent_name, _, attr = name.rpartition(".")
    parent = modules[parent_name] if parent_name else model
    setattr(parent, attr, nn.Sequential(first, mid, second))
    return model

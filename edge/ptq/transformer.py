"""Integer transformers from Hugging Face models: quantisers on every tensor an integer dataflow computes (Q, K, V,
the attention scores before Softmax and the probabilities after it, LayerNorm outputs, activations, the residual
stream), so that the QONNX model lowers to the FPGA and maps to int8 runtimes, not only to QDQ with float islands.

A residual sum adds two tensors as integers only when both share one quantiser: each residual pair (a layer's
output added to an earlier LayerNorm's output) is found by running the model once and matching the sums, then made
to share. The embedding tables share one power-of-two scale, so word, position and token-type embeddings add as
exact integers."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

LINEAR = (nn.Linear, nn.Conv1d, nn.Conv2d)  # weight layers: a ViT's patch embedding is a Conv2d
ATTENTION = "edge_integer"  # the attention implementation name registered with transformers
_CALLERS: list[nn.Module] | None = None  # while `_analyse` runs: the modules that call the attention function
ACTIVATIONS = ("GELU", "GELUActivation", "NewGELUActivation", "FastGELUActivation", "QuickGELUActivation", "Tanh",
               "ReLU", "SiLU", "SiLUActivation", "Sigmoid")


def hf_configs(model: nn.Module) -> list[Any]:
    """The Hugging Face configs of `model`'s submodules that choose their attention through `transformers`."""
    seen: dict[int, Any] = {}
    for m in model.modules():
        cfg = getattr(m, "config", None)
        if cfg is not None and hasattr(cfg, "_attn_implementation"):
            seen.setdefault(id(cfg), cfg)
    return list(seen.values())


def is_hf_transformer(model: nn.Module) -> bool:
    return bool(hf_configs(model))


class AttentionQuant(nn.Module):
    """The quantisers of one attention module: the scores Softmax reads and the probabilities it writes."""

    def __init__(self, signed: Callable[[], nn.Module], unsigned: Callable[[], nn.Module]) -> None:
        super().__init__()
        self.scores = signed()
        self.probs = unsigned()


def integer_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                      attention_mask: torch.Tensor | None, scaling: float | None = None, dropout: float = 0.0,
                      **_: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Eager scaled dot-product attention with the scores and probabilities quantised (Q, K and V arrive quantised
    from their projections). Registered with `transformers.AttentionInterface` under `ATTENTION`."""
    scale = query.size(-1) ** -0.5 if scaling is None else scaling
    scores = torch.matmul(query, key.transpose(2, 3)) * scale
    if attention_mask is not None:
        scores = scores + attention_mask
    if _CALLERS is not None:
        _CALLERS.append(module)
    quant = getattr(module, "edge_attention", None)
    if quant is not None:
        scores = quant.scores(scores)
    probs = torch.softmax(scores, dim=-1)
    if quant is not None:
        probs = quant.probs(probs)
    out = torch.matmul(probs, value).transpose(1, 2).contiguous()
    return out, probs


class QuantOutput(nn.Module):
    """A module and the quantiser of its output (LayerNorm, an activation)."""

    def __init__(self, inner: nn.Module, quant: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.quant = quant

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.quant(self.inner(*args, **kwargs))


def _register_attention() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION, integer_attention)


def _set_attention(model: nn.Module) -> None:
    for cfg in hf_configs(model):
        cfg._attn_implementation = ATTENTION


def _parent(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    path, _, leaf = name.rpartition(".")
    return (model.get_submodule(path) if path else model), leaf


def _storage(t: Any) -> int | None:
    return t.untyped_storage().data_ptr() if isinstance(t, torch.Tensor) else None


def _analyse(model: nn.Module, sample: torch.Tensor) -> tuple[set[str], dict[str, str], str | None,
                                                             list[nn.Module]]:
    """One float run: the linear layers whose input is a LayerNorm's or an activation's output (already quantised
    once those are), the residual pairs {linear: LayerNorm whose output its output is added to}, and the last
    linear layer to run (the logits stay unquantised), and the attention modules."""
    global _CALLERS
    points: dict[int, str] = {}  # storage of a quantised output -> its module
    linear_out: dict[str, torch.Tensor] = {}
    norm_out: dict[str, torch.Tensor] = {}
    quantised_in: set[str] = set()
    pairs: dict[str, str] = {}
    order: list[str] = []
    alive: list[torch.Tensor] = []
    hooks = []

    def after_point(name: str, is_norm: bool) -> Callable[..., None]:
        def hook(_m: nn.Module, _i: Any, out: Any) -> None:
            if (ptr := _storage(out)) is not None:
                points[ptr] = name
                alive.append(out)  # held until the run ends: a freed storage's address could be reused
            if is_norm and isinstance(out, torch.Tensor):
                norm_out[name] = out
        return hook

    def before_norm(_m: nn.Module, args: tuple) -> None:
        s = args[0] if args else None
        if not isinstance(s, torch.Tensor):
            return
        for lin, u in linear_out.items():
            if lin in pairs or u.shape != s.shape:
                continue
            for ln, v in norm_out.items():
                if v.shape == s.shape and torch.equal(u + v, s):
                    pairs[lin] = ln
                    return

    def before_linear(name: str) -> Callable[..., None]:
        def hook(_m: nn.Module, args: tuple) -> None:
            if args and _storage(args[0]) in points:
                quantised_in.add(name)
        return hook

    def after_linear(name: str) -> Callable[..., None]:
        def hook(_m: nn.Module, _i: Any, out: Any) -> None:
            order.append(name)
            if isinstance(out, torch.Tensor):
                linear_out[name] = out
        return hook

    for name, m in model.named_modules():
        if isinstance(m, nn.LayerNorm):
            hooks += [m.register_forward_hook(after_point(name, True)), m.register_forward_pre_hook(before_norm)]
        elif type(m).__name__ in ACTIVATIONS:
            hooks.append(m.register_forward_hook(after_point(name, False)))
        elif isinstance(m, LINEAR):
            hooks += [m.register_forward_pre_hook(before_linear(name)), m.register_forward_hook(after_linear(name))]
    _CALLERS = []
    try:
        with torch.no_grad():
            model(sample)
        callers = list({id(m): m for m in _CALLERS}.values())
    finally:
        _CALLERS = None
        for h in hooks:
            h.remove()
    return quantised_in, pairs, (order[-1] if order else None), callers


def _embedding_quant(model: nn.Module, bits: int) -> None:
    """Every nn.Embedding of a module that holds several (word, position, token type) becomes a QuantEmbedding with
    one constant power-of-two scale for all of them: their sum is an exact integer sum."""
    import brevitas.nn as qnn
    from brevitas.inject.enum import ScalingImplType
    from brevitas.quant import Int8WeightPerTensorFloat

    groups: dict[str, list[str]] = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.Embedding):
            groups.setdefault(name.rpartition(".")[0], []).append(name)
    for names in groups.values():
        tables = [model.get_submodule(n) for n in names]
        top = max(float(t.weight.detach().abs().max()) for t in tables)
        levels = 2 ** (bits - 1) - 1
        scale = 2.0 ** math.ceil(math.log2(max(top, 1e-12) / levels))
        quant = Int8WeightPerTensorFloat.let(scaling_impl_type=ScalingImplType.CONST, scaling_init=scale * levels,
                                             bit_width=bits)
        for n, t in zip(names, tables, strict=True):
            q = qnn.QuantEmbedding(t.num_embeddings, t.embedding_dim, padding_idx=t.padding_idx, weight_quant=quant)
            q.weight.data.copy_(t.weight.detach())
            parent, leaf = _parent(model, n)
            setattr(parent, leaf, q)


def _quant_layer(qnn: Any, m: nn.Module, kw: dict[str, Any]) -> nn.Module:
    """The Brevitas layer for a float Linear/Conv1d/Conv2d with the same geometry."""
    if isinstance(m, nn.Linear):
        return qnn.QuantLinear(m.in_features, m.out_features, bias=m.bias is not None, **kw)
    cls = qnn.QuantConv1d if isinstance(m, nn.Conv1d) else qnn.QuantConv2d
    return cls(m.in_channels, m.out_channels, m.kernel_size, stride=m.stride, padding=m.padding,
               dilation=m.dilation, groups=m.groups, bias=m.bias is not None, **kw)


def integer_transformer(model: nn.Module, sample: torch.Tensor, wbits: int, abits: int, weight: Any, signed: Any,
                        unsigned: Any) -> nn.Module:
    """`model` (a Hugging Face transformer, eval mode) with quantised linear layers, embeddings and activations as
    the module docstring says; uncalibrated."""
    import brevitas.nn as qnn
    from brevitas.quant import Int32Bias

    _register_attention()
    _set_attention(model)
    quantised_in, pairs, last, attention = _analyse(model, sample)

    def act(kind: Any) -> nn.Module:
        return qnn.QuantIdentity(act_quant=kind, bit_width=abits, return_quant_tensor=False)

    norms: dict[str, nn.Module] = {}
    for name, m in list(model.named_modules()):
        if isinstance(m, nn.LayerNorm):
            quant = act(signed)
            norms[name] = quant
            parent, leaf = _parent(model, name)
            setattr(parent, leaf, QuantOutput(m, quant))
        elif type(m).__name__ in ACTIVATIONS:
            kind = unsigned if type(m).__name__ in ("ReLU", "Sigmoid") else signed
            parent, leaf = _parent(model, name)
            setattr(parent, leaf, QuantOutput(m, act(kind)))
    for name, m in list(model.named_modules()):
        if not isinstance(m, LINEAR) or isinstance(m, qnn.QuantLinear | qnn.QuantConv1d | qnn.QuantConv2d):
            continue
        kw: dict[str, Any] = {"weight_quant": weight, "weight_bit_width": wbits, "return_quant_tensor": False}
        if name not in quantised_in:
            kw.update(input_quant=signed, input_bit_width=abits, bias_quant=Int32Bias)
        if name in pairs:
            kw["output_quant"] = norms[pairs[name]].act_quant
        elif name != last:
            kw.update(output_quant=signed, output_bit_width=abits)
        q = _quant_layer(qnn, m, kw)
        q.weight.data.copy_(m.weight.detach())
        if m.bias is not None:
            q.bias.data.copy_(m.bias.detach())
        parent, leaf = _parent(model, name)
        setattr(parent, leaf, q)
    for m in attention:
        m.edge_attention = AttentionQuant(lambda: act(signed), lambda: act(unsigned))
    _embedding_quant(model, wbits)
    return model.eval()

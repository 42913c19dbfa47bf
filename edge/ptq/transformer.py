"""Integer transformers from Hugging Face models: quantisers on every tensor an integer dataflow computes (Q, K, V,
the attention scores before Softmax and the probabilities after it, LayerNorm outputs, activations, the residual
stream), so that the QONNX model lowers to the FPGA and maps to int8 runtimes, not only to QDQ with float islands.

A residual sum adds two tensors as integers only when both share one quantiser: each residual pair (a layer's
output added to an earlier LayerNorm's output) is found by running the model once and matching the sums, then made
to share. In a pre-norm model (ViT) the residual stream itself is never requantised: every layer output added to it,
the patch projection that starts it and the class token and position table added there share one quantiser, so
the stream is an integer sum from the first token to the last block. The embedding tables share one power-of-two
scale, so word, position and token-type embeddings add as exact integers."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

LINEAR = (nn.Linear, nn.Conv1d, nn.Conv2d)  # weight layers: a ViT's patch embedding is a Conv2d
ATTENTION = "edge_integer"  # the attention implementation name registered with transformers
_CALLERS: list[nn.Module] | None = None  # while `_analyse` runs: the modules that call the attention function
STREAM_PARAMETERS = ("cls_token", "distillation_token", "position_embeddings")  # added to a pre-norm stream's start
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


@dataclass
class Analysis:
    """What one float run of a transformer shows (see `_analyse`)."""

    quantised_in: set[str] = field(default_factory=set)  # linears whose input is a LayerNorm/activation output
    pairs: dict[str, str] = field(default_factory=dict)  # post-norm: linear -> LayerNorm whose output it is added to
    stream: set[str] = field(default_factory=set)  # pre-norm: linears whose output is added to the residual stream
    roots: set[str] = field(default_factory=set)  # modules (embeddings) whose output starts the residual stream
    last: str | None = None  # the last linear to run: its logits stay unquantised
    attention: list[nn.Module] = field(default_factory=list)


def _analyse(model: nn.Module, sample: torch.Tensor) -> Analysis:
    """One float run: the linear layers whose input is a LayerNorm's or an activation's output (already quantised
    once those are), the residual pairs, post-norm {linear: LayerNorm whose output its output is added to} and
    pre-norm (linears added to an earlier LayerNorm's input, the stream, and the module that starts it), the last
    linear layer to run (the logits stay unquantised), and the attention modules."""
    global _CALLERS
    points: dict[int, str] = {}  # storage of a quantised output -> its module
    linear_out: dict[str, torch.Tensor] = {}
    norm_out: dict[str, torch.Tensor] = {}
    norm_in: dict[str, torch.Tensor] = {}
    start_out: dict[str, torch.Tensor] = {}
    found = Analysis()
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

    def before_norm(name: str) -> Callable[..., None]:
        def hook(_m: nn.Module, args: tuple) -> None:
            s = args[0] if args else None
            if not isinstance(s, torch.Tensor):
                return
            norm_in[name] = s
            found.roots.update(e for e, v in start_out.items() if v.shape == s.shape and torch.equal(v, s))
            for lin, u in linear_out.items():
                if lin in found.pairs or lin in found.stream or u.shape != s.shape:
                    continue
                for ln, v in norm_out.items():
                    if v.shape == s.shape and torch.equal(u + v, s):
                        found.pairs[lin] = ln
                        return
                for ln, v in norm_in.items():
                    if ln != name and v.shape == s.shape and torch.equal(u + v, s):
                        found.stream.add(lin)
                        return
        return hook

    def after_start(name: str) -> Callable[..., None]:
        def hook(_m: nn.Module, _i: Any, out: Any) -> None:
            if isinstance(out, torch.Tensor):
                start_out[name] = out
        return hook

    def before_linear(name: str) -> Callable[..., None]:
        def hook(_m: nn.Module, args: tuple) -> None:
            if args and _storage(args[0]) in points:
                found.quantised_in.add(name)
        return hook

    def after_linear(name: str) -> Callable[..., None]:
        def hook(_m: nn.Module, _i: Any, out: Any) -> None:
            order.append(name)
            if isinstance(out, torch.Tensor):
                linear_out[name] = out
        return hook

    for name, m in model.named_modules():
        if any(isinstance(m._parameters.get(p), nn.Parameter) for p in STREAM_PARAMETERS):
            hooks.append(m.register_forward_hook(after_start(name)))
        if isinstance(m, nn.LayerNorm):
            hooks += [m.register_forward_hook(after_point(name, True)),
                      m.register_forward_pre_hook(before_norm(name))]
        elif type(m).__name__ in ACTIVATIONS:
            hooks.append(m.register_forward_hook(after_point(name, False)))
        elif isinstance(m, LINEAR):
            hooks += [m.register_forward_pre_hook(before_linear(name)), m.register_forward_hook(after_linear(name))]
    _CALLERS = []
    try:
        with torch.no_grad():
            model(sample)
        found.attention = list({id(m): m for m in _CALLERS}.values())
    finally:
        _CALLERS = None
        for h in hooks:
            h.remove()
    found.last = order[-1] if order else None
    return found


def _read_through(module: nn.Module, quant: nn.Module) -> None:
    """`module` (a ViT's embeddings) reads its class token and position table through `quant`, the residual
    stream's quantiser: a subclass whose properties shadow those parameters, which stay where they are (same
    state-dict keys, same forward code)."""
    names = [p for p in STREAM_PARAMETERS if isinstance(module._parameters.get(p), nn.Parameter)]

    def reader(name: str) -> property:
        return property(lambda self: self.edge_stream(self._parameters[name]))

    base = type(module)
    module.__class__ = type(f"Integer{base.__name__}", (base,), {n: reader(n) for n in names})
    module.edge_stream = quant


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
    found = _analyse(model, sample)
    quantised_in, pairs, last = found.quantised_in, found.pairs, found.last

    def act(kind: Any) -> nn.Module:
        return qnn.QuantIdentity(act_quant=kind, bit_width=abits, return_quant_tensor=False)

    # a pre-norm residual stream: one quantiser for what starts it and for every layer output added to it
    stream = act(signed) if found.stream else None
    stream_linears = set(found.stream)
    if stream is not None:
        for root in found.roots:
            module = model.get_submodule(root)
            projections = [f"{root}.{n}" for n, m in module.named_modules() if isinstance(m, LINEAR)]
            if len(projections) == 1:  # the patch projection: its output is the stream's first tokens
                stream_linears.add(projections[0])
                _read_through(module, qnn.QuantIdentity(act_quant=stream.act_quant, return_quant_tensor=False))

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
        elif name in stream_linears and stream is not None:
            kw["output_quant"] = stream.act_quant
        elif name != last:
            kw.update(output_quant=signed, output_bit_width=abits)
        q = _quant_layer(qnn, m, kw)
        q.weight.data.copy_(m.weight.detach())
        if m.bias is not None:
            q.bias.data.copy_(m.bias.detach())
        parent, leaf = _parent(model, name)
        setattr(parent, leaf, q)
    for m in found.attention:
        m.edge_attention = AttentionQuant(lambda: act(signed), lambda: act(unsigned))
    _embedding_quant(model, wbits)
    return model.eval()

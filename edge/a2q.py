"""Accumulator-aware quantisation (Brevitas A2Q) at export: the weights the model computes with, not the raw ones.

Brevitas' QONNX exporter writes an A2Q layer's raw weight parameter into its Quant node, without the L1-norm
pre-scaling that A2Q applies in PyTorch, so the exported graph computes other weights (and overflows the declared
accumulator). `bake_accumulator_aware_weights` puts the quantised weights PyTorch uses into the QONNX, which then
matches the model and keeps every accumulator within its declared width.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from frontend.errors import EdgeError


def _pre_scaling(layer: nn.Module) -> nn.Module | None:
    quant = getattr(layer, "weight_quant", None)
    if quant is None:
        return None
    return next((m for m in quant.modules() if "AccumulatorAware" in type(m).__name__
                 and hasattr(m, "accumulator_bit_width")), None)


def accumulator_aware_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Layers whose weight quantiser is accumulator-aware, by module name."""
    return {name: m for name, m in model.named_modules() if _pre_scaling(m) is not None}


def declared_accumulator_bits(model: nn.Module) -> dict[str, int]:
    """Each A2Q layer's declared accumulator width P (its accumulator provably fits P signed bits)."""
    return {name: int(_pre_scaling(m).accumulator_bit_width()) for name, m in accumulator_aware_layers(model).items()}


def quantised_weights(model: nn.Module, example: torch.Tensor) -> dict[str, tuple[np.ndarray, np.ndarray, Any]]:
    """(raw weight, quantised weight, scale) per A2Q layer. A2Q's scale depends on the input's width, so one
    inference pass with input caching runs first."""
    layers = accumulator_aware_layers(model)
    if not layers:
        return {}
    for layer in layers.values():
        layer.weight_quant.cache_inference_quant_act = True
    model.eval()
    with torch.no_grad():
        model(example)
        out = {}
        for name, layer in layers.items():
            qw = layer.quant_weight()
            out[name] = (layer.weight.detach().cpu().numpy(), qw.value.detach().cpu().numpy().astype(np.float32),
                         qw.scale.detach().cpu().numpy().astype(np.float32))
    return out


def bake_accumulator_aware_weights(proto: onnx.ModelProto, weights: dict[str, tuple[np.ndarray, np.ndarray, Any]],
                                   ) -> list[str]:
    """Replace each A2Q layer's raw weight (found by value) and scale in front of its Quant node with the values
    PyTorch quantises with; returns the layers rewritten (a layer whose Quant node is not found: EdgeError)."""
    inits = {i.name: i for i in proto.graph.initializer}
    done = []
    for name, (raw, value, scale) in weights.items():
        node = next((n for n in proto.graph.node if n.op_type == "Quant" and n.input[0] in inits
                     and tuple(inits[n.input[0]].dims) == raw.shape
                     and np.array_equal(numpy_helper.to_array(inits[n.input[0]]), raw)), None)
        if node is None:
            raise EdgeError(f"the exported graph has no Quant node on the weights of A2Q layer '{name}'; export it "
                            "with dynamo=False (TorchScript), which keeps weights as initializers")
        inits[node.input[0]].CopyFrom(numpy_helper.from_array(value.reshape(raw.shape), node.input[0]))
        old = inits.get(node.input[1])
        if old is not None:
            inits[node.input[1]].CopyFrom(numpy_helper.from_array(
                np.asarray(scale, np.float32).reshape(tuple(old.dims)), node.input[1]))
        done.append(name)
    return done

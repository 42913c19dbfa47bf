"""Teachers for distillation: the trained baseline itself, a wider-bit (w8a8) copy, or a float copy of the same
architecture (every Brevitas quantiser switched off), each fine-tuned from the baseline's weights."""

from __future__ import annotations

import copy

from torch import nn

from edge.compress.bits import activation_layers, set_bit_widths, weight_layers
from edge.compress.distill import fine_tune
from edge.data import Dataset
from frontend.errors import EdgeError

TEACHERS = ("baseline", "w8a8", "float", "none")
WIDE_BITS = 8


def float_copy(model: nn.Module) -> nn.Module:
    """A copy computing in float: weight, bias and activation quantisers disabled, plain tensors between layers
    (the state dict keeps the quantised model's keys, so the copy loads and saves like the original)."""
    from brevitas.proxy.quant_proxy import QuantProxyFromInjector

    out = copy.deepcopy(model)
    for module in out.modules():
        if isinstance(module, QuantProxyFromInjector):
            module.disable_quant = True
        if hasattr(module, "return_quant_tensor"):
            module.return_quant_tensor = False
    return out


def wide_copy(model: nn.Module, bits: int = WIDE_BITS) -> nn.Module:
    """A copy with every integer weight and activation quantiser at `bits` (binary layers stay binary)."""
    out = copy.deepcopy(model)
    w, a = weight_layers(out), activation_layers(out)
    set_bit_widths(out, weights={n: bits for n, b in w.items() if 1 < b < bits},
                   activations={n: bits for n, b in a.items() if 1 < b < bits})
    return out


def teacher_shell(kind: str, base: nn.Module) -> nn.Module | None:
    """The teacher's architecture for `kind` built from the baseline (weights still the baseline's)."""
    if kind not in TEACHERS:
        raise EdgeError(f"unknown teacher {kind!r}; choose one of {', '.join(TEACHERS)}")
    if kind == "none":
        return None
    if kind == "baseline":
        return base
    return float_copy(base) if kind == "float" else wide_copy(base)


def train_teacher(kind: str, base: nn.Module, data: Dataset, shape: tuple[int, ...], epochs: int,
                  seed: int = 0) -> tuple[nn.Module | None, float | None]:
    """The teacher for `kind` and its test accuracy: the baseline as is, or its float/w8a8 copy fine-tuned from the
    baseline's weights for `epochs` (a stronger teacher than the student's starting point, at little cost)."""
    teacher = teacher_shell(kind, base)
    if teacher is None:
        return None, None
    if teacher is base:
        return base, fine_tune(base, data, shape, epochs=0)
    return teacher, fine_tune(teacher, data, shape, epochs=epochs, seed=seed)

"""Per-layer bit widths of a Brevitas model: weight quantisers of QuantConv/QuantLinear layers and activation
quantisers (QuantReLU, QuantIdentity, ...) re-initialised at a new width, learned scales kept."""

from __future__ import annotations

from torch import nn

from frontend.errors import EdgeError


def _quantised(model: nn.Module, proxy_name: str) -> dict[str, int]:
    """Modules with an enabled Brevitas quant proxy `proxy_name`, and its bit width."""
    out = {}
    for name, m in model.named_modules():
        q = getattr(m, proxy_name, None)
        if q is not None and hasattr(q, "quant_injector") and getattr(q, "is_quant_enabled", True):
            out[name] = int(q.bit_width())
    return out


def weight_layers(model: nn.Module) -> dict[str, int]:
    """Layers with a weight quantiser and their current weight bit width."""
    return _quantised(model, "weight_quant")


def activation_layers(model: nn.Module) -> dict[str, int]:
    """Activation quantisers (by module name) and their current bit width."""
    return _quantised(model, "act_quant")


def _scaling_of(module: nn.Module) -> nn.Module | None:
    q = getattr(module, "act_quant", None)
    tq = getattr(getattr(q, "fused_activation_quant_proxy", None), "tensor_quant", None)
    return getattr(tq, "scaling_impl", None)


def tie_groups(model: nn.Module) -> list[list[str]]:
    """Activation quantisers that share one scale module (Brevitas' PTQ aligns both inputs of a residual Add that
    way), as groups of two or more names."""
    owners: dict[int, list[str]] = {}
    for name, m in model.named_modules():
        scaling = _scaling_of(m)
        if scaling is not None:
            owners.setdefault(id(scaling), []).append(name)
    return [names for names in owners.values() if len(names) > 1]


def tied_activations(model: nn.Module) -> set[str]:
    """Quantisers in a tie group: re-initialising one alone would give the Add two scales, so they keep their
    width."""
    return {n for group in tie_groups(model) for n in group}


def retie(model: nn.Module, groups: list[list[str]]) -> nn.Module:
    """Share each group's scale module again: loading a state dict gives every quantiser its own copy (same values),
    and QAT would then move them apart."""
    modules = dict(model.named_modules())
    for group in groups:
        first = modules[group[0]].act_quant.fused_activation_quant_proxy.tensor_quant
        for name in group[1:]:
            tq = modules[name].act_quant.fused_activation_quant_proxy.tensor_quant
            tq.scaling_impl = first.scaling_impl
            if hasattr(first, "int_scaling_impl"):
                tq.int_scaling_impl = first.int_scaling_impl
    return model


def searchable_activations(model: nn.Module) -> list[str]:
    """Activation quantisers whose width a search may change: all but the input quantiser and tied ones."""
    tied = tied_activations(model)
    return [n for n in list(activation_layers(model))[1:] if n not in tied]


def reinit_proxy(proxy: nn.Module) -> None:
    """Rebuild a Brevitas quant proxy for its layer's current shapes. Its injector is re-bound to the proxy and the
    layers it now belongs to first: after copy.deepcopy the injector class still points at the original's."""
    proxy.quant_injector = proxy.quant_injector.let(proxy_module=proxy)
    proxy.update_tracked_modules()
    proxy.init_tensor_quant()


def _rebit(module: nn.Module, proxy_name: str, bits: int, where: str) -> None:
    proxy = getattr(module, proxy_name)
    if bits < 2 or bits > 8:
        raise EdgeError(f"{where}: {bits} bits; set widths between 2 and 8 here (1-bit layers need a binary quantiser)")
    if int(proxy.bit_width()) == 1:
        raise EdgeError(f"{where}: a binary quantiser cannot change its width; build the layer with an integer one")
    state = {k: v.clone() for k, v in module.state_dict().items()}
    proxy.quant_injector = proxy.quant_injector.let(bit_width=bits)
    reinit_proxy(proxy)
    now = module.state_dict()
    module.load_state_dict({k: v for k, v in state.items() if k in now and now[k].shape == v.shape}, strict=False)


def set_bit_widths(model: nn.Module, weights: dict[str, int] | None = None,
                   activations: dict[str, int] | None = None) -> nn.Module:
    """Set weight bit widths of the named layers and activation bit widths of the named quantisers (in place)."""
    modules = dict(model.named_modules())
    jobs = (("weight", weights or {}, "weight_quant"), ("activation", activations or {}, "act_quant"))
    for kind, table, proxy in jobs:
        for name, bits in table.items():
            m = modules.get(name)
            if m is None or getattr(m, proxy, None) is None:
                raise EdgeError(f"no {kind} quantiser at {name!r}")
            _rebit(m, proxy, int(bits), name)
    return model

"""Per-layer bit widths of a Brevitas model: weight quantisers of QuantConv/QuantLinear layers and activation
quantisers (QuantReLU, QuantIdentity, ...) re-initialised at a new width, learned scales kept."""

from __future__ import annotations

from torch import nn

from edge.errors import EdgeError


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

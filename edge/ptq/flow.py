"""Post-training quantisation of a float PyTorch model with Brevitas' graph PTQ (`brevitas.graph`): trace, merge
BatchNorm, (equalise), insert quantisers, calibrate, (mixed precision, GPTQ, bias correction). Models that torch.fx
cannot trace (Hugging Face transformers) are quantised layer by layer instead."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from edge.compress.bits import set_bit_widths, weight_layers
from edge.ptq.recipe import PERCENTILE, Recipe
from edge.ptq.source import as_model_input, plain_layers
from edge.ptq.transformer import integer_transformer, is_hf_transformer
from frontend.errors import EdgeError

# QuantLinear/QuantConv and friends: the layers whose weights are quantised
WEIGHT_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Linear)


@dataclass
class PtqModel:
    """The quantised model and how it was made."""

    model: nn.Module
    mode: str  # "graph" (torch.fx + brevitas.graph.quantize), "transformer" (Hugging Face, integer) or "layerwise"
    reference: nn.Module  # the float model as quantised (BatchNorm merged, equalised): per-layer SQNR reference
    weight_bits: dict[str, int]
    sensitivity: dict[str, dict[int, float]]


def batches(x: np.ndarray, size: int, label: str | None = None) -> Iterator[torch.Tensor]:
    """`x` in batches as model inputs, with a progress bar when `label` is given."""
    starts = range(0, len(x), size)
    for i in tqdm(starts, desc=label, unit="batch", leave=False, disable=label is None):
        yield as_model_input(x[i:i + size])


@torch.no_grad()
def run(model: nn.Module, x: np.ndarray, size: int = 256) -> np.ndarray:
    """Model outputs for all of `x` (float64), batched."""
    outs = []
    for xb in batches(x, size):
        y = model(xb)
        outs.append(np.asarray(getattr(y, "value", y).detach().float().numpy(), np.float64))
    return np.concatenate(outs)


@torch.no_grad()
def run_float64(model: nn.Module, x: np.ndarray, size: int = 64) -> np.ndarray:
    """Outputs of a float64 copy of the (quantised) model: its sums then carry no float32 rounding, so a value that
    sits on a quantiser's rounding boundary lands where exact integer arithmetic puts it. Falls back to float32 when
    the model does not run in float64."""
    try:
        m64 = copy.deepcopy(model).double()
        outs = []
        for i in range(0, len(x), size):
            xb = x[i:i + size]
            xt = torch.from_numpy(np.ascontiguousarray(xb, np.float64)) if xb.dtype.kind == "f" else as_model_input(xb)
            y = m64(xt)
            outs.append(np.asarray(getattr(y, "value", y).detach().numpy(), np.float64))
        return np.concatenate(outs)
    except Exception:  # noqa: BLE001 - an op without a float64 kernel: the float32 run is the best there is
        return run(model, x)


def _quantizers(recipe: Recipe) -> tuple[Any, Any, Any]:
    """Weight, signed and unsigned activation quantisers for the recipe's calibration."""
    from brevitas.quant import (
        Int8ActPerTensorFloat,
        Int8ActPerTensorFloatMSE,
        Int8WeightPerChannelFloat,
        Uint8ActPerTensorFloat,
        Uint8ActPerTensorFloatMSE,
    )

    if recipe.calibration == "mse":
        signed, unsigned = Int8ActPerTensorFloatMSE, Uint8ActPerTensorFloatMSE
    else:
        q = 100.0 if recipe.calibration == "minmax" else PERCENTILE
        signed, unsigned = (c.let(high_percentile_q=q) for c in (Int8ActPerTensorFloat, Uint8ActPerTensorFloat))
    if recipe.signed_only:
        unsigned = signed
    return Int8WeightPerChannelFloat, signed, unsigned


def _maps(recipe: Recipe, layerwise: bool) -> tuple[dict, dict, dict]:
    """Brevitas' layer, activation and identity maps with per-channel weights at the recipe's bit widths."""
    import brevitas.nn as qnn
    from brevitas.graph.quantize import COMPUTE_LAYER_MAP, LAYERWISE_COMPUTE_LAYER_MAP, QUANT_ACT_MAP
    from brevitas.quant import Int8ActPerTensorFloatMinMaxInit, Int32Bias, Uint8ActPerTensorFloatMaxInit

    weight, signed, unsigned = _quantizers(recipe)
    act = {"bit_width": recipe.abits, "return_quant_tensor": True}
    wb = recipe.wbits[1]
    base = LAYERWISE_COMPUTE_LAYER_MAP if layerwise else COMPUTE_LAYER_MAP
    layers = {k: v for k, v in base.items() if k is nn.AvgPool2d}
    quant_cls = {nn.Conv1d: qnn.QuantConv1d, nn.Conv2d: qnn.QuantConv2d, nn.Linear: qnn.QuantLinear}
    for cls, qcls in quant_cls.items():
        kw: dict[str, Any] = {"weight_quant": weight, "weight_bit_width": wb, "bias_quant": Int32Bias,
                              "return_quant_tensor": not layerwise}
        if layerwise:
            kw.update(input_quant=signed, input_bit_width=recipe.abits)
        layers[cls] = (qcls, kw)
    # ReLU6's clamp is the quantiser's top: a scale from max_val=6, not from calibration statistics
    relu6 = ({"act_quant": Int8ActPerTensorFloatMinMaxInit, "min_val": -6.0, "max_val": 6.0} if recipe.signed_only
             else {"act_quant": Uint8ActPerTensorFloatMaxInit, "max_val": 6.0})
    acts = {
        nn.ReLU: (qnn.QuantReLU, {"act_quant": unsigned, **act}),
        nn.ReLU6: (qnn.QuantReLU, {**relu6, **act}),
        nn.Hardtanh: (qnn.QuantHardTanh, {**QUANT_ACT_MAP[nn.Hardtanh][1], "act_quant": signed, **act}),
        nn.Sigmoid: (qnn.QuantSigmoid, {"act_quant": unsigned, **act}),
    }
    identity = {"signed": (qnn.QuantIdentity, {"act_quant": signed, **act}),
                "unsigned": (qnn.QuantIdentity, {"act_quant": unsigned, **act})}
    return layers, acts, identity


def _graph_quantize(graph: nn.Module, recipe: Recipe) -> nn.Module:
    """brevitas.graph.quantize with our maps and without the requantiser after the last layer."""
    from brevitas import config
    from brevitas.graph.quantize import (
        UNSIGNED_ACT_TUPLE,
        DisableLastReturnQuantTensor,
        act_handler,
        add_output_quant_handler,
        align_input_quant,
        inp_placeholder_handler,
        layer_handler,
        residual_handler,
    )

    layers, acts, identity = _maps(recipe, layerwise=False)
    unsigned_acts = () if recipe.signed_only else UNSIGNED_ACT_TUPLE

    saved = config.IGNORE_MISSING_KEYS
    config.IGNORE_MISSING_KEYS = True
    try:
        graph.eval()
        graph = inp_placeholder_handler(graph, input_quantizer=identity["signed"])
        graph = act_handler(graph, layer_map=acts)
        graph = add_output_quant_handler(graph, identity, acts, unsigned_acts)
        graph = residual_handler(graph, identity, acts, unsigned_acts, align_input_quant)
        graph = layer_handler(graph, layer_map=layers, quant_identity_map=identity, quant_act_map=acts,
                              unsigned_act_tuple=unsigned_acts, requantize_output=True)
        graph = DisableLastReturnQuantTensor().apply(graph)
    finally:
        config.IGNORE_MISSING_KEYS = saved
    return _drop_output_quant(graph)


def _drop_output_quant(graph: nn.Module) -> nn.Module:
    """The logits leave unquantised: a requantiser after the last layer only loses precision (on the FPGA the last
    accumulator becomes an exact host-side affine step; int8 runtimes get their own output scale)."""
    import brevitas.nn as qnn

    out = next(n for n in graph.graph.nodes if n.op == "output")
    node = out.args[0]
    if getattr(node, "op", None) == "call_module" and \
            isinstance(graph.get_submodule(str(node.target)), qnn.QuantIdentity):
        last = node.args[0]
        out.replace_input_with(node, last)
        graph.graph.erase_node(node)
        graph.recompile()
        if getattr(last, "op", None) == "call_module":
            layer = graph.get_submodule(str(last.target))
            if hasattr(layer, "return_quant_tensor"):
                layer.return_quant_tensor = False
    return graph


def _execution_order(model: nn.Module, sample: torch.Tensor, kinds: tuple[type, ...]) -> list[str]:
    """Names of the modules of `kinds`, in the order one forward pass calls them."""
    order: list[str] = []
    hooks = [m.register_forward_hook(lambda mod, i, o, n=name: order.append(n) if n not in order else None)
             for name, m in model.named_modules() if isinstance(m, kinds)]
    try:
        with torch.no_grad():
            model(sample)
    finally:
        for h in hooks:
            h.remove()
    return order


def _first_last(model: nn.Module, sample: torch.Tensor) -> tuple[list[str], list[str]]:
    """First and last weight layers (executed first/last) and the input quantiser(s) before the first layer."""
    import brevitas.nn as qnn

    layers = [n for n in _execution_order(model, sample, (qnn.QuantConv1d, qnn.QuantConv2d, qnn.QuantLinear))]
    acts = _execution_order(model, sample, (qnn.QuantIdentity,))
    ends = [layers[0], layers[-1]] if layers else []
    return list(dict.fromkeys(ends)), acts[:1]


def calibrate(model: nn.Module, calib: np.ndarray, batch: int, progress: bool) -> None:
    from brevitas.graph.calibrate import calibration_mode

    with torch.no_grad(), calibration_mode(model):
        for xb in batches(calib, batch, "calibrating" if progress else None):
            model(xb)


def _equalize(model: nn.Module, calib: np.ndarray, batch: int, layerwise: bool, progress: bool) -> None:
    """SmoothQuant-style activation equalisation, only where the scales fold into the layer before (no new ops)."""
    from brevitas.graph.equalize import activation_equalization_mode

    with torch.no_grad(), activation_equalization_mode(model, alpha=0.5, layerwise=layerwise,
                                                       add_mul_node=layerwise):
        for xb in batches(calib, batch, "equalising" if progress else None):
            model(xb)


def _gptq(model: nn.Module, calib: np.ndarray, batch: int, progress: bool) -> None:
    from brevitas.graph.gptq import gptq_mode

    with torch.no_grad(), gptq_mode(model, act_order=True, use_quant_activations=False,
                                    create_weight_orig=False) as gptq:
        for _ in tqdm(range(gptq.num_layers), desc="GPTQ", unit="layer", leave=False, disable=not progress):
            for xb in batches(calib, batch):
                gptq.model(xb)
            gptq.update()


def _bias_correction(model: nn.Module, calib: np.ndarray, batch: int, progress: bool) -> None:
    from brevitas.graph.calibrate import bias_correction_mode

    with torch.no_grad(), bias_correction_mode(model):
        for xb in batches(calib, batch, "bias correction" if progress else None):
            model(xb)


def sqnr_db(ref: np.ndarray, got: np.ndarray) -> float:
    """Signal-to-quantisation-noise ratio in dB (inf when equal)."""
    noise = float(np.sum((np.asarray(ref, np.float64) - np.asarray(got, np.float64)) ** 2))
    signal = float(np.sum(np.asarray(ref, np.float64) ** 2))
    if noise == 0:
        return float("inf")
    return 10.0 * float(np.log10(max(signal, 1e-30) / noise))


def _mixed_precision(model: nn.Module, fixed: list[str], recipe: Recipe, x: np.ndarray, ref: np.ndarray,
                     tolerance_db: float, progress: bool) -> dict[str, dict[int, float]]:
    """Per-layer weight widths from a sensitivity pass: each layer alone at every width of the range (the others at
    the widest), the model's output SQNR against the float model; a layer takes the narrowest width that costs at
    most `tolerance_db` against all-widest. Returns the sensitivity table {layer: {bits: SQNR dB}}."""
    lo, hi = recipe.wbits
    base = sqnr_db(ref, run(model, x))
    table: dict[str, dict[int, float]] = {}
    names = [n for n in weight_layers(model) if n not in fixed]
    for name in tqdm(names, desc="sensitivity", unit="layer", leave=False, disable=not progress):
        table[name] = {hi: base}
        for bits in range(hi - 1, lo - 1, -1):
            set_bit_widths(model, weights={name: bits})
            table[name][bits] = sqnr_db(ref, run(model, x))
        set_bit_widths(model, weights={name: hi})
    choice = {n: min((b for b, s in t.items() if s >= base - tolerance_db), default=hi) for n, t in table.items()}
    set_bit_widths(model, weights=choice)
    return table


def _layerwise(model: nn.Module, sample: torch.Tensor, recipe: Recipe,
               log: Callable[[str], None]) -> tuple[nn.Module, str]:
    """A model torch.fx cannot trace: a Hugging Face transformer as an integer program when that form applies to it,
    else every linear/conv layer quantised on its own (QDQ runtimes take the rest in float)."""
    from brevitas.graph.quantize import layerwise_quantize

    if is_hf_transformer(model):
        weight, signed, unsigned = _quantizers(recipe)
        try:
            return integer_transformer(copy.deepcopy(model), sample, recipe.wbits[1], recipe.abits, weight, signed,
                                       unsigned), "transformer"
        except Exception as exc:  # noqa: BLE001 - an architecture the integer form does not know: say so, go on
            log(f"the integer transformer form does not apply ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:120] if str(exc) else ''}); quantising layer by layer")
    layers, _, _ = _maps(recipe, layerwise=True)
    return layerwise_quantize(model, compute_layer_map=layers), "layerwise"


def ptq(model: nn.Module, calib: np.ndarray, recipe: Recipe, batch: int = 64, progress: bool = True,
        mp_tolerance_db: float = 1.0, log: Callable[[str], None] = lambda _: None) -> PtqModel:
    """Quantise a float model (eval mode, `Logits`-wrapped) with Brevitas PTQ as `recipe` says."""
    from brevitas.graph.quantize import preprocess_for_quantize

    # tracing shares submodules and BatchNorm merging rewrites them: keep the caller's model as it was
    model = plain_layers(copy.deepcopy(model))
    sample = as_model_input(calib[:1])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # ReLU6 becomes ReLU (Brevitas' default): its quantiser's range comes from calibration; a fixed range
            # of 6 (ReLU6 kept) wasted most levels on digits (dw layer SQNR 22 dB instead of 27 at 8 bits)
            graph = preprocess_for_quantize(model, equalize_iters=20 if "equalize" in recipe.steps else 0)
        mode = "graph"
    except Exception as exc:  # noqa: BLE001 - torch.fx cannot trace every model; layerwise needs no trace
        log(f"torch.fx could not trace the model ({type(exc).__name__}); quantising layer by layer")
        graph, mode = copy.deepcopy(model), "layerwise"
    if "equalize" in recipe.steps:
        _equalize(graph, calib, batch, layerwise=mode == "layerwise", progress=progress)
    reference = copy.deepcopy(graph).eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if mode == "graph":
                qmodel = _graph_quantize(graph, recipe)
            else:
                qmodel, mode = _layerwise(graph, sample, recipe, log)
    except EdgeError:
        raise
    except Exception as exc:  # noqa: BLE001 - Brevitas refuses models it cannot quantise: name what
        raise EdgeError(f"Brevitas could not quantise the model: {type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    qmodel.eval()
    if not weight_layers(qmodel):
        raise EdgeError("the model has no Conv1d/Conv2d/Linear layer to quantise")
    first_last, input_quant = _first_last(qmodel, sample)
    set_bit_widths(qmodel, weights={n: recipe.first_last_bits for n in first_last},
                   activations={n: 8 for n in input_quant} if mode == "graph" else None)
    calibrate(qmodel, calib, batch, progress)
    sensitivity: dict[str, dict[int, float]] = {}
    if recipe.mixed:
        subset = calib[: min(len(calib), 256)]
        sensitivity = _mixed_precision(qmodel, first_last, recipe, subset, run(reference, subset), mp_tolerance_db,
                                       progress)
    if "gptq" in recipe.steps:
        _gptq(qmodel, calib, batch, progress)
    if "bias" in recipe.steps:
        _bias_correction(qmodel, calib, batch, progress)
    qmodel.eval()
    if mode == "graph":
        # drop what the graph no longer calls (the removed output quantiser) and register the rest in call order,
        # as every copy of it will (a GraphModule's deepcopy rebuilds it from the graph)
        qmodel.delete_all_unused_submodules()
        qmodel = copy.deepcopy(qmodel)
    return PtqModel(qmodel, mode, reference, weight_layers(qmodel), sensitivity)


def layer_sqnr(ptq_model: PtqModel, x: np.ndarray) -> list[dict[str, Any]]:
    """Per weight layer in execution order: its bits and the SQNR (dB) of its output against the float reference
    (the same layer of the BatchNorm-merged float model), on `x`."""
    model, ref = ptq_model.model, ptq_model.reference
    sample = as_model_input(x[:1])
    names = _execution_order(model, sample, WEIGHT_LAYERS)
    outs: dict[str, list[np.ndarray]] = {}

    def grab(tag: str) -> list[Any]:
        mods = dict((model if tag == "q" else ref).named_modules())
        return [mods[n].register_forward_hook(
            lambda m, i, o, key=f"{tag}:{n}": outs.setdefault(key, []).append(
                np.asarray(getattr(o, "value", o).detach().float().numpy(), np.float64)))
            for n in names if n in mods]

    hooks = grab("q") + grab("f")
    try:
        run(model, x)
        run(ref, x)
    finally:
        for h in hooks:
            h.remove()
    modules = dict(model.named_modules())
    rows = []
    for n in names:
        q, f = outs.get(f"q:{n}"), outs.get(f"f:{n}")
        rows.append({"name": n, "kind": type(modules[n]).__name__, "wbits": ptq_model.weight_bits.get(n),
                     "sqnr_db": None if q is None or f is None else round(sqnr_db(np.concatenate(f),
                                                                                  np.concatenate(q)), 2)})
    return rows

"""QONNX -> TFLite int8 that keeps the QAT scales, written from the exact integer IR (fpga.lower).

Each IR compute node with thresholds becomes one int8 op (CONV_2D, DEPTHWISE_CONV_2D or FULLY_CONNECTED) with
per-channel weight scales and an int32 bias found by `requant.fit_requant`, so that its int8 outputs are the
IR's integers: the IR is bit-exact with the QONNX golden model, and so is every int8 tensor here. Activations
are NHWC throughout (no TRANSPOSE); k-bit values sit in int8 with a zero point that lets the fused RELU and int8
saturation do the clamping. The last layer runs in float (DEQUANTIZE + float FULLY_CONNECTED) for a float output,
or in int8 with an output scale from its reachable range for `--io int8`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from edge.export.kernel_paths import U8S8_PAIRS, LayerPaths, layer_paths, max_fold, summarise, u8_operand_max
from edge.export.requant import MARGIN, check_requant, fit_float_affine, fit_requant, tune_fp32
from edge.export.tflite_model import (
    ACT_NONE,
    ACT_RELU,
    PADDING_SAME,
    PADDING_VALID,
    TFLITE_TYPES,
    Quant,
    TfliteModelBuilder,
    options,
)
from fpga.datatypes import quant_type
from fpga.execute import host_ops_at_quantiser
from fpga.ir import (
    AddConstant,
    AddStreams,
    ConcatConstant,
    DataflowGraph,
    DuplicateStreams,
    GlobalAccPool,
    LabelSelect,
    LayerNorm,
    Lookup,
    MatrixVectorUnit,
    MaxPool,
    Node,
    Padding,
    SlidingWindow,
    Softmax,
    StreamingConcat,
    StreamingDataWidthConverter,
    StreamMatMul,
    Thresholding,
    Thresholds,
    VectorVectorUnit,
)
from fpga.kinds import KindTable
from frontend.errors import EdgeError

IO_MODES = ("float", "int8")


@dataclass(frozen=True)
class Int8Tensor:
    """An int8 TFLite tensor holding an IR stream: ir value = q - zero_point, real value = ir value * scale."""

    index: int
    name: str
    scale: float
    zero_point: int
    vmin: int
    vmax: int
    shape: tuple[int, ...]  # per sample, NHWC or flat


@dataclass(frozen=True)
class Int8Layer:
    """One requantising int8 layer as written: its IR node, input stream, and int8 weights with output channels
    first in the IR's reduction order (for the kernel-path models)."""

    node: str
    input_stream: str
    weights: np.ndarray  # (C, K) for MVAU rows, (C, K) per channel for a depthwise layer
    depthwise: bool
    input_range: tuple[int, int]
    u8_max: int


@dataclass
class TfliteExport:
    """The flatbuffer and what a runner needs to feed and read it."""

    flatbuffer: bytes
    io: str
    input_quant: tuple[float, int]  # scale, zero point of the int8 input (used when io == int8)
    output_quant: tuple[float, int] | None  # of the int8 output, when io == int8
    input_layout: str  # "nhwc" or "flat"
    streams: dict[str, tuple[str, int]] = field(default_factory=dict)  # IR stream -> (tensor name, zero point)
    ops: list[dict[str, str]] = field(default_factory=list)
    widened: list[str] = field(default_factory=list)
    requant: dict[str, Any] = field(default_factory=dict)
    kernel_paths: dict[str, Any] = field(default_factory=dict)  # kernel_paths.summarise of every int8 layer
    int8_layers: list[Int8Layer] = field(default_factory=list)


def t_quant(t: Int8Tensor) -> Quant:
    return Quant((t.scale,), (t.zero_point,), value_range=(t.vmin, t.vmax))


def _zero_point(vmin: int, vmax: int) -> int:
    """Unsigned values end at int8's 127 (RELU clamps at the zero point); signed ones start at -128."""
    if vmax - vmin > 255:
        raise ValueError(f"[{vmin}, {vmax}] does not fit int8")
    return 127 - vmax if vmin >= 0 else -128 - vmin


def _bounds(w: np.ndarray, vmin: int, vmax: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output channel (axis 0): the smallest and largest reachable sum of w * x for x in [vmin, vmax]."""
    flat = w.reshape(len(w), -1).astype(np.int64)
    lo = np.minimum(flat * vmin, flat * vmax).sum(1)
    hi = np.maximum(flat * vmin, flat * vmax).sum(1)
    return lo, hi


def unit_step(th: Thresholds) -> Thresholds:
    """Bipolar outputs (-1 / +1, step 2) as step-1 levels: every threshold twice, so the level jumps by two at it
    and an int8 op with a steep enough multiplier lands on -1 or +1, never 0."""
    if th.step == 1:
        return th
    return replace(th, values=np.repeat(th.values, th.step, axis=1), step=1)


def relu_floor(th: Thresholds, lo: np.ndarray) -> Thresholds:
    """A signed quantiser after a ReLU never reaches its negative levels: their thresholds lie at or below every
    reachable accumulator. Without them the staircase starts at level 0, which the op's fused ReLU clamps exactly,
    and the requantisation fits the levels that remain."""
    k = -th.base
    if th.base >= 0 or th.step != 1 or k > th.levels or th.descending.any():
        return th
    if np.all(th.values[:, :k] <= np.asarray(lo).reshape(-1, 1)):
        return replace(th, values=th.values[:, k:], base=0)
    return th


def _same_pads(size: int, k: int, s: int) -> tuple[int, int]:
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


class TfliteWriter:
    """One IR -> TFLite conversion (stateful while it walks the IR)."""

    def __init__(self, graph: DataflowGraph, where: str, io: str = "float", builder: Any = None,
                 exact_float: bool = False) -> None:
        if io not in IO_MODES:
            raise EdgeError(f"unknown --io '{io}'; choose float or int8")
        self.g = graph
        self.where = where
        self.io = io
        self.b = builder if builder is not None else TfliteModelBuilder()
        self.t: dict[str, Int8Tensor] = {}
        self.deferred: dict[str, Node] = {}
        self.out_quant: tuple[float, int] | None = None
        self.ops: list[dict[str, str]] = []
        self.exact_channels = 0
        self.arith_exact_channels = 0
        self.channels = 0
        self.inexact: list[str] = []
        self.float_ops: list[str] = []
        self.paths: list[LayerPaths] = []
        self.int8_layers: list[Int8Layer] = []
        self.uint8_layers: list[str] = []  # QDQ ONNX form: full fold in uint8 weights (u8*u8 kernels)
        # exact_float: layers whose int8 requantisation cannot be exact (a float bias at 255 levels) run on exact
        # integers in float32 with a fitted float affine instead
        self.float_exact = getattr(self.b, "float_islands", False) and exact_float
        self.reals: dict[str, int] = {}  # stream -> float32 tensor of its real values (float islands)
        self.ints: dict[str, int] = {}  # stream -> int32 tensor of its IR integers (wider than int8)

    # ------------------------------------------------------------------ helpers
    def fail(self, node: Node, reason: str) -> EdgeError:
        return EdgeError(f"{self.where}: IR node '{node.name}' ({node.kind}) cannot go to tflite: {reason}")

    def scale_of(self, stream: str) -> float:
        probe = self.g.probes.get(stream)
        return float(np.asarray(probe.scale).reshape(-1)[0]) if probe is not None else 1.0

    def new_int8(self, stream: str, shape: tuple[int, ...], scale: float, vmin: int, vmax: int,
                 name: str | None = None) -> Int8Tensor:
        zp = _zero_point(vmin, vmax)
        name = name or f"ir/{stream}"
        idx = self.b.tensor(name, (1, *shape), np.int8, Quant((scale,), (zp,), value_range=(vmin, vmax)))
        t = Int8Tensor(idx, name, scale, zp, vmin, vmax, shape)
        self.t[stream] = t
        return t

    def record(self, op: str, out: str, precision: str = "int8") -> None:
        self.ops.append({"op": op, "output": out, "precision": precision})

    def op(self, op: str, inputs: list[int], out: Int8Tensor, options_table: str | None = None,
           **fields: Any) -> None:
        """One int8 operator writing `out` (with its options table's fields), recorded for the summary: what a kind
        module's mapping (fpga/kinds/) calls."""
        self.b.op(op, inputs, [out.index], options(options_table, **fields) if options_table else None)
        self.record(op, out.name)

    def gather_channels(self, x: Int8Tensor, order: np.ndarray, const_name: str, name: str) -> Int8Tensor:
        """x with its channels (last axis) taken in `order`, same quantisation (a GATHER)."""
        idx = self.b.const(const_name, np.asarray(order, np.int32))
        g = self.b.tensor(name, (1, *x.shape), np.int8, t_quant(x))
        self.b.op("GATHER", [x.index, idx], [g], options("GatherOptions", axis=len(x.shape), batchDims=0))
        self.record("GATHER", name)
        return Int8Tensor(g, name, x.scale, x.zero_point, x.vmin, x.vmax, x.shape)

    def clamp_top(self, t: Int8Tensor, stream: str) -> Int8Tensor:
        """int8 saturation clamps unsigned tops and signed bottoms; a signed top below 127 needs a MINIMUM."""
        top = t.vmax + t.zero_point
        if top >= 127:
            return t
        limit = self.b.const(f"{t.name}/max", np.array([top], np.int8), Quant((t.scale,), (t.zero_point,)))
        out_name = f"{t.name}/clamped"
        idx = self.b.tensor(out_name, (1, *t.shape), np.int8, t_quant(t))
        self.b.op("MINIMUM", [t.index, limit], [idx])
        self.record("MINIMUM", out_name)
        clamped = Int8Tensor(idx, out_name, t.scale, t.zero_point, t.vmin, t.vmax, t.shape)
        self.t[stream] = clamped
        return clamped

    def tensor(self, stream: str, user: Node) -> Int8Tensor:
        """The int8 tensor of a stream, emitting a deferred PAD if that is what produces it."""
        if stream in self.t:
            return self.t[stream]
        node = self.deferred.get(stream)
        if isinstance(node, Padding):
            x = self.tensor(node.inputs[0], node)
            top, left, bottom, right = node.pads
            pads = self.b.const(f"{node.name}/pads", np.array([[0, 0], [top, bottom], [left, right], [0, 0]],
                                                                  np.int32))
            shape = (*node.ofm, node.channels)
            out = self.new_int8(stream, shape, x.scale, x.vmin, x.vmax)
            if node.value == 0:
                self.b.op("PAD", [x.index, pads], [out.index])
                self.record("PAD", out.name)
                return out
            # a max pool's padding (the IR pads with its type's minimum): the tensor's own lowest value pools the
            # same and keeps one quantisation on both sides of the PADV2
            fill = self.b.const(f"{node.name}/value", np.array(x.vmin + x.zero_point, np.int8), t_quant(x))
            self.b.op("PADV2", [x.index, pads, fill], [out.index])
            self.record("PADV2", out.name)
            return out
        kind = node.kind if node is not None else "unknown"
        raise self.fail(user, f"its input comes from a {kind} that has no TFLite op of its own here")

    def flat(self, t: Int8Tensor) -> Int8Tensor:
        """A (H, W, C) tensor reshaped to (H*W*C,), NHWC order (the IR's flattening order)."""
        if len(t.shape) == 1:
            return t
        n = int(np.prod(t.shape))
        shape = self.b.const(f"{t.name}/flat_shape", np.array([-1, n], np.int32))
        name = f"{t.name}/flat"
        idx = self.b.tensor(name, (1, n), np.int8, t_quant(t))
        self.b.op("RESHAPE", [t.index, shape], [idx], options("ReshapeOptions", newShape=[-1, n]))
        self.record("RESHAPE", name)
        return Int8Tensor(idx, name, t.scale, t.zero_point, t.vmin, t.vmax, (n,))

    def islands(self, node: Node) -> None:
        """Float and int32 islands are TFLite's: the int8 ONNX program leaves such models to the QDQ form."""
        if not getattr(self.b, "float_islands", False):
            raise self.fail(node, "the int8 ONNX program has no float or int32 island for it (the QDQ form does)")

    def shape_of(self, stream: str) -> tuple[int, ...]:
        return tuple(self.g.tensors[stream].shape)

    def unary(self, op: str, x: int, name: str, shape: tuple[int, ...], dtype: type = np.float32,
              quant: Quant | None = None, opts: Any = None, extra: list[int] | None = None) -> int:
        """One op with a fresh output tensor of `shape` (per sample); returns its index."""
        out = self.b.tensor(name, (1, *shape), dtype, quant)
        self.b.op(op, [x, *(extra or [])], [out], opts)
        self.record(op, name, "int8" if dtype == np.int8 else np.dtype(dtype).name)
        return out

    def binary(self, op: str, a: int, b: int, name: str, shape: tuple[int, ...], dtype: type = np.float32) -> int:
        return self.unary(op, a, name, shape, dtype, opts=options(f"{op.title()}Options")
                          if op in ("ADD", "SUB", "MUL") else None, extra=[b])

    def real(self, stream: str, user: Node) -> int:
        """A float32 tensor of a stream's real values, as the golden model holds them: DEQUANTIZE of its int8
        tensor, or the float sum a deferred residual add / position embedding stands for (wider than int8)."""
        src = self.deferred.get(stream)
        if isinstance(src, AddStreams | AddConstant):  # a deferred sum read by two layers (DuplicateStreams) once
            stream = src.output
        if stream in self.reals:
            return self.reals[stream]
        shape = self.shape_of(stream)
        name = f"ir/{stream}/real"
        if isinstance(src, AddStreams):
            a, b = (self.as_shape(self.real(s, user), self.shape_of(s), shape, np.float32) for s in src.inputs)
            out = self.binary("ADD", a, b, name, shape)
        elif isinstance(src, AddConstant):
            x = self.real(src.inputs[0], user)
            table = (src.table.astype(np.float32) * np.float32(self.scale_of(src.inputs[0]))).reshape(1, *shape)
            c = self.b.const(f"{src.name}/table_real", table.astype(np.float32))
            out = self.binary("ADD", x, c, name, shape)
        else:
            t = self.tensor(stream, user)
            out = self.unary("DEQUANTIZE", t.index, name, t.shape)
        self.reals[stream] = out
        return out

    def integers(self, stream: str, user: Node, dtype: type = np.int32) -> int:
        """An int32 (or float32) tensor of a stream's IR integers: CAST of its int8 tensor minus the zero point,
        or the exact integer sum a deferred residual add / position embedding stands for."""
        src = self.deferred.get(stream)
        if isinstance(src, AddStreams | AddConstant):  # a deferred sum read by two layers (DuplicateStreams) once
            stream = src.output
        key = f"{stream}/{np.dtype(dtype).name}"
        if key in self.ints:
            return self.ints[key]
        shape = self.shape_of(stream)
        name = f"ir/{stream}/{np.dtype(dtype).name}"
        if isinstance(src, AddStreams):
            a, b = (self.as_shape(self.integers(s, user, dtype), self.shape_of(s), shape, dtype) for s in src.inputs)
            out = self.binary("ADD", a, b, name, shape, dtype)
        elif isinstance(src, AddConstant):
            x = self.integers(src.inputs[0], user, dtype)
            c = self.b.const(f"{src.name}/table_{np.dtype(dtype).name}", src.table.reshape(1, *shape).astype(dtype))
            out = self.binary("ADD", x, c, name, shape, dtype)
        else:
            t = self.tensor(stream, user)
            out = self.unary("CAST", t.index, f"{name}/stored", t.shape, dtype)
            if t.zero_point:
                zp = self.b.const(f"{name}/zero_point", np.array([t.zero_point], dtype))
                out = self.binary("SUB", out, zp, name, shape, dtype)
        self.ints[key] = out
        return out

    def as_shape(self, x: int, have: tuple[int, ...], want: tuple[int, ...], dtype: type) -> int:
        """A float32/int32 tensor in another per-sample shape (the same stream order)."""
        if tuple(have) == tuple(want):
            return x
        name = f"{self.b.tensors[x].name}/as_{'x'.join(map(str, want))}"
        if name in self.b.names:
            return self.b.names[name]
        spec = self.b.const(f"{name}/shape", np.array([-1, *want], np.int32))
        return self.unary("RESHAPE", x, name, tuple(want), dtype, extra=[spec],
                          opts=options("ReshapeOptions", newShape=[-1, *want]))

    def quantize_real(self, x: int, stream: str, shape: tuple[int, ...], scale: float, vmin: int,
                      vmax: int) -> Int8Tensor:
        """QUANTIZE a float32 tensor onto a quantiser's grid, clamped to its range [vmin, vmax]."""
        t = self.new_int8(stream, shape, scale, vmin, vmax)
        self.b.op("QUANTIZE", [x], [t.index])
        self.record("QUANTIZE", t.name)
        if vmin + t.zero_point > -128:  # bottom clamp (an unsigned range ends at int8's top)
            limit = self.b.const(f"{t.name}/min", np.array([vmin + t.zero_point], np.int8), t_quant(t))
            idx = self.b.tensor(f"{t.name}/floor", (1, *shape), np.int8, t_quant(t))
            self.b.op("MAXIMUM", [t.index, limit], [idx])
            self.record("MAXIMUM", f"{t.name}/floor")
            t = Int8Tensor(idx, f"{t.name}/floor", t.scale, t.zero_point, vmin, vmax, shape)
            self.t[stream] = t
        return self.clamp_top(t, stream)

    def levels_to_int8(self, v: int, stream: str, shape: tuple[int, ...], scale: float, vmin: int,
                       vmax: int) -> Int8Tensor:
        """Integer levels held in a float32 or int32 tensor (already within [vmin, vmax]) as the stream's int8
        tensor: plus the zero point, then CAST (exact: every value is an integer in int8's range)."""
        zp = _zero_point(vmin, vmax)
        dtype = np.float32 if self.b.tensors[v].type == TFLITE_TYPES[np.dtype(np.float32)] else np.int32
        if zp:
            c = self.b.const(f"ir/{stream}/zero_point", np.array([zp], dtype))
            v = self.binary("ADD", v, c, f"ir/{stream}/stored", shape, dtype)
        t = self.new_int8(stream, shape, scale, vmin, vmax)
        self.b.op("CAST", [v], [t.index])
        self.record("CAST", t.name)
        return t

    def reshaped(self, t: Int8Tensor, shape: tuple[int, ...]) -> Int8Tensor:
        """The same int8 values in another per-sample shape (stream order unchanged)."""
        if t.shape == shape:
            return t
        name = f"{t.name}/as_{'x'.join(map(str, shape))}"
        if name in self.b.names:
            return Int8Tensor(self.b.names[name], name, t.scale, t.zero_point, t.vmin, t.vmax, shape)
        spec = self.b.const(f"{t.name}/shape_{'x'.join(map(str, shape))}", np.array([-1, *shape], np.int32))
        idx = self.b.tensor(name, (1, *shape), np.int8, t_quant(t))
        self.b.op("RESHAPE", [t.index, spec], [idx], options("ReshapeOptions", newShape=[-1, *shape]))
        self.record("RESHAPE", name)
        return Int8Tensor(idx, name, t.scale, t.zero_point, t.vmin, t.vmax, shape)

    def rows(self, t: Int8Tensor, vectors: int, width: int) -> Int8Tensor:
        """A stream as (vectors, width) rows for a FULLY_CONNECTED that keeps them apart."""
        return self.reshaped(t, (vectors, width))

    # ------------------------------------------------------------------ requantising layers
    def requant_layer(self, node: Node, op: str, x: Int8Tensor, w: np.ndarray, axis: int, th: Thresholds,
                      out_shape: tuple[int, ...], opts: Any) -> None:
        """An int8 op whose int8 outputs reproduce the thresholds exactly; w in TFLite layout, channels on axis."""
        th = unit_step(th)
        wc = np.moveaxis(w.astype(np.int64), axis, 0)  # channels first, for bounds and folding
        lo, hi = _bounds(wc, x.vmin, x.vmax)
        # the output tensor keeps the quantiser's full range (its zero point is what consumers and residual adds
        # see); only the fit skips the unreachable negative levels, which the fused ReLU clamps
        vmin, vmax = th.base, th.base + th.levels
        full_th = th
        th = relu_floor(th, lo)
        # as QDQ ONNX, non-negative inputs are uint8 from zero (int8_onnx.py); LiteRT never takes the u8*s8 pairs
        u8_max = u8_operand_max(x.vmin, x.vmax, stored_unsigned=x.vmin >= 0)
        w_max = np.abs(wc).reshape(len(wc), -1).max(1)
        rq = fit_requant(th.values, th.descending, th.base, lo, hi, w_max)
        uint8_weights = False
        if getattr(self.b, "u8s8_pair_path", False):
            capped = fit_requant(th.values, th.descending, th.base, lo, hi, w_max, fold_cap=max_fold(wc, u8_max))
            if capped.exact.all() or not rq.exact.all():
                rq = capped
            else:  # the full fold is needed for an exact bias: keep it, in uint8 weights that avoid the pairs
                uint8_weights = True
                self.b.uint8_weights.add(f"{node.name}/weights")
        scaled = wc * (rq.sign * rq.fold).reshape(-1, *([1] * (wc.ndim - 1)))
        if np.abs(scaled).max(initial=0) > 127:
            raise self.fail(node, "a weight of -128 in a channel whose sign is flipped does not fit int8; "
                                  "train with narrow-range weights (Brevitas' default)")
        paths = layer_paths(node.name, scaled, u8_max)
        if uint8_weights:
            paths = replace(paths, exact={**paths.exact, U8S8_PAIRS: True})
            self.uint8_layers.append(node.name)
        self.paths.append(paths)
        self.int8_layers.append(Int8Layer(node.name, node.inputs[0], scaled.reshape(len(scaled), -1),
                                          op == "DEPTHWISE_CONV_2D", (x.vmin, x.vmax), u8_max))
        w8 = np.moveaxis(scaled, 0, axis).astype(np.int8)
        s_out = self.scale_of(node.output)
        s_w = (rq.multiplier * s_out / x.scale).astype(np.float32)
        if getattr(self.b, "xnnpack_requant", False):
            # LiteRT requantises in float32 (XNNPACK): modelled exactly, so a channel is exact when that function
            # gives every threshold's level, and a few float32 steps of its scale often make it so
            rq, s_w, ok = tune_fp32(rq, th.values, th.descending, th.base, lo, hi, x.scale, s_w, s_out)
        else:
            realised = np.float64(np.float32(x.scale)) * s_w.astype(np.float64) / np.float64(np.float32(s_out))
            ok = rq.exact & check_requant(rq, th.values, th.descending, th.base, lo, hi, realised, MARGIN / 2)
        if not ok.all() and self.float_exact and max(np.abs(lo).max(), np.abs(hi).max()) < 1 << 24:
            self.paths.pop()
            self.int8_layers.pop()
            if uint8_weights:
                self.uint8_layers.pop()
            return self.float_requant_layer(node, op, x, w, full_th, lo, hi, out_shape, opts)
        self.channels += len(ok)
        self.exact_channels += int(ok.sum())
        self.arith_exact_channels += int((ok | rq.exact_arith).sum())
        if not ok.all():
            self.inexact.append(f"{node.name}: {int((~ok).sum())} of {len(ok)} channels may differ by one level")
        if np.abs(rq.bias).max() >= 2**31:
            raise self.fail(node, "the int32 bias overflows")
        wq = self.b.const(f"{node.name}/weights", w8, Quant(tuple(s_w), (0,) * len(s_w), axis))
        bias_scale = (np.float32(x.scale) * s_w).astype(np.float32)
        bq = self.b.const(f"{node.name}/bias", rq.bias.astype(np.int32), Quant(tuple(bias_scale), (0,) * len(s_w)))
        out = self.new_int8(node.output, out_shape, s_out, vmin, vmax)
        opts.fusedActivationFunction = ACT_RELU if th.base >= 0 else ACT_NONE
        self.b.op(op, [x.index, wq, bq], [out.index], opts)
        self.record(op, out.name)
        self.clamp_top(out, node.output)

    def conv_source(self, node: Node) -> tuple[Int8Tensor, SlidingWindow, int]:
        """The tensor under a node's sliding window (PAD folded into SAME padding when it matches)."""
        swg = self.deferred.get(node.inputs[0])
        if not isinstance(swg, SlidingWindow):
            raise self.fail(node, "expected a sliding window in front of it")
        pad = self.deferred.get(swg.inputs[0])
        if isinstance(pad, Padding):
            h, w = pad.ifm
            (eh, ew), (sh, sw) = swg.extent, swg.stride  # SAME pads of a dilated window follow its extent
            same = (*_same_pads(h, eh, sh), *_same_pads(w, ew, sw))
            top, left, bottom, right = pad.pads
            if (top, bottom, left, right) == same and swg.stride == (1, 1):
                return self.tensor(pad.inputs[0], node), swg, PADDING_SAME
        return self.tensor(swg.inputs[0], node), swg, PADDING_VALID

    def mvau(self, node: MatrixVectorUnit) -> None:
        out_shape = self.g.tensors[node.output].shape
        if isinstance(self.deferred.get(node.inputs[0]), SlidingWindow):
            x, swg, padding = self.conv_source(node)
            kh, kw = swg.kernel
            w = node.weights.reshape(node.mh, kh, kw, swg.channels)
            opts = options("Conv2DOptions", padding=padding, strideH=swg.stride[0], strideW=swg.stride[1],
                           dilationHFactor=swg.dilation[0], dilationWFactor=swg.dilation[1])
            op = "CONV_2D"
        else:
            x = self.tensor(node.inputs[0], node)
            if len(x.shape) == 3 and len(out_shape) == 3:  # a 1x1 convolution
                w = node.weights.reshape(node.mh, 1, 1, node.mw)
                opts = options("Conv2DOptions", padding=PADDING_VALID, strideH=1, strideW=1, dilationHFactor=1,
                               dilationWFactor=1)
                op = "CONV_2D"
            elif node.vectors > 1 and node.thresholds is not None:  # a Linear over tokens: one row per vector
                if not getattr(self.b, "rows_kept", False):
                    raise self.fail(node, "a Linear over tokens (rows kept apart) is not in the int8 ONNX program "
                                          "(the QDQ form takes it)")
                x = self.rows(x, node.vectors, node.mw)
                w = node.weights
                opts = options("FullyConnectedOptions", keepNumDims=True)
                self.requant_layer(node, "FULLY_CONNECTED", x, w, 0, node.thresholds, (node.vectors, node.mh), opts)
                if tuple(out_shape) != (node.vectors, node.mh):
                    t = self.t[node.output]
                    self.t[node.output] = self.reshaped(t, tuple(out_shape))
                return
            else:
                x = self.flat(x)
                w = node.weights
                opts = options("FullyConnectedOptions")
                op = "FULLY_CONNECTED"
        if node.thresholds is None:
            return self.output_layer(node, x)
        th = node.thresholds
        if node.xnor:  # thresholds count matching bits p; the int8 op computes the dot product 2p - MW
            th = replace(th, values=2 * th.values - node.mw)
        self.requant_layer(node, op, x, w, 0, th, out_shape, opts)

    def vvau(self, node: VectorVectorUnit) -> None:
        x, swg, padding = self.conv_source(node)
        kh, kw = swg.kernel
        w = node.weights.T.reshape(1, kh, kw, node.channels)
        opts = options("DepthwiseConv2DOptions", padding=padding, strideH=swg.stride[0], strideW=swg.stride[1],
                       depthMultiplier=1, dilationHFactor=swg.dilation[0], dilationWFactor=swg.dilation[1])
        if node.thresholds is None:
            raise self.fail(node, "a depthwise layer without an activation quantiser after it")
        self.requant_layer(node, "DEPTHWISE_CONV_2D", x, w, 3, node.thresholds, self.g.tensors[node.output].shape,
                           opts)

    def thresholding(self, node: Thresholding) -> None:
        """Requantisation of an integer stream: fused into the depthwise/1x1 op that computes that stream."""
        src = self.deferred.get(node.inputs[0])
        th = node.thresholds
        out_shape = self.g.tensors[node.output].shape
        if isinstance(src, StreamMatMul):
            return self.matmul_requant(node, src)
        if isinstance(src, AddConstant) or (isinstance(src, AddStreams) and not self.same_grid(src, node)):
            self.islands(node)
            return self.threshold_table(node)
        if isinstance(src, GlobalAccPool):  # sum over H x W = a depthwise convolution with all-one weights
            h, w = src.ifm
            x = self.reshaped(self.tensor(src.inputs[0], node), (h, w, src.channels))
            opts = options("DepthwiseConv2DOptions", padding=PADDING_VALID, strideH=1, strideW=1, depthMultiplier=1,
                           dilationHFactor=1, dilationWFactor=1)
            pooled = f"{node.output}/pool"
            self.requant_layer(node, "DEPTHWISE_CONV_2D", x, np.ones((1, h, w, src.channels), np.int64), 3, th,
                               (1, 1, src.channels), opts)
            t = self.t.pop(node.output)
            self.t[pooled] = t
            self.t[node.output] = self.flat(t)
            return
        if isinstance(src, AddStreams):  # a + b = a 1x1 convolution over [a, b] with weights [I, I]
            a, b = (self.reshaped(self.tensor(s, node), self.shape_of(src.output)) for s in src.inputs)
            if (a.scale, a.zero_point) != (b.scale, b.zero_point):
                raise self.fail(node, "residual inputs with different quantisation")
            c = src.channels
            name = f"ir/{src.output}/concat"
            idx = self.b.tensor(name, (1, *a.shape[:-1], 2 * c), np.int8, t_quant(a))
            self.b.op("CONCATENATION", [a.index, b.index], [idx], options("ConcatenationOptions", axis=-1))
            self.record("CONCATENATION", name)
            # one int8 grid, so the bytes concatenate as they are; the range is the union of both
            x = Int8Tensor(idx, name, a.scale, a.zero_point, min(a.vmin, b.vmin), max(a.vmax, b.vmax),
                           (*a.shape[:-1], 2 * c))
            eye = np.eye(c, dtype=np.int64)
            w = np.concatenate([eye, eye], axis=1)
        else:
            x = self.tensor(node.inputs[0], node)
            c = node.channels
            w = np.eye(c, dtype=np.int64)
            if len(x.shape) == 3:  # per-channel identity: a 1x1 depthwise convolution
                opts = options("DepthwiseConv2DOptions", padding=PADDING_VALID, strideH=1, strideW=1,
                               depthMultiplier=1, dilationHFactor=1, dilationWFactor=1)
                self.requant_layer(node, "DEPTHWISE_CONV_2D", x, np.ones((1, 1, 1, c), np.int64), 3, th, out_shape,
                                   opts)
                return
        if len(x.shape) == 3:
            opts = options("Conv2DOptions", padding=PADDING_VALID, strideH=1, strideW=1, dilationHFactor=1,
                           dilationWFactor=1)
            self.requant_layer(node, "CONV_2D", x, w.reshape(c, 1, 1, -1), 0, th, out_shape, opts)
        else:
            self.requant_layer(node, "FULLY_CONNECTED", x, w, 0, th, out_shape, options("FullyConnectedOptions"))

    def same_grid(self, add: AddStreams, user: Node) -> bool:
        a, b = (self.tensor(s, user) for s in add.inputs)
        return (a.scale, a.zero_point) == (b.scale, b.zero_point)

    def concat(self, node: StreamingConcat) -> None:
        a, b = (self.tensor(s, node) for s in node.inputs)
        if (a.scale, a.zero_point) != (b.scale, b.zero_point):
            raise self.fail(node, "Concat of tensors with different int8 quantisation (scale or range); quantise "
                                  "both inputs with one shared quantiser")
        shape = self.g.tensors[node.output].shape
        out = self.new_int8(node.output, shape, a.scale, min(a.vmin, b.vmin), max(a.vmax, b.vmax))
        self.b.op("CONCATENATION", [a.index, b.index], [out.index], options("ConcatenationOptions", axis=-1))
        self.record("CONCATENATION", out.name)

    def maxpool(self, node: MaxPool) -> None:
        if isinstance(self.deferred.get(node.inputs[0]), SlidingWindow):  # overlapping windows: one MAX_POOL_2D
            x, swg, padding = self.conv_source(node)
            (kh, kw), (sh, sw), shape = swg.kernel, swg.stride, (*swg.ofm, node.channels)
        else:
            x, padding = self.tensor(node.inputs[0], node), PADDING_VALID
            (kh, kw), (sh, sw), shape = node.kernel, node.stride, (*node.ofm, node.channels)
        out = self.new_int8(node.output, shape, x.scale, x.vmin, x.vmax)
        opts = options("Pool2DOptions", padding=padding, strideH=sh, strideW=sw, filterHeight=kh, filterWidth=kw,
                       fusedActivationFunction=ACT_NONE)
        self.b.op("MAX_POOL_2D", [x.index], [out.index], opts)
        self.record("MAX_POOL_2D", out.name)

    # ------------------------------------------------------------------ transformer kinds
    def layer_norm(self, node: LayerNorm) -> None:
        """LayerNorm in float32 as converters write it (MEAN, SUB, MUL, MEAN, ADD eps, RSQRT, MUL, affine), then
        QUANTIZE onto the quantiser after it: what the golden model computes, in another order (within one level
        at float near-ties, like OpenVINO's MVN)."""
        self.islands(node)
        if node.gamma.size != node.channels or node.thresholds is None:
            raise self.fail(node, "its float affine is not in the IR (lowered by an older edge); build it again")
        shape = self.shape_of(node.output)
        x = self.real(node.inputs[0], node)
        axis = self.b.const(f"{node.name}/axis", np.array([len(shape)], np.int32))
        stat = (*shape[:-1], 1)
        mean_opts = options("ReducerOptions", keepDims=True)
        n = node.name
        mean = self.unary("MEAN", x, f"{n}/mean", stat, opts=mean_opts, extra=[axis])
        d = self.binary("SUB", x, mean, f"{n}/centred", shape)
        sq = self.binary("MUL", d, d, f"{n}/square", shape)
        var = self.unary("MEAN", sq, f"{n}/variance", stat, opts=mean_opts, extra=[axis])
        eps = self.b.const(f"{n}/epsilon", np.array([node.eps], np.float32))
        ve = self.binary("ADD", var, eps, f"{n}/variance_eps", stat)
        r = self.unary("RSQRT", ve, f"{n}/rsqrt", stat)
        z = self.binary("MUL", d, r, f"{n}/normalised", shape)
        g = self.b.const(f"{n}/gamma", node.gamma.astype(np.float32))
        b = self.b.const(f"{n}/beta", node.beta.astype(np.float32))
        y = self.binary("ADD", self.binary("MUL", z, g, f"{n}/scaled", shape), b, f"{n}/affine", shape)
        th = unit_step(node.thresholds)
        self.quantize_real(y, node.output, shape, self.scale_of(node.output), th.base, th.base + th.levels)
        self.float_ops.append(f"{node.name}: LayerNorm runs in float32 (as in the golden model, another order)")

    def softmax(self, node: Softmax) -> None:
        """Float SOFTMAX of the dequantised scores, then QUANTIZE onto the quantiser after it (LiteRT's int8
        SOFTMAX needs a 1/256 output scale; the model's own quantiser is kept)."""
        self.islands(node)
        shape = self.shape_of(node.output)
        x = self.real(node.inputs[0], node)
        p = self.unary("SOFTMAX", x, f"{node.name}/float", shape, opts=options("SoftmaxOptions", beta=1.0))
        self.quantize_real(p, node.output, shape, self.scale_of(node.output), 0, node.out_dtype.max)
        self.float_ops.append(f"{node.name}: Softmax runs in float32 (as in the golden model)")

    def lookup(self, node: Lookup) -> None:
        """The activation table as a GATHER: index = stored int8 value + per-channel offset (int32), exact."""
        self.islands(node)
        lo, hi = int(node.out_dtype.min), int(node.out_dtype.max)
        if hi - lo > 255:
            raise self.fail(node, f"its {node.out_dtype.bits}-bit output does not fit int8")
        x = self.tensor(node.inputs[0], node)
        shape = self.shape_of(node.output)
        rows, levels = node.table.shape
        zp_out = _zero_point(lo, hi)
        offset = np.arange(rows, dtype=np.int64) * levels - x.zero_point - int(node.in_dtype.min)
        idx = self.unary("CAST", x.index, f"{node.name}/stored", x.shape, np.int32)
        off = self.b.const(f"{node.name}/offset", offset.astype(np.int32))
        idx = self.binary("ADD", idx, off, f"{node.name}/index", x.shape, np.int32)
        table = self.b.const(f"{node.name}/table", (node.table.reshape(-1) + zp_out).astype(np.int8),
                             Quant((self.scale_of(node.output),), (zp_out,)))
        out = self.new_int8(node.output, shape, self.scale_of(node.output), lo, hi)
        self.b.op("GATHER", [table, idx], [out.index], options("GatherOptions", axis=0, batchDims=0))
        self.record("GATHER", out.name)

    def threshold_table(self, node: Thresholding) -> None:
        """Thresholds of a stream wider than int8 (a position embedding's sum, a residual add of two grids) as
        a GATHER from a per-channel table of levels indexed by the exact int32 value: exact."""
        src = node.inputs[0]
        dt = self.g.tensors[src].dtype
        vlo, vhi = int(dt.min), int(dt.max)
        th = unit_step(node.thresholds)
        c = node.channels
        if c * (vhi - vlo + 1) > 1 << 20:
            raise self.fail(node, f"a {dt.bits}-bit input has no int8 op and is too wide for a table")
        v = np.arange(vlo, vhi + 1, dtype=np.int64)
        levels = th.apply(np.broadcast_to(v[:, None], (len(v), c)))  # (span, C)
        shape = self.shape_of(node.output)
        vmin, vmax = th.base, th.base + th.levels
        zp = _zero_point(vmin, vmax)
        x = self.integers(src, node)
        off = self.b.const(f"{node.name}/offset", (np.arange(c) * len(v) - vlo).astype(np.int32))
        idx = self.binary("ADD", x, off, f"{node.name}/index", shape, np.int32)
        table = self.b.const(f"{node.name}/table", (levels.T.reshape(-1) + zp).astype(np.int8),
                             Quant((self.scale_of(node.output),), (zp,)))
        out = self.new_int8(node.output, shape, self.scale_of(node.output), vmin, vmax)
        self.b.op("GATHER", [table, idx], [out.index], options("GatherOptions", axis=0, batchDims=0))
        self.record("GATHER", out.name)

    def matmul_requant(self, node: Thresholding, mm: StreamMatMul) -> None:
        """Q K^T or A V and the quantiser after it: a float32 BATCH_MATMUL of the exact integers (every partial
        sum below 2**24, so exact in any order), then XNNPACK's own requantisation written out in float32 ops
        (ADD bias, MUL scale, ROUND half to even), fitted to the thresholds like an int8 layer's: exact."""
        self.islands(node)
        a_t, b_t = (self.tensor(s, node) for s in mm.inputs)
        m, nb, k, n = mm.rows, mm.batch, mm.inner, mm.cols
        corners = [a_t.vmin * b_t.vmin, a_t.vmin * b_t.vmax, a_t.vmax * b_t.vmin, a_t.vmax * b_t.vmax]
        lo_p, hi_p = min(corners) * k, max(corners) * k
        if max(abs(lo_p), abs(hi_p)) >= 1 << 24:
            raise self.fail(mm, "its products can exceed float32's exact integers (2**24)")
        a = self.integers(mm.inputs[0], node, np.float32)
        b = self.integers(mm.inputs[1], node, np.float32)
        name = mm.name

        def reshape(x: int, to: tuple[int, ...], tag: str) -> int:
            new = self.b.const(f"{name}/{tag}_shape", np.array([-1, *to], np.int32))
            return self.unary("RESHAPE", x, f"{name}/{tag}", to, extra=[new],
                              opts=options("ReshapeOptions", newShape=[-1, *to]))

        def transpose(x: int, perm: list[int], to: tuple[int, ...], tag: str) -> int:
            p = self.b.const(f"{name}/{tag}_perm", np.array(perm, np.int32))
            return self.unary("TRANSPOSE", x, f"{name}/{tag}", to, extra=[p])

        a = transpose(reshape(a, (m, nb, k), "a"), [0, 2, 1, 3], (nb, m, k), "a_heads")
        if mm.b_order == "nbk":
            b = transpose(reshape(b, (n, nb, k), "b"), [0, 2, 3, 1], (nb, k, n), "b_heads")
        else:
            b = transpose(reshape(b, (k, nb, n), "b"), [0, 2, 1, 3], (nb, k, n), "b_heads")
        acc = self.unary("BATCH_MATMUL", a, f"{name}/product", (nb, m, n), extra=[b],
                         opts=options("BatchMatMulOptions", adjX=False, adjY=False))
        acc = transpose(acc, [0, 2, 1, 3], (m, nb, n), "rows")
        shape = self.shape_of(node.output)
        if shape != (m, nb, n):
            acc = reshape(acc, shape, "out")
        th = unit_step(node.thresholds)
        c = node.channels
        values = np.broadcast_to(th.values, (c, th.values.shape[1])) if len(th.values) == 1 else th.values
        desc = np.broadcast_to(th.descending, (c,))
        th = replace(th, values=np.ascontiguousarray(values), descending=np.ascontiguousarray(desc))
        lo, hi = np.full(c, lo_p, np.int64), np.full(c, hi_p, np.int64)
        self.affine_levels(node, acc, relu_floor(th, lo), lo, hi, shape, (th.base, th.base + th.levels))
        self.float_ops.append(f"{mm.name}: the product of two activations runs as a float32 BATCH_MATMUL of "
                              "exact integers")

    def affine_levels(self, node: Node, acc: int, th: Thresholds, lo: np.ndarray, hi: np.ndarray,
                      shape: tuple[int, ...], out_range: tuple[int, int] | None = None) -> None:
        """Exact integer accumulators (a float32 tensor, channels last) to the node's int8 output: MUL by a
        float32 slope, ADD a float32 offset, ROUND half to even, clamp, CAST. Fitted so that the levels equal the
        thresholds over the reachable range (checked exactly in float32)."""
        m, b, ok = fit_float_affine(th.values, th.descending, th.base, lo, hi)
        self.channels += len(ok)
        self.exact_channels += int(ok.sum())
        self.arith_exact_channels += int(ok.sum())
        if not ok.all():
            self.inexact.append(f"{node.name}: {int((~ok).sum())} of {len(ok)} channels may differ by one level")
        vmin, vmax = th.base, th.base + th.levels  # the clamp (a ReLU's floor when relu_floor dropped levels)
        n = node.name
        v = self.binary("MUL", acc, self.b.const(f"{n}/slope", m), f"{n}/scaled", shape)
        v = self.binary("ADD", v, self.b.const(f"{n}/offset", b), f"{n}/shifted", shape)
        v = self.unary("ROUND", v, f"{n}/levels", shape)
        v = self.binary("MAXIMUM", v, self.b.const(f"{n}/lo", np.array([vmin], np.float32)), f"{n}/floor", shape)
        v = self.binary("MINIMUM", v, self.b.const(f"{n}/hi", np.array([vmax], np.float32)), f"{n}/ceil", shape)
        t_min, t_max = out_range if out_range is not None else (vmin, vmax)  # the tensor's quantiser range
        self.levels_to_int8(v, node.output, shape, self.scale_of(node.output), t_min, t_max)

    def float_requant_layer(self, node: Node, op: str, x: Int8Tensor, w: np.ndarray, th: Thresholds,
                            lo: np.ndarray, hi: np.ndarray, out_shape: tuple[int, ...], opts: Any) -> None:
        """The layer in float32 on exact integers (CAST of the int8 input minus its zero point, integer
        weights, every sum below 2**24), then a fitted float affine: exact where an int32 bias in accumulator
        units is too coarse for the golden model's float bias (255-level outputs)."""
        key = f"{x.name}/float_value"
        xf = self.ints.get(key)
        if xf is None:
            xf = self.unary("CAST", x.index, f"{x.name}/float_int", x.shape, np.float32)
            if x.zero_point:
                zp = self.b.const(f"{x.name}/float_zp", np.array([x.zero_point], np.float32))
                xf = self.binary("SUB", xf, zp, key, x.shape)
            self.ints[key] = xf
        wq = self.b.const(f"{node.name}/weights_float", w.astype(np.float32))
        bq = self.b.const(f"{node.name}/bias_float", np.zeros(w.shape[0] if op != "DEPTHWISE_CONV_2D"
                                                                 else w.shape[3], np.float32))
        opts.fusedActivationFunction = ACT_NONE
        acc = self.unary(op, xf, f"{node.name}/accumulator", out_shape, opts=opts, extra=[wq, bq])
        self.affine_levels(node, acc, relu_floor(th, lo), lo, hi, out_shape, (th.base, th.base + th.levels))
        self.float_ops.append(f"{node.name}: {op} in float32 on exact integers (no int8 requantisation "
                              "reproduces its quantiser; a fitted float affine does)")

    # ------------------------------------------------------------------ model edges
    def host_ops(self, x: int, shape: tuple[int, ...]) -> int:
        """The model's own preprocessing (`2 * x - 1`, `(x - mean) / std`) as float32 ops before the quantiser,
        element for element what ONNX computes (constants re-based onto the quantiser's shape, NHWC)."""
        for i, (op, c, first) in enumerate(host_ops_at_quantiser(self.g.pre)):
            if c.ndim == 4:
                c = np.moveaxis(c, 1, -1)
            elif c.ndim > 1:
                c = c.reshape(1, -1)
            const = self.b.const(f"input/host{i}/{op.lower()}", np.ascontiguousarray(c, np.float32))
            out = self.b.tensor(f"input/host{i}", (1, *shape), np.float32)
            self.b.op(op.upper(), [const, x] if first else [x, const], [out], options(f"{op}Options"))
            self.record(op.upper(), f"input/host{i}", "float32")
            x = out
        return x

    def bipolar_input(self, x: int, shape: tuple[int, ...]) -> None:
        """BipolarQuant on the input: x >= 0 selects +1, else -1, held in int8 (sign(0) = +1, as qonnx)."""
        pre = self.g.pre
        t = self.new_int8(self.g.input, shape, pre.scale, -1, 1)
        zero = self.b.const("input/zero", np.zeros((1,), np.float32))
        cond = self.b.tensor("input/nonneg", (1, *shape), np.bool_)
        self.b.op("GREATER_EQUAL", [x, zero], [cond])
        pos = self.b.const("input/plus_one", np.array([1 + t.zero_point], np.int8), t_quant(t))
        neg = self.b.const("input/minus_one", np.array([-1 + t.zero_point], np.int8), t_quant(t))
        self.b.op("SELECT_V2", [cond, pos, neg], [t.index])
        self.record("SELECT_V2", t.name)

    def embedding_input(self, shape: tuple[int, ...]) -> tuple[float, int]:
        """Token ids (int32) into a GATHER of the embedding table's int8 rows: the model takes ids, as the QONNX
        model does, and the rows are the integers the IR's input stream carries."""
        pre = self.g.pre
        if not getattr(self.b, "float_islands", False):
            raise EdgeError(f"{self.where}: {TOKEN_IDS_REFUSAL}")
        table = np.rint(np.asarray(pre.host_ops[0].const, np.float64) / pre.scale).astype(np.int64)
        ids = self.b.tensor("input", (1, *pre.raw_shape), np.int32)
        self.b.inputs = [ids]
        t = self.new_int8(self.g.input, shape, pre.scale, int(table.min()), int(table.max()))
        rows = self.b.const("input/embedding", (table + t.zero_point).astype(np.int8), t_quant(t))
        self.b.op("GATHER", [rows, ids], [t.index], options("GatherOptions", axis=0, batchDims=0))
        self.record("GATHER", t.name)
        return pre.scale, t.zero_point

    def input_layer(self) -> tuple[float, int]:
        pre = self.g.pre
        _, qmin, qmax = quant_type(pre.bits, pre.signed, pre.narrow)
        if pre.bipolar:
            qmin, qmax = -1, 1
        shape = self.g.tensors[self.g.input].shape
        if pre.host_ops and pre.host_ops[0].op == "Gather":
            return self.embedding_input(shape)
        if self.io == "int8":  # the host applies the preprocessing and the quantiser (TfliteRunner, drivers)
            t = self.new_int8(self.g.input, shape, pre.scale, qmin, qmax, name="input")
            self.b.inputs = [t.index]
            return pre.scale, t.zero_point
        x = self.b.tensor("input", (1, *shape), np.float32)
        self.b.inputs = [x]
        raw = pre.raw_shape or (pre.onnx_shape if pre.map_1d else ())
        if raw and hasattr(self.b, "raw_input"):
            self.b.raw_input(x, raw)  # QDQ ONNX takes the model's own input shape
        x = self.host_ops(x, shape)
        if pre.bipolar:
            self.bipolar_input(x, shape)
            return pre.scale, self.t[self.g.input].zero_point
        t = self.new_int8(self.g.input, shape, pre.scale, qmin, qmax)
        self.b.op("QUANTIZE", [x], [t.index])
        self.record("QUANTIZE", t.name)
        if qmin + t.zero_point > -128:  # bottom clamp (k-bit unsigned input)
            limit = self.b.const(f"{t.name}/min", np.array([qmin + t.zero_point], np.int8),
                                 Quant((t.scale,), (t.zero_point,)))
            idx = self.b.tensor(f"{t.name}/floor", (1, *shape), np.int8, t_quant(t))
            self.b.op("MAXIMUM", [t.index, limit], [idx])
            self.record("MAXIMUM", f"{t.name}/floor")
            self.t[self.g.input] = Int8Tensor(idx, f"{t.name}/floor", t.scale, t.zero_point, qmin, qmax, shape)
        self.clamp_top(self.t[self.g.input], self.g.input)
        return pre.scale, t.zero_point

    def output_layer(self, node: MatrixVectorUnit, x: Int8Tensor) -> None:
        """The last layer (no activation quantiser): float FULLY_CONNECTED, or int8 with a range-derived scale."""
        post = self.g.post
        if post.top_k:
            raise self.fail(node, "a top-k output")
        out_shape = self.g.tensors[node.output].shape
        if node.output == self.g.output and len(out_shape) == 3 and len(x.shape) == 3 and self.io == "float":
            return self.pointwise_output(node, x, out_shape)
        if node.output != self.g.output or len(out_shape) != 1:
            raise self.fail(node, "only a fully connected or (with float output) 1x1 convolution last layer can "
                                  "end the model")
        x = self.flat(x)
        rows = np.arange(node.mh)
        if post.layout.perm is not None:  # IR element i is QONNX flat element perm[i]
            rows = np.argsort(post.layout.perm)
        w = node.weights[rows].astype(np.float64)
        scale, bias = post.scale[rows], post.bias[rows]
        if node.xnor:  # the host affine takes the popcount p = (dot + MW) / 2
            scale, bias = scale / 2, bias + scale * node.mw / 2
        if self.io == "float":
            deq = self.b.tensor(f"{x.name}/float", (1, node.mw), np.float32)
            self.b.op("DEQUANTIZE", [x.index], [deq])
            self.record("DEQUANTIZE", f"{x.name}/float", "float32")
            u8_max = u8_operand_max(x.vmin, x.vmax, stored_unsigned=x.vmin >= 0)
            paths = layer_paths(node.name, w.astype(np.int64), u8_max)
            int8_gemm = getattr(self.b, "int8_weights_in_float_layers", False) and all(paths.exact.values())
            if int8_gemm:  # ONNX: Gemm(DQ(x), DQ(w int8)) runs as an int8 Gemm with a float output
                self.paths.append(paths)
                s_row = (scale / x.scale).astype(np.float32)
                wf = self.b.const(f"{node.name}/weights", w.astype(np.int8), Quant(tuple(s_row), (0,) * len(s_row), 0))
            else:
                wf = self.b.const(f"{node.name}/weights", (w * (scale / x.scale)[:, None]).astype(np.float32))
            bf = self.b.const(f"{node.name}/bias", bias.astype(np.float32))
            out = self.b.tensor("output", (1, node.mh), np.float32)
            self.b.op("FULLY_CONNECTED", [deq, wf, bf], [out], options("FullyConnectedOptions"))
            self.record("FULLY_CONNECTED", "output", "float32")
            self.float_ops.append(f"{node.name}: the last layer runs in float32 for a float output")
            self.b.outputs = [out]
            return
        lo, hi = _bounds(w.astype(np.int64), x.vmin, x.vmax)
        y_lo, y_hi = float(np.min(lo * scale + bias)), float(np.max(hi * scale + bias))
        s_o = max(y_hi - y_lo, 1e-12) / 255.0
        zp_o = int(np.clip(round(-128 - y_lo / s_o), -128, 127))
        s_w = (scale / x.scale).astype(np.float32)
        self.paths.append(layer_paths(node.name, w.astype(np.int64), u8_operand_max(x.vmin, x.vmax, x.vmin >= 0)))
        wq = self.b.const(f"{node.name}/weights", w.astype(np.int8), Quant(tuple(s_w), (0,) * len(s_w), 0))
        b_int = np.rint(bias / scale).astype(np.int32)
        bq = self.b.const(f"{node.name}/bias", b_int, Quant(tuple(np.float32(x.scale) * s_w), (0,) * len(s_w)))
        out = self.b.tensor("output", (1, node.mh), np.int8, Quant((s_o,), (zp_o,)))
        self.b.op("FULLY_CONNECTED", [x.index, wq, bq], [out], options("FullyConnectedOptions"))
        self.record("FULLY_CONNECTED", "output")
        self.out_quant = (s_o, zp_o)
        self.b.outputs = [out]

    def pointwise_output(self, node: MatrixVectorUnit, x: Int8Tensor, out_shape: tuple[int, ...]) -> None:
        """A per-pixel head (1x1 convolution, no quantiser after it: segmentation logits) in float32."""
        post = self.g.post
        scale = np.broadcast_to(post.scale, (node.mh,)).astype(np.float64)
        bias = np.broadcast_to(post.bias, (node.mh,)).astype(np.float64)
        w = node.weights.astype(np.float64) * (scale / x.scale)[:, None]
        deq = self.b.tensor(f"{x.name}/float", (1, *x.shape), np.float32)
        self.b.op("DEQUANTIZE", [x.index], [deq])
        self.record("DEQUANTIZE", f"{x.name}/float", "float32")
        wf = self.b.const(f"{node.name}/weights", w.reshape(node.mh, 1, 1, node.mw).astype(np.float32))
        bf = self.b.const(f"{node.name}/bias", bias.astype(np.float32))
        out = self.b.tensor("output", (1, *out_shape), np.float32)
        self.b.op("CONV_2D", [deq, wf, bf], [out], options("Conv2DOptions", padding=PADDING_VALID, strideH=1,
                                                             strideW=1, dilationHFactor=1, dilationWFactor=1))
        self.record("CONV_2D", "output", "float32")
        self.float_ops.append(f"{node.name}: the per-pixel head runs in float32 for a float output")
        self.b.outputs = [out]

    def thresholded_output(self) -> None:
        """The model ends in an activation quantiser: its int8 tensor (or that dequantised) is the output."""
        t = self.t[self.g.output]
        if self.io == "int8":
            self.out_quant = (t.scale, t.zero_point)
            self.b.outputs = [t.index]
            return
        out = self.b.tensor("output", (1, *t.shape), np.float32)
        self.b.op("DEQUANTIZE", [t.index], [out])
        self.record("DEQUANTIZE", "output", "float32")
        self.b.outputs = [out]

    def kernel_summary(self) -> dict[str, Any]:
        summary = summarise(self.paths)
        if not getattr(self.b, "u8s8_pair_path", False):
            summary["paths"][U8S8_PAIRS] = "not taken by LiteRT (its x86 kernels widen int8 to int16)"
        return {**summary, "uint8_weight_layers": self.uint8_layers}

    def defer(self, node: Node) -> None:
        """Padding, windows, pooling sums and residual adds are folded into the op that consumes them."""
        self.deferred[node.output] = node

    def duplicate(self, node: DuplicateStreams) -> None:
        for o in node.outputs:
            if node.inputs[0] in self.t:
                self.t[o] = self.t[node.inputs[0]]
            else:
                self.deferred[o] = self.deferred[node.inputs[0]]

    def concat_constant(self, node: ConcatConstant) -> None:
        """The constant rows (a class token) as an int8 constant of the stream's scale, joined by a CONCATENATION
        along the token axis: exact (one scale; a different zero point is an exact integer shift)."""
        self.islands(node)  # the int8 ONNX program's CONCATENATION joins channels
        x = self.reshaped(self.tensor(node.inputs[0], node), (node.vectors, node.channels))
        vmin, vmax = min(x.vmin, int(node.table.min())), max(x.vmax, int(node.table.max()))
        shape = (node.vectors + node.count, node.channels)
        out = self.new_int8(node.output, shape, x.scale, vmin, vmax)
        q = Quant((x.scale,), (out.zero_point,))
        rows = self.b.const(f"{node.name}/rows", (node.table + out.zero_point).astype(np.int8)[None], q)
        # CONCATENATION does not broadcast: the rows are repeated to the input's batch (SHAPE, SLICE, BROADCAST_TO)
        dims = self.b.tensor(f"{node.name}/input_shape", (3,), np.int32)
        self.b.op("SHAPE", [x.index], [dims], options("ShapeOptions", outType=TFLITE_TYPES[np.dtype(np.int32)]))
        batch = self.b.tensor(f"{node.name}/batch", (1,), np.int32)
        self.b.op("SLICE", [dims, self.b.const(f"{node.name}/begin", np.array([0], np.int32)),
                            self.b.const(f"{node.name}/size", np.array([1], np.int32))], [batch])
        target = self.b.tensor(f"{node.name}/target_shape", (3,), np.int32)
        self.b.op("CONCATENATION", [batch, self.b.const(f"{node.name}/row_shape",
                                                        np.array(node.table.shape, np.int32))],
                  [target], options("ConcatenationOptions", axis=0))
        batched = self.b.tensor(f"{node.name}/rows_batched", (1, *node.table.shape), np.int8, q)
        self.b.op("BROADCAST_TO", [rows, target], [batched])
        self.record("BROADCAST_TO", f"{node.name}/rows_batched")
        parts = [batched, x.index] if node.at == 0 else [x.index, batched]
        self.b.op("CONCATENATION", parts, [out.index], options("ConcatenationOptions", axis=1))
        self.record("CONCATENATION", out.name)
        want = self.shape_of(node.output)
        if tuple(want) != out.shape:
            self.t[node.output] = self.reshaped(out, tuple(want))

    def width_converter(self, node: StreamingDataWidthConverter) -> None:
        self.t[node.output] = self.tensor(node.inputs[0], node)

    # ------------------------------------------------------------------ driver
    def run(self) -> TfliteExport:
        in_scale, in_zp = self.input_layer()
        for node in self.g.nodes:
            mapping = TFLITE.entry(type(node))
            if not callable(mapping):
                raise self.fail(node, mapping.why if mapping is not None else "no TFLite mapping")
            mapping(self, node)
        if not self.b.outputs:
            self.thresholded_output()
        widened = sorted({f"{s}: {t.vmax - t.vmin + 1}-level values held in int8" for s, t in self.t.items()
                          if t.vmax - t.vmin + 1 < 256 and s in self.g.probes})
        desc = f"edge: int8 TFLite from {self.where} (QAT scales kept; requantisation fitted to the exact IR)"
        return TfliteExport(
            flatbuffer=self.b.serialize(desc), io=self.io, input_quant=(in_scale, in_zp), output_quant=self.out_quant,
            input_layout="nhwc" if len(self.g.tensors[self.g.input].shape) == 3 else "flat",
            streams={s: (t.name, t.zero_point) for s, t in self.t.items()}, ops=self.ops,
            widened=widened + self.float_ops,
            requant={"channels": self.channels, "exact_channels": self.exact_channels,
                     "exact_in_exact_arithmetic": self.arith_exact_channels, "inexact": self.inexact},
            kernel_paths=self.kernel_summary(),
            int8_layers=self.int8_layers)


TOKEN_IDS_REFUSAL = ("the lookup of token ids in an embedding table (Gather) is a TFLite GATHER; the int8 ONNX "
                     "program has none (the QDQ form takes it)")

# one mapping per IR kind, shared by the int8 ONNX (OpenVINO) program, which runs the same writer
TFLITE: KindTable[Callable[[TfliteWriter, Any], None]] = KindTable("tflite", adopt="tflite")
TFLITE.register(Padding, SlidingWindow, GlobalAccPool, AddStreams, AddConstant, StreamMatMul)(TfliteWriter.defer)
for _kind, _method in ((DuplicateStreams, TfliteWriter.duplicate),
                       (StreamingDataWidthConverter, TfliteWriter.width_converter),
                       (MatrixVectorUnit, TfliteWriter.mvau), (VectorVectorUnit, TfliteWriter.vvau),
                       (Thresholding, TfliteWriter.thresholding), (MaxPool, TfliteWriter.maxpool),
                       (StreamingConcat, TfliteWriter.concat), (LayerNorm, TfliteWriter.layer_norm),
                       (Softmax, TfliteWriter.softmax), (Lookup, TfliteWriter.lookup),
                       (ConcatConstant, TfliteWriter.concat_constant)):
    TFLITE.register(_kind)(_method)
TFLITE.refuse(LabelSelect, "top-k selection is not exported; export the model without --top-k")



def to_tflite(graph: DataflowGraph, where: str, io: str = "float", exact_float: bool = False) -> TfliteExport:
    """The integer IR of a model as an int8 TFLite flatbuffer (raises EdgeError naming the node it cannot map);
    exact_float runs the layers whose int8 requantisation cannot be exact in float32 on exact integers."""
    return TfliteWriter(graph, where, io, exact_float=exact_float).run()


def to_int8_onnx(graph: DataflowGraph, where: str, input_scale_fn: Any = None) -> TfliteExport:
    """The same int8 program as QDQ ONNX (NCHW, float I/O): `flatbuffer` then holds the ONNX model bytes."""
    from edge.export.int8_onnx import OnnxInt8Builder

    return TfliteWriter(graph, where, "float", OnnxInt8Builder(input_scale_fn)).run()

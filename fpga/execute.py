"""Reference executor of the dataflow IR in integer arithmetic (numpy int64), one batch at a time."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from qonnx.custom_op.general.quant import quant

from fpga.ir import (
    AddConstant,
    AddStreams,
    ConcatConstant,
    DataflowGraph,
    DuplicateStreams,
    GlobalAccPool,
    InputQuant,
    LabelSelect,
    LayerNorm,
    Lookup,
    MatrixVectorUnit,
    MaxPool,
    Node,
    OutputAffine,
    Padding,
    SlidingWindow,
    Softmax,
    StreamingConcat,
    StreamingDataWidthConverter,
    StreamMatMul,
    Thresholding,
    VectorVectorUnit,
)
from fpga.kinds import KindTable

HOST_FUNCS = {"Mul": np.multiply, "Add": np.add, "Sub": np.subtract, "Div": np.divide}


def apply_host_ops(pre: InputQuant, x: np.ndarray) -> np.ndarray:
    """The preprocessing the model does before its input quantiser, in float32 exactly as ONNX does it."""
    if pre.host_ops and pre.host_ops[0].op == "Gather":  # token ids -> rows of the embedding table
        return np.asarray(pre.host_ops[0].const, np.float32)[embedding_rows(x, len(pre.host_ops[0].const))]
    x = np.asarray(x, np.float32)
    if pre.raw_shape:
        x = x.reshape(len(x), *pre.raw_shape)
    for op in pre.host_ops:
        if op.op == "Reshape":
            x = x.reshape(len(x), *[int(d) for d in op.const])
            continue
        c = np.asarray(op.const, np.float32)
        a, b = (c, x) if op.const_first else (x, c)
        x = HOST_FUNCS[op.op](a, b).astype(np.float32)
    return x


def embedding_rows(ids: np.ndarray, rows: int) -> np.ndarray:
    """Token ids as table rows, negative ids counting from the end as ONNX Gather does; out of range is an error."""
    ids = np.asarray(ids)
    if ids.dtype.kind == "f" and not np.array_equal(ids, np.round(ids)):
        raise ValueError("token ids must be integers")
    ids = ids.astype(np.int64)
    if ids.size and (ids.min() < -rows or ids.max() >= rows):
        raise ValueError(f"token ids must lie in [-{rows}, {rows}) for an embedding table of {rows} rows; found "
                         f"{int(ids.min())}..{int(ids.max())}")
    return np.where(ids < 0, ids + rows, ids)


def host_ops_at_quantiser(pre: InputQuant) -> list[tuple[str, np.ndarray, bool]]:
    """The element-wise host ops re-based onto the quantiser's per-sample shape (`pre.onnx_shape`): each constant
    is broadcast where it applied, carried through the later reshapes, and reduced again along every axis on which
    it is constant. Element for element the same float32 operations, so an exported model that takes its input in
    the quantiser's shape computes what the QONNX model computes. Returns (op, constant (1, *onnx_shape)-shaped or
    reduced, constant first)."""
    shape = tuple(pre.raw_shape) or tuple(pre.onnx_shape)
    rebased: list[tuple[str, np.ndarray, bool]] = []
    for op in pre.host_ops:
        if op.op == "Reshape":
            shape = tuple(int(d) for d in op.const)
            rebased = [(name, c.reshape(1, *shape) if c.size > 1 else c, first) for name, c, first in rebased]
            continue
        c = np.asarray(op.const, np.float32)
        while c.ndim > len(shape) + 1 and c.shape[0] == 1:  # leading unit axes broadcast to nothing
            c = c[0]
        c = c.reshape(()) if c.size == 1 else np.broadcast_to(c, (1, *shape)).copy()
        rebased.append((op.op, c, op.const_first))
    out = []
    for name, c, first in rebased:
        if c.size > 1:
            c = c.reshape(1, *pre.onnx_shape)
            for axis in range(1, c.ndim):
                if np.all(c == c.take([0], axis=axis)):
                    c = c.take([0], axis=axis)
        out.append((name, np.asarray(c, np.float32), first))
    return out


def quantize_input(pre: InputQuant, x: np.ndarray) -> np.ndarray:
    """Host-side input step: the model's own preprocessing ops, then quantisation with qonnx's own Quant function
    so that it matches the golden model."""
    if pre.host_ops:
        x = apply_host_ops(pre, x)
    if pre.bipolar:  # qonnx's BipolarQuant: sign with sign(0) = +1
        return to_ir_layout(pre, np.where(np.asarray(x, np.float32) >= 0, 1, -1).astype(np.int64))
    y = quant(np.asarray(x, np.float32), np.float32(pre.scale), np.float32(0.0), np.float32(pre.bits),
              int(pre.signed), int(pre.narrow), pre.rounding_mode)
    return to_ir_layout(pre, np.rint(np.asarray(y, np.float64) / pre.scale).astype(np.int64))


def to_ir_layout(pre: InputQuant, q: np.ndarray) -> np.ndarray:
    """A batch at the input quantiser (N, *onnx_shape) in the accelerator's order: NHWC maps, (N, 1, L, C) for a
    1-D map, else flat features."""
    if q.ndim == 4:
        return np.moveaxis(q, 1, -1)
    if pre.map_1d:
        return np.moveaxis(q, 1, -1)[:, None]
    return q.reshape(len(q), -1)


def dequantize_output(post: OutputAffine, acc: np.ndarray) -> np.ndarray:
    """Host-side output step: integer accumulators to the QONNX model's float output, in its layout."""
    if post.top_k:
        return acc
    y = acc.astype(np.float64) * post.scale + post.bias
    return post.layout.to_onnx(y, post.onnx_shape).astype(np.float32)


def _dot(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Exact integer x @ w.T via float64 BLAS: exact while |sums| < 2**53, checked."""
    bound = np.abs(x).max(initial=0) * np.abs(w).sum(1).max(initial=0)
    if bound < 2**52:
        return np.rint(x.astype(np.float64) @ w.T.astype(np.float64)).astype(np.int64)
    return x.astype(np.int64) @ w.T.astype(np.int64)


def _windows(x: np.ndarray, node: SlidingWindow) -> np.ndarray:
    """(N, H, W, C) -> (N, OH, OW, kh, kw, C) windows, the SWG's output order."""
    kh, kw = node.kernel
    sh, sw = node.stride
    dh, dw = node.dilation
    oh, ow = node.ofm
    rows = (np.arange(oh) * sh)[:, None] + (np.arange(kh) * dh)[None, :]  # (OH, kh)
    cols = (np.arange(ow) * sw)[:, None] + (np.arange(kw) * dw)[None, :]  # (OW, kw)
    return x[:, rows[:, None, :, None], cols[None, :, None, :], :]


def layer_norm_z(node: LayerNorm, x: np.ndarray) -> np.ndarray:
    """The normalised value z = d / sqrt(Q + E) in FRAC_BITS fractional bits, floored toward zero, exactly as the
    kernel computes it (Python integers: d^2 * 2**(2F+8) needs more than 64 bits)."""
    c, f = node.channels, LayerNorm.FRAC_BITS
    v = x.reshape(-1, c).astype(object)
    total = v.sum(axis=1, keepdims=True)
    q = c * (v * v).sum(axis=1, keepdims=True) - total * total
    den = np.maximum(q * 256 + node.eps_fix, 1)
    d = c * v - total
    mag = np.frompyfunc(lambda dd, nn: math.isqrt((dd * dd << (2 * f + 8)) // nn), 2, 1)(d, den)
    z = np.where(d < 0, -mag, mag)
    return z.astype(np.int64).reshape(x.shape)


def softmax_levels(node: Softmax, x: np.ndarray) -> np.ndarray:
    """Integer softmax plus its output quantiser, as the kernel computes it."""
    v = x.reshape(-1, node.channels).astype(np.int64)
    diff = np.minimum(v.max(axis=1, keepdims=True) - v, len(node.table) - 1)
    e = node.table[diff]
    total = e.sum(axis=1, keepdims=True)
    den = total << Softmax.RECIP_BITS
    levels = (2 * e * node.recip + den) // (2 * den)
    return np.minimum(levels, node.out_dtype.max).reshape(x.shape)


def stream_matmul(node: StreamMatMul, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M*B*K) and B in its stream order -> (N, M, B, Ncol) exact integer products."""
    n = len(a)
    a = a.reshape(n, node.rows, node.batch, node.inner)
    if node.b_order == "nbk":
        bm = b.reshape(n, node.cols, node.batch, node.inner).transpose(0, 2, 3, 1)  # (N, B, K, Ncol)
    else:
        bm = b.reshape(n, node.inner, node.batch, node.cols).transpose(0, 2, 1, 3)
    out = np.einsum("nmbk,nbkc->nmbc", a.astype(np.float64), bm.astype(np.float64))
    bound = np.abs(a).max(initial=0) * np.abs(bm).max(initial=0) * node.inner
    if bound >= 2**52:
        out = np.einsum("nmbk,nbkc->nmbc", a.astype(np.int64), bm.astype(np.int64))
    return np.rint(out).astype(np.int64)


EXECUTE: KindTable[Callable[[Any, list[np.ndarray]], list[np.ndarray]]] = KindTable("execute", adopt="execute")


def run_node(node: Node, ins: list[np.ndarray]) -> list[np.ndarray]:
    """Execute one node on a batch; returns one array per output stream."""
    return EXECUTE(node)(node, ins)


@EXECUTE.register(MatrixVectorUnit)
def _mvau(node: MatrixVectorUnit, ins: list[np.ndarray]) -> list[np.ndarray]:
    x = ins[0]
    dot = _dot(x.reshape(-1, node.mw), node.weights)
    acc = (dot + node.mw) // 2 if node.xnor else dot  # popcount of matching bits
    out = node.thresholds.apply(acc) if node.thresholds is not None else acc
    return [out.reshape(len(x), -1)]


@EXECUTE.register(VectorVectorUnit)
def _vvau(node: VectorVectorUnit, ins: list[np.ndarray]) -> list[np.ndarray]:
    win = ins[0].reshape(*ins[0].shape[:-1], node.k, node.channels)  # (..., K, C)
    acc = np.einsum("...kc,ck->...c", win, node.weights)
    return [node.thresholds.apply(acc) if node.thresholds is not None else acc]


@EXECUTE.register(Thresholding)
def _thresholding(node: Thresholding, ins: list[np.ndarray]) -> list[np.ndarray]:
    return [node.thresholds.apply(ins[0])]


@EXECUTE.register(SlidingWindow)
def _sliding_window(node: SlidingWindow, ins: list[np.ndarray]) -> list[np.ndarray]:
    win = _windows(ins[0], node)
    n, oh, ow = win.shape[:3]
    return [win.reshape(n, oh, ow, -1)]


@EXECUTE.register(Padding)
def _padding(node: Padding, ins: list[np.ndarray]) -> list[np.ndarray]:
    t, left, b, r = node.pads
    return [np.pad(ins[0], ((0, 0), (t, b), (left, r), (0, 0)), constant_values=node.value)]


@EXECUTE.register(MaxPool)
def _maxpool(node: MaxPool, ins: list[np.ndarray]) -> list[np.ndarray]:
    x = ins[0].reshape(len(ins[0]), *node.ifm, node.channels)  # a window stream (n, oh, ow, k*c) as rows of k
    kh, kw = node.kernel
    sh, sw = node.stride
    oh, ow = node.ofm
    rows = (np.arange(oh) * sh)[:, None] + np.arange(kh)[None, :]
    cols = (np.arange(ow) * sw)[:, None] + np.arange(kw)[None, :]
    win = x[:, rows[:, None, :, None], cols[None, :, None, :], :]
    return [win.max(axis=(3, 4))]


@EXECUTE.register(GlobalAccPool)
def _global_acc_pool(node: GlobalAccPool, ins: list[np.ndarray]) -> list[np.ndarray]:
    return [ins[0].reshape(len(ins[0]), -1, node.channels).sum(axis=1)]


@EXECUTE.register(StreamingDataWidthConverter)
def _width_converter(node: StreamingDataWidthConverter, ins: list[np.ndarray]) -> list[np.ndarray]:
    return [ins[0]]


@EXECUTE.register(Lookup)
def _lookup(node: Lookup, ins: list[np.ndarray]) -> list[np.ndarray]:
    v = ins[0].reshape(-1, node.channels) - node.in_dtype.min
    rows = np.arange(node.channels) if len(node.table) > 1 else np.zeros(node.channels, np.int64)
    return [node.table[rows[None, :], v].reshape(ins[0].shape)]


@EXECUTE.register(AddConstant)
def _add_constant(node: AddConstant, ins: list[np.ndarray]) -> list[np.ndarray]:
    return [ins[0] + node.table.reshape(ins[0].shape[1:])]


@EXECUTE.register(StreamMatMul)
def _stream_matmul(node: StreamMatMul, ins: list[np.ndarray]) -> list[np.ndarray]:
    return [stream_matmul(node, ins[0], ins[1])]


@EXECUTE.register(Softmax)
def _softmax(node: Softmax, ins: list[np.ndarray]) -> list[np.ndarray]:
    return [softmax_levels(node, ins[0])]


@EXECUTE.register(LayerNorm)
def _layer_norm(node: LayerNorm, ins: list[np.ndarray]) -> list[np.ndarray]:
    z = layer_norm_z(node, ins[0])
    return [node.thresholds.apply(z.reshape(-1, node.channels)).reshape(ins[0].shape)]


@EXECUTE.register(AddStreams)
def _add_streams(node: AddStreams, ins: list[np.ndarray]) -> list[np.ndarray]:
    return [ins[0] + ins[1].reshape(ins[0].shape)]


@EXECUTE.register(StreamingConcat)
def _concat(node: StreamingConcat, ins: list[np.ndarray]) -> list[np.ndarray]:
    return [np.concatenate([ins[0], ins[1]], axis=-1)]


@EXECUTE.register(DuplicateStreams)
def _duplicate(node: DuplicateStreams, ins: list[np.ndarray]) -> list[np.ndarray]:
    return [ins[0]] + [ins[0].copy() for _ in node.outputs[1:]]


@EXECUTE.register(ConcatConstant)
def _concat_constant(node: ConcatConstant, ins: list[np.ndarray]) -> list[np.ndarray]:
    x = ins[0].reshape(len(ins[0]), node.vectors, node.channels)
    table = np.broadcast_to(node.table, (len(x), *node.table.shape))
    parts = [x[:, : node.at], table, x[:, node.at :]]
    return [np.concatenate(parts, axis=1).reshape(len(x), -1)]


@EXECUTE.register(LabelSelect)
def _label_select(node: LabelSelect, ins: list[np.ndarray]) -> list[np.ndarray]:
    # stable: among equal values the lower index wins, as a streaming comparator would keep the first
    order = np.argsort(-ins[0], axis=-1, kind="stable")
    return [order[..., : node.k]]


def execute(graph: DataflowGraph, x_int: np.ndarray, keep_all: bool = False) -> dict[str, np.ndarray]:
    """Run the accelerator part on integer inputs (N, *ir_input_shape); returns the output or every stream."""
    env: dict[str, np.ndarray] = {graph.input: np.asarray(x_int, np.int64)}
    for node in graph.nodes:
        outs = run_node(node, [env[i] for i in node.inputs])
        names = node.outputs if isinstance(node, DuplicateStreams) else (node.output,)
        for name, out in zip(names, outs, strict=True):
            env[name] = out.reshape(len(out), *graph.tensors[name].shape)
    return env if keep_all else {graph.output: env[graph.output]}


def run_model(graph: DataflowGraph, x: np.ndarray) -> np.ndarray:
    """Float input in the QONNX layout -> float output in the QONNX layout, host steps included."""
    acc = execute(graph, quantize_input(graph.pre, x))[graph.output]
    return dequantize_output(graph.post, acc)

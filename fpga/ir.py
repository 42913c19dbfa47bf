"""The integer dataflow IR: typed nodes on channels-last integer streams, plus the host-side steps around them.

Every node streams one sample at a time; shapes are per sample. Vocabulary follows FINN (MVAU, VVAU, SWG, ...).
Thresholds map an accumulator to an output level: out = base + step * #{i : acc >= T[c, i]} for ascending
channels, and #{i : acc <= T[c, i]} for descending ones (a negative BatchNorm scale makes a channel descending).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np

from fpga.datatypes import BIPOLAR, IntType
from frontend.shapes import split_batch


@dataclass(frozen=True, eq=False)
class Node:
    """Base of every dataflow node: named input streams, one output stream, folding factors PE and SIMD."""

    name: str
    inputs: tuple[str, ...]
    output: str
    pe: int = 1
    simd: int = 1

    kind: ClassVar[str] = "Node"

    def fold_limits(self) -> dict[str, int]:
        """Each folding factor and the size it must divide (PE | channels, SIMD | inputs per output, ...)."""
        return {}

    def cycles(self) -> int:
        """Clock cycles per sample at the current folding, one pipelined iteration per cycle (II=1)."""
        raise NotImplementedError

    def fold_ok(self, pe: int, simd: int) -> bool:
        """Legality beyond divisibility (fold_limits); most nodes need nothing more."""
        return True

    def with_fold(self, pe: int, simd: int) -> Node:
        return replace(self, pe=pe, simd=simd)


@dataclass(frozen=True, eq=False)
class Thresholds:
    """Per-channel thresholds and how a level count becomes the output value."""

    values: np.ndarray  # (channels, levels) int64, sorted along levels for ascending channels
    descending: np.ndarray  # (channels,) bool
    base: int  # output of level count 0
    step: int  # 1 for integers, 2 for bipolar outputs (-1 -> +1)
    out_dtype: IntType

    @property
    def levels(self) -> int:
        return int(self.values.shape[1])

    def apply(self, acc: np.ndarray) -> np.ndarray:
        """acc (..., channels) -> output values (..., channels)."""
        a, vals = np.asarray(acc), self.values
        if vals.shape[0] not in (1, a.shape[-1] if a.ndim else 1) or a.dtype.kind not in "iu":
            x = a[..., None]  # the general form (broadcasting, any dtype)
            count = np.where(self.descending, (x <= vals).sum(-1), (x >= vals).sum(-1))
            return self.base + self.step * count
        if self.descending.any():  # a <= v is -a >= -v: every channel becomes an ascending one
            a = np.where(self.descending, -a.astype(np.int64), a)
            vals = np.where(self.descending[:, None], -vals, vals)
        count = _counts_by_level(a, vals) if self.levels <= 32 else _counts_by_search(a, vals)
        return self.base + self.step * count


def _counts_by_level(a: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """How many of each channel's thresholds lie at or below a: one comparison pass per level (few levels)."""
    count = np.zeros(a.shape, np.int32)
    for level in range(vals.shape[1]):
        count += a >= vals[:, level]
    return count.astype(np.int64)


def _counts_by_search(a: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """The same count by one binary search over all channels at once (many levels): channel c's row shifted by
    c * span after clipping to just outside the accumulators' range, which keeps every count."""
    chans, levels = vals.shape
    lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
    span = hi - lo + 3
    vals = np.sort(vals, axis=1)  # counting does not depend on the order of a channel's thresholds
    if span * chans >= 2**62:
        return _counts_by_level(a, vals)
    v = np.clip(vals, lo - 1, hi + 1).astype(np.int64) - (lo - 1)
    shifted = a.astype(np.int64) - (lo - 1)
    if chans == 1:
        return np.searchsorted(v[0], shifted, side="right").astype(np.int64)
    offsets = np.arange(chans, dtype=np.int64) * span
    found = np.searchsorted((v + offsets[:, None]).ravel(), shifted + offsets, side="right")
    return found - np.arange(chans, dtype=np.int64) * levels


@dataclass(frozen=True, eq=False)
class MatrixVectorUnit(Node):
    """MVAU: out[v, h] = act(sum_w W[h, w] * x[v, w]) for each of `vectors` input vectors of MW elements.

    In XNOR mode (bipolar weights and inputs) the accumulator is the popcount of matching bits.
    """

    mw: int = 0
    mh: int = 0
    vectors: int = 1
    weights: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))  # (MH, MW)
    in_dtype: IntType = BIPOLAR
    w_dtype: IntType = BIPOLAR
    acc_dtype: IntType = BIPOLAR
    xnor: bool = False
    thresholds: Thresholds | None = None

    kind: ClassVar[str] = "MatrixVectorUnit"

    def fold_limits(self) -> dict[str, int]:
        return {"pe": self.mh, "simd": self.mw}

    def cycles(self) -> int:
        return (self.mh // self.pe) * (self.mw // self.simd) * self.vectors


@dataclass(frozen=True, eq=False)
class VectorVectorUnit(Node):
    """VVAU (depthwise conv): out[v, c] = act(sum_k W[c, k] * x[v, k, c]) over a K = kh*kw window per channel.
    Folding: PE channels per word; with all channels in a word (PE = C), SIMD consecutive window taps too (the
    multi-tap VVAU that a parallel-window SWG feeds), SIMD * C products per clock."""

    channels: int = 0
    k: int = 0
    vectors: int = 1
    weights: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))  # (C, K)
    in_dtype: IntType = BIPOLAR
    w_dtype: IntType = BIPOLAR
    acc_dtype: IntType = BIPOLAR
    thresholds: Thresholds | None = None

    kind: ClassVar[str] = "VectorVectorUnit"

    def fold_limits(self) -> dict[str, int]:
        # words follow the sliding window's (k, channel) order: PE folds channels; SIMD taps per word only when a
        # word holds every channel of a tap
        return {"pe": self.channels, "simd": self.k}

    def fold_ok(self, pe: int, simd: int) -> bool:
        return simd == 1 or pe == self.channels

    def cycles(self) -> int:
        return (self.channels // self.pe) * (self.k // self.simd) * self.vectors


@dataclass(frozen=True, eq=False)
class Thresholding(Node):
    """Stand-alone multi-thresholding: requantises an integer stream channel by channel."""

    channels: int = 0
    vectors: int = 1
    in_dtype: IntType = BIPOLAR
    thresholds: Thresholds | None = None

    kind: ClassVar[str] = "Thresholding"

    def fold_limits(self) -> dict[str, int]:
        return {"pe": self.channels}

    def cycles(self) -> int:
        return (self.channels // self.pe) * self.vectors


@dataclass(frozen=True, eq=False)
class SlidingWindow(Node):
    """Convolution input generator (SWG): emits each kh x kw window, ordered (kh, kw, channel); a dilated window
    takes every d-th row and column of an extent of (k - 1) * d + 1, so the MVAU/VVAU sees only the real taps."""

    ifm: tuple[int, int] = (0, 0)
    ofm: tuple[int, int] = (0, 0)
    channels: int = 0
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    dtype: IntType = BIPOLAR
    depthwise: bool = False
    dilation: tuple[int, int] = (1, 1)

    kind: ClassVar[str] = "SlidingWindow"

    @property
    def extent(self) -> tuple[int, int]:
        """Rows and columns a window spans in the input map: the kernel with its dilation gaps."""
        (kh, kw), (dh, dw) = self.kernel, self.dilation
        return (kh - 1) * dh + 1, (kw - 1) * dw + 1

    @property
    def pixels(self) -> int:
        """Window pixels per output word: SIMD above the channel count writes SIMD/C neighbouring kx positions at
        once (FINN's parallel window along kw), for layers with few channels such as the first convolution."""
        return max(1, self.simd // self.channels)

    def fold_limits(self) -> dict[str, int]:
        return {"simd": self.channels * self.kernel[1]}

    def fold_ok(self, pe: int, simd: int) -> bool:
        if self.channels % simd == 0:
            return True
        # a word's pixels come from as many column banks: taps d apart must fall in different banks
        pix = simd // self.channels
        return simd % self.channels == 0 and self.kernel[1] % pix == 0 and math.gcd(pix, self.dilation[1]) == 1

    def cycles(self) -> int:
        reads = self.ifm[0] * self.ifm[1] * self.channels // min(self.simd, self.channels)
        writes = self.ofm[0] * self.ofm[1] * self.kernel[0] * self.kernel[1] * self.channels // self.simd
        return max(reads, writes)


@dataclass(frozen=True, eq=False)
class Padding(Node):
    """Constant padding of a feature map: (top, left, bottom, right) pixels of `value` (0 in front of a
    convolution; the type's minimum in front of a max pool, which then equals ONNX's -inf padding)."""

    ifm: tuple[int, int] = (0, 0)
    channels: int = 0
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    dtype: IntType = BIPOLAR
    value: int = 0

    kind: ClassVar[str] = "Padding"

    @property
    def ofm(self) -> tuple[int, int]:
        t, left, b, r = self.pads
        return self.ifm[0] + t + b, self.ifm[1] + left + r

    def fold_limits(self) -> dict[str, int]:
        return {"simd": self.channels}

    def cycles(self) -> int:
        return self.ofm[0] * self.ofm[1] * self.channels // self.simd


@dataclass(frozen=True, eq=False)
class MaxPool(Node):
    """Max pooling over kh x kw windows with a stride, channel by channel."""

    ifm: tuple[int, int] = (0, 0)
    ofm: tuple[int, int] = (0, 0)
    channels: int = 0
    kernel: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (2, 2)
    dtype: IntType = BIPOLAR

    kind: ClassVar[str] = "MaxPool"

    def fold_limits(self) -> dict[str, int]:
        return {"pe": self.channels}

    def cycles(self) -> int:
        return self.ifm[0] * self.ifm[1] * self.channels // self.pe


@dataclass(frozen=True, eq=False)
class GlobalAccPool(Node):
    """Sum over all pixels per channel (the average's 1/N folds into the next thresholds)."""

    ifm: tuple[int, int] = (0, 0)
    channels: int = 0
    in_dtype: IntType = BIPOLAR
    out_dtype: IntType = BIPOLAR

    kind: ClassVar[str] = "GlobalAccPool"

    def fold_limits(self) -> dict[str, int]:
        return {"pe": self.channels}

    def cycles(self) -> int:
        return self.ifm[0] * self.ifm[1] * self.channels // self.pe


@dataclass(frozen=True, eq=False)
class AddStreams(Node):
    """Element-wise sum of two integer streams of the same scale (residual connections)."""

    channels: int = 0
    vectors: int = 1
    in_dtypes: tuple[IntType, IntType] = (BIPOLAR, BIPOLAR)
    out_dtype: IntType = BIPOLAR

    kind: ClassVar[str] = "AddStreams"

    def fold_limits(self) -> dict[str, int]:
        return {"pe": self.channels}

    def cycles(self) -> int:
        return (self.channels // self.pe) * self.vectors


@dataclass(frozen=True, eq=False)
class StreamingConcat(Node):
    """Channel concatenation of two streams (FINN's StreamingConcat): per vector, the channels of the first input,
    then those of the second; PE divides both channel counts."""

    channels: tuple[int, int] = (0, 0)
    vectors: int = 1
    in_dtypes: tuple[IntType, IntType] = (BIPOLAR, BIPOLAR)
    out_dtype: IntType = BIPOLAR

    kind: ClassVar[str] = "StreamingConcat"

    def fold_limits(self) -> dict[str, int]:
        return {"pe": math.gcd(*self.channels)}

    def cycles(self) -> int:
        return sum(self.channels) // self.pe * self.vectors


@dataclass(frozen=True, eq=False)
class DuplicateStreams(Node):
    """Copies one stream to two consumers (the fork before a residual branch)."""

    channels: int = 0
    vectors: int = 1
    dtype: IntType = BIPOLAR
    outputs: tuple[str, ...] = ()

    kind: ClassVar[str] = "DuplicateStreams"

    def fold_limits(self) -> dict[str, int]:
        return {"pe": self.channels}

    def cycles(self) -> int:
        return (self.channels // self.pe) * self.vectors


@dataclass(frozen=True, eq=False)
class LabelSelect(Node):
    """Top-k: the indices of the k largest of `labels` accumulator values, largest first."""

    labels: int = 0
    k: int = 1
    in_dtype: IntType = BIPOLAR

    kind: ClassVar[str] = "LabelSelect"

    def fold_limits(self) -> dict[str, int]:
        return {"pe": self.labels}

    def cycles(self) -> int:
        return self.labels // self.pe


@dataclass(frozen=True, eq=False)
class StreamingDataWidthConverter(Node):
    """Re-chunks a stream from words of `in_elems` into words of `out_elems` elements (also the AXI adapters)."""

    in_elems: int = 1
    out_elems: int = 1
    elems: int = 1  # elements per frame
    dtype: IntType = BIPOLAR

    kind: ClassVar[str] = "StreamingDataWidthConverter"

    def cycles(self) -> int:
        return max(self.elems // self.in_elems, self.elems // self.out_elems)


@dataclass(frozen=True, eq=False)
class AddConstant(Node):
    """Element-wise sum of a stream and a constant table of the same scale (a learned position embedding):
    out[v, c] = x[v, c] + table[v, c], the table held in a ROM read in stream order."""

    channels: int = 0
    vectors: int = 1
    table: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))  # (vectors, channels)
    in_dtype: IntType = BIPOLAR
    out_dtype: IntType = BIPOLAR

    kind: ClassVar[str] = "AddConstant"

    def fold_limits(self) -> dict[str, int]:
        return {"pe": self.channels}

    def cycles(self) -> int:
        return (self.channels // self.pe) * self.vectors


@dataclass(frozen=True, eq=False)
class ConcatConstant(Node):
    """Constant vectors inserted into a stream along its vector (token) axis: a ViT's class token in front of its
    patch tokens. Output vectors `at` .. `at` + count - 1 of each frame are the table's rows (integers of the
    stream's scale), the others the input's vectors in order; every output word takes one clock."""

    channels: int = 0
    vectors: int = 1  # input vectors per frame
    at: int = 0  # 0: before the stream's vectors; `vectors`: after them
    table: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))  # (count, channels)
    in_dtype: IntType = BIPOLAR
    out_dtype: IntType = BIPOLAR

    kind: ClassVar[str] = "ConcatConstant"

    @property
    def count(self) -> int:
        return int(self.table.shape[0])

    def fold_limits(self) -> dict[str, int]:
        return {"pe": self.channels}

    def cycles(self) -> int:
        return (self.channels // self.pe) * (self.vectors + self.count)


@dataclass(frozen=True, eq=False)
class StreamMatMul(Node):
    """Matrix product of two activation streams (attention's Q K^T and A V), per batch b (attention head):
    out[m, b, n] = sum_k A[m, b, k] * B[b, k, n]. B is buffered whole (it arrives first), then A streams row by
    row. B's stream order is `b_order`: 'nbk' (columns of B, i.e. K as keys arrive) or 'kbn' (rows, i.e. V).
    PE output columns and SIMD reduction elements are computed per clock."""

    rows: int = 0  # M
    batch: int = 1  # B (heads)
    inner: int = 0  # K
    cols: int = 0  # N
    b_order: str = "nbk"
    in_dtypes: tuple[IntType, IntType] = (BIPOLAR, BIPOLAR)
    acc_dtype: IntType = BIPOLAR

    kind: ClassVar[str] = "StreamMatMul"

    def fold_limits(self) -> dict[str, int]:
        return {"pe": self.cols, "simd": self.inner}

    def cycles(self) -> int:
        load = self.batch * self.inner * self.cols // self.simd
        compute = self.rows * self.batch * (self.cols // self.pe) * (self.inner // self.simd)
        return load + compute  # B must be complete before the first product: the two phases do not overlap


@dataclass(frozen=True, eq=False)
class Softmax(Node):
    """Integer softmax over each vector of `channels` elements, with the quantiser after it: e = EXP[max - x]
    (a table of round(2**EXP_BITS * exp(-scale * d))), s = sum(e), out = min(qmax, round_half_up(e * K / s /
    2**RECIP_BITS)) with K = round(2**RECIP_BITS / output scale). Three passes per vector: max, sum, output."""

    channels: int = 0
    vectors: int = 1
    in_dtype: IntType = BIPOLAR
    table: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # EXP[d], d = max - x
    recip: int = 0  # K
    out_dtype: IntType = BIPOLAR

    kind: ClassVar[str] = "Softmax"
    EXP_BITS: ClassVar[int] = 16
    RECIP_BITS: ClassVar[int] = 24

    def fold_limits(self) -> dict[str, int]:
        return {"pe": self.channels}

    def cycles(self) -> int:
        return 3 * (self.channels // self.pe) * self.vectors  # max, sum and output passes


@dataclass(frozen=True, eq=False)
class LayerNorm(Node):
    """Integer LayerNorm over each vector of `channels` elements, the affine part and the quantiser after it as
    thresholds: S = sum(x), Q = C*sum(x^2) - S^2, d = C*x - S, z = sign(d) * isqrt(d^2 * 2**(2F+8) // (Q*2**8 +
    eps_fix)) (z = d / sqrt(Q + C^2 eps / s^2) in F fractional bits, exact to the floor), out = thresholds(z)."""

    channels: int = 0
    vectors: int = 1
    in_dtype: IntType = BIPOLAR
    eps_fix: int = 0  # round(2**8 * C^2 * eps / s^2)
    thresholds: Thresholds | None = None
    # the float affine and epsilon the thresholds were derived from, for runtimes that normalise in float32
    gamma: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    beta: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    eps: float = 1e-5

    kind: ClassVar[str] = "LayerNorm"
    FRAC_BITS: ClassVar[int] = 16

    def fold_limits(self) -> dict[str, int]:
        return {"pe": self.channels}

    def cycles(self) -> int:
        return 2 * (self.channels // self.pe) * self.vectors  # statistics pass, then the normalising pass


@dataclass(frozen=True, eq=False)
class Lookup(Node):
    """Element-wise function of a low-bit integer stream as a table (GELU, SiLU, sigmoid, tanh, ... followed by a
    quantiser): out[v, c] = table[c, x[v, c] - in_min], one row per channel (a single row when all agree). Exact:
    the table holds the golden model's own output for every input level."""

    channels: int = 0
    vectors: int = 1
    in_dtype: IntType = BIPOLAR
    table: np.ndarray = field(default_factory=lambda: np.zeros((1, 0), np.int64))  # (1 or C, levels)
    out_dtype: IntType = BIPOLAR

    kind: ClassVar[str] = "Lookup"

    def fold_limits(self) -> dict[str, int]:
        return {"pe": self.channels}

    def cycles(self) -> int:
        return (self.channels // self.pe) * self.vectors


NODE_TYPES: dict[str, type[Node]] = {
    cls.kind: cls
    for cls in (MatrixVectorUnit, VectorVectorUnit, Thresholding, SlidingWindow, Padding, MaxPool, GlobalAccPool,
                AddStreams, StreamingConcat, DuplicateStreams, LabelSelect, StreamingDataWidthConverter,
                AddConstant, ConcatConstant, StreamMatMul, Softmax, LayerNorm, Lookup)
}


def node_outputs(node: Node) -> tuple[str, ...]:
    """Every stream a node writes (DuplicateStreams writes two)."""
    if isinstance(node, DuplicateStreams):
        return node.outputs
    return (node.output,)


@dataclass(frozen=True)
class TensorInfo:
    """A stream's per-sample shape (channels last) and element type."""

    shape: tuple[int, ...]
    dtype: IntType


@dataclass(frozen=True, eq=False)
class HostOp:
    """One float32 op the host applies before the input quantiser, as ONNX computes it (IEEE float32 element-wise
    ops round identically in numpy, so the step is exact): Mul/Add/Sub/Div by a constant, Reshape, or Gather (token
    ids -> rows of a quantised embedding table, the only op when present)."""

    op: str  # Mul, Add, Sub, Div, Reshape, Gather
    const: np.ndarray  # the constant (ONNX broadcasting, batch axis included), or the per-sample shape for Reshape
    const_first: bool = False  # Sub/Div with the constant as the left operand


@dataclass(frozen=True, eq=False)
class InputQuant:
    """Host-side step before the accelerator: preprocessing ops, then quantise float input to integers,
    NCHW -> NHWC."""

    scale: float
    bits: int
    signed: bool
    narrow: bool
    rounding_mode: str
    onnx_shape: tuple[int, ...]  # per sample, at the input quantiser
    host_ops: tuple[HostOp, ...] = ()  # applied first, to the model input
    raw_shape: tuple[int, ...] = ()  # per sample, as the QONNX model takes it (when host_ops reshape)
    bipolar: bool = False  # BipolarQuant: x >= 0 -> +1, else -1 (bits 1, signed)
    map_1d: bool = False  # a (C, L) input feeding Conv1d: streamed as a (1, L, C) feature map


@dataclass(frozen=True, eq=False)
class OutputAffine:
    """Host-side step after the accelerator: out = acc * scale[c] + bias[c], back to the QONNX layout."""

    scale: np.ndarray  # (channels,) float64
    bias: np.ndarray  # (channels,) float64
    onnx_shape: tuple[int, ...]
    layout: Layout
    top_k: int = 0  # > 0 when the accelerator ends in LabelSelect: its output is class indices


@dataclass(frozen=True, eq=False)
class Layout:
    """How a QONNX tensor (per sample) maps onto an IR stream: `nhwc` transposes C,H,W; `flat` permutes features;
    `index` (token and attention tensors after reshapes and transposes) gives, for every IR element, the QONNX
    flat element it holds, in the IR stream's shape.

    For `flat` and `index`, IR element i holds QONNX flat element perm[i].
    """

    kind: str  # "nhwc" | "flat" | "index"
    perm: np.ndarray | None = None
    # index layouts of attention tensors: the QONNX axis whose outermost factor is the batch (seq-first tensors
    # have it at 1, a merged batch * heads axis holds batch_inner heads per sample)
    batch_axis: int = 0
    batch_inner: int = 1

    def to_ir(self, x: np.ndarray) -> np.ndarray:
        """QONNX batch (N, *onnx_shape) -> IR batch (N, *ir_shape); a 1-D map (N, C, L) is (N, 1, L, C)."""
        if self.kind == "index":
            n = x.shape[self.batch_axis] // self.batch_inner
            flat = split_batch(x, self.batch_axis, n)
            return flat[:, self.perm.reshape(-1)].reshape(n, *self.perm.shape)
        if self.kind == "nhwc":
            return np.moveaxis(x, 1, -1)[:, None] if x.ndim == 3 else np.moveaxis(x, 1, -1)
        flat = x.reshape(len(x), -1)
        return flat[:, self.perm] if self.perm is not None else flat

    def to_onnx(self, y: np.ndarray, onnx_shape: tuple[int, ...]) -> np.ndarray:
        """IR batch -> QONNX batch of per-sample shape onnx_shape."""
        if self.kind == "index":
            out = np.empty((len(y), self.perm.size), y.dtype)
            out[:, self.perm.reshape(-1)] = y.reshape(len(y), -1)
            return out.reshape(len(y), *onnx_shape)
        if self.kind == "nhwc":
            return np.moveaxis(y[:, 0], -1, 1) if len(onnx_shape) == 2 else np.moveaxis(y, -1, 1)
        flat = y.reshape(len(y), -1)
        if self.perm is not None:
            out = np.empty_like(flat)
            out[:, self.perm] = flat
            flat = out
        return flat.reshape(len(y), *onnx_shape)


@dataclass(frozen=True, eq=False)
class Probe:
    """An IR stream that equals a QONNX tensor: onnx value = ir value * scale (used to check every lowering)."""

    onnx_tensor: str
    scale: np.ndarray
    layout: Layout


@dataclass(frozen=True, eq=False)
class DataflowGraph:
    """A lowered model: nodes in topological order, stream types, host-side pre/post steps, and probes."""

    name: str
    nodes: tuple[Node, ...]
    tensors: dict[str, TensorInfo]
    input: str
    output: str
    pre: InputQuant
    post: OutputAffine
    probes: dict[str, Probe] = field(default_factory=dict)

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def with_nodes(self, nodes: tuple[Node, ...]) -> DataflowGraph:
        return replace(self, nodes=nodes)

    def compute_nodes(self) -> list[Node]:
        return [n for n in self.nodes if isinstance(n, MatrixVectorUnit | VectorVectorUnit)]


"""First-frame latency of a folded dataflow graph: when the first frame's last output word leaves an empty pipeline.

Nodes overlap: a node starts as soon as enough of its input has arrived (one vector for an MVAU, kh - 1 rows for a
sliding window, the whole frame for a global pool or the B operand of a stream matmul) and ends no earlier than its
own cycles after its first input, nor than its tail after its last input. Walking the graph in topological order
with each stream's (first word, last word) times gives the latency; summing every node's cycles (the old estimate)
assumes no overlap at all and overstated MobileNet-v1's latency 24-fold.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
    VectorVectorUnit,
)
from fpga.kinds import KindTable


@dataclass(frozen=True)
class Timing:
    """How one node overlaps with its inputs: per input, the share of its frame needed before the first output word
    (`need`) and the cycles after its last word until the node's last output word (`tail`); `first` is the node's
    own cycles from there to its first output word; `head` the share of its output frame there as soon as the node
    starts (a padding's top rows, written without input)."""

    need: tuple[float, ...]
    tail: tuple[float, ...]
    first: float = 1.0
    head: float | None = 0.0  # None: the input's head passes through (a word-by-word node)


LATENCY: KindTable[Callable[[Any], Timing]] = KindTable("latency", adopt="latency")


def row_buffered(rows: int, cycles: int) -> Timing:
    """A node that buffers an input row while the previous one's output rows leave (Upsample, DepthToSpace)."""
    return Timing((1.0 / rows,), (cycles / rows,))


def _per_vector(node: Any, vectors: int, first: float, tail: float) -> Timing:
    """A node that needs one input vector per output vector."""
    return Timing((1.0 / max(vectors, 1),) * len(node.inputs), (tail,) * len(node.inputs), first)


def _window_share(ifm: tuple[int, int], kernel: tuple[int, int]) -> float:
    """Share of a feature map read before its first kh x kw window is complete."""
    return min(1.0, ((kernel[0] - 1) * ifm[1] + kernel[1]) / max(ifm[0] * ifm[1], 1))


@LATENCY.register(MatrixVectorUnit)
def _mvau(node: MatrixVectorUnit) -> Timing:
    """The input vector is read during the first of its NF output folds and reused for the others."""
    sf = node.mw / node.simd
    return _per_vector(node, node.vectors, sf, (node.mh / node.pe - 1) * sf + 1)


@LATENCY.register(VectorVectorUnit)
def _vvau(node: VectorVectorUnit) -> Timing:
    """Every input word is read once, by the fold that uses it: the last output follows the last input."""
    return _per_vector(node, node.vectors, node.k / node.simd, 1.0)


@LATENCY.register(Thresholding, AddConstant, Lookup, DuplicateStreams, AddStreams, StreamingConcat,
                  StreamingDataWidthConverter)
def _word_by_word(node: Node) -> Timing:
    """Each output word needs the input words at its position only."""
    return Timing((0.0,) * len(node.inputs), (1.0,) * len(node.inputs), 1.0, None)


@LATENCY.register(Padding)
def _padding(node: Padding) -> Timing:
    """The top rows (and the next row's left columns) go out before the first input pixel, the bottom rows after
    the last."""
    top, left, bottom, _ = node.pads
    oh, ow = node.ofm
    return Timing((0.0,), (bottom * ow * node.channels / node.simd + 1,), 1.0, (top * ow + left) / (oh * ow))


@LATENCY.register(SlidingWindow)
def _sliding_window(node: SlidingWindow) -> Timing:
    """The first whole window needs kh - 1 rows and kw pixels; taps leave as their pixels arrive, so after the last
    input pixel only its own taps remain. A window over the whole map (a global pool as a depthwise convolution)
    is one long stream of taps behind the input, not a burst after it."""
    windows = node.ofm[0] * node.ofm[1]
    need = _window_share(node.ifm, node.extent) if windows > 1 else 1.0 / max(node.ifm[0] * node.ifm[1], 1)
    return Timing((need,), (node.channels / min(node.simd, node.channels),))


@LATENCY.register(MaxPool)
def _max_pool(node: MaxPool) -> Timing:
    return Timing((_window_share(node.ifm, node.kernel),), (1.0,))


@LATENCY.register(GlobalAccPool)
def _global_pool(node: GlobalAccPool) -> Timing:
    return Timing((1.0,), (node.channels / node.pe,))


@LATENCY.register(LabelSelect)
def _label_select(node: LabelSelect) -> Timing:
    return Timing((1.0,), (float(node.k),))


@LATENCY.register(StreamMatMul)
def _stream_matmul(node: StreamMatMul) -> Timing:
    """B (the second input) is buffered whole before the first product; A streams row by row behind it."""
    kf = node.inner / node.simd
    per_row = node.batch * (node.cols / node.pe) * kf
    return Timing((1.0 / node.rows, 1.0), (per_row, node.rows * per_row), kf)


@LATENCY.register(Softmax)
def _softmax(node: Softmax) -> Timing:
    folds = node.channels / node.pe
    return Timing((1.0 / node.vectors,), (3 * folds,), 2 * folds + 1)  # max and sum passes before the first output


@LATENCY.register(LayerNorm)
def _layer_norm(node: LayerNorm) -> Timing:
    folds = node.channels / node.pe
    return Timing((1.0 / node.vectors,), (2 * folds,), folds + 1)  # statistics pass before the first output


@LATENCY.register(ConcatConstant)
def _concat_constant(node: ConcatConstant) -> Timing:
    """Rows in front go out before any input is read; rows behind follow the last input vector."""
    folds = node.channels / node.pe
    return Timing((0.0,), (node.count * folds + 1 if node.at >= node.vectors else 1.0,))


def pipeline_depth(node: Node) -> int:
    """Clocks from a kernel's iteration to its output word being visible downstream (fixed per kernel): the adder
    tree of an MVAU/VVAU and its threshold compare, a registered output elsewhere. The HLS cycle simulation delays
    each stream's words by its producer's depth."""
    if isinstance(node, MatrixVectorUnit | VectorVectorUnit):
        return 2 + math.ceil(math.log2(node.simd + 1)) + (1 if node.thresholds is not None else 0)
    if isinstance(node, Thresholding | SlidingWindow | MaxPool | GlobalAccPool | LabelSelect):
        return 2
    return 1


def first_frame_latency(graph: DataflowGraph) -> float:
    """Cycles from the first input word to the first frame's last output word, the pipeline empty before it."""
    # stream -> (first word, last word, share of the frame there at the first word); words in between arrive evenly
    window: dict[str, tuple[float, float, float]] = {graph.input: (0.0, 0.0, 0.0)}

    def needed(stream: tuple[float, float, float], share: float) -> float:
        s, e, head = stream
        return s + max(0.0, share - head) / max(1.0 - head, 1e-9) * (e - s)

    for node in graph.nodes:
        t = LATENCY(node)(node)
        ins = [window.get(s, (0.0, 0.0, 0.0)) for s in node.inputs]
        began = max((w[0] for w in ins), default=0.0)
        # the first output needs its share of every input and the node's own first cycles, which overlap
        start = max(max((needed(w, need) for w, need in zip(ins, t.need, strict=True)), default=0.0) + 1,
                    began + t.first)
        after = max((w[1] + tail for w, tail in zip(ins, t.tail, strict=True)), default=0.0)
        depth = pipeline_depth(node)
        start, end = start + depth, max(began + node.cycles(), after, start) + depth
        head = max((w[2] for w in ins), default=0.0) if t.head is None else t.head
        for out in (node.output, *getattr(node, "outputs", ())):  # a DuplicateStreams writes several
            window[out] = (min(start, began + t.first) if head else start, end, head)
    return window.get(graph.output, (0.0, 0.0, 0.0))[1]

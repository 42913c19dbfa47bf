"""Stream widths: how many elements each node reads and writes per word, and the pass that inserts width
converters where a producer's words differ from its consumer's, plus the AXI-stream adapters at both ends."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from fpga.ir import (
    DataflowGraph,
    DuplicateStreams,
    LabelSelect,
    MatrixVectorUnit,
    Node,
    Padding,
    SlidingWindow,
    StreamingDataWidthConverter,
    StreamMatMul,
    TensorInfo,
    VectorVectorUnit,
)

AXI_BITS = 64  # width of the accelerator's AXI-stream ports (a Zynq HP port)
# FIFO depth of every inner stream when no cycle-level simulation has sized them (one SRL32 per bit: slack for
# small rate mismatches at the price of one LUT per bit of stream width)
DEFAULT_FIFO_DEPTH = 32


def in_elems(node: Node) -> int:
    """Elements per input word."""
    if isinstance(node, SlidingWindow):
        return min(node.simd, node.channels)  # a multi-pixel SWG still reads one pixel per word
    if isinstance(node, MatrixVectorUnit | Padding | StreamMatMul):
        return node.simd
    if isinstance(node, VectorVectorUnit):
        return node.pe * node.simd  # SIMD taps of PE channels
    if isinstance(node, StreamingDataWidthConverter):
        return node.in_elems
    return node.pe  # Thresholding, MaxPool, GlobalAccPool, AddStreams, DuplicateStreams, LabelSelect


def out_elems(node: Node) -> int:
    """Elements per output word."""
    if isinstance(node, SlidingWindow | Padding):
        return node.simd
    if isinstance(node, StreamingDataWidthConverter):
        return node.out_elems
    if isinstance(node, LabelSelect):
        return 1
    return node.pe  # MVAU, VVAU, Thresholding, MaxPool, GlobalAccPool, AddStreams, DuplicateStreams


def axi_elems(frame_elems: int, bits: int, axi_bits: int = AXI_BITS) -> int:
    """Elements per AXI word: as many as fit, and a divisor of the frame so that words never straddle frames."""
    fit = max(1, axi_bits // bits)
    return max(d for d in range(1, min(fit, frame_elems) + 1) if frame_elems % d == 0)


def io_cycles(graph: DataflowGraph, axi_bits: int = AXI_BITS) -> int:
    """Cycles per frame the AXI ports alone need (a floor for any folding)."""
    cycles = []
    for stream in (graph.input, graph.output):
        t = graph.tensors[stream]
        elems = int(np.prod(t.shape))
        cycles.append(elems // axi_elems(elems, t.dtype.bits, axi_bits))
    return max(cycles)


def _dwc(name: str, src: str, dst: str, n_in: int, n_out: int, t: TensorInfo) -> StreamingDataWidthConverter:
    return StreamingDataWidthConverter(name=name, inputs=(src,), output=dst, in_elems=n_in, out_elems=n_out,
                                       elems=int(np.prod(t.shape)), dtype=t.dtype)


def insert_width_converters(graph: DataflowGraph, axi_bits: int = AXI_BITS) -> DataflowGraph:
    """A width converter on every stream whose producer and consumer disagree, and AXI adapters at the ends.

    Afterwards the graph's input and output streams carry whole AXI words.
    """
    if any(isinstance(n, StreamingDataWidthConverter) for n in graph.nodes):
        return graph
    tensors = dict(graph.tensors)
    producer_words: dict[str, int] = {}
    for n in graph.nodes:
        outs = n.outputs if isinstance(n, DuplicateStreams) else (n.output,)
        for o in outs:
            producer_words[o] = out_elems(n)
    t_in = tensors[graph.input]
    in_axi = axi_elems(int(np.prod(t_in.shape)), t_in.dtype.bits, axi_bits)
    first = next(n for n in graph.nodes if graph.input in n.inputs)
    host_in = "input_axi"  # the host writes AXI words here; an adapter re-chunks them for the first consumer
    tensors[host_in] = t_in
    new_nodes: list[Node] = [_dwc("WidthConverter_0", host_in, graph.input, in_axi, in_elems(first), t_in)]
    producer_words[graph.input] = in_elems(first)
    count = 1
    for n in graph.nodes:
        inputs = list(n.inputs)
        for i, src in enumerate(inputs):
            if producer_words[src] != in_elems(n):
                dst = f"{src}_w{count}"
                tensors[dst] = tensors[src]
                new_nodes.append(_dwc(f"WidthConverter_{count}", src, dst, producer_words[src], in_elems(n),
                                      tensors[src]))
                count += 1
                inputs[i] = dst
        new_nodes.append(replace(n, inputs=tuple(inputs)))
    t_out = tensors[graph.output]
    out_axi = axi_elems(int(np.prod(t_out.shape)), t_out.dtype.bits, axi_bits)
    out_stream = f"{graph.output}_axi"
    tensors[out_stream] = t_out
    new_nodes.append(_dwc(f"WidthConverter_{count}", graph.output, out_stream, producer_words[graph.output], out_axi,
                          t_out))
    return replace(graph, nodes=tuple(new_nodes), tensors=tensors, input=host_in, output=out_stream)


def stream_bits(graph: DataflowGraph) -> dict[str, int]:
    """Bits per word of every stream: what its producer writes (the graph input: what its consumer reads)."""
    bits: dict[str, int] = {}
    for n in graph.nodes:
        for o in (n.outputs if isinstance(n, DuplicateStreams) else (n.output,)):
            bits[o] = out_elems(n) * graph.tensors[o].dtype.bits
    first = next(n for n in graph.nodes if graph.input in n.inputs)
    bits[graph.input] = in_elems(first) * graph.tensors[graph.input].dtype.bits
    return bits


def inner_streams(graph: DataflowGraph) -> list[str]:
    """Streams between two kernels, each one FIFO (the host-side ports are the DMA's)."""
    return [s for s in stream_bits(graph) if s not in (graph.input, graph.output)]

"""Keeping some consecutive vectors of a stream (the class token a BERT pooler or a ViT head reads): the whole kind in
one place, from the lowering rule to the TFLite mapping. Its kernels: hls/include/edge/token_select.hpp,
rtl/verilog/edge_tokenselect.sv.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from onnx import NodeProto

from fpga.datatypes import BIPOLAR, IntType
from fpga.ir import Layout, Node
from fpga.kinds import HlsCall, RtlCall
from fpga.latency import Timing
from fpga.lower import LoweringRule, first_in_lowered, index_of, regrouped
from fpga.resources import CONTROL_LUTS, FF_PER_LUT, Resources

if TYPE_CHECKING:
    from fpga.ir import DataflowGraph
    from fpga.lower import Lowering


@dataclass(frozen=True, eq=False)
class TokenSelect(Node):
    """Keeps `count` consecutive vectors of a stream from `first` on and drops the rest: every word is read, only
    the kept ones are written. No arithmetic."""

    channels: int = 0
    vectors: int = 1
    first: int = 0
    count: int = 1
    dtype: IntType = BIPOLAR

    kind: ClassVar[str] = "TokenSelect"

    def fold_limits(self) -> dict[str, int]:
        return {"pe": self.channels}

    def cycles(self) -> int:
        return (self.channels // self.pe) * self.vectors


KIND = TokenSelect


def lower(lw: Lowering, node: NodeProto) -> None:
    """Gather of constant token positions from a (tokens, features) stream (a class-token pooler): a TokenSelect
    node that keeps those vectors; they must be consecutive tokens in stream order."""
    x = lw.take(node.input[0], node)
    idx = lw.init(node.input[1])
    shape = x.onnx_shape
    axis = int(lw.attr(node, "axis", 0)) % (len(shape) + 1)
    if idx is None or axis != 1 or len(shape) != 2:
        raise lw.fail(node, "Gather from a stream: only constant token positions along the token axis of a "
                            "(tokens, features) tensor (a class-token pooler)")
    tokens, c = shape
    picks = [int(p) % tokens for p in np.asarray(idx).reshape(-1)]
    if not picks:
        raise lw.fail(node, "Gather of no token positions (an empty index): nothing to keep")
    index = regrouped(index_of(x.layout, shape), shape)
    if index is None:
        raise lw.fail(node, "the stream does not carry one whole token per vector here")
    order = [int(np.flatnonzero(index[:, 0] // c == p)[0]) for p in picks]
    if order != list(range(order[0], order[0] + len(order))):
        raise lw.fail(node, f"Gather of tokens {picks}: the kept tokens must be consecutive in stream order")
    count = len(order)
    out_shape = (c,) if np.ndim(idx) == 0 else (count, c)
    layout = Layout("flat") if np.ndim(idx) == 0 else Layout("index", np.arange(count * c).reshape(count, c))
    out = lw.fresh("t")
    lw.add_node(TokenSelect(name=lw.fresh("TokenSelect"), inputs=(lw.claim(x),), output=out, channels=c,
                            vectors=len(index), first=order[0], count=count, dtype=x.dtype), out_shape, x.dtype)
    lw.publish(node.output[0], out, x.dtype, x.scale, layout)


RULES = (LoweringRule(frozenset({"Gather"}), lower, (TokenSelect,), first_in_lowered),)


def execute(node: TokenSelect, ins: list[np.ndarray]) -> list[np.ndarray]:
    x = ins[0].reshape(len(ins[0]), node.vectors, node.channels)
    return [x[:, node.first : node.first + node.count].reshape(len(x), -1)]


def estimate(node: TokenSelect, uram_available: bool) -> tuple[Resources, dict[str, str]]:
    """Counters and a compare: a word passes through or is dropped."""
    lut = CONTROL_LUTS / 2
    return Resources(lut=lut, ff=lut * FF_PER_LUT + node.pe * node.dtype.bits), {}


def latency(node: TokenSelect) -> Timing:
    """Each output word needs the input word at its position only."""
    return Timing((0.0,), (1.0,), 1.0, None)


def hls_kernel(node: TokenSelect, graph: DataflowGraph, out_t: IntType) -> HlsCall:
    return HlsCall("edge/token_select.hpp", "edge::TokenSelect",
                   (node.channels, node.pe, node.vectors, node.first, node.count, node.dtype.bits))


def rtl_kernel(node: TokenSelect) -> RtlCall:
    """edge_tokenselect: the kept vectors of each frame pass, the rest are read and dropped."""
    b = 1 if node.dtype.bipolar else node.dtype.bits
    return RtlCall("edge_tokenselect", {"C": node.channels, "PE": node.pe, "VECTORS": node.vectors,
                                        "FIRST": node.first, "COUNT": node.count, "B": b}, node.pe, node.dtype)


def tflite(writer: Any, node: TokenSelect) -> None:
    """The kept tokens as a GATHER along the token axis of the int8 (tokens, channels) tensor: exact."""
    writer.islands(node)  # the int8 ONNX program's GATHER takes NHWC axes
    x = writer.reshaped(writer.tensor(node.inputs[0], node), (node.vectors, node.channels))
    tokens = writer.b.const(f"{node.name}/tokens", np.arange(node.first, node.first + node.count, dtype=np.int32))
    out = writer.new_int8(node.output, (node.count, node.channels), x.scale, x.vmin, x.vmax)
    writer.op("GATHER", [x.index, tokens], out, "GatherOptions", axis=1, batchDims=0)
    want = writer.shape_of(node.output)
    if tuple(want) != out.shape:
        writer.t[node.output] = writer.reshaped(out, tuple(want))

"""Nearest-neighbour upsampling by integer factors (ONNX Resize/Upsample, nn.Upsample): the whole kind in one place,
from the lowering rule to the TFLite mapping. Its kernels: hls/include/edge/upsample.hpp, rtl/verilog/edge_upsample.sv.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from onnx import NodeProto

from fpga.datatypes import BIPOLAR, IntType
from fpga.ir import Node
from fpga.kinds import HlsCall, RtlCall
from fpga.latency import Timing, row_buffered
from fpga.lower import LoweringRule, chw, first_in_lowered
from fpga.resources import Resources, ping_pong_rows

if TYPE_CHECKING:
    from fpga.ir import DataflowGraph
    from fpga.lower import Lowering


@dataclass(frozen=True, eq=False)
class Upsample(Node):
    """Every pixel repeated fh x fw times. Buffers an input row while the previous one's fh output rows leave."""

    ifm: tuple[int, int] = (0, 0)
    channels: int = 0
    factor: tuple[int, int] = (2, 2)
    dtype: IntType = BIPOLAR

    kind: ClassVar[str] = "Upsample"

    @property
    def ofm(self) -> tuple[int, int]:
        return self.ifm[0] * self.factor[0], self.ifm[1] * self.factor[1]

    def fold_limits(self) -> dict[str, int]:
        return {"pe": self.channels}

    def cycles(self) -> int:
        return self.ofm[0] * self.ofm[1] * self.channels // self.pe


KIND = Upsample


def lower(lw: Lowering, node: NodeProto) -> None:
    """Resize / Upsample of a quantised feature map by integer factors: pixel repetition, integers unchanged."""
    x = lw.take(node.input[0], node)
    if x.layout.kind != "nhwc" or len(x.ir_shape) != 3:
        raise lw.fail(node, "Resize input is not a 2-D feature map")
    mode = lw.attr(node, "mode", "nearest")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    if mode != "nearest":
        raise lw.fail(node, f"Resize mode '{mode}' is not supported (only nearest: Upsample(mode='nearest'))")
    h, wd, c = x.ir_shape
    _, oh, ow = chw(lw.shape(node.output[0]))
    if oh % h or ow % wd:
        raise lw.fail(node, f"Resize from {h}x{wd} to {oh}x{ow}: only integer scale factors are supported")
    # with integer factors, asymmetric/floor and half_pixel/round_prefer_floor both repeat each pixel; the
    # verification against the golden model checks the rest
    out = lw.fresh("t")
    lw.add_node(Upsample(name=lw.fresh("Upsample"), inputs=(lw.claim(x),), output=out, ifm=(h, wd), channels=c,
                         factor=(oh // h, ow // wd), dtype=x.dtype), (oh, ow, c), x.dtype)
    lw.publish(node.output[0], out, x.dtype, x.scale, x.layout)


RULES = (LoweringRule(frozenset({"Resize", "Upsample"}), lower, (Upsample,), first_in_lowered),)


def execute(node: Upsample, ins: list[np.ndarray]) -> list[np.ndarray]:
    x = ins[0].reshape(len(ins[0]), *node.ifm, node.channels)
    return [np.repeat(np.repeat(x, node.factor[0], axis=1), node.factor[1], axis=2)]


def estimate(node: Upsample, uram_available: bool) -> tuple[Resources, dict[str, str]]:
    """Two input rows (ping-pong) of W pixels x C channels."""
    word = node.pe * node.dtype.bits
    return ping_pong_rows(node.ifm[1] * node.channels // node.pe, word, word, uram_available)


def latency(node: Upsample) -> Timing:
    return row_buffered(node.ifm[0], node.cycles())


def hls_kernel(node: Upsample, graph: DataflowGraph, out_t: IntType) -> HlsCall:
    return HlsCall("edge/upsample.hpp", "edge::Upsample",
                   (*node.ifm, node.channels, *node.factor, node.pe, node.dtype.bits))


def rtl_kernel(node: Upsample) -> RtlCall:
    """edge_upsample: two row buffers in turn, each input row sent FH times with every pixel FW times."""
    b = 1 if node.dtype.bipolar else node.dtype.bits
    return RtlCall("edge_upsample", {"W": node.ifm[1], "C": node.channels, "PE": node.pe, "WB": node.pe * b,
                                     "FH": node.factor[0], "FW": node.factor[1]}, node.pe, node.dtype,
                   submodules=("edge_rowpp",))


def tflite(writer: Any, node: Upsample) -> None:
    """RESIZE_NEAREST_NEIGHBOR without align_corners or half-pixel centres: output (y, x) reads input
    (floor(y / fh), floor(x / fw)), the IR's pixel repetition for integer factors."""
    x = writer.tensor(node.inputs[0], node)
    size = writer.b.const(f"{node.name}/size", np.array(node.ofm, np.int32))
    out = writer.new_int8(node.output, (*node.ofm, node.channels), x.scale, x.vmin, x.vmax)
    writer.op("RESIZE_NEAREST_NEIGHBOR", [x.index, size], out,
              "ResizeNearestNeighborOptions", alignCorners=False, halfPixelCenters=False)

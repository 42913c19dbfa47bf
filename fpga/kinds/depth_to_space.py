"""Sub-pixel rearrangement (PixelShuffle, ONNX DepthToSpace): the whole kind in one place, from the lowering rule to
the TFLite mapping. Its kernels: hls/include/edge/depth_to_space.hpp, rtl/verilog/edge_d2s.sv.
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
from fpga.lower import LoweringRule, first_in_lowered
from fpga.resources import Resources, ping_pong_rows

if TYPE_CHECKING:
    from fpga.ir import DataflowGraph
    from fpga.lower import Lowering


@dataclass(frozen=True, eq=False)
class DepthToSpace(Node):
    """Each input pixel's channels become a block x block patch of output pixels. CRD (PyTorch) takes output
    channel c, patch (i, j) from input channel c*r*r + i*r + j; DCR (TensorFlow) from (i*r + j)*C + c. Buffers an
    input row while the previous one leaves."""

    ifm: tuple[int, int] = (0, 0)
    channels: int = 0  # output channels (input channels / block**2)
    block: int = 2
    mode: str = "CRD"
    dtype: IntType = BIPOLAR

    kind: ClassVar[str] = "DepthToSpace"

    @property
    def ofm(self) -> tuple[int, int]:
        return self.ifm[0] * self.block, self.ifm[1] * self.block

    def source_channel(self, c: np.ndarray, i: int, j: int) -> np.ndarray:
        r = self.block
        return c * r * r + i * r + j if self.mode == "CRD" else (i * r + j) * self.channels + c

    def fold_limits(self) -> dict[str, int]:
        return {"pe": self.channels}

    def cycles(self) -> int:
        return self.ifm[0] * self.ifm[1] * self.block * self.block * self.channels // self.pe


KIND = DepthToSpace


def lower(lw: Lowering, node: NodeProto) -> None:
    """DepthToSpace / PixelShuffle of a quantised feature map: a stream rearrangement, integers unchanged."""
    x = lw.take(node.input[0], node)
    if x.layout.kind != "nhwc" or len(x.ir_shape) != 3:
        raise lw.fail(node, "DepthToSpace input is not a 2-D feature map")
    r = int(lw.attr(node, "blocksize", 0))
    mode = lw.attr(node, "mode", "DCR")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    h, wd, cin = x.ir_shape
    if r < 1 or cin % (r * r):
        raise lw.fail(node, f"blocksize {r} does not divide the {cin} channels into r*r groups")
    c = cin // (r * r)
    out = lw.fresh("t")
    unit = DepthToSpace(name=lw.fresh("DepthToSpace"), inputs=(lw.claim(x),), output=out, ifm=(h, wd),
                        channels=c, block=r, mode=mode, dtype=x.dtype)
    scale = np.asarray(x.scale, np.float64)
    if scale.size > 1:  # per-channel scales move with their channels; one output channel must have one
        src = np.stack([unit.source_channel(np.arange(c), i, j) for i in range(r) for j in range(r)])
        per = np.broadcast_to(scale.reshape(-1), (cin,))[src]
        if np.any(per != per[:1]):
            raise lw.fail(node, "DepthToSpace mixes channels of different scales into one output channel")
        scale = per[0]
    lw.add_node(unit, (h * r, wd * r, c), x.dtype)
    lw.publish(node.output[0], out, x.dtype, scale, x.layout)


RULES = (LoweringRule(frozenset({"DepthToSpace"}), lower, (DepthToSpace,), first_in_lowered),)


def execute(node: DepthToSpace, ins: list[np.ndarray]) -> list[np.ndarray]:
    r, c = node.block, node.channels
    h, w = node.ifm
    x = ins[0].reshape(len(ins[0]), h, w, -1)
    src = np.stack([np.stack([node.source_channel(np.arange(c), i, j) for j in range(r)]) for i in range(r)])
    patch = x[..., src]  # (n, h, w, r_i, r_j, c)
    return [patch.transpose(0, 1, 3, 2, 4, 5).reshape(len(x), h * r, w * r, c)]


def estimate(node: DepthToSpace, uram_available: bool) -> tuple[Resources, dict[str, str]]:
    """Two input rows (ping-pong) of W pixels x C*r*r elements, read PE elements at a time."""
    word = node.pe * node.dtype.bits
    return ping_pong_rows(node.ifm[1] * node.block * node.block * node.channels // node.pe, word, 2 * word,
                          uram_available)


def latency(node: DepthToSpace) -> Timing:
    return row_buffered(node.ifm[0], node.cycles())


def hls_kernel(node: DepthToSpace, graph: DataflowGraph, out_t: IntType) -> HlsCall:
    return HlsCall("edge/depth_to_space.hpp", "edge::DepthToSpace",
                   (*node.ifm, node.channels, node.block, node.pe, node.dtype.bits, node.dtype.kind_code,
                    int(node.mode == "CRD")))


def rtl_kernel(node: DepthToSpace) -> RtlCall:
    """edge_d2s: two element-addressed row buffers in turn, each input row sent as `block` output rows."""
    b = 1 if node.dtype.bipolar else node.dtype.bits
    return RtlCall("edge_d2s", {"W": node.ifm[1], "C": node.channels, "R": node.block, "PE": node.pe, "B": b,
                                "CRD": int(node.mode == "CRD")}, node.pe, node.dtype, submodules=("edge_rowpp",))


def tflite(writer: Any, node: DepthToSpace) -> None:
    """DEPTH_TO_SPACE is DCR; a CRD (PyTorch) rearrangement first gathers the channels into DCR order."""
    x = writer.tensor(node.inputs[0], node)
    r, c = node.block, node.channels
    if node.mode == "CRD":
        perm = np.array([node.source_channel(np.array(ch), i, j) for i in range(r) for j in range(r)
                         for ch in range(c)], np.int32)
        x = writer.gather_channels(x, perm, f"{node.name}/dcr_order", f"{x.name}/dcr")
    out = writer.new_int8(node.output, (*node.ofm, c), x.scale, x.vmin, x.vmax)
    writer.op("DEPTH_TO_SPACE", [x.index], out, "DepthToSpaceOptions", blockSize=r)

"""Per-node resource model (LUT, FF, BRAM36, URAM, DSP) for Xilinx 7-series and UltraScale(+) fabric.

Each formula counts the hardware the HLS kernel instantiates at a given folding; coefficients that are not
structural were calibrated once against finn-examples' published CNV-w1a1 on xc7z020 (see bench/fpga_folding.py,
which prints predicted vs published). Memory mapping follows what Vivado does with the kernels' arrays:
weights are partitioned per PE (one memory per PE, SIMD * weight-bits wide); small memories go to LUTRAM.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fpga.ir import (
    AddConstant,
    AddStreams,
    ConcatConstant,
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

# BRAM18 aspect ratios (width, depth); two BRAM18 make one BRAM36.
BRAM18_SHAPES = ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512))
URAM_SHAPE = (72, 4096)
LUTRAM_MAX_BITS = 1024  # arrays at most this big, or at most LUTRAM_MAX_DEPTH deep, stay in distributed RAM
LUTRAM_MAX_DEPTH = 32
LUTRAM_BITS_PER_LUT = 64  # a LUT6 is a 64x1 RAM
URAM_MIN_DEPTH = 4096  # only memories at least one URAM deep move to URAM (when the part has URAM)

CONTROL_LUTS = 300  # loop counters, stream handshakes, FSM of one kernel (FINN estimates 300 per kernel too)
FF_PER_LUT = 1.5  # finn-examples CNV-w1a1: 31,517 FF / 21,135 LUT after synthesis
XNOR_LUTS_PER_LANE = 4.0  # XNOR + HLS popcount adder tree per input bit; calibrated on CNV-w1a1 (-3% LUT)
DSP_MIN_PRODUCT_BITS = 11  # a W x A multiplier with W + A >= 11 goes to a DSP48 (HLS default binding)


# Stream FIFOs, implemented the way Vivado builds a FINN StreamingFIFO: up to FIFO_SRL_MAX_DEPTH words as shift
# registers (one SRLC32E LUT per bit per 32 words, FINN's Q_srl), deeper ones as an AXI-stream FIFO in block RAM
# (depth rounded up to a power of two). Depth <= FIFO_SHALLOW_DEPTH is the kernels' own output register.
FIFO_SHALLOW_DEPTH = 2
FIFO_SRL_MAX_DEPTH = 256
SRL_DEPTH = 32
FIFO_SRL_CONTROL_LUTS = 8  # full/empty flags and the read address of the SRL chain
FIFO_BRAM_CONTROL_LUTS = 60  # read/write pointers, their comparison and the output register's handshake


# Open (LUT4) families: the model counts Xilinx LUT6/FF/BRAM36 for the HLS kernels; on an open board the design is
# the RTL backend's, synthesised by Yosys into the family's LUT4s, flip-flops and block RAM. Yosys' counts over the
# model's, per layer kind, on the same RTL tops (synth_ecp5/ice40/gowin; bench/lut4_calibration.py ->
# bench/results/lut4_calibration.json) turn the model's figures into the family's own. Kinds not measured there take
# "other" (every kind but the MVAU's, together); streams (FIFOs and width converters, which the folder costs per
# stream) take "streams". Multipliers are kept as the model binds them.
FAMILY_FACTORS: dict[str, dict[str, dict[str, float]]] = {
    "ecp5": {
        "MatrixVectorUnit": {"lut": 1.242, "ff": 0.152},
        "VectorVectorUnit": {"lut": 0.521, "ff": 0.073},
        "SlidingWindow": {"lut": 0.505, "ff": 0.039},
        "StreamingDataWidthConverter": {"lut": 1.833, "ff": 0.31},
        "streams": {"lut": 2.218, "ff": 0.498},
        "other": {"lut": 0.37, "ff": 0.041},
    },
    "ice40": {
        "MatrixVectorUnit": {"lut": 2.035, "ff": 0.828},
        "VectorVectorUnit": {"lut": 0.509, "ff": 0.077},
        "SlidingWindow": {"lut": 3.384, "ff": 1.598},
        "StreamingDataWidthConverter": {"lut": 1.263, "ff": 0.31},
        "streams": {"lut": 1.684, "ff": 0.579},
        "other": {"lut": 1.827, "ff": 0.839},
    },
    "gowin": {
        "MatrixVectorUnit": {"lut": 1.328, "ff": 0.151},
        "VectorVectorUnit": {"lut": 0.513, "ff": 0.073},
        "SlidingWindow": {"lut": 0.696, "ff": 0.039},
        "StreamingDataWidthConverter": {"lut": 1.5, "ff": 0.31},
        "streams": {"lut": 1.916, "ff": 0.498},
        "other": {"lut": 0.524, "ff": 0.041},
    },
}
# block RAM in 36 Kb units over the model's (ECP5/Gowin 18 Kb blocks, iCE40 4 Kb ones; ROMs the model puts in BRAM
# often become logic on the open families)
FAMILY_BRAM: dict[str, float] = {"ecp5": 0.645, "ice40": 0.344, "gowin": 0.645}
# an iCE40 logic cell holds one LUT4 and one flip-flop and the part counts cells (lut = ff = 5,280 on the UP5K):
# flip-flops that find no LUT to pair with take a cell of their own; nextpnr-ice40's cell counts over Yosys' LUT4s
# and FFs on the same designs
ICE40_FF_PER_LC = 0.826


def resource_model(board_family: str, backend: str = "hls") -> str:
    """Which kernels the estimates describe: "rtl-xilinx" for the RTL backend on a Xilinx part (fpga/resources_rtl.py,
    calibrated against synth_xilinx), else "hls" (the model here; an open family's designs are the RTL backend's too,
    in this model's terms scaled by FAMILY_FACTORS)."""
    return "rtl-xilinx" if backend == "rtl" and board_family not in FAMILY_FACTORS else "hls"


def family_matrix(family: str, kind: str = "other") -> np.ndarray:
    """The linear map from the model's (lut, ff, bram36, uram, dsp) for a node of `kind` to a family's own units
    (identity for Xilinx parts); on iCE40 the `lut` row counts logic cells."""
    m = np.eye(5)
    table = FAMILY_FACTORS.get(family)
    if table is not None:
        f = table.get(kind, table["other"])
        m[0, 0], m[1, 1], m[2, 2] = f["lut"], f["ff"], FAMILY_BRAM[family]
        if family == "ice40":
            m[0, 1] = f["ff"] * ICE40_FF_PER_LC
    return m


@dataclass(frozen=True)
class Resources:
    lut: float = 0.0
    ff: float = 0.0
    bram36: float = 0.0  # half units are BRAM18s
    uram: float = 0.0
    dsp: float = 0.0

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.lut + other.lut, self.ff + other.ff, self.bram36 + other.bram36,
                         self.uram + other.uram, self.dsp + other.dsp)

    def as_dict(self) -> dict[str, float]:
        return {"lut": round(self.lut), "ff": round(self.ff), "bram36": self.bram36, "uram": self.uram,
                "dsp": round(self.dsp)}

    def for_family(self, family: str, kind: str = "other") -> Resources:
        """These counts (of a node of `kind`) in a board family's own units (see family_matrix)."""
        v = family_matrix(family, kind) @ np.array([self.lut, self.ff, self.bram36, self.uram, self.dsp])
        return Resources(*(float(x) for x in v))


def fifo_estimate(width: int, depth: int) -> tuple[Resources, str]:
    """Resources of one stream FIFO of `width` bits x `depth` words, and its style ("none", "srl", "bram")."""
    if depth <= FIFO_SHALLOW_DEPTH or width <= 0:
        return Resources(), "none"
    addr = math.ceil(math.log2(depth))
    if depth <= FIFO_SRL_MAX_DEPTH:
        lut = width * math.ceil(depth / SRL_DEPTH) + FIFO_SRL_CONTROL_LUTS + addr
        return Resources(lut=lut, ff=width + 2 * addr), "srl"
    words = 1 << addr
    lut = FIFO_BRAM_CONTROL_LUTS + 2 * addr
    return Resources(lut=lut, ff=width + 4 * addr, bram36=bram18_count(width, words) / 2), "bram"


def bram18_count(width: int, depth: int) -> int:
    """Fewest BRAM18s holding a width x depth memory (best aspect ratio, blocks side by side and stacked)."""
    if width <= 0 or depth <= 0:
        return 0
    return min(math.ceil(width / w) * math.ceil(depth / d) for w, d in BRAM18_SHAPES)


@dataclass(frozen=True)
class Memory:
    """Where one array goes and what it costs."""

    style: str  # "lutram" | "bram" | "uram"
    luts: float = 0.0
    bram36: float = 0.0
    uram: float = 0.0


def map_memory(width: int, depth: int, copies: int = 1, uram_available: bool = False) -> Memory:
    """Map `copies` identical width x depth arrays (one per PE) to LUTRAM, BRAM or URAM."""
    if width <= 0 or depth <= 0 or copies <= 0:
        return Memory("none")
    if width * depth <= LUTRAM_MAX_BITS or depth <= LUTRAM_MAX_DEPTH:
        luts = copies * width * math.ceil(depth / LUTRAM_BITS_PER_LUT)
        return Memory("lutram", luts=luts)
    if uram_available and depth >= URAM_MIN_DEPTH:
        w, d = URAM_SHAPE
        return Memory("uram", uram=copies * math.ceil(width / w) * math.ceil(depth / d))
    return Memory("bram", bram36=copies * bram18_count(width, depth) / 2)


def ping_pong_rows(row_words: int, word_bits: int, mux_luts: int,
                   uram_available: bool) -> tuple[Resources, dict[str, str]]:
    """A streaming kernel with two input rows of `row_words` words (one filling while the other is read out) and an
    output word multiplexer of `mux_luts`."""
    mem = map_memory(word_bits, 2 * row_words, uram_available=uram_available)
    lut = CONTROL_LUTS + mux_luts + mem.luts
    return Resources(lut=lut, ff=lut * FF_PER_LUT, bram36=mem.bram36, uram=mem.uram), {"buffer": mem.style}


def _mult_luts(w_bits: int, a_bits: int) -> float:
    """LUTs of one W x A multiplier built in fabric (a 1-bit weight is a conditional negate)."""
    if w_bits == 1 or a_bits == 1:
        return max(w_bits, a_bits)
    return w_bits * a_bits


def uses_dsp(w_bits: int, a_bits: int) -> bool:
    """Whether a W x A product is bound to a DSP block (the HLS default binding, and the RTL kernels' choice)."""
    return w_bits > 1 and a_bits > 1 and w_bits + a_bits >= DSP_MIN_PRODUCT_BITS


# Thresholds with at least this many levels per channel (outputs of 5+ bits) are searched, not compared all at once:
# a binary search of ceil(log2(levels + 1)) pipelined stages, stage s comparing against one of 2^s thresholds per
# channel held in its own memory (FINN+'s binary-search thresholding). The parallel form's comparator bank and
# levels x acc-bits wide memory grow with the levels (255 levels of a 15-bit accumulator: ~5,900 LUTs per PE); the
# search's grow with their logarithm and its deep stage memories go to block RAM. The HLS kernels (`threshold` in
# hls/include/edge/common.hpp) search from the same level count, so the C-sim and cycle sim run the structure
# estimated here.
THRESHOLD_SEARCH_LEVELS = 16


def threshold_search(levels: int) -> bool:
    """Whether thresholds of `levels` levels per channel are searched (pipelined binary search) in hardware."""
    return levels >= THRESHOLD_SEARCH_LEVELS


def _threshold_cost(th: Thresholds | None, channels: int, pe: int, acc_bits: int, uram: bool) -> tuple[float, Memory]:
    """Comparators and threshold memory of PE lanes: all levels compared at once (carry chain: ~acc_bits/2 LUTs
    each) for few levels, a binary search with one comparator, a threshold mux and an index register per stage
    for many."""
    if th is None:
        return 0.0, Memory("none")
    rows = channels // pe
    if not threshold_search(th.levels):
        comparators = pe * th.levels * math.ceil(acc_bits / 2)
        return comparators, map_memory(th.levels * acc_bits, rows, copies=pe, uram_available=uram)
    stages = th.levels.bit_length()  # 2^stages - 1 >= levels
    # per stage and PE: the comparator, the pipeline register of the input and the index so far, its share of the
    # address logic
    logic = pe * stages * (math.ceil(acc_bits / 2) + acc_bits + stages)
    mems = [map_memory(acc_bits, rows << s, copies=pe, uram_available=uram) for s in range(stages)]
    biggest = max(mems, key=lambda m: m.bram36 + m.uram + m.luts / 1e6)
    return logic, Memory(f"search/{biggest.style}", luts=sum(m.luts for m in mems),
                         bram36=sum(m.bram36 for m in mems), uram=sum(m.uram for m in mems))


def _dot_unit(pe: int, simd: int, mw_per_pe_rows: int, w_bits: int, a_bits: int, acc_bits: int, xnor: bool,
              th: Thresholds | None, channels: int, uram: bool) -> tuple[Resources, dict[str, str]]:
    if xnor:
        compute = pe * (simd * XNOR_LUTS_PER_LANE + acc_bits)
        dsp = 0
    elif uses_dsp(w_bits, a_bits):
        compute = pe * (simd * (w_bits + a_bits) + acc_bits)  # adder tree and accumulator around DSP products
        dsp = pe * simd
    else:
        compute = pe * (simd * (_mult_luts(w_bits, a_bits) + w_bits + a_bits) + acc_bits)
        dsp = 0
    weights = map_memory(simd * w_bits, mw_per_pe_rows, copies=pe, uram_available=uram)
    comp, thr_mem = _threshold_cost(th, channels, pe, acc_bits, uram)
    lut = CONTROL_LUTS + compute + comp + weights.luts + thr_mem.luts
    res = Resources(lut=lut, ff=lut * FF_PER_LUT, bram36=weights.bram36 + thr_mem.bram36,
                    uram=weights.uram + thr_mem.uram, dsp=dsp)
    return res, {"weights": weights.style, "thresholds": thr_mem.style}


ESTIMATE: KindTable[Callable[[Any, bool], tuple[Resources, dict[str, str]]]] = KindTable("resources", adopt="estimate")


def estimate(node: Node, uram_available: bool = False) -> tuple[Resources, dict[str, str]]:
    """Resources of one node at its current folding, and where its memories went."""
    return ESTIMATE(node)(node, uram_available)


@ESTIMATE.register(MatrixVectorUnit)
def _matrix_vector_unit(node: MatrixVectorUnit, u: bool) -> tuple[Resources, dict[str, str]]:
    depth = (node.mh // node.pe) * (node.mw // node.simd)
    a_bits = 1 if node.in_dtype.bipolar else node.in_dtype.bits
    return _dot_unit(node.pe, node.simd, depth, node.w_dtype.bits, a_bits, node.acc_dtype.bits, node.xnor,
                     node.thresholds, node.mh, u)


@ESTIMATE.register(VectorVectorUnit)
def _vector_vector_unit(node: VectorVectorUnit, u: bool) -> tuple[Resources, dict[str, str]]:
    depth = (node.channels // node.pe) * (node.k // node.simd)
    # PE channels in parallel, SIMD taps of the window per channel: PE * SIMD lanes
    return _dot_unit(node.pe, node.simd, depth, node.w_dtype.bits, node.in_dtype.bits, node.acc_dtype.bits,
                     False, node.thresholds, node.channels, u)


@ESTIMATE.register(Thresholding)
def _thresholding(node: Thresholding, u: bool) -> tuple[Resources, dict[str, str]]:
    th = node.thresholds
    comp, mem = _threshold_cost(th, node.channels, node.pe, node.in_dtype.bits, u)
    lut = CONTROL_LUTS + comp + mem.luts
    return Resources(lut=lut, ff=lut * FF_PER_LUT, bram36=mem.bram36, uram=mem.uram), {"thresholds": mem.style}


@ESTIMATE.register(SlidingWindow)
def _sliding_window(node: SlidingWindow, u: bool) -> tuple[Resources, dict[str, str]]:
    # line buffer of 2*kh rows (kh + max(kh, stride)): the next frame's first rows arrive while this frame's
    # last windows leave, so frames overlap without a stall
    kh = node.extent[0]  # a dilated window spans its gaps
    rows = kh + max(kh, node.stride[0])
    lanes = min(node.simd, node.channels)  # elements per buffer word
    # a multi-pixel SWG banks each row by column (pixels banks) to read that many pixels per clock
    words = math.ceil(node.ifm[1] * node.channels // lanes / node.pixels)
    mem = map_memory(lanes * node.dtype.bits, words, copies=rows * node.pixels, uram_available=u)
    lut = CONTROL_LUTS * 2 + node.simd * node.dtype.bits * 2 + mem.luts  # address generation + output mux
    return Resources(lut=lut, ff=lut * FF_PER_LUT, bram36=mem.bram36, uram=mem.uram), {"buffer": mem.style}


@ESTIMATE.register(Padding)
def _padding(node: Padding, u: bool) -> tuple[Resources, dict[str, str]]:
    lut = CONTROL_LUTS + node.simd * node.dtype.bits
    return Resources(lut=lut, ff=lut * FF_PER_LUT), {}


@ESTIMATE.register(MaxPool)
def _max_pool(node: MaxPool, u: bool) -> tuple[Resources, dict[str, str]]:
    # a row buffer of partial maxima (ofm width x channels) and PE comparators
    mem = map_memory(node.pe * node.dtype.bits, node.ofm[1] * node.channels // node.pe, uram_available=u)
    lut = CONTROL_LUTS + node.pe * node.dtype.bits * 2 + mem.luts
    return Resources(lut=lut, ff=lut * FF_PER_LUT, bram36=mem.bram36, uram=mem.uram), {"buffer": mem.style}


@ESTIMATE.register(GlobalAccPool)
def _global_acc_pool(node: GlobalAccPool, u: bool) -> tuple[Resources, dict[str, str]]:
    mem = map_memory(node.pe * node.out_dtype.bits, node.channels // node.pe, uram_available=u)
    lut = CONTROL_LUTS + node.pe * node.out_dtype.bits + mem.luts
    return Resources(lut=lut, ff=lut * FF_PER_LUT, bram36=mem.bram36, uram=mem.uram), {"buffer": mem.style}


@ESTIMATE.register(AddStreams)
def _add_streams(node: AddStreams, u: bool) -> tuple[Resources, dict[str, str]]:
    lut = CONTROL_LUTS / 2 + node.pe * node.out_dtype.bits
    return Resources(lut=lut, ff=lut * FF_PER_LUT), {}


@ESTIMATE.register(StreamingConcat)
def _streaming_concat(node: StreamingConcat, u: bool) -> tuple[Resources, dict[str, str]]:
    # an input select and the element re-packing
    lut = CONTROL_LUTS / 2 + node.pe * node.out_dtype.bits
    return Resources(lut=lut, ff=lut * FF_PER_LUT), {}


@ESTIMATE.register(DuplicateStreams)
def _duplicate_streams(node: DuplicateStreams, u: bool) -> tuple[Resources, dict[str, str]]:
    lut = CONTROL_LUTS / 4 + node.pe * node.dtype.bits / 2
    return Resources(lut=lut, ff=lut * FF_PER_LUT), {}


@ESTIMATE.register(StreamingDataWidthConverter)
def _streaming_data_width_converter(node: StreamingDataWidthConverter, u: bool) -> tuple[Resources, dict[str, str]]:
    # a register bank of in + out elements and the shift/select network around it
    lut = CONTROL_LUTS / 4 + (node.in_elems + node.out_elems) * node.dtype.bits
    return Resources(lut=lut, ff=lut * FF_PER_LUT), {}


@ESTIMATE.register(LabelSelect)
def _label_select(node: LabelSelect, u: bool) -> tuple[Resources, dict[str, str]]:
    lut = CONTROL_LUTS + node.k * (node.in_dtype.bits + math.ceil(math.log2(max(node.labels, 2)))) * 2
    return Resources(lut=lut, ff=lut * FF_PER_LUT), {}


@ESTIMATE.register(Lookup)
def _lookup(node: Lookup, u: bool) -> tuple[Resources, dict[str, str]]:
    # the table as a ROM per PE (each lane looks up its own element)
    rows, levels = node.table.shape
    mem = map_memory(node.out_dtype.bits, rows * levels // (node.pe if rows > 1 else 1), copies=node.pe,
                     uram_available=u)
    lut = CONTROL_LUTS / 2 + node.pe * node.in_dtype.bits + mem.luts
    return Resources(lut=lut, ff=lut * FF_PER_LUT, bram36=mem.bram36, uram=mem.uram), {"table": mem.style}


@ESTIMATE.register(AddConstant)
def _add_constant(node: AddConstant, u: bool) -> tuple[Resources, dict[str, str]]:
    # the table as a ROM read PE elements per clock, PE adders
    t_bits = max(1, int(np.abs(node.table).max(initial=1)).bit_length() + 1)
    mem = map_memory(node.pe * t_bits, node.vectors * node.channels // node.pe, uram_available=u)
    lut = CONTROL_LUTS / 2 + node.pe * node.out_dtype.bits + mem.luts
    return Resources(lut=lut, ff=lut * FF_PER_LUT, bram36=mem.bram36, uram=mem.uram), {"table": mem.style}


@ESTIMATE.register(ConcatConstant)
def _concat_constant(node: ConcatConstant, u: bool) -> tuple[Resources, dict[str, str]]:
    # the table as a ROM read PE elements per clock and a select between it and the input word
    mem = map_memory(node.pe * node.out_dtype.bits, node.count * node.channels // node.pe, uram_available=u)
    lut = CONTROL_LUTS / 2 + node.pe * node.out_dtype.bits + mem.luts
    return Resources(lut=lut, ff=lut * FF_PER_LUT, bram36=mem.bram36, uram=mem.uram), {"table": mem.style}


@ESTIMATE.register(StreamMatMul)
def _stream_mat_mul(node: StreamMatMul, u: bool) -> tuple[Resources, dict[str, str]]:
    # B buffered whole (batch x inner x cols elements), PE x SIMD multipliers and PE adder trees
    b_bits, a_bits = node.in_dtypes[1].bits, node.in_dtypes[0].bits
    mem = map_memory(node.simd * b_bits, node.batch * node.inner * node.cols // node.simd,
                     copies=node.pe, uram_available=u)
    lanes = node.pe * node.simd
    dsp = lanes if uses_dsp(b_bits, a_bits) else 0
    lut = CONTROL_LUTS * 2 + (0 if dsp else lanes * _mult_luts(b_bits, a_bits)) + \
        node.pe * node.acc_dtype.bits * 2 + mem.luts
    return Resources(lut=lut, ff=lut * FF_PER_LUT, bram36=mem.bram36, uram=mem.uram, dsp=dsp), {"buffer": mem.style}


@ESTIMATE.register(Softmax)
def _softmax(node: Softmax, u: bool) -> tuple[Resources, dict[str, str]]:
    # a row buffer (ping-pong) for the max and sum passes, the exp table, the sum and a wide multiply per PE
    buf = map_memory(node.pe * node.in_dtype.bits, 2 * node.channels // node.pe, uram_available=u)
    table = map_memory(Softmax.EXP_BITS + 1, len(node.table), copies=node.pe, uram_available=u)
    lut = CONTROL_LUTS * 2 + node.pe * (node.in_dtype.bits * 2 + 2 * Softmax.EXP_BITS) + buf.luts + table.luts
    return Resources(lut=lut, ff=lut * FF_PER_LUT, bram36=buf.bram36 + table.bram36, uram=buf.uram + table.uram,
                     dsp=3 * node.pe + 4), {"buffer": buf.style, "table": table.style}


@ESTIMATE.register(LayerNorm)
def _layer_norm(node: LayerNorm, u: bool) -> tuple[Resources, dict[str, str]]:
    # a row buffer (ping-pong), sum and sum-of-squares accumulators, one shared pipelined square root and
    # divider per vector (~2 LUTs per bit and stage of the 80-bit datapath), thresholds on z per PE
    buf = map_memory(node.pe * node.in_dtype.bits, 2 * node.channels // node.pe, uram_available=u)
    z_bits = LayerNorm.FRAC_BITS + 8
    comp, th_mem = _threshold_cost(node.thresholds, node.channels, node.pe, z_bits, u)
    lut = CONTROL_LUTS * 2 + 2 * 40 * 2 + comp + buf.luts + th_mem.luts + node.pe * 4 * node.in_dtype.bits
    return Resources(lut=lut, ff=lut * FF_PER_LUT, bram36=buf.bram36 + th_mem.bram36, uram=buf.uram + th_mem.uram,
                     dsp=2 * node.pe + 4), {"buffer": buf.style, "thresholds": th_mem.style}

"""The resource model of the RTL backend's kernels on Xilinx parts, calibrated against Yosys `synth_xilinx`.

The model in fpga/resources.py counts what the HLS kernels instantiate (Vivado HLS control, FF_PER_LUT flip-flops
per LUT); the hand-written Verilog in rtl/verilog is leaner and shaped differently (an MVAU's input vector buffer, a
width converter's shift buffer). Here each kernel's LUTs and flip-flops are a linear function of a few quantities
read off its node (lanes, product and accumulator bits, threshold comparators, ROM bits in LUTs, buffers), with
coefficients fitted on zoo designs by `python bench/rtl_calibration.py`. Block RAM and DSPs are the HLS model's:
the RTL ROMs take its placement (rtl/kernels.py rom_style) and its multipliers bind as it says (uses_dsp).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from fpga.ir import (
    LayerNorm,
    MatrixVectorUnit,
    Node,
    SlidingWindow,
    Softmax,
    StreamingDataWidthConverter,
    Thresholding,
    VectorVectorUnit,
)
from fpga.resources import (
    Memory,
    Resources,
    bram18_count,
    estimate,
    fifo_estimate,
    map_memory,
    threshold_search,
    uses_dsp,
)

RTL_XILINX = "rtl-xilinx"

# group -> resource -> coefficients of the features below (bench/results/rtl_calibration.json, "coefficients")
COEFFICIENTS: dict[str, dict[str, tuple[float, ...]]] = {
    "dot": {"lut": (63.836, 1.447, 0.765, 1.121, 0.916, 3.442, 1.443, 0.0), "ff": (31.953, 1.044, 1.769, 0.847)},
    "swg": {"lut": (74.041, 0.0, 0.279), "ff": (37.746, 0.0)},
    "dwc": {"lut": (9.952, 1.215, 0.178, 0.621), "ff": (3.184, 1.0)},
    "thr": {"lut": (2.09, 1.513, 0.0), "ff": (3.608, 0.029)},
    "fifo": {"lut": (7.63, 0.162, 0.439, 0.0, 4.513, 0.636, 0.099, 0.746, 0.84, 0.0, 1.08, 4.598, 3.416),
             "ff": (4.998, 3.362, 0.876)},
    "other": {"lut": (19.848, 0.0), "ff": (14.719, 0.583)},
    "layernorm": {"lut": (0.0, 1.969, 2.085, 0.0, 5.761), "ff": (544.223, 0.464, 1.275)},
    "softmax": {"lut": (49.673, 1.841, 0.888, 0.4), "ff": (107.011, 0.902, 0.0)},
    "search": {"lut": (4.192, 0.849, 1.377, 0.082, 0.126), "ff": (15.398, 0.31, 13.888)},
}

Features = tuple[str, tuple[float, ...], tuple[float, ...]]  # group, LUT features, FF features


def _bits(dtype) -> int:
    return 1 if dtype.bipolar else dtype.bits


def _dot(node: MatrixVectorUnit | VectorVectorUnit) -> Features:
    """edge_mvau / edge_vvau: products in LUTs (XNOR: one per lane), PE sums of SIMD accumulator-wide adds,
    threshold comparators, ROMs held in LUTs with their read registers, the MVAU's two input vectors."""
    pe, simd = node.pe, node.simd
    ib, wb = _bits(node.in_dtype), _bits(node.w_dtype)
    if isinstance(node, MatrixVectorUnit):
        xnor, rows, sf = node.xnor, node.mh // pe, node.mw // simd
        buffer = simd * ib * math.ceil(2 * sf / 64)
    else:
        xnor, rows, sf = False, node.channels // pe, node.k // simd
        buffer = 0  # accumulators per channel fold instead of a vector buffer
    depth = rows * sf
    ab = node.acc_dtype.bits
    th = node.thresholds
    levels = th.levels if th is not None else 0
    ob = _bits(th.out_dtype) if th is not None else ab
    lanes = pe * simd
    product = 0 if not xnor and uses_dsp(wb, ib) else (1 if xnor else wb * ib)
    w_lut = map_memory(simd * wb, depth, copies=pe).style == "lutram"
    t_lut = levels > 0 and map_memory(levels * ab + 1, rows, copies=pe).style == "lutram"
    rom_bits = (pe * simd * wb * depth if w_lut else 0) + (pe * (levels * ab + 1) * rows if t_lut else 0)
    read_regs = ((distinct_columns(pe * simd * wb, depth) if w_lut else 0)
                 + (distinct_columns(pe * (levels * ab + 1), rows) if t_lut else 0))
    acc_mem = pe * ab * math.ceil(rows / 64) if isinstance(node, VectorVectorUnit) else 0
    adds = 0 if xnor else lanes * ab  # XNOR: 1-bit addends, a popcount tree instead of accumulator-wide adders
    return ("dot", (1.0, lanes * product, adds, lanes if xnor else 0, pe * levels * ab, rom_bits / 64, buffer,
                    acc_mem), (1.0, pe * ab, pe * ob, read_regs))


def distinct_columns(bits: int, depth: int) -> float:
    """Read-register bits left of a LUT ROM `bits` wide and `depth` words deep after synthesis: a bit column is a
    function of the address, constant columns fold away and equal columns share one flip-flop, so a shallow ROM
    keeps at most 2^depth - 2 of them (the expected number of distinct non-constant columns of random bits)."""
    if depth >= 24:
        return float(bits)
    patterns = float(1 << depth)
    return (patterns - 2) * -math.expm1(-bits / patterns)


def _swg(node: SlidingWindow) -> Features:
    """edge_swg: address generation, the output word's mux, the row buffer in LUT RAM."""
    kh = node.extent[0]
    rows = kh + max(kh, node.stride[0])
    lanes = min(node.simd, node.channels)
    words = math.ceil(node.ifm[1] * node.channels // lanes / node.pixels)
    buffer = lanes * _bits(node.dtype) * rows * node.pixels * math.ceil(words / 64)
    word = node.simd * _bits(node.dtype)
    return "swg", (1.0, word, buffer), (1.0, word)


def _dwc(node: StreamingDataWidthConverter) -> Features:
    """edge_dwc: a shift buffer of IN + OUT elements (IN + 2 OUT - 1 when neither divides the other), written at a
    variable position."""
    return dwc_features(node.in_elems, node.out_elems, _bits(node.dtype))


def dwc_features(i: int, o: int, b: int) -> Features:
    """edge_dwc of IN = i, OUT = o elements of b bits: the buffer, its insert muxes (IN/g candidate chunks per
    position), more of them when neither width divides the other."""
    divides = i % o == 0 or o % i == 0
    cap = i + o if divides else i + 2 * o - 1
    g = math.gcd(i, o)  # the kernel moves chunks of g elements
    return ("dwc", (1.0, cap * b, cap * b * (i // g - 1), 0.0 if divides else cap * b * min(i, o) // g),
            (1.0, cap * b))


def _thresholding(node: Thresholding) -> Features:
    """edge_thresholding: PE x levels comparators of the input's width + 1, the ROM (in LUTs when small)."""
    th = node.thresholds
    levels = th.levels if th is not None else 0
    tb = _bits(node.in_dtype) + 1
    rows = node.channels // node.pe
    t_lut = map_memory(levels * tb + 1, rows, copies=node.pe).style == "lutram"
    rom_bits = node.pe * (levels * tb + 1) * rows if t_lut else 0
    out = _bits(th.out_dtype) if th is not None else tb
    return ("thr", (1.0, node.pe * levels * tb, rom_bits / 64),
            (1.0, node.pe * out + (node.pe * (levels * tb + 1) if t_lut else 0)))


def layer_norm_widths(node: LayerNorm) -> dict[str, int]:
    """edge_layernorm's widths (rtl/kernels.py passes the same): threshold bits TB, quotient bits QB = 2 TB, the
    divisor's DEN_W and the square root's RW, and its pipeline's division and square-root stages (DS = 4 steps)."""
    z_hi = (math.isqrt(node.channels) + 1) << LayerNorm.FRAC_BITS
    tb = max(int(-z_hi - 1).bit_length(), int(z_hi + 1).bit_length(), 1) + 1
    sb = _bits(node.in_dtype) + 2 + math.ceil(math.log2(node.channels + 1))
    den_w = max(2 * sb + 1 + 8, max(int(node.eps_fix).bit_length(), 1)) + 1
    return {"tb": tb, "qb": 2 * tb, "den_w": den_w, "sb": sb, "rw": 2 * tb + 2, "ndiv": -(-2 * tb // 4),
            "nsq": -(-tb // 4)}


def _layer_norm(node: LayerNorm) -> Features:
    """edge_layernorm: per lane 2 TB restoring division steps DEN_W + 1 bits wide and TB square-root digits, pipelined
    every 4 steps; the threshold comparators; the vector buffer; the threshold ROM in LUTs."""
    w = layer_norm_widths(node)
    pe, c, ib = node.pe, node.channels, _bits(node.in_dtype)
    levels = node.thresholds.levels if node.thresholds is not None else 0
    rows = c // pe
    rom_bits = rows * (pe * levels * w["tb"] + pe)
    div = pe * w["qb"] * (w["den_w"] + 1)
    sqrt = pe * w["tb"] * w["rw"]
    pipe = pe * (w["ndiv"] * (w["den_w"] + 1 + w["qb"]) + w["nsq"] * 2 * w["rw"]) + w["ndiv"] * w["den_w"]
    buffer = c * (ib + 1)  # in flip-flops when PE lanes write it at once, else in LUT RAM
    return ("layernorm", (1.0, div + sqrt, pe * levels * w["tb"], buffer / 64 if pe == 1 else buffer, rom_bits / 64),
            (1.0, pipe, buffer if pe > 1 else 0.0))


def _softmax(node: Softmax) -> Features:
    """edge_softmax: per lane a restoring division of clog2(OMAX + 1) steps as wide as the scaled sum, two exponential
    table reads (pass 1 sums, pass 2 divides), the maximum's comparator; the vector buffer."""
    pe, c, ib = node.pe, node.channels, _bits(node.in_dtype)
    eb = max(max((int(v) for v in node.table), default=1).bit_length(), 1)
    qb = max(int(node.out_dtype.max).bit_length(), 1)
    den_w = eb + math.ceil(math.log2(c + 1)) + Softmax.RECIP_BITS + 1
    table = 2 * pe * len(node.table) * eb / 64
    buffer = c * (ib + 1)  # in flip-flops when PE lanes write it at once, else in LUT RAM
    return ("softmax", (1.0, pe * qb * den_w, table, buffer / 64 if pe == 1 else buffer),
            (1.0, buffer if pe > 1 else 0.0, pe * _bits(node.out_dtype)))


@dataclass(frozen=True)
class SearchLayout:
    """edge_thrsearch behind a node whose thresholds are searched: the input range it searches (lo, hi), the signed
    bits of inputs and thresholds inside it (tb: +-(max(hi, -lo) + 2), negated descending channels included), its
    stages (2^stages - 1 >= levels), lanes and channel folds."""

    lo: int
    hi: int
    tb: int
    stages: int
    pe: int
    rows: int

    def stage_memory(self, k: int):
        """Stage k's ROM per lane: rows * 2^k thresholds of tb bits (placed by the resource model's rule)."""
        return map_memory(self.tb, self.rows << k, copies=self.pe)


def search_layout(node: Node) -> SearchLayout | None:
    """How the RTL backend searches `node`'s thresholds, or None when it compares them all at once (fewer than
    THRESHOLD_SEARCH_LEVELS levels, as the HLS kernels) or the node has none."""
    th = getattr(node, "thresholds", None)
    if th is None or not threshold_search(th.levels):
        return None
    if isinstance(node, MatrixVectorUnit):
        lo, hi, rows = node.acc_dtype.min, node.acc_dtype.max, node.mh // node.pe
    elif isinstance(node, VectorVectorUnit):
        lo, hi, rows = node.acc_dtype.min, node.acc_dtype.max, node.channels // node.pe
    elif isinstance(node, Thresholding):
        lo, hi, rows = node.in_dtype.min, node.in_dtype.max, node.channels // node.pe
    elif isinstance(node, LayerNorm):
        z_hi = (math.isqrt(node.channels) + 1) << LayerNorm.FRAC_BITS
        lo, hi, rows = -z_hi, z_hi, node.channels // node.pe
    else:
        return None
    pad = max(int(hi), -int(lo)) + 2  # above every input, negated ones included: never reached
    return SearchLayout(int(lo), int(hi), pad.bit_length() + 1, th.levels.bit_length(), node.pe, rows)


def _search(node: Node, lay: SearchLayout) -> Features:
    """edge_thrsearch: per lane and stage a comparator, the input, index and threshold registers, the ROM in LUTs
    when it is placed there; the output register."""
    th = node.thresholds
    lanes_stages = lay.pe * lay.stages
    rom_bits = sum(lay.pe * lay.tb * (lay.rows << k) for k in range(lay.stages)
                   if lay.stage_memory(k).style in ("lutram", "none"))
    fold_bits = max(math.ceil(math.log2(lay.rows)), 1)
    address = lay.pe * sum(fold_bits + k for k in range(lay.stages))  # fold * 2^k + j per lane and stage
    # a stage deeper than one block RAM reads through a mux of its blocks' outputs
    muxed = lay.pe * lay.tb * sum(max(lay.stage_memory(k).bram36 / lay.pe * 2 - 1, 0) for k in range(lay.stages))
    return ("search", (1.0, lanes_stages * lay.tb, rom_bits / 64, address, muxed),
            (1.0, lanes_stages * (2 * lay.tb + lay.stages), lay.pe * _bits(th.out_dtype)))


def _other(node: Node) -> Features:
    """Every other kernel: control plus logic in proportion to its widest word."""
    bits = 0
    for name in ("dtype", "in_dtype", "out_dtype"):
        t = getattr(node, name, None)
        if t is not None:
            bits = max(bits, _bits(t))
    for t in getattr(node, "in_dtypes", ()) or ():
        bits = max(bits, _bits(t))
    return "other", (1.0, float(bits * max(node.pe, node.simd))), (1.0, float(bits * max(node.pe, node.simd)))


_FEATURES: dict[type[Node], Callable[..., Features]] = {
    MatrixVectorUnit: _dot, VectorVectorUnit: _dot, SlidingWindow: _swg, StreamingDataWidthConverter: _dwc,
    Thresholding: _thresholding, LayerNorm: _layer_norm, Softmax: _softmax,
}


def features(node: Node) -> Features:
    """The quantities the RTL model scales for a node: its group and its LUT and FF feature vectors (a node whose
    thresholds are searched: a Thresholding is its search; any other kind, its kernel without the thresholds, whose
    search `estimate_rtl` adds)."""
    lay = search_layout(node)
    if lay is not None:
        if isinstance(node, Thresholding):
            return _search(node, lay)
        node = replace(node, thresholds=None)
    return _FEATURES.get(type(node), _other)(node)


# edge_fifo's memory in LUT RAM up to this many bits (or up to 32 words deep), else block RAM: where Yosys puts it
# when left to choose (bench/rtl_calibration.py's FIFO sweep: 2 and 4 Kb in LUT RAM, 8 Kb in block RAM)
FIFO_LUTRAM_MAX_BITS = 4096


def fifo_memory(width: int, depth: int) -> Memory:
    """Where edge_fifo's memory goes (its STYLE, rtl.kernels.fifo_ram_style): registers at depth 2, LUT RAM when
    small or shallow, else block RAM (never URAM)."""
    if depth <= 2 or width <= 0:
        return Memory("none")
    if width * depth <= FIFO_LUTRAM_MAX_BITS or depth <= 32:
        return Memory("lutram", luts=width * math.ceil(depth / 64))
    return Memory("bram", bram36=bram18_count(width, depth) / 2)


def fifo_features(width: int, depth: int) -> Features:
    """edge_fifo: W x DEPTH words read asynchronously, in flip-flops at depth 2, in LUT RAM (64-word blocks of 3-bit
    cells, a read multiplexer across blocks, dearer when DEPTH is not a power of two) or in block RAM; pointers and
    count in log2 DEPTH (flip-flops whatever the width), block RAM's registered output word. LUT features per style:
    Yosys maps the three differently (bench/rtl_calibration.py's FIFO sweep)."""
    style = fifo_memory(width, depth).style
    log_depth = math.log2(depth) if depth > 2 else 0.0
    w = float(width)
    reg, lut, bram = (float(style == s) for s in ("none", "lutram", "bram"))
    blocks = math.ceil(depth / 64)
    odd = float(depth & (depth - 1) != 0)
    cells = math.ceil(width / 3) * blocks
    brams = math.ceil(width / 36) * math.ceil(depth / 1024)
    return "fifo", (reg, reg * w,
                    lut, lut * w, lut * log_depth, lut * cells, lut * w * (blocks - 1), lut * (blocks - 1),
                    lut * odd * w * (blocks - 1),
                    bram, bram * w, bram * log_depth, bram * brams), (1.0, log_depth, w * bram)


def _linear(group: str, lut: tuple[float, ...], ff: tuple[float, ...]) -> tuple[float, float]:
    c = COEFFICIENTS[group]
    return (sum(a * x for a, x in zip(c["lut"], lut, strict=True)),
            sum(a * x for a, x in zip(c["ff"], ff, strict=True)))


def _multiplier_dsps(a: int, b: int) -> int:
    """DSP48s of an a x b bit product as synthesis binds it: none below DSP_MIN_PRODUCT_BITS, else 25 x 18 tiles."""
    if not uses_dsp(a, b):
        return 0
    hi, lo = max(a, b), min(a, b)
    return math.ceil(hi / 25) * math.ceil(lo / 18)


def _own_bram_dsp(node: Node) -> tuple[float, float] | None:
    """Block RAM and DSPs of the RTL kernels whose structure differs from the HLS kernels': LayerNorm and Softmax keep
    their vector buffer in registers and read their tables asynchronously (no block RAM); their multipliers are
    LayerNorm's S^2, and per lane x^2 and d^2, and Softmax's per-lane e x RECIP."""
    if isinstance(node, LayerNorm):
        sb = layer_norm_widths(node)["sb"]
        x = _bits(node.in_dtype) + 1
        return 0.0, float(_multiplier_dsps(sb, sb) + node.pe * (_multiplier_dsps(sb, sb) + _multiplier_dsps(x, x)))
    if isinstance(node, Softmax):
        eb = max(max((int(v) for v in node.table), default=1).bit_length(), 1)
        return 0.0, float(node.pe * _multiplier_dsps(eb, max(int(node.recip).bit_length(), 1)))
    return None


def estimate_rtl(node: Node) -> tuple[Resources, dict[str, str]]:
    """One node's RTL kernel on a Xilinx part: LUT/FF from the calibrated features, BRAM and DSP as the HLS model
    places them (never URAM: a ROM there cannot be initialised) except where the RTL kernel is built otherwise."""
    lay = search_layout(node)
    if lay is not None:  # the node without thresholds (its raw output) into edge_thrsearch
        lut, ff = _linear(*_search(node, lay))
        bram = sum(lay.stage_memory(k).bram36 for k in range(lay.stages))
        if isinstance(node, Thresholding):
            return Resources(lut=lut, ff=ff, bram36=bram), {"thresholds": "search"}
        inner, memories = estimate_rtl(replace(node, thresholds=None))
        return inner + Resources(lut=lut, ff=ff, bram36=bram), {**memories, "thresholds": "search"}
    base, memories = estimate(node, False)
    lut, ff = _linear(*features(node))
    own = _own_bram_dsp(node)
    if own is not None:
        return Resources(lut=lut, ff=ff, bram36=own[0], uram=0.0, dsp=own[1]), {"buffer": "ff", "table": "lutram"}
    return Resources(lut=lut, ff=ff, bram36=base.bram36, uram=0.0, dsp=base.dsp), memories


def fifo_estimate_rtl(width: int, depth: int) -> tuple[Resources, str]:
    """One edge_fifo of the RTL top."""
    if width <= 0:
        return Resources(), "none"
    lut, ff = _linear(*fifo_features(width, depth))
    mem = fifo_memory(width, depth)
    return Resources(lut=lut, ff=ff, bram36=mem.bram36), "ff" if depth <= 2 else mem.style


def node_estimate(node: Node, uram: bool, model: str = "hls") -> tuple[Resources, dict[str, str]]:
    """A node's resources in the given model ("hls" or "rtl-xilinx", see fpga.resources.resource_model)."""
    return estimate_rtl(node) if model == RTL_XILINX else estimate(node, uram)


def stream_fifo_estimate(width: int, depth: int, model: str = "hls") -> tuple[Resources, str]:
    """A stream FIFO's resources in the given model."""
    return fifo_estimate_rtl(width, depth) if model == RTL_XILINX else fifo_estimate(width, depth)

"""Per IR kind: the Verilog module, its parameters and ROM initialisation files, and the stream word formats."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fpga.datatypes import IntType, smallest_type
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
from fpga.kinds import KindTable, RtlCall
from fpga.resources import map_memory, uses_dsp
from fpga.resources_rtl import fifo_memory, search_layout


class UnsupportedKernel(ValueError):
    """The RTL backend has no kernel for this node (or this configuration of it)."""


@dataclass(frozen=True)
class StreamFormat:
    """Words of `elems` elements of `bits` each; bipolar elements are one bit, 1 meaning +1."""

    elems: int
    bits: int
    signed: bool
    bipolar: bool = False

    @property
    def width(self) -> int:
        return self.elems * self.bits

    def pack(self, values: np.ndarray) -> list[int]:
        """(..., elems*k) integers in stream order -> words, element 0 in the least significant bits."""
        flat = np.asarray(values, dtype=np.int64).reshape(-1, self.elems)
        enc = (flat + 1) // 2 if self.bipolar else flat & ((1 << self.bits) - 1)
        shifts = [e * self.bits for e in range(self.elems)]
        return [sum(int(v) << s for v, s in zip(row, shifts, strict=True)) for row in enc]

    def unpack(self, words: list[int]) -> np.ndarray:
        """Words -> (len(words) * elems,) integers."""
        mask = (1 << self.bits) - 1
        out = np.array([[(w >> (e * self.bits)) & mask for e in range(self.elems)] for w in words], dtype=np.int64)
        if self.bipolar:
            return (2 * out - 1).reshape(-1)
        if self.signed:
            out = np.where(out >= 1 << (self.bits - 1), out - (1 << self.bits), out)
        return out.reshape(-1)


@dataclass(frozen=True)
class Kernel:
    """One node as the RTL backend instantiates it."""

    module: str
    params: dict[str, int | str]
    roms: dict[str, list[int]]  # parameter name -> ROM words (written as .mem files)
    in_format: StreamFormat
    out_format: StreamFormat
    in_formats: tuple[StreamFormat, ...] = ()  # per input, for kernels with several (in0_*, in1_*)
    outputs: int = 1  # kernels with several outputs share out_data, one valid/ready bit each
    submodules: tuple[str, ...] = ()  # modules the kernel instantiates (their .sv files go with it)
    latency: int = 0  # pipeline registers between the kernel's arithmetic and its output register
    # parameter name -> {file name suffix: ROM words}: a set of ROM files the module names from one prefix
    rom_sets: dict[str, dict[str, list[int]]] = field(default_factory=dict)

    @property
    def sources(self) -> tuple[str, ...]:
        """The .sv files of the kernel and of the modules it instantiates."""
        return tuple(f"{m}.sv" for m in (self.module, *self.submodules))

    @property
    def input_formats(self) -> tuple[StreamFormat, ...]:
        return self.in_formats or (self.in_format,)

    def rom_files(self, stem: str) -> tuple[dict[str, str], dict[str, list[int]]]:
        """The ROM parameters' values (a file name, or a set's prefix) and the files to write, named from `stem`."""
        params, files = {}, {}
        for name, words in self.roms.items():
            params[name] = f"{stem}{name.lower()}.mem"
            files[params[name]] = words
        for name, parts in self.rom_sets.items():
            params[name] = f"{stem}{name.lower()}"
            for suffix, words in parts.items():
                files[f"{params[name]}{suffix}.mem"] = words
        return params, files

    def write_roms(self, directory: Path, stem: str = "", relative: bool = False) -> dict[str, int | str]:
        """Write the ROM files to `directory`; returns the parameters with their paths (or names) filled in."""
        names, files = self.rom_files(stem)
        for file, words in files.items():
            (directory / file).write_text("".join(f"{w:x}\n" for w in words))
        return {**self.params, **{k: v if relative else str(directory / v) for k, v in names.items()}}


def rom_style(width: int, depth: int, copies: int = 1) -> str:
    """A ROM's Yosys/Vivado rom_style, placed by the resource model's rule (fpga.resources.map_memory): LUTs
    ("logic") when small or shallow, block RAM otherwise (URAM cannot be initialised, so ROMs never go there)."""
    return "logic" if map_memory(width, depth, copies).style in ("lutram", "none") else "block"


def _element(dtype: IntType) -> tuple[int, bool, bool]:
    return (1, False, True) if dtype.bipolar else (dtype.bits, dtype.signed, False)


def _acc_bits(lo: int, hi: int) -> int:
    """Signed bits that hold [lo - 1, hi + 1] (thresholds are clipped to that range)."""
    return max(int(lo - 1).bit_length(), int(hi + 1).bit_length(), 1) + 1


def _acc_range(node: MatrixVectorUnit) -> tuple[int, int]:
    if node.xnor:
        return 0, node.mw
    x = node.in_dtype
    w = node.weights.astype(np.int64)
    hi = np.where(w > 0, w * x.max, w * x.min).sum(1)
    lo = np.where(w > 0, w * x.min, w * x.max).sum(1)
    return int(lo.min(initial=0)), int(hi.max(initial=0))


def _threshold_words(th: Thresholds, channels: int, pe: int, ab: int, lo: int, hi: int) -> list[int]:
    """Per neuron fold: PE channels of clipped thresholds, then the PE descending flags (one shared row of
    thresholds is repeated for every channel)."""
    levels = th.values.shape[1]
    vals = np.broadcast_to(np.clip(th.values.astype(np.int64), lo - 1, hi + 1) & ((1 << ab) - 1), (channels, levels))
    desc = np.broadcast_to(np.asarray(th.descending, bool), (channels,))
    words = []
    for nf in range(channels // pe):
        w = 0
        for p in range(pe):
            c = nf * pe + p
            for lv in range(levels):
                w |= int(vals[c, lv]) << ((p * levels + lv) * ab)
            w |= int(desc[c]) << (pe * levels * ab + p)
        words.append(w)
    return words


def _search(node: Node, inner: Kernel | None, wrapper: str) -> Kernel:
    """`node`'s thresholds searched by edge_thrsearch (fpga.resources_rtl.search_layout): on their own for a
    Thresholding, else behind `inner` (the node's kernel without thresholds, its raw output) in `wrapper`."""
    lay = search_layout(node)
    assert lay is not None
    th = node.thresholds
    channels = lay.rows * lay.pe
    levels = th.levels
    vals = np.broadcast_to(th.values.astype(np.int64), (channels, levels))
    desc = np.broadcast_to(np.asarray(th.descending, bool), (channels,))
    clip = max(lay.hi, -lay.lo) + 1
    pad = clip + 1  # no input reaches it: the padding to 2^stages - 1 levels is never counted
    mask = (1 << lay.tb) - 1
    ordered = []
    for c in range(channels):
        t = np.clip(vals[c], -clip, clip)
        t = np.sort(-t if desc[c] else t)  # x <= T searched as -x >= -T; the count does not depend on the order
        ordered.append([int(v) for v in t] + [pad] * ((1 << lay.stages) - 1 - levels))
    sets: dict[str, list[int]] = {}
    for k in range(lay.stages):
        step = 1 << (lay.stages - 1 - k)
        for p in range(lay.pe):
            sets[f"_s{k}_p{p:03d}"] = [ordered[nf * lay.pe + p][(2 * j + 1) * step - 1] & mask
                                       for nf in range(lay.rows) for j in range(1 << k)]
    flags = [sum(int(desc[nf * lay.pe + p]) << p for p in range(lay.pe)) for nf in range(lay.rows)]
    block = sum(1 << k for k in range(lay.stages) if rom_style(lay.tb, lay.rows << k, copies=lay.pe) == "block")
    ob, out_signed, out_bipolar = _element(th.out_dtype)
    search: dict[str, int | str] = {"TB": lay.tb, "LEVELS": levels, "OB": ob, "OUT_BIPOLAR": int(out_bipolar),
                                    "BASE": th.base, "STEP": th.step, "BLOCK": block}
    out = StreamFormat(lay.pe, ob, out_signed, out_bipolar)
    latency = lay.stages  # the stage registers in front of the output register
    if inner is None:
        ib, in_signed, _ = _element(node.in_dtype)
        params = {"C": channels, "PE": lay.pe, "IB": ib, "IN_SIGNED": int(in_signed), **search}
        return Kernel("edge_thrsearch", params, {"DESC": flags}, StreamFormat(lay.pe, ib, in_signed), out,
                      rom_sets={"SEARCH": sets}, latency=latency)
    # the wrapper passes the inner kernel's parameters through and the search's with an S_ prefix; the inner
    # kernel's output elements (VB bits, signed or not as its format says) are the searched input
    params = {**inner.params, **{f"S_{k}": v for k, v in search.items()}, "VB": inner.out_format.bits,
              "VB_SIGNED": int(inner.out_format.signed)}
    return Kernel(wrapper, params, {**inner.roms, "DESC": flags}, inner.in_format, out,
                  in_formats=inner.in_formats, submodules=(inner.module, *inner.submodules, "edge_thrsearch"),
                  rom_sets={"SEARCH": sets}, latency=inner.latency + latency + 1)


def mvau(node: MatrixVectorUnit) -> Kernel:
    """edge_mvau: weights ROM in (neuron fold, SIMD fold) order, optional thresholds ROM; searched thresholds
    (16 levels and more) in edge_mvau_search (edge_mvau's accumulators into edge_thrsearch)."""
    if search_layout(node) is not None:
        return _search(node, mvau(dataclasses.replace(node, thresholds=None)), "edge_mvau_search")
    pe, simd = node.pe, node.simd
    lo, hi = _acc_range(node)
    ab = _acc_bits(lo, hi)
    ib, in_signed, in_bipolar = _element(node.in_dtype)
    wb, _, w_bipolar = _element(node.w_dtype)
    w = node.weights.astype(np.int64)
    w = (w + 1) // 2 if w_bipolar else w & ((1 << wb) - 1)
    sf, nf = node.mw // simd, node.mh // pe
    weights = []
    for n in range(nf):
        for s in range(sf):
            block = w[n * pe:(n + 1) * pe, s * simd:(s + 1) * simd]
            weights.append(sum(int(block[p, i]) << ((p * simd + i) * wb) for p in range(pe) for i in range(simd)))
    th = node.thresholds
    params: dict[str, int | str] = {
        "MW": node.mw, "MH": node.mh, "PE": pe, "SIMD": simd, "IB": ib, "WB": wb, "AB": ab,
        "IN_SIGNED": int(in_signed), "IN_BIPOLAR": int(in_bipolar), "W_BIPOLAR": int(w_bipolar),
        "XNOR": int(node.xnor), "LEVELS": 0, "USE_DSP": int(uses_dsp(wb, ib)),
    }
    params["WSTYLE"] = rom_style(simd * wb, nf * sf, copies=pe)
    roms = {"WEIGHTS": weights}
    if th is not None:
        ob, out_signed, out_bipolar = _element(th.out_dtype)
        params.update(LEVELS=th.levels, OB=ob, OUT_BIPOLAR=int(out_bipolar), BASE=th.base, STEP=th.step,
                      TSTYLE=rom_style(th.levels * ab + 1, nf, copies=pe))
        roms["THRESHOLDS"] = _threshold_words(th, node.mh, pe, ab, lo, hi)
        out = StreamFormat(pe, ob, out_signed, out_bipolar)
    else:  # the accumulator in the IR's type (the internal one has a margin for clipped thresholds)
        acc_bits, acc_signed, _ = _element(node.acc_dtype)
        params["OB"] = acc_bits
        out = StreamFormat(pe, acc_bits, acc_signed)
    return Kernel("edge_mvau", params, roms, StreamFormat(simd, ib, in_signed, in_bipolar), out)


def vvau(node: VectorVectorUnit) -> Kernel:
    """edge_vvau: weights ROM in (tap, channel fold) order, PE channels per word, optional thresholds; searched
    thresholds in edge_vvau_search."""
    if search_layout(node) is not None:
        return _search(node, vvau(dataclasses.replace(node, thresholds=None)), "edge_vvau_search")
    pe, c, k = node.pe, node.channels, node.k
    x = node.in_dtype
    w = node.weights.astype(np.int64)  # (C, K)
    hi = np.where(w > 0, w * x.max, w * x.min).sum(1)
    lo = np.where(w > 0, w * x.min, w * x.max).sum(1)
    lo_, hi_ = int(lo.min(initial=0)), int(hi.max(initial=0))
    ab = _acc_bits(lo_, hi_)
    ib, in_signed, in_bipolar = _element(x)
    wb, _, w_bipolar = _element(node.w_dtype)
    wenc = (w + 1) // 2 if w_bipolar else w & ((1 << wb) - 1)
    simd = node.simd
    weights = [sum(int(wenc[cf * pe + p, ks * simd + t]) << ((t * pe + p) * wb) for t in range(simd) for p in range(pe))
               for ks in range(k // simd) for cf in range(c // pe)]
    params: dict[str, int | str] = {"C": c, "K": k, "PE": pe, "SIMD": simd, "IB": ib, "WB": wb, "AB": ab,
                                    "IN_SIGNED": int(in_signed),
                                    "IN_BIPOLAR": int(in_bipolar), "W_BIPOLAR": int(w_bipolar),
                                    "USE_DSP": int(uses_dsp(wb, ib)), "LEVELS": 0}
    params["WSTYLE"] = rom_style(simd * wb, (k // simd) * (c // pe), copies=pe)
    roms = {"WEIGHTS": weights}
    th = node.thresholds
    if th is not None:
        ob, out_signed, out_bipolar = _element(th.out_dtype)
        params.update(LEVELS=th.levels, OB=ob, OUT_BIPOLAR=int(out_bipolar), BASE=th.base, STEP=th.step,
                      TSTYLE=rom_style(th.levels * ab + 1, c // pe, copies=pe))
        roms["THRESHOLDS"] = _threshold_words(th, c, pe, ab, lo_, hi_)
        out = StreamFormat(pe, ob, out_signed, out_bipolar)
    else:
        acc_bits, acc_signed, _ = _element(node.acc_dtype)
        params["OB"] = acc_bits
        out = StreamFormat(pe, acc_bits, acc_signed)
    return Kernel("edge_vvau", params, roms, StreamFormat(pe * simd, ib, in_signed, in_bipolar), out)


def global_acc_pool(node: GlobalAccPool) -> Kernel:
    """edge_gap: per-channel sums over a frame's pixels, PE channels per word."""
    ib, in_signed, in_bipolar = _element(node.in_dtype)
    if in_bipolar:
        raise UnsupportedKernel(f"{node.name}: the RTL backend has no GlobalAccPool of a bipolar input yet")
    ob, out_signed, _ = _element(node.out_dtype)
    params: dict[str, int | str] = {"N": node.ifm[0] * node.ifm[1], "C": node.channels, "PE": node.pe, "IB": ib,
                                    "IN_SIGNED": int(in_signed), "OB": ob}
    return Kernel("edge_gap", params, {}, StreamFormat(node.pe, ib, in_signed), StreamFormat(node.pe, ob, out_signed))


def thresholding(node: Thresholding) -> Kernel:
    """edge_thresholding: one ROM word of PE channels' thresholds per channel fold; edge_thrsearch from 16 levels."""
    th = node.thresholds
    if th is None:
        raise UnsupportedKernel(f"{node.name}: Thresholding without thresholds")
    ib, in_signed, in_bipolar = _element(node.in_dtype)
    if in_bipolar:
        raise UnsupportedKernel(f"{node.name}: the RTL backend has no Thresholding of a bipolar input yet")
    if search_layout(node) is not None:
        return _search(node, None, "")
    lo, hi = node.in_dtype.min, node.in_dtype.max
    tb = _acc_bits(lo, hi)
    ob, out_signed, out_bipolar = _element(th.out_dtype)
    params: dict[str, int | str] = {"C": node.channels, "PE": node.pe, "IB": ib, "IN_SIGNED": int(in_signed),
                                    "TB": tb, "LEVELS": th.levels, "OB": ob, "OUT_BIPOLAR": int(out_bipolar),
                                    "BASE": th.base, "STEP": th.step,
                                    "STYLE": rom_style(th.levels * tb + 1, node.channels // node.pe, copies=node.pe)}
    roms = {"THRESHOLDS": _threshold_words(th, node.channels, node.pe, tb, lo, hi)}
    return Kernel("edge_thresholding", params, roms, StreamFormat(node.pe, ib, in_signed),
                  StreamFormat(node.pe, ob, out_signed, out_bipolar), submodules=("edge_foldrom",))


def width_converter(node: StreamingDataWidthConverter) -> Kernel:
    """edge_dwc: re-chunks words of in_elems elements into words of out_elems."""
    b, signed, bipolar = _element(node.dtype)
    return Kernel("edge_dwc", {"IN": node.in_elems, "OUT": node.out_elems, "B": b}, {},
                  StreamFormat(node.in_elems, b, signed, bipolar), StreamFormat(node.out_elems, b, signed, bipolar))


def padding(node: Padding, in_dtype: IntType | None = None) -> Kernel:
    """edge_pad: the constant framed around the map, SIMD channels per word (a bipolar input padded with 0 widens
    to the node's integer type)."""
    b, signed, bipolar = _element(node.dtype)
    t, left, bottom, r = node.pads
    value = (node.value + 1) // 2 if bipolar else node.value & ((1 << b) - 1)
    widen = in_dtype is not None and in_dtype.bipolar and not bipolar
    params: dict[str, int | str] = {"H": node.ifm[0], "W": node.ifm[1], "C": node.channels, "SIMD": node.simd, "B": b,
                                    "T": t, "L": left, "BOT": bottom, "R": r, "VALUE": value,
                                    "IN_BIPOLAR": int(widen)}
    fmt = StreamFormat(node.simd, b, signed, bipolar)
    return Kernel("edge_pad", params, {}, StreamFormat(node.simd, 1, False, True) if widen else fmt, fmt)


def sliding_window(node: SlidingWindow) -> Kernel:
    """edge_swg: windows of a standard or depthwise convolution, SIMD channels per word, or SIMD/C neighbouring
    taps per output word when SIMD exceeds the channels."""
    b, signed, bipolar = _element(node.dtype)  # depthwise windows have the same (ky, kx, channel) order
    (kh, kw), (sh, sw) = node.kernel, node.stride
    params: dict[str, int | str] = {"H": node.ifm[0], "W": node.ifm[1], "C": node.channels, "SIMD": node.simd, "B": b,
                                    "KH": kh, "KW": kw, "SH": sh, "SW": sw, "DH": node.dilation[0],
                                    "DW": node.dilation[1]}
    in_fmt = StreamFormat(min(node.simd, node.channels), b, signed, bipolar)
    return Kernel("edge_swg", params, {}, in_fmt, StreamFormat(node.simd, b, signed, bipolar))


def max_pool(node: MaxPool) -> Kernel:
    """edge_maxpool: non-overlapping windows (stride = kernel), PE channels per word."""
    if node.kernel != node.stride:
        raise UnsupportedKernel(f"{node.name}: the RTL backend has no MaxPool with stride {node.stride} != kernel "
                                f"{node.kernel} yet")
    b, signed, bipolar = _element(node.dtype)
    params: dict[str, int | str] = {"H": node.ifm[0], "W": node.ifm[1], "C": node.channels, "PE": node.pe, "B": b,
                                    "SIGNED": int(signed), "BIPOLAR": int(bipolar), "KH": node.kernel[0],
                                    "KW": node.kernel[1]}
    fmt = StreamFormat(node.pe, b, signed, bipolar)
    return Kernel("edge_maxpool", params, {}, fmt, fmt)


def duplicate(node: DuplicateStreams) -> Kernel:
    """edge_dup: one word to every output, taken once all have passed it on."""
    b, signed, bipolar = _element(node.dtype)
    fmt = StreamFormat(node.pe, b, signed, bipolar)
    return Kernel("edge_dup", {"N": len(node.outputs), "W": fmt.width}, {}, fmt, fmt, outputs=len(node.outputs))


def add_streams(node: AddStreams) -> Kernel:
    """edge_add: the element-wise sum of two streams, PE elements per word."""
    fa, fb = (StreamFormat(node.pe, *_element(t)) for t in node.in_dtypes)
    if fa.bipolar or fb.bipolar or node.out_dtype.bipolar:
        raise UnsupportedKernel(f"{node.name}: the RTL backend has no AddStreams of bipolar streams yet")
    ob, out_signed, _ = _element(node.out_dtype)
    params: dict[str, int | str] = {"PE": node.pe, "AB": fa.bits, "A_SIGNED": int(fa.signed), "BB": fb.bits,
                                    "B_SIGNED": int(fb.signed), "OB": ob}
    return Kernel("edge_add", params, {}, fa, StreamFormat(node.pe, ob, out_signed), in_formats=(fa, fb))


def concat(node: StreamingConcat) -> Kernel:
    """edge_concat: per vector, the words of input 0 then those of input 1, PE elements per word."""
    fa, fb = (StreamFormat(node.pe, *_element(t)) for t in node.in_dtypes)
    ob, out_signed, out_bipolar = _element(node.out_dtype)
    if fa.bipolar or fb.bipolar or out_bipolar:
        raise UnsupportedKernel(f"{node.name}: the RTL backend has no StreamingConcat of bipolar streams yet")
    params: dict[str, int | str] = {"PE": node.pe, "CA": node.channels[0], "CB": node.channels[1], "AB": fa.bits,
                                    "A_SIGNED": int(fa.signed), "BB": fb.bits, "B_SIGNED": int(fb.signed), "OB": ob}
    return Kernel("edge_concat", params, {}, fa, StreamFormat(node.pe, ob, out_signed), in_formats=(fa, fb))


def lookup(node: Lookup) -> Kernel:
    """edge_lookup: one ROM word of PE channels' tables per channel fold (a shared row repeated per channel)."""
    ib, in_signed, in_bipolar = _element(node.in_dtype)
    ob, out_signed, out_bipolar = _element(node.out_dtype)
    if in_bipolar or out_bipolar:
        raise UnsupportedKernel(f"{node.name}: the RTL backend has no Lookup of bipolar values yet")
    levels = node.table.shape[1]
    table = np.broadcast_to(node.table.astype(np.int64), (node.channels, levels)) & ((1 << ob) - 1)
    words = []
    for nf in range(node.channels // node.pe):
        w = 0
        for p in range(node.pe):
            for lv in range(levels):
                w |= int(table[nf * node.pe + p, lv]) << ((p * levels + lv) * ob)
        words.append(w)
    params: dict[str, int | str] = {"C": node.channels, "PE": node.pe, "IB": ib, "IN_SIGNED": int(in_signed),
                                    "IN_MIN": node.in_dtype.min, "LEVELS": levels, "OB": ob,
                                    "STYLE": rom_style(levels * ob, node.channels // node.pe, copies=node.pe)}
    return Kernel("edge_lookup", params, {"TABLE": words}, StreamFormat(node.pe, ib, in_signed),
                  StreamFormat(node.pe, ob, out_signed), submodules=("edge_foldrom",))


def _table_words(table: np.ndarray, pe: int) -> tuple[int, list[int]]:
    """A constant table in stream order as ROM words of PE two's-complement entries, and the entry width."""
    flat = table.astype(np.int64).reshape(-1)
    tb = smallest_type(min(int(flat.min(initial=0)), -1), int(flat.max(initial=0))).bits
    raw = (flat & ((1 << tb) - 1)).reshape(-1, pe)
    return tb, [sum(int(v) << (p * tb) for p, v in enumerate(row)) for row in raw]


def add_constant(node: AddConstant) -> Kernel:
    """edge_addconst: one ROM word of PE table entries per input word of a frame, in stream order."""
    ib, in_signed, in_bipolar = _element(node.in_dtype)
    if in_bipolar:
        raise UnsupportedKernel(f"{node.name}: the RTL backend has no AddConstant of a bipolar input yet")
    ob, out_signed, _ = _element(node.out_dtype)
    tb, words = _table_words(node.table, node.pe)
    params: dict[str, int | str] = {"C": node.channels, "PE": node.pe, "VECTORS": node.vectors, "IB": ib,
                                    "IN_SIGNED": int(in_signed), "TB": tb, "OB": ob,
                                    "STYLE": rom_style(node.pe * tb, len(words))}
    return Kernel("edge_addconst", params, {"TABLE": words}, StreamFormat(node.pe, ib, in_signed),
                  StreamFormat(node.pe, ob, out_signed), submodules=("edge_foldrom",))


def concat_constant(node: ConcatConstant) -> Kernel:
    """edge_concatconst: the table's rows (one ROM word of PE entries per output word) inserted before or after
    each frame's stream vectors."""
    ib, in_signed, in_bipolar = _element(node.in_dtype)
    ob, out_signed, out_bipolar = _element(node.out_dtype)
    if in_bipolar or out_bipolar:
        raise UnsupportedKernel(f"{node.name}: the RTL backend has no ConcatConstant of bipolar values yet")
    tb, words = _table_words(node.table, node.pe)
    params: dict[str, int | str] = {"C": node.channels, "PE": node.pe, "VECTORS": node.vectors, "AT": node.at,
                                    "COUNT": node.count, "IB": ib, "IN_SIGNED": int(in_signed), "TB": tb, "OB": ob}
    return Kernel("edge_concatconst", params, {"TABLE": words}, StreamFormat(node.pe, ib, in_signed),
                  StreamFormat(node.pe, ob, out_signed))


def stream_matmul(node: StreamMatMul) -> Kernel:
    """edge_matmul: B (input 1) buffered whole, then A's rows (input 0) against it, PE sums per output word."""
    fa, fb = (StreamFormat(node.simd, *_element(t)) for t in node.in_dtypes)
    if fa.bipolar or fb.bipolar:
        raise UnsupportedKernel(f"{node.name}: the RTL backend has no StreamMatMul of bipolar streams yet")
    ob, _, _ = _element(node.acc_dtype)
    params: dict[str, int | str] = {"M": node.rows, "BATCH": node.batch, "K": node.inner, "N": node.cols,
                                    "PE": node.pe, "SIMD": node.simd, "AB": fa.bits, "A_SIGNED": int(fa.signed),
                                    "BB": fb.bits, "B_SIGNED": int(fb.signed), "OB": ob,
                                    "ORDER": 0 if node.b_order == "nbk" else 1}
    return Kernel("edge_matmul", params, {}, fa, StreamFormat(node.pe, ob, True), in_formats=(fa, fb))


def _rom_word_bits(value: int, node: Node) -> int:
    """Bits of a non-negative constant kept in a one-word 64-bit ROM (the kernel sizes its arithmetic to them)."""
    if not 0 <= value < 1 << 64:
        raise UnsupportedKernel(f"{node.name}: constant {value} does not fit the kernel's 64-bit ROM word")
    return max(value.bit_length(), 1)


def softmax(node: Softmax) -> Kernel:
    """edge_softmax: max, sum of table exponentials, then each element's rounded share as an unsigned level."""
    ib, in_signed, in_bipolar = _element(node.in_dtype)
    if in_bipolar or node.out_dtype.signed:
        raise UnsupportedKernel(f"{node.name}: the RTL backend takes Softmax of integer input to unsigned levels")
    table = [int(v) for v in node.table]
    eb = max(max(table, default=1).bit_length(), 1)
    params: dict[str, int | str] = {"C": node.channels, "PE": node.pe, "IB": ib, "IN_SIGNED": int(in_signed),
                                    "OB": node.out_dtype.bits, "OMAX": node.out_dtype.max, "TABLE_N": len(table),
                                    "EB": eb, "RB": Softmax.RECIP_BITS, "RCB": _rom_word_bits(int(node.recip), node)}
    return Kernel("edge_softmax", params, {"EXP": table, "RECIP": [int(node.recip)]},
                  StreamFormat(node.pe, ib, in_signed), StreamFormat(node.pe, node.out_dtype.bits, False))


LAYER_NORM_STEPS = 4  # edge_layernorm's DS: division or square-root steps between two pipeline registers


def layer_norm_stages(tb: int) -> int:
    """edge_layernorm's pipeline registers (NST): entry, 2*TB division steps, the square root's entry, TB digits."""
    return -(-2 * tb // LAYER_NORM_STEPS) + -(-tb // LAYER_NORM_STEPS) + 2


def layer_norm(node: LayerNorm) -> Kernel:
    """edge_layernorm: statistics pass, then z per element and its thresholds (one ROM word per channel fold);
    searched thresholds (16 levels and more) in edge_layernorm_search (z into edge_thrsearch)."""
    th = node.thresholds
    ib, in_signed, in_bipolar = _element(node.in_dtype)
    if th is None or in_bipolar:
        raise UnsupportedKernel(f"{node.name}: the RTL backend takes LayerNorm of integer input with thresholds")
    z_hi = (math.isqrt(node.channels) + 1) << LayerNorm.FRAC_BITS  # |z| <= sqrt(C) in F fractional bits
    tb = _acc_bits(-z_hi, z_hi)
    searched = search_layout(node) is not None
    params: dict[str, int | str] = {"C": node.channels, "PE": node.pe, "IB": ib, "IN_SIGNED": int(in_signed),
                                    "F": LayerNorm.FRAC_BITS, "TB": tb,
                                    "EPB": _rom_word_bits(int(node.eps_fix), node), "DS": LAYER_NORM_STEPS}
    if searched:  # z itself (tb bits, signed) out of the inner kernel
        params.update(LEVELS=0, OB=tb, OUT_BIPOLAR=0, BASE=0, STEP=1)
        thresholds = [0] * (node.channels // node.pe)
        out = StreamFormat(node.pe, tb, True)
    else:
        ob, _, out_bipolar = _element(th.out_dtype)
        params.update(LEVELS=th.levels, OB=ob, OUT_BIPOLAR=int(out_bipolar), BASE=th.base, STEP=th.step)
        thresholds = _threshold_words(th, node.channels, node.pe, tb, -z_hi, z_hi)
        out = StreamFormat(node.pe, ob, th.out_dtype.signed, out_bipolar)
    kernel = Kernel("edge_layernorm", params, {"THRESHOLDS": thresholds, "EPS": [int(node.eps_fix)]},
                    StreamFormat(node.pe, ib, in_signed), out, latency=layer_norm_stages(tb))
    return _search(node, kernel, "edge_layernorm_search") if searched else kernel


def label_select(node: LabelSelect) -> Kernel:
    """edge_labelselect: the top-k indices of a frame, one per output word."""
    ib, in_signed, in_bipolar = _element(node.in_dtype)
    if in_bipolar:
        raise UnsupportedKernel(f"{node.name}: the RTL backend has no LabelSelect of bipolar values yet")
    ob = smallest_type(0, node.labels - 1).bits
    params: dict[str, int | str] = {"L": node.labels, "K": node.k, "PE": node.pe, "IB": ib,
                                    "IN_SIGNED": int(in_signed), "OB": ob}
    return Kernel("edge_labelselect", params, {}, StreamFormat(node.pe, ib, in_signed), StreamFormat(1, ob, False))


def fifo_ram_style(width: int, depth: int) -> str:
    """An edge_fifo's ram_style, placed by the resource model's rule: LUT RAM when small or shallow, else block RAM
    (fpga.resources_rtl.fifo_estimate_rtl counts the same)."""
    return "block" if fifo_memory(width, depth).style == "bram" else "distributed"


def fifo(width: int, depth: int, style: str | None = None) -> Kernel:
    """edge_fifo of `depth` words of `width` bits (words are opaque to it: one element of the whole width), its
    memory placed as the resource model places it unless `style` says otherwise."""
    fmt = StreamFormat(1, width, False)
    return Kernel("edge_fifo", {"W": width, "DEPTH": depth, "STYLE": style or fifo_ram_style(width, depth)}, {},
                  fmt, fmt)


RTL_KERNEL: KindTable[Callable[..., Kernel | RtlCall]] = KindTable("rtl", adopt="rtl_kernel")
for _kind, _build in ((MatrixVectorUnit, mvau), (Thresholding, thresholding), (StreamingDataWidthConverter,
                      width_converter), (Padding, padding), (SlidingWindow, sliding_window), (MaxPool, max_pool),
                      (VectorVectorUnit, vvau), (GlobalAccPool, global_acc_pool), (DuplicateStreams, duplicate),
                      (AddStreams, add_streams), (StreamingConcat, concat), (Lookup, lookup),
                      (LabelSelect, label_select),
                      (AddConstant, add_constant),
                      (ConcatConstant, concat_constant), (StreamMatMul, stream_matmul), (Softmax, softmax),
                      (LayerNorm, layer_norm)):
    RTL_KERNEL.register(_kind)(_build)


def missing_kernel(graph_nodes: tuple[Node, ...]) -> Node | None:
    """The first node whose kind has no RTL kernel (checked before folding: it is the first thing to say)."""
    return next((n for n in graph_nodes if not RTL_KERNEL.supports(type(n))), None)


def kernel_for(node: Node, in_dtype: IntType | None = None) -> Kernel:
    """The RTL kernel of an IR node (given the type of its input stream where the node's own differs, as for a
    padded bipolar map), or UnsupportedKernel naming the kind."""
    if not RTL_KERNEL.supports(type(node)):
        raise UnsupportedKernel(f"{node.name}: the RTL backend has no kernel for {node.kind} yet")
    build = RTL_KERNEL(node)
    made = build(node, in_dtype) if isinstance(node, Padding) else build(node)
    return from_call(made) if isinstance(made, RtlCall) else made


def from_call(call: RtlCall) -> Kernel:
    """A kind module's RTL kernel (fpga/kinds/): one stream format in and out, from its elements and type."""
    b, signed, bipolar = _element(call.dtype)
    fmt = StreamFormat(call.elems, b, signed, bipolar)
    return Kernel(call.module, dict(call.params), {}, fmt, fmt, submodules=call.submodules)

"""Generate the HLS project of a folded dataflow graph: params, top.cpp, tb.cpp, sim.cpp, TCL, Makefile.

Python computes numbers (template parameters, packed weight words, thresholds); the C++ lives in the jinja
templates under hls/templates and the kernel library under hls/include/edge.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from boards.schema import FpgaBoard
from fpga.datatypes import IntType, smallest_type
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
    Thresholds,
    VectorVectorUnit,
)
from fpga.kinds import HlsCall, KindTable
from fpga.latency import pipeline_depth
from fpga.width import AXI_BITS, DEFAULT_FIFO_DEPTH, in_elems, out_elems
from hls.headers import KERNEL_INCLUDE, ap_types_dir

TEMPLATES = Path(__file__).parent / "templates"
DEFAULT_DEPTH = DEFAULT_FIFO_DEPTH  # without a simulation's sizing: what the estimate assumes
HEX = np.array(list("0123456789abcdef"))
MM_SHELL = "xdma-vitis"  # Alveo: the accelerator reads and writes device memory (m_axi); Zynq shells use a DMA


def kind_code(t: IntType) -> int:
    """The kernel library's element kind: 0 unsigned, 1 signed, 2 bipolar."""
    return t.kind_code


def raw_bits(values: np.ndarray, t: IntType) -> np.ndarray:
    """Element values as the unsigned bit patterns the streams carry."""
    values = np.asarray(values, np.int64)
    if t.bipolar:
        return (values > 0).astype(np.int64)
    return values & ((1 << t.bits) - 1)


def pack_limbs(raw: np.ndarray, bits: int) -> np.ndarray:
    """(..., n) raw elements of `bits` bits -> (..., L) hex strings of the packed word's 64-bit limbs.

    Element 0 sits in the lowest bits; limb 0 holds bits 0..63. Plain integer limbs keep params.hpp a POD
    initialiser that g++ and Vitis compile quickly, where one ap_uint constructor per word does not."""
    shifts = np.arange(bits)
    b = ((raw[..., None] >> shifts) & 1).reshape(*raw.shape[:-1], raw.shape[-1] * bits)  # little-endian bits
    pad = (-b.shape[-1]) % 64
    if pad:
        b = np.concatenate([b, np.zeros((*b.shape[:-1], pad), np.int64)], axis=-1)
    nib = b.reshape(*b.shape[:-1], -1, 16, 4) @ np.array([1, 2, 4, 8])  # (..., L, 16) nibbles, low first
    chars = HEX[nib[..., ::-1]]
    flat = chars.reshape(-1, 16)
    joined = np.array(["0x" + "".join(r) + "ULL" for r in flat])
    return joined.reshape(chars.shape[:-1])


def _acc_bits(acc: IntType, th: Thresholds | None) -> int:
    lo, hi = acc.min, acc.max
    if th is not None and th.values.size:
        lo, hi = min(lo, int(th.values.min())), max(hi, int(th.values.max()))
    t = smallest_type(lo, hi)
    return t.bits + (0 if t.signed else 1)  # held in a signed ap_int


def _threshold_arrays(th: Thresholds | None, channels: int, pe: int) -> dict[str, Any]:
    folds = channels // pe
    if th is None:
        return {"levels": 0, "base": 0, "step": 1, "folds": folds,
                "thresholds": [[[0]] * folds] * pe, "descending": [["false"] * folds] * pe}
    vals = th.values.reshape(folds, pe, th.levels).transpose(1, 0, 2)
    desc = th.descending.reshape(folds, pe).T
    return {"levels": th.levels, "base": th.base, "step": th.step, "folds": folds,
            "thresholds": [[[f"{int(v)}LL" for v in lv] for lv in row] for row in vals],
            "descending": [["true" if d else "false" for d in row] for row in desc]}


HLS_KERNEL: KindTable[Callable[[Any, DataflowGraph, IntType], dict[str, Any]]] = KindTable("hls", adopt="hls_kernel")


def kernel_context(node: Node, graph: DataflowGraph) -> dict[str, Any]:
    """Template parameters and parameter arrays of one kernel."""
    out_t = graph.tensors[node.output].dtype
    outputs = list(node.outputs) if isinstance(node, DuplicateStreams) else [node.output]
    k: dict[str, Any] = {"name": node.name, "kind": node.kind, "inputs": list(node.inputs), "outputs": outputs,
                         "args": [f"s_{s}" for s in [*node.inputs, *outputs]], "var": f"k_{node.name}",
                         "pe": node.pe, "simd": node.simd, "depth": pipeline_depth(node)}
    found = HLS_KERNEL(node)(node, graph, out_t)
    if isinstance(found, HlsCall):  # a kind module's kernel: template arguments, its own header
        k.update(cpp=found.template, targs=[str(a) for a in found.args], header=found.header)
    else:
        k.update(found)
    return k


@HLS_KERNEL.register(MatrixVectorUnit)
def _matrix_vector_unit(node: MatrixVectorUnit, graph: DataflowGraph, out_t: IntType) -> dict[str, Any]:
    k: dict[str, Any] = {}
    nf, sf = node.mh // node.pe, node.mw // node.simd
    w = raw_bits(node.weights, node.w_dtype).reshape(nf, node.pe, sf, node.simd).transpose(1, 0, 2, 3)
    k.update(mw=node.mw, mh=node.mh, vectors=node.vectors, in_b=node.in_dtype.bits, in_k=kind_code(node.in_dtype),
             w_b=node.w_dtype.bits, w_k=kind_code(node.w_dtype), out_b=out_t.bits, out_k=kind_code(out_t),
             xnor="true" if node.xnor else "false", acc_b=_acc_bits(node.acc_dtype, node.thresholds),
             wword_b=node.simd * node.w_dtype.bits, tiles=nf * sf,
             limbs=math.ceil(node.simd * node.w_dtype.bits / 64),
             weights=pack_limbs(w.reshape(node.pe, nf * sf, node.simd), node.w_dtype.bits).tolist())
    k.update(_threshold_arrays(node.thresholds, node.mh, node.pe))
    return k

@HLS_KERNEL.register(VectorVectorUnit)
def _vector_vector_unit(node: VectorVectorUnit, graph: DataflowGraph, out_t: IntType) -> dict[str, Any]:
    k: dict[str, Any] = {}
    cf, ks = node.channels // node.pe, node.k // node.simd
    # weight tile (cf, step) of PE p holds the SIMD taps of channel cf * PE + p that one input word brings
    w = raw_bits(node.weights, node.w_dtype).reshape(cf, node.pe, ks, node.simd).transpose(1, 0, 2, 3)
    k.update(channels=node.channels, k=node.k, vectors=node.vectors, in_b=node.in_dtype.bits,
             in_k=kind_code(node.in_dtype), w_b=node.w_dtype.bits, w_k=kind_code(node.w_dtype),
             out_b=out_t.bits, out_k=kind_code(out_t), acc_b=_acc_bits(node.acc_dtype, node.thresholds),
             wword_b=node.simd * node.w_dtype.bits, tiles=cf * ks, limbs=math.ceil(node.simd * node.w_dtype.bits / 64),
             weights=pack_limbs(w.reshape(node.pe, cf * ks, node.simd), node.w_dtype.bits).tolist())
    k.update(_threshold_arrays(node.thresholds, node.channels, node.pe))
    return k

@HLS_KERNEL.register(Thresholding)
def _thresholding(node: Thresholding, graph: DataflowGraph, out_t: IntType) -> dict[str, Any]:
    k: dict[str, Any] = {}
    k.update(channels=node.channels, vectors=node.vectors, in_b=node.in_dtype.bits,
             in_k=kind_code(node.in_dtype), out_b=out_t.bits, out_k=kind_code(out_t),
             acc_b=_acc_bits(node.in_dtype, node.thresholds))
    k.update(_threshold_arrays(node.thresholds, node.channels, node.pe))
    return k

@HLS_KERNEL.register(SlidingWindow)
def _sliding_window(node: SlidingWindow, graph: DataflowGraph, out_t: IntType) -> dict[str, Any]:
    k: dict[str, Any] = {}
    k.update(ih=node.ifm[0], iw=node.ifm[1], channels=node.channels, kh=node.kernel[0], kw=node.kernel[1],
             sh=node.stride[0], sw=node.stride[1], oh=node.ofm[0], ow=node.ofm[1], b=node.dtype.bits,
             pixels=node.pixels, word_elems=min(node.simd, node.channels), dh=node.dilation[0],
             dw=node.dilation[1])
    return k

@HLS_KERNEL.register(Padding)
def _padding(node: Padding, graph: DataflowGraph, out_t: IntType) -> dict[str, Any]:
    k: dict[str, Any] = {}
    t, left, b, r = node.pads
    src = graph.tensors[node.inputs[0]].dtype
    k.update(ih=node.ifm[0], iw=node.ifm[1], channels=node.channels, top=t, left=left, bottom=b, right=r,
             in_b=src.bits, in_k=kind_code(src), b=node.dtype.bits, value=node.value)
    return k

@HLS_KERNEL.register(MaxPool)
def _max_pool(node: MaxPool, graph: DataflowGraph, out_t: IntType) -> dict[str, Any]:
    k: dict[str, Any] = {}
    k.update(ih=node.ifm[0], iw=node.ifm[1], channels=node.channels, kh=node.kernel[0], kw=node.kernel[1],
             oh=node.ofm[0], ow=node.ofm[1], b=node.dtype.bits, kind_code=kind_code(node.dtype))
    return k

@HLS_KERNEL.register(GlobalAccPool)
def _global_acc_pool(node: GlobalAccPool, graph: DataflowGraph, out_t: IntType) -> dict[str, Any]:
    k: dict[str, Any] = {}
    k.update(h=node.ifm[0], w=node.ifm[1], channels=node.channels, in_b=node.in_dtype.bits,
             in_k=kind_code(node.in_dtype), out_b=node.out_dtype.bits)
    return k

@HLS_KERNEL.register(AddStreams)
def _add_streams(node: AddStreams, graph: DataflowGraph, out_t: IntType) -> dict[str, Any]:
    k: dict[str, Any] = {}
    a, b = node.in_dtypes
    k.update(words=node.vectors * node.channels // node.pe, a_b=a.bits, a_k=kind_code(a), b_b=b.bits,
             b_k=kind_code(b), out_b=node.out_dtype.bits)
    return k

@HLS_KERNEL.register(StreamingConcat)
def _streaming_concat(node: StreamingConcat, graph: DataflowGraph, out_t: IntType) -> dict[str, Any]:
    k: dict[str, Any] = {}
    a, b = node.in_dtypes
    k.update(vectors=node.vectors, ca=node.channels[0], cb=node.channels[1], a_b=a.bits, a_k=kind_code(a),
             b_b=b.bits, b_k=kind_code(b), out_b=node.out_dtype.bits, out_k=kind_code(node.out_dtype))
    return k

@HLS_KERNEL.register(DuplicateStreams)
def _duplicate_streams(node: DuplicateStreams, graph: DataflowGraph, out_t: IntType) -> dict[str, Any]:
    k: dict[str, Any] = {}
    k.update(words=node.vectors * node.channels // node.pe, width=node.pe * node.dtype.bits)
    return k

@HLS_KERNEL.register(LabelSelect)
def _label_select(node: LabelSelect, graph: DataflowGraph, out_t: IntType) -> dict[str, Any]:
    k: dict[str, Any] = {}
    k.update(labels=node.labels, k=node.k, in_b=node.in_dtype.bits, in_k=kind_code(node.in_dtype),
             out_b=out_t.bits)
    return k

@HLS_KERNEL.register(StreamingDataWidthConverter)
def _width_converter(node: StreamingDataWidthConverter, graph: DataflowGraph, out_t: IntType) -> dict[str, Any]:
    k: dict[str, Any] = {}
    k.update(in_elems=node.in_elems, out_elems=node.out_elems, elems=node.elems, b=node.dtype.bits)
    return k

@HLS_KERNEL.register(Lookup)
def _lookup(node: Lookup, graph: DataflowGraph, out_t: IntType) -> dict[str, Any]:
    k: dict[str, Any] = {}
    k.update(channels=node.channels, vectors=node.vectors, in_b=node.in_dtype.bits, in_k=kind_code(node.in_dtype),
             out_b=out_t.bits, out_k=kind_code(out_t), levels=node.table.shape[1], rows=node.table.shape[0],
             min=f"{node.in_dtype.min}LL", table=[f"{int(v)}LL" for v in node.table.reshape(-1)])
    return k

@HLS_KERNEL.register(AddConstant)
def _add_constant(node: AddConstant, graph: DataflowGraph, out_t: IntType) -> dict[str, Any]:
    k: dict[str, Any] = {}
    k.update(channels=node.channels, vectors=node.vectors, in_b=node.in_dtype.bits, in_k=kind_code(node.in_dtype),
             out_b=node.out_dtype.bits, table=[f"{int(v)}LL" for v in node.table.reshape(-1)])
    return k

@HLS_KERNEL.register(ConcatConstant)
def _concat_constant(node: ConcatConstant, graph: DataflowGraph, out_t: IntType) -> dict[str, Any]:
    return {"channels": node.channels, "vectors": node.vectors, "at": node.at, "count": node.count,
            "in_b": node.in_dtype.bits, "in_k": kind_code(node.in_dtype), "out_b": out_t.bits,
            "out_k": kind_code(out_t), "table": [f"{int(v)}LL" for v in node.table.reshape(-1)]}

@HLS_KERNEL.register(StreamMatMul)
def _stream_mat_mul(node: StreamMatMul, graph: DataflowGraph, out_t: IntType) -> dict[str, Any]:
    k: dict[str, Any] = {}
    a, b = node.in_dtypes
    k.update(rows=node.rows, batch=node.batch, inner=node.inner, cols=node.cols, a_b=a.bits, a_k=kind_code(a),
             b_b=b.bits, b_k=kind_code(b), out_b=out_t.bits, order=int(node.b_order == "kbn"))
    return k

@HLS_KERNEL.register(Softmax)
def _softmax(node: Softmax, graph: DataflowGraph, out_t: IntType) -> dict[str, Any]:
    k: dict[str, Any] = {}
    k.update(channels=node.channels, vectors=node.vectors, in_b=node.in_dtype.bits, in_k=kind_code(node.in_dtype),
             out_b=out_t.bits, table_n=len(node.table), recip=f"{node.recip}ULL",
             recip_bits=Softmax.RECIP_BITS, table=[f"{int(v)}LL" for v in node.table])
    return k

@HLS_KERNEL.register(LayerNorm)
def _layer_norm(node: LayerNorm, graph: DataflowGraph, out_t: IntType) -> dict[str, Any]:
    k: dict[str, Any] = {}
    z_hi = (math.isqrt(node.channels) + 1) << LayerNorm.FRAC_BITS
    k.update(channels=node.channels, vectors=node.vectors, in_b=node.in_dtype.bits, in_k=kind_code(node.in_dtype),
             out_b=out_t.bits, out_k=kind_code(out_t), eps=f"{node.eps_fix}ULL", frac=LayerNorm.FRAC_BITS,
             acc_b=_acc_bits(smallest_type(-z_hi, z_hi), node.thresholds))
    k.update(_threshold_arrays(node.thresholds, node.channels, node.pe))
    return k


def project_context(graph: DataflowGraph, board: FpgaBoard, depths: dict[str, int] | None) -> dict[str, Any]:
    kernels = [kernel_context(n, graph) for n in graph.nodes]
    streams: dict[str, dict[str, Any]] = {}
    producers = {o: k for k in kernels for o in k["outputs"]}
    for name, t in graph.tensors.items():
        if name not in producers and name != graph.input:
            continue  # a tensor the width pass bypassed
        node = next((n for n in graph.nodes if name in (n.outputs if isinstance(n, DuplicateStreams) else
                                                          (n.output,))), None)
        elems = out_elems(node) if node is not None else graph.nodes[0].in_elems
        streams[name] = {"word_b": elems * t.dtype.bits, "elems": elems, "var": f"s_{name}",
                         "latency": producers[name]["depth"] if name in producers else 1,
                         "depth": (depths or {}).get(name, DEFAULT_DEPTH)}
    t_in, t_out = graph.tensors[graph.input], graph.tensors[graph.output]
    first, last = graph.nodes[0], graph.nodes[-1]
    assert isinstance(first, StreamingDataWidthConverter) and isinstance(last, StreamingDataWidthConverter)
    return {
        "model": graph.name, "part": board.part, "clock_mhz": f"{board.clock_mhz:g}",
        "clock_ns": f"{1000.0 / board.clock_mhz:.3f}", "kernels": kernels, "streams": streams,
        "input": graph.input, "output": graph.output, "input_var": f"s_{graph.input}",
        "output_var": f"s_{graph.output}",
        "in_elems": int(np.prod(t_in.shape)), "in_word_elems": in_elems(first), "in_b": t_in.dtype.bits,
        "in_k": kind_code(t_in.dtype), "in_word_b": in_elems(first) * t_in.dtype.bits,
        "out_elems": int(np.prod(t_out.shape)), "out_word_elems": out_elems(last), "out_b": t_out.dtype.bits,
        "out_k": kind_code(t_out.dtype), "out_word_b": out_elems(last) * t_out.dtype.bits,
        "in_words": int(np.prod(t_in.shape)) // in_elems(first),
        "out_words": int(np.prod(t_out.shape)) // out_elems(last),
        "axi_bits": AXI_BITS, "mm": board.shell == MM_SHELL,
        "max_latency": max(k["depth"] for k in kernels), "include_rel": "include",
        "kind_headers": sorted({k["header"] for k in kernels if "header" in k}),
        "ap_types": str(ap_types_dir()),
    }


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=True, undefined=jinja2.StrictUndefined)


def generate(graph: DataflowGraph, board: FpgaBoard, out_dir: Path, depths: dict[str, int] | None = None) -> None:
    """Write the HLS project for `graph` into out_dir (sources, kernel headers, TCL, Makefile)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = project_context(graph, board, depths)
    env = _env()
    for name in ("params.hpp", "params.cpp", "top.cpp", "tb.cpp", "sim.cpp", "run_hls.tcl", "Makefile"):
        (out_dir / name).write_text(env.get_template(f"{name}.j2").render(**ctx), encoding="utf-8")
    inc = out_dir / "include" / "edge"
    inc.mkdir(parents=True, exist_ok=True)
    for header in (KERNEL_INCLUDE / "edge").glob("*.hpp"):
        shutil.copyfile(header, inc / header.name)


def write_frames(path: Path, frames: np.ndarray) -> None:
    """One line of integers per frame (the testbench's and the simulator's input format)."""
    flat = np.asarray(frames, np.int64).reshape(len(frames), -1)
    path.write_text("\n".join(" ".join(map(str, row)) for row in flat.tolist()) + "\n", encoding="utf-8")


def read_frames(path: Path) -> np.ndarray:
    rows = [list(map(int, line.split())) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return np.array(rows, dtype=np.int64)

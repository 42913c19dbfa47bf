"""The build report: per-node cycles and resources at the chosen folding, and totals against the board."""

from __future__ import annotations

from typing import Any

from boards.schema import FpgaBoard
from fpga.ir import (
    AddStreams,
    DataflowGraph,
    GlobalAccPool,
    MatrixVectorUnit,
    Node,
    StreamingConcat,
    Thresholding,
    VectorVectorUnit,
)
from fpga.latency import first_frame_latency
from fpga.resources import FAMILY_FACTORS, Resources, estimate, resource_model
from fpga.resources_rtl import node_estimate, stream_fifo_estimate
from fpga.width import DEFAULT_FIFO_DEPTH, inner_streams, stream_bits


def _bits(node: Node, graph: DataflowGraph) -> str:
    """in/weight/out datatypes, short: 'u8/b/u2' (b = bipolar)."""

    def short(name: str) -> str:
        return "b" if name == "BIPOLAR" else name.replace("UINT", "u").replace("INT", "i")

    out = short(graph.tensors[node.output].dtype.name)
    if isinstance(node, MatrixVectorUnit | VectorVectorUnit):
        return f"{short(node.in_dtype.name)}/{short(node.w_dtype.name)}/{out}"
    src = graph.tensors.get(node.inputs[0])
    return f"{short(src.dtype.name) if src else '?'}/{out}"


def _shape(node: Node) -> str:
    if isinstance(node, MatrixVectorUnit):
        return f"{node.mw}x{node.mh}" + (f" x{node.vectors}" if node.vectors > 1 else "")
    if isinstance(node, VectorVectorUnit):
        return f"{node.channels}ch k{node.k} x{node.vectors}"
    if isinstance(node, Thresholding | AddStreams):
        return f"{node.channels}ch x{node.vectors}"
    if isinstance(node, StreamingConcat):
        return f"{node.channels[0]}+{node.channels[1]}ch x{node.vectors}"
    if isinstance(node, GlobalAccPool):
        return f"{node.ifm[0]}x{node.ifm[1]}x{node.channels}"
    ifm = getattr(node, "ifm", None)
    ch = getattr(node, "channels", None)
    return f"{ifm[0]}x{ifm[1]}x{ch}" if ifm else (f"{ch}ch" if ch else "")


def fifo_rows(graph: DataflowGraph, depths: dict[str, int] | None,
              model: str = "hls") -> tuple[list[dict[str, Any]], Resources]:
    """One row per inner stream FIFO (width, depth, implementation, resources) and their sum.

    Depths are the simulation's sized ones when given, otherwise DEFAULT_FIFO_DEPTH."""
    bits = stream_bits(graph)
    rows, total = [], Resources()
    for name in inner_streams(graph):
        depth = int((depths or {}).get(name, DEFAULT_FIFO_DEPTH))
        res, style = stream_fifo_estimate(bits[name], depth, model)
        total = total + res
        rows.append({"stream": name, "width": bits[name], "depth": depth, "style": style, **res.as_dict()})
    return rows, total


def over_cap(report: dict[str, Any]) -> list[str]:
    """Resources whose utilisation exceeds the report's cap."""
    cap = report["utilisation_cap"]
    return [k for k, u in report["totals"]["utilisation"].items() if u > cap + 1e-9]


def build_report(graph: DataflowGraph, board: FpgaBoard, cap: float,
                 depths: dict[str, int] | None = None, backend: str = "hls") -> dict[str, Any]:
    """Per-node and per-FIFO resources and cycles, and the totals against the board (FIFOs included), in the
    resource model of the backend's kernels (fpga.resources.resource_model)."""
    model = resource_model(board.family, backend)
    uram = board.resources.uram > 0 and model == "hls"
    layers = []
    total = Resources()
    for node in graph.nodes:
        res, memories = node_estimate(node, uram, model)
        total = total + res
        layers.append({
            "name": node.name, "op": node.kind, "shape": _shape(node), "bits": _bits(node, graph),
            "pe": node.pe, "simd": node.simd, "cycles": node.cycles(), **res.as_dict(), "memory": memories,
            # the accumulator's width, sized from the weights and the input's range (an A2Q layer's declared
            # width bounds it)
            **({"accumulator_bits": node.acc_dtype.bits} if hasattr(node, "acc_dtype") else {}),
        })
    fifos, fifo_total = fifo_rows(graph, depths, model)
    total = total + fifo_total
    bottleneck = max(layers, key=lambda r: r["cycles"])
    cycles = bottleneck["cycles"]
    latency = round(first_frame_latency(graph))
    clock = board.clock_hz
    avail = board.resources.as_dict()
    used = total.as_dict()
    # open (LUT4) families: the budget is in the family's own units (LUT4s, iCE40 logic cells, its block RAM)
    family = None
    if board.family in FAMILY_FACTORS:
        fam = fifo_total.for_family(board.family, "streams")
        for node in graph.nodes:
            # width converters in the folder's terms: part of a stream's cost ("streams"), as it budgeted them
            kind = "streams" if node.kind == "StreamingDataWidthConverter" else node.kind
            fam = fam + estimate(node, uram)[0].for_family(board.family, kind)
        family = fam.as_dict()
    return {
        "model": graph.name,
        "board": board.name,
        "part": board.part,
        "family": board.family,
        "resource_model": model,
        "clock_mhz": board.clock_mhz,
        "utilisation_cap": cap,
        "layers": layers,
        "fifos": fifos,
        "fifo_depths": "simulated" if depths else f"default {DEFAULT_FIFO_DEPTH} (not simulated)",
        "totals": {
            "bottleneck": bottleneck["name"],
            "bottleneck_cycles": cycles,
            "fps": clock / cycles,
            # the first frame through an empty pipeline, nodes overlapping as their inputs allow (fpga/latency.py)
            "latency_cycles": latency,
            "latency_us": latency / clock * 1e6,
            "resources": used,
            "fifo_resources": fifo_total.as_dict(),
            "utilisation": {k: ((family or used)[k] / avail[k] if avail[k] else 0.0) for k in used},
            **({"family_resources": family} if family else {}),
        },
    }

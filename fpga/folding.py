"""Folding: the legal PE/SIMD choices per node, and the optimiser that picks them for a board.

Throughput of a dataflow pipeline is set by its slowest node, so the optimiser searches the bottleneck:
for a candidate bottleneck T every node takes its cheapest legal folding with cycles <= T, and the smallest T
whose total fits the budget wins (feasibility only grows with T, so a binary search over the finite set of
achievable cycle counts finds it). "Cheapest" is resources weighted by scarcity, and a node's cost includes the
streams around it: the FIFO on each stream and a width converter wherever a producer's words differ from its
consumer's, so neighbours are steered to matching widths. When a budget is violated, the weight of that resource
is raised and the choice repeated. The total the optimiser checks is what the report adds up: nodes, width
converters, AXI adapters and FIFOs at the default depth, minus any `reserve` (e.g. the simulation's sized FIFOs).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from boards.schema import FpgaBoard
from fpga.datatypes import IntType
from fpga.ir import DataflowGraph, DuplicateStreams, Node, StreamingDataWidthConverter
from fpga.resources import Resources, family_matrix, resource_model
from fpga.resources_rtl import node_estimate, stream_fifo_estimate
from fpga.width import DEFAULT_FIFO_DEPTH, axi_elems, in_elems, io_cycles, out_elems
from frontend.errors import EdgeError

RESOURCE_KEYS = ("lut", "ff", "bram36", "uram", "dsp")
FOLDING_FORMAT = "edge-folding/1"
REWEIGHT_ROUNDS = 12
DESCENT_SWEEPS = 6


def divisors(n: int) -> list[int]:
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


@dataclass(frozen=True)
class FoldOption:
    pe: int
    simd: int
    cycles: int
    res: Resources
    in_elems: int = 1  # elements per input word at this folding
    out_elems: int = 1  # elements per output word


def fold_options(node: Node, uram: bool, model: str = "hls") -> list[FoldOption]:
    """Every legal (PE, SIMD) of a node with its cycles, resources (in the resource model `model`) and stream
    widths."""
    limits = node.fold_limits()
    pes = divisors(limits["pe"]) if "pe" in limits else [1]
    simds = divisors(limits["simd"]) if "simd" in limits else [1]
    options = []
    for pe in pes:
        for simd in simds:
            if not node.fold_ok(pe, simd):
                continue
            folded = node.with_fold(pe, simd)
            options.append(FoldOption(pe, simd, folded.cycles(), node_estimate(folded, uram, model)[0],
                                      in_elems(folded), out_elems(folded)))
    return options


def budget(board: FpgaBoard, cap: float, reserve: Resources | None = None) -> dict[str, float]:
    r, z = board.resources, (reserve or Resources()).for_family(board.family)
    return {"lut": r.lut * cap - z.lut, "ff": r.ff * cap - z.ff, "bram36": r.bram36 * cap - z.bram36,
            "uram": r.uram * cap - z.uram, "dsp": r.dsp * cap - z.dsp}


def _vec(res: Resources) -> np.ndarray:
    return np.array([getattr(res, k) for k in RESOURCE_KEYS], dtype=np.float64)


@lru_cache(maxsize=65536)
def stream_cost(n_out: int, n_in: int, dtype: IntType, elems: int, from_host: bool = False,
                to_host: bool = False, model: str = "hls") -> tuple[float, ...]:
    """Resources of one stream as insert_width_converters builds it: the FIFO its producer writes, and where the
    word sizes differ (or at an AXI port, always) a width converter plus the FIFO after it. Host ports have none."""
    total = Resources() if from_host else stream_fifo_estimate(n_out * dtype.bits, DEFAULT_FIFO_DEPTH, model)[0]
    if n_in != n_out or from_host or to_host:
        dwc = StreamingDataWidthConverter(name="w", inputs=("a",), output="b", in_elems=n_out, out_elems=n_in,
                                          elems=elems, dtype=dtype)
        total = total + node_estimate(dwc, False, model)[0]
        if not to_host:
            total = total + stream_fifo_estimate(n_in * dtype.bits, DEFAULT_FIFO_DEPTH, model)[0]
    return tuple(_vec(total))


@dataclass(frozen=True)
class Edge:
    """A stream between node `src` and node `dst` (-1: the host's AXI port, whose width `axi` is fixed)."""

    src: int
    dst: int
    dtype: IntType
    elems: int
    axi: int = 0


def graph_edges(graph: DataflowGraph) -> list[Edge]:
    """Every stream of the (un-converted) graph, host ports included."""
    index = {}
    for i, n in enumerate(graph.nodes):
        for o in (n.outputs if isinstance(n, DuplicateStreams) else (n.output,)):
            index[o] = i
    edges = []
    for j, n in enumerate(graph.nodes):
        for src in n.inputs:
            t = graph.tensors[src]
            elems = int(np.prod(t.shape))
            if src == graph.input:
                edges.append(Edge(-1, j, t.dtype, elems, axi_elems(elems, t.dtype.bits)))
            else:
                edges.append(Edge(index[src], j, t.dtype, elems))
    t = graph.tensors[graph.output]
    elems = int(np.prod(t.shape))
    edges.append(Edge(index[graph.output], -1, t.dtype, elems, axi_elems(elems, t.dtype.bits)))
    return edges


class _Problem:
    """Options of every node as arrays, and the streams between them, for fast repeated picks."""

    def __init__(self, graph: DataflowGraph, uram: bool, family: str = "", model: str = "hls") -> None:
        self.model = model
        self.options = [fold_options(n, uram, model) for n in graph.nodes]
        # in the board family's own units (LUT4s, logic cells, ...) so that they compare with its budget
        self.unit = family_matrix(family, "streams")  # FIFOs and width converters
        self.res = [np.array([_vec(o.res) for o in opts]) @ family_matrix(family, n.kind).T
                    for n, opts in zip(graph.nodes, self.options, strict=True)]
        self.cycles = [np.array([o.cycles for o in opts]) for opts in self.options]
        self.lanes = [np.array([o.pe * o.simd + o.pe * 1e-3 for o in opts]) for opts in self.options]
        self.w_in = [np.array([o.in_elems for o in opts]) for opts in self.options]
        self.w_out = [np.array([o.out_elems for o in opts]) for opts in self.options]
        self.edges = graph_edges(graph)
        self.touching: list[list[Edge]] = [[] for _ in graph.nodes]
        for e in self.edges:
            for k in {e.src, e.dst} - {-1}:
                self.touching[k].append(e)

    def edge_vec(self, e: Edge, picks: list[int], node: int | None = None, width: int | None = None) -> np.ndarray:
        """Resources of stream e at the current picks (with node's width replaced by `width`)."""
        def w(k: int, out: bool) -> int:
            if k == node:
                return int(width)  # type: ignore[arg-type]
            return int((self.w_out if out else self.w_in)[k][picks[k]])
        n_out = e.axi if e.src == -1 else w(e.src, True)
        n_in = e.axi if e.dst == -1 else w(e.dst, False)
        return self.unit @ np.array(stream_cost(n_out, n_in, e.dtype, e.elems, e.src == -1, e.dst == -1,
                                                     self.model))

    def local_cost(self, k: int, picks: list[int], weights: np.ndarray) -> np.ndarray:
        """Weighted cost of every option of node k, its streams included, neighbours held at their picks."""
        cost = self.res[k] @ weights
        for e in self.touching[k]:
            widths = self.w_out[k] if e.src == k else self.w_in[k]
            table = {int(x): float(self.edge_vec(e, picks, k, int(x)) @ weights) for x in np.unique(widths)}
            cost = cost + np.array([table[int(x)] for x in widths])
        return cost

    def total(self, picks: list[int]) -> np.ndarray:
        t = sum((self.res[k][p] for k, p in enumerate(picks)), np.zeros(len(RESOURCE_KEYS)))
        for e in self.edges:
            t = t + self.edge_vec(e, picks)
        return t


def _pick(prob: _Problem, limit: int, weights: np.ndarray) -> list[int] | None:
    """Cheapest options meeting `limit` under `weights`: independent picks, then coordinate descent over nodes
    with the streams' costs (converters, FIFOs) until no node changes."""
    picks = []
    for k in range(len(prob.options)):
        ok = prob.cycles[k] <= limit
        if not ok.any():
            return None
        cost = np.where(ok, prob.res[k] @ weights + prob.lanes[k] * 1e-9, np.inf)
        picks.append(int(np.argmin(cost)))
    for _ in range(DESCENT_SWEEPS):
        changed = False
        for k in range(len(picks)):
            cost = prob.local_cost(k, picks, weights) + prob.lanes[k] * 1e-9  # equal cost: fewest lanes
            cost = np.where(prob.cycles[k] <= limit, cost, np.inf)
            best = int(np.argmin(cost))
            if cost[best] < cost[picks[k]] - 1e-12:
                picks[k] = best
                changed = True
        if not changed:
            break
    return picks


def _feasible(prob: _Problem, limit: int, avail: np.ndarray) -> list[int] | None:
    """Cheapest picks meeting `limit` that fit `avail`, re-weighting scarce resources; None if none found."""
    weights = np.where(avail > 0, 1.0 / np.maximum(avail, 1e-9), 1e9)
    for _ in range(REWEIGHT_ROUNDS):
        picks = _pick(prob, limit, weights)
        if picks is None:
            return None
        total = prob.total(picks)
        if np.all(total <= avail + 1e-9):
            return picks
        over = total > avail
        weights = np.where(over, weights * 4.0 * (total / np.maximum(avail, 1e-9)), weights)
    return None


def _apply(graph: DataflowGraph, prob: _Problem, picks: list[int]) -> DataflowGraph:
    return graph.with_nodes(tuple(n.with_fold(prob.options[k][p].pe, prob.options[k][p].simd)
                                  for k, (n, p) in enumerate(zip(graph.nodes, picks, strict=True))))


def fold_to_budget(graph: DataflowGraph, board: FpgaBoard, cap: float = 0.8, target_fps: float | None = None,
                   reserve: Resources | None = None, backend: str = "hls") -> DataflowGraph:
    """Fold every node for the highest throughput that fits `cap` of the board (or `target_fps` cheapest).

    The budget covers nodes, width converters, AXI adapters and default-depth FIFOs; `reserve` is held back
    (the build passes the sized FIFOs' excess over the default when a simulated design came out over the cap).
    `backend` picks the resource model (fpga.resources.resource_model): the RTL kernels' on Xilinx parts."""
    model = resource_model(board.family, backend)
    uram = board.resources.uram > 0 and model == "hls"  # RTL ROMs never go to URAM (it cannot be initialised)
    avail_d = budget(board, cap, reserve)
    avail = np.array([avail_d[k] for k in RESOURCE_KEYS])
    prob = _Problem(graph, uram, board.family, model)
    # fully unfolded bottleneck; the AXI ports' own cycles are a floor no folding goes below
    slowest = max(max(int(c.min()) for c in prob.cycles), io_cycles(graph))
    candidates = sorted({int(c) for cs in prob.cycles for c in cs if c >= slowest})
    if target_fps is not None:
        limit = math.floor(board.clock_hz / target_fps)
        if limit < slowest:
            raise EdgeError(f"--target-fps {target_fps:g} needs {limit} cycles per frame at {board.clock_mhz:g} MHz "
                            f"but the fastest folding takes {slowest}")
        picks = _feasible(prob, limit, avail)
        if picks is None:
            raise EdgeError(f"--target-fps {target_fps:g} does not fit {board.name} at {cap:.0%}: "
                            + _deficit(graph, prob, limit, avail))
        return _apply(graph, prob, picks)
    lo, hi = 0, len(candidates) - 1
    if _feasible(prob, candidates[hi], avail) is None:
        raise EdgeError(f"the model does not fit {board.name} even fully folded (PE=SIMD=1) at {cap:.0%} "
                        "utilisation: " + _deficit(graph, prob, candidates[hi], avail))
    while lo < hi:
        mid = (lo + hi) // 2
        if _feasible(prob, candidates[mid], avail) is not None:
            hi = mid
        else:
            lo = mid + 1
    picks = _feasible(prob, candidates[lo], avail)
    assert picks is not None
    return _apply(graph, prob, picks)


def _deficit(graph: DataflowGraph, prob: _Problem, limit: int, avail: np.ndarray) -> str:
    """Which resource is short, by how much, and which layer needs most of it, for the leanest picks."""
    weights = np.where(avail > 0, 1.0 / np.maximum(avail, 1e-9), 1e9)
    lean = _pick(prob, limit, weights)
    assert lean is not None
    total = prob.total(lean)
    short = []
    for i, k in enumerate(RESOURCE_KEYS):
        if total[i] > avail[i] + 1e-9:
            used = [float(prob.res[j][p][i]) for j, p in enumerate(lean)]
            worst = int(np.argmax(used))
            short.append(f"{k.upper()} needs {total[i]:,.0f}, budget {max(avail[i], 0):,.0f} (over by "
                         f"{total[i] - avail[i]:,.0f}; largest user {graph.nodes[worst].name} with {used[worst]:,.0f})")
    return "; ".join(short) or "no combination of foldings fits all budgets at once"


# ------------------------------------------------------------------ folding files
def folding_to_data(graph: DataflowGraph) -> dict[str, Any]:
    return {
        "format": FOLDING_FORMAT,
        "folding": {n.name: {"pe": n.pe, "simd": n.simd} for n in graph.nodes if n.fold_limits()},
    }


def apply_folding_file(graph: DataflowGraph, path: Path) -> DataflowGraph:
    """Apply a folding.json (the format `edge build` writes); every problem names the node and what is legal."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EdgeError(f"{path}: no such file") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise EdgeError(f"{path}: not a JSON folding file ({exc})") from None
    table = data.get("folding") if isinstance(data, dict) else None
    if not isinstance(table, dict):
        raise EdgeError(f"{path}: expected an object with a 'folding' mapping of node name -> {{pe, simd}}")
    names = {n.name for n in graph.nodes}
    table = {k: v for k, v in table.items() if not k.startswith("WidthConverter_")}
    unknown = sorted(set(table) - names)
    if unknown:
        raise EdgeError(f"{path}: unknown node '{unknown[0]}'; this model's nodes are {', '.join(sorted(names))}")
    nodes = []
    for node in graph.nodes:
        entry = table.get(node.name, {})
        if not isinstance(entry, dict):
            raise EdgeError(f"{path}: node '{node.name}': expected {{\"pe\": N, \"simd\": M}}")
        limits = node.fold_limits()
        pe, simd = entry.get("pe", 1), entry.get("simd", 1)
        for key, value in (("pe", pe), ("simd", simd)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise EdgeError(f"{path}: node '{node.name}': {key} must be a whole number >= 1, got {value!r}")
            if value > 1 and key not in limits:
                raise EdgeError(f"{path}: node '{node.name}' ({node.kind}) has no {key.upper()} folding")
            legal = [d for d in divisors(limits[key]) if (node.fold_ok(d, simd) if key == "pe" else
                                                          node.fold_ok(pe, d))] if key in limits else []
            if key in limits and value not in legal:
                raise EdgeError(f"{path}: node '{node.name}': {key.upper()}={value} is not a legal folding "
                                f"(legal: {', '.join(map(str, legal))})")
        nodes.append(node.with_fold(pe, simd))
    return graph.with_nodes(tuple(nodes))

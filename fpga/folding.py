"""Folding: the legal PE/SIMD choices per node, and the optimiser that picks them for a board.

Throughput of a dataflow pipeline is set by its slowest node, so the optimiser searches the bottleneck:
for a candidate bottleneck T every node independently takes its cheapest legal folding with cycles <= T,
and the smallest T whose total fits the budget wins (feasibility only grows with T, so a binary search over
the finite set of achievable cycle counts finds the optimum of the model). "Cheapest" is resources weighted by
scarcity; when a budget is violated, the weight of that resource is raised and the choice repeated.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boards.schema import FpgaBoard
from edge.errors import EdgeError
from fpga.ir import DataflowGraph, Node
from fpga.resources import Resources, estimate
from fpga.width import io_cycles

RESOURCE_KEYS = ("lut", "ff", "bram36", "uram", "dsp")
FOLDING_FORMAT = "edge-folding/1"
REWEIGHT_ROUNDS = 12


def divisors(n: int) -> list[int]:
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


@dataclass(frozen=True)
class FoldOption:
    pe: int
    simd: int
    cycles: int
    res: Resources


def fold_options(node: Node, uram: bool) -> list[FoldOption]:
    """Every legal (PE, SIMD) of a node with its cycles and resources."""
    limits = node.fold_limits()
    pes = divisors(limits["pe"]) if "pe" in limits else [1]
    simds = divisors(limits["simd"]) if "simd" in limits else [1]
    options = []
    for pe in pes:
        for simd in simds:
            folded = node.with_fold(pe, simd)
            options.append(FoldOption(pe, simd, folded.cycles(), estimate(folded, uram)[0]))
    return options


def budget(board: FpgaBoard, cap: float) -> dict[str, float]:
    r = board.resources
    return {"lut": r.lut * cap, "ff": r.ff * cap, "bram36": r.bram36 * cap, "uram": r.uram * cap, "dsp": r.dsp * cap}


def _vec(res: Resources) -> dict[str, float]:
    return {k: getattr(res, k) for k in RESOURCE_KEYS}


def _cost(res: Resources, weights: dict[str, float]) -> float:
    return sum(getattr(res, k) * w for k, w in weights.items())


def _pick(options: list[list[FoldOption]], limit: int, weights: dict[str, float]) -> list[FoldOption] | None:
    picks = []
    for opts in options:
        ok = [o for o in opts if o.cycles <= limit]
        if not ok:
            return None
        # cheapest under the weights; among equals the fewest lanes (simplest hardware)
        picks.append(min(ok, key=lambda o: (_cost(o.res, weights), o.pe * o.simd, o.pe)))
    return picks


def _total(picks: list[FoldOption]) -> dict[str, float]:
    total = dict.fromkeys(RESOURCE_KEYS, 0.0)
    for p in picks:
        for k, v in _vec(p.res).items():
            total[k] += v
    return total


def _fits(total: dict[str, float], avail: dict[str, float]) -> bool:
    return all(total[k] <= avail[k] + 1e-9 for k in RESOURCE_KEYS)


def _feasible(options: list[list[FoldOption]], limit: int, avail: dict[str, float]) -> list[FoldOption] | None:
    """Cheapest picks meeting `limit` that fit `avail`, re-weighting scarce resources; None if none found."""
    weights = {k: (1.0 / avail[k] if avail[k] > 0 else 1e9) for k in RESOURCE_KEYS}
    for _ in range(REWEIGHT_ROUNDS):
        picks = _pick(options, limit, weights)
        if picks is None:
            return None
        total = _total(picks)
        if _fits(total, avail):
            return picks
        for k in RESOURCE_KEYS:
            if total[k] > avail[k]:
                weights[k] *= 4.0 * (total[k] / max(avail[k], 1e-9))
    return None


def _apply(graph: DataflowGraph, picks: list[FoldOption]) -> DataflowGraph:
    return graph.with_nodes(tuple(n.with_fold(p.pe, p.simd) for n, p in zip(graph.nodes, picks, strict=True)))


def fold_to_budget(graph: DataflowGraph, board: FpgaBoard, cap: float = 0.8,
                   target_fps: float | None = None) -> DataflowGraph:
    """Fold every node for the highest throughput that fits `cap` of the board (or `target_fps` cheapest)."""
    uram = board.resources.uram > 0
    avail = budget(board, cap)
    options = [fold_options(n, uram) for n in graph.nodes]
    # fully unfolded bottleneck; the AXI ports' own cycles are a floor no folding goes below
    slowest = max(max(min(o.cycles for o in opts) for opts in options), io_cycles(graph))
    candidates = sorted({o.cycles for opts in options for o in opts if o.cycles >= slowest})
    if target_fps is not None:
        limit = math.floor(board.clock_hz / target_fps)
        if limit < slowest:
            raise EdgeError(f"--target-fps {target_fps:g} needs {limit} cycles per frame at {board.clock_mhz:g} MHz "
                            f"but the fastest folding takes {slowest}")
        picks = _feasible(options, limit, avail)
        if picks is None:
            raise EdgeError(f"--target-fps {target_fps:g} does not fit {board.name} at {cap:.0%}: "
                            + _deficit(options, limit, avail))
        return _apply(graph, picks)
    lo, hi = 0, len(candidates) - 1
    if _feasible(options, candidates[hi], avail) is None:
        raise EdgeError(f"the model does not fit {board.name} even fully folded (PE=SIMD=1) at {cap:.0%} "
                        "utilisation: " + _deficit(options, candidates[hi], avail))
    while lo < hi:
        mid = (lo + hi) // 2
        if _feasible(options, candidates[mid], avail) is not None:
            hi = mid
        else:
            lo = mid + 1
    picks = _feasible(options, candidates[lo], avail)
    assert picks is not None
    return _apply(graph, picks)


def _deficit(options: list[list[FoldOption]], limit: int, avail: dict[str, float]) -> str:
    """Which resource is short and by how much, for the leanest picks meeting `limit`."""
    weights = {k: (1.0 / avail[k] if avail[k] > 0 else 1e9) for k in RESOURCE_KEYS}
    lean = _pick(options, limit, weights)
    assert lean is not None
    total = _total(lean)
    short = [f"{k.upper()} needs {total[k]:,.0f}, budget {avail[k]:,.0f} (over by {total[k] - avail[k]:,.0f})"
             for k in RESOURCE_KEYS if total[k] > avail[k]]
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
            if key in limits and limits[key] % value:
                raise EdgeError(f"{path}: node '{node.name}': {key.upper()}={value} must divide {limits[key]} "
                                f"(legal: {', '.join(map(str, divisors(limits[key])))})")
        nodes.append(node.with_fold(pe, simd))
    return graph.with_nodes(tuple(nodes))

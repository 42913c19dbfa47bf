"""`edge build`: QONNX -> integer dataflow IR -> folding for a board -> estimates, written atomically."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from boards.schema import FpgaBoard
from edge.fsutil import atomic_output_dir, write_json
from edge.qonnx_io import LoadedModel
from fpga.folding import apply_folding_file, fold_to_budget, folding_to_data
from fpga.ir import DataflowGraph
from fpga.lower import lower
from fpga.report import build_report
from fpga.serialize import save_graph
from fpga.verify import verify

VERIFY_SAMPLES = 64


@dataclass
class BuildOptions:
    cap: float = 0.8
    target_fps: float | None = None
    folding: Path | None = None
    top_k: int = 0
    verify_samples: int = VERIFY_SAMPLES
    seed: int = 0


def random_inputs(loaded: LoadedModel, n: int, seed: int) -> np.ndarray:
    """Inputs across the input quantiser's range and a little beyond it, so clipping is exercised too."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-0.25, 1.25, size=(n, *loaded.input_shape[1:])).astype(np.float32)


def compile_model(loaded: LoadedModel, board: FpgaBoard, opts: BuildOptions) -> tuple[DataflowGraph, dict[str, Any]]:
    """Lower, fold and estimate; check the IR against the golden model on random inputs."""
    graph = lower(loaded, top_k=opts.top_k)
    if opts.folding is not None:
        graph = apply_folding_file(graph, opts.folding)
    else:
        graph = fold_to_budget(graph, board, opts.cap, opts.target_fps)
    report = build_report(graph, board, opts.cap)
    report["source"] = str(loaded.path)
    report["folding_source"] = str(opts.folding) if opts.folding else "optimised"
    if opts.verify_samples and not opts.top_k:
        report["verification"] = verify(graph, loaded, random_inputs(loaded, opts.verify_samples, opts.seed)).as_dict()
    return graph, report


def write_build(graph: DataflowGraph, report: dict[str, Any], out_dir: Path) -> None:
    with atomic_output_dir(out_dir) as tmp:
        save_graph(graph, tmp)
        write_json(tmp / "folding.json", folding_to_data(graph))
        write_json(tmp / "report.json", report)

"""Compile a QONNX model for a board: lower to the integer dataflow IR, fold, add width converters, estimate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from boards.schema import FpgaBoard
from fpga.folding import apply_folding_file, fold_to_budget
from fpga.ir import DataflowGraph
from fpga.lower import lower
from fpga.report import build_report
from fpga.resources import Resources
from fpga.verify import verify
from fpga.width import insert_width_converters
from frontend.qonnx_io import LoadedModel, vocabulary

VERIFY_SAMPLES = 64
# integer elements the teacher-forced verification may hold at once (all IR streams of all samples, int64, and as
# many golden float tensors): ~1.6 GB per copy. Large models (ImageNet MobileNet) verify on fewer samples.
VERIFY_ELEMENT_BUDGET = 200_000_000


def verify_sample_count(graph: DataflowGraph, wanted: int) -> int:
    """As many of `wanted` samples as fit the element budget, at least 2."""
    per_sample = sum(int(np.prod(t.shape)) for t in graph.tensors.values())
    return max(2, min(wanted, VERIFY_ELEMENT_BUDGET // max(per_sample, 1)))


@dataclass
class BuildOptions:
    cap: float = 0.8
    target_fps: float | None = None
    folding: Path | None = None
    top_k: int = 0
    verify_samples: int = VERIFY_SAMPLES
    seed: int = 0
    simulate: bool = True
    sim_frames: int = 16
    synth: bool = False
    backend: str = "hls"  # "hls" or "rtl": which kernels the resource model's calibration describes


def random_inputs(loaded: LoadedModel, n: int, seed: int) -> np.ndarray:
    """Inputs across the input quantiser's range and a little beyond it, so clipping is exercised too; token ids
    over the whole vocabulary."""
    rng = np.random.default_rng(seed)
    if loaded.input_dtype is np.int64:
        return rng.integers(0, vocabulary(loaded), size=(n, *loaded.input_shape[1:]), dtype=np.int64)
    return rng.uniform(-0.25, 1.25, size=(n, *loaded.input_shape[1:])).astype(np.float32)


def compile_model(loaded: LoadedModel, board: FpgaBoard, opts: BuildOptions, reserve: Resources | None = None,
                  verify_ir: bool = True) -> tuple[DataflowGraph, dict[str, Any]]:
    """Lower, fold and estimate; check the IR against the golden model on random inputs.

    `reserve` is held back from the folding's budget (the build's second pass after FIFO sizing)."""
    graph = lower(loaded, top_k=opts.top_k)
    if opts.folding is not None:
        graph = apply_folding_file(graph, opts.folding)
    else:
        graph = fold_to_budget(graph, board, opts.cap, opts.target_fps, reserve, opts.backend)
    graph = insert_width_converters(graph)
    report = build_report(graph, board, opts.cap, backend=opts.backend)
    report["source"] = str(loaded.path)
    report["folding_source"] = str(opts.folding) if opts.folding else "optimised"
    if verify_ir and opts.verify_samples and not opts.top_k:
        n = verify_sample_count(graph, opts.verify_samples)
        report["verification"] = verify(graph, loaded, random_inputs(loaded, n, opts.seed)).as_dict()
    return graph, report

"""Hardware score of a candidate: the fpga package's own lowering, folding (fold_to_budget) and resource model
on the model's QONNX export, in a fraction of a second, exactly what `edge build` would report before simulation."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from torch import nn

from boards.schema import FpgaBoard
from edge.train import export_qonnx_file
from fpga.build import BuildOptions, compile_model
from frontend.qonnx_io import load_model


def hardware_score(model: nn.Module, input_shape: tuple[int, ...], board: FpgaBoard, cap: float = 0.8,
                   target_fps: float | None = None, path: Path | None = None) -> dict[str, Any]:
    """FPS, resources and utilisation of `model` folded for `board` under `cap` (or for `target_fps`).
    Writes the QONNX export to `path` when given (the file `edge build` would take)."""
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = path or Path(tmp) / "candidate.onnx"
        export_qonnx_file(model, input_shape, onnx_path, {})
        return file_score(onnx_path, board, cap, target_fps)


def file_score(onnx_path: Path, board: FpgaBoard, cap: float = 0.8, target_fps: float | None = None) -> dict[str, Any]:
    """The same for a QONNX file: what `edge build` of exactly that file will report."""
    loaded = load_model(onnx_path)
    _, report = compile_model(loaded, board, BuildOptions(cap=cap, target_fps=target_fps, verify_samples=0,
                                                          simulate=False), verify_ir=False)
    t = report["totals"]
    return {"fps": t["fps"], "resources": t["resources"], "utilisation": t["utilisation"],
            "bottleneck": t["bottleneck"], "bottleneck_cycles": t["bottleneck_cycles"]}

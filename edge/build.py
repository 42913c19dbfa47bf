"""`edge build` output: IR, folding, the HLS project, simulation results and the report, written atomically."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx

from boards.schema import FpgaBoard
from edge.fsutil import atomic_output_dir, write_json
from edge.qonnx_io import LoadedModel
from fpga.build import BuildOptions, random_inputs
from fpga.folding import folding_to_data
from fpga.ir import DataflowGraph
from fpga.serialize import save_graph
from hls.codegen import generate
from hls.flow import simulate_project

MODEL_COPY = "model.onnx"  # the golden model travels with the build, for `edge simulate`


def synthesis_commands(out_dir: Path) -> list[str]:
    return [f"cd {out_dir / 'hls'} && vitis_hls -f run_hls.tcl"]


def write_build(graph: DataflowGraph, report: dict[str, Any], out_dir: Path, loaded: LoadedModel, board: FpgaBoard,
                opts: BuildOptions, log: Callable[[str], None] = lambda _: None) -> None:
    """Write IR, folding, the HLS project and the report; C-sim and cycle-simulate unless told not to.

    Everything is written to a temporary directory that replaces out_dir only when it is complete."""
    with atomic_output_dir(out_dir) as tmp:
        save_graph(graph, tmp)
        write_json(tmp / "folding.json", folding_to_data(graph))
        onnx.save(loaded.model.model, str(tmp / MODEL_COPY))  # normalised, data inline (no external file)
        project = tmp / "hls"
        generate(graph, board, project)
        report["hls"] = {"project": "hls/", "simulated": opts.simulate}
        if opts.simulate:
            log(f"C-sim and cycle-level simulation of {opts.sim_frames} frames (g++)...")
            x = random_inputs(loaded, opts.sim_frames, opts.seed + 1)
            report["simulation"], _ = simulate_project(graph, board, project, x)
        report["synthesis"] = run_synthesis(project, opts.synth, out_dir)
        write_json(tmp / "report.json", report)


def run_synthesis(project: Path, wanted: bool, final_dir: Path) -> dict[str, Any]:
    """Run Vitis HLS when asked and available; otherwise say what was skipped and how to run it elsewhere."""
    tool = shutil.which("vitis_hls")
    commands = synthesis_commands(final_dir)
    if not wanted:
        return {"ran": False, "reason": "not requested (--synth)", "commands": commands}
    if tool is None:
        return {"ran": False, "reason": "vitis_hls is not on PATH", "commands": commands}
    result = subprocess.run([tool, "-f", "run_hls.tcl"], cwd=project, capture_output=True, text=True)
    (project / "vitis_hls_run.log").write_text(result.stdout + result.stderr, encoding="utf-8")
    return {"ran": True, "exit_code": result.returncode, "log": "hls/vitis_hls_run.log", "commands": commands}

"""`edge build` output: IR, folding, the HLS project, simulation results and the report, written atomically."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx

from boards.schema import FpgaBoard
from edge.errors import EdgeError
from edge.fsutil import atomic_output_dir, write_json
from edge.qonnx_io import LoadedModel
from edge.report_html import write_report_html
from fpga.build import BuildOptions, compile_model, random_inputs
from fpga.folding import folding_to_data
from fpga.ir import DataflowGraph
from fpga.report import build_report
from fpga.resources import Resources
from fpga.serialize import save_graph
from fpga.width import AXI_BITS
from hls.codegen import MM_SHELL, generate
from hls.deploy import write_deploy
from hls.deploy.check import check_block_design, tclsh
from hls.flow import simulate_project

MODEL_COPY = "model.onnx"  # the golden model travels with the build, for `edge simulate`


def synthesis_commands(out_dir: Path) -> list[str]:
    return [f"cd {out_dir / 'hls'} && vitis_hls -f run_hls.tcl"]


def bitfile_tools(board: FpgaBoard) -> list[str]:
    """The vendor tools `edge build --bitfile` runs for this board's shell."""
    return ["vitis_hls", "v++"] if board.shell == MM_SHELL else ["vitis_hls", "vivado"]


def check_bitfile_tools(board: FpgaBoard) -> None:
    """Fail before any work when --bitfile cannot run here."""
    missing = [t for t in bitfile_tools(board) if shutil.which(t) is None]
    if missing:
        raise EdgeError(f"--bitfile needs {' and '.join(bitfile_tools(board))} on PATH (not found: "
                        f"{', '.join(missing)}); without --bitfile the build writes deploy/ with the scripts to run "
                        "on a machine that has them")


def _run_tool(cmd: list[str], cwd: Path, log_file: Path) -> int:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    log_file.write_text(result.stdout + result.stderr, encoding="utf-8")
    return result.returncode


def build_bitfile(out_dir: Path, board: FpgaBoard, log: Callable[[str], None]) -> dict[str, Any]:
    """Vitis HLS exports the accelerator, then Vivado builds block design -> .bit + .hwh into deploy/bitfile/
    (Alveo: the kernel .xo; linking needs the card's platform, see deploy/README.md)."""
    deploy, project = out_dir / "deploy", out_dir / "hls"
    if board.shell == MM_SHELL:
        log("vitis_hls: packaging the kernel (.xo)...")
        code = _run_tool([shutil.which("vitis_hls") or "vitis_hls", "-f", "package_xo.tcl"], deploy,
                         deploy / "vitis_hls_xo.log")
        xo = deploy / "edge_top.xo"
        if code != 0 or not xo.exists():
            raise EdgeError(f"vitis_hls failed packaging the kernel (exit {code}); see {deploy / 'vitis_hls_xo.log'}")
        return {"ran": True, "xo": "deploy/edge_top.xo", "next": "v++ --link (deploy/README.md)"}
    log("vitis_hls: C-sim, synthesis, co-simulation and IP export...")
    code = _run_tool([shutil.which("vitis_hls") or "vitis_hls", "-f", "run_hls.tcl"], project,
                     project / "vitis_hls_run.log")
    if code != 0:
        raise EdgeError(f"vitis_hls failed (exit {code}); see {project / 'vitis_hls_run.log'}")
    log("vivado: block design, synthesis, implementation, bitstream (this takes a while)...")
    code = _run_tool([shutil.which("vivado") or "vivado", "-mode", "batch", "-source", "build_bitfile.tcl",
                      "-tclargs", "2"], deploy, deploy / "vivado.log")
    bit, hwh = deploy / "bitfile" / "edge.bit", deploy / "bitfile" / "edge.hwh"
    if code != 0 or not (bit.exists() and hwh.exists()):
        raise EdgeError(f"vivado did not produce bitfile/edge.bit and edge.hwh (exit {code}); "
                        f"see {deploy / 'vivado.log'}")
    return {"ran": True, "bitfile": "deploy/bitfile/edge.bit", "hwh": "deploy/bitfile/edge.hwh",
            "log": "deploy/vivado.log"}


MAX_REFOLDS = 3  # folding passes with the sized FIFOs held back before giving up on the cap
REFOLD_MARGIN = 1.1  # hold back a little more than the overshoot: the new folding's FIFOs differ


def over_cap(report: dict[str, Any]) -> list[str]:
    """Resources whose utilisation exceeds the report's cap."""
    cap = report["utilisation_cap"]
    return [k for k, u in report["totals"]["utilisation"].items() if u > cap + 1e-9]


def _overshoot(report: dict[str, Any], board: FpgaBoard) -> Resources:
    avail, used, cap = board.resources.as_dict(), report["totals"]["resources"], report["utilisation_cap"]
    extra = {k: max(0.0, used[k] - cap * avail[k]) * REFOLD_MARGIN for k in ("lut", "ff", "bram36", "uram", "dsp")}
    return Resources(**extra)


def _cap_error(report: dict[str, Any], board: FpgaBoard) -> EdgeError:
    k = over_cap(report)[0]
    worst = max(report["layers"] + report["fifos"], key=lambda r: r[k])
    name = worst.get("name") or f"FIFO {worst['stream']} ({worst['depth']} x {worst['width']} bits)"
    return EdgeError(f"{board.name}: after FIFO sizing {k.upper()} is at {report['totals']['utilisation'][k]:.1%} "
                     f"of the part, over --util-cap {report['utilisation_cap']:.0%} (largest user: {name}); "
                     "lower --target-fps or raise --util-cap")


def build_model(loaded: LoadedModel, board: FpgaBoard, opts: BuildOptions, out_dir: Path,
                log: Callable[[str], None] = lambda _: None) -> tuple[DataflowGraph, dict[str, Any]]:
    """Compile, generate the HLS project, C-sim and cycle-simulate (sizing the FIFOs), keep every resource under
    the cap, and write IR, folding, project and report. The output directory appears complete or not at all.

    If the sized FIFOs push a resource over the cap, the model is folded again with the overshoot held back."""
    graph, report = compile_model(loaded, board, opts)
    with atomic_output_dir(out_dir) as tmp:
        project = tmp / "hls"
        reserve = Resources()
        for attempt in range(MAX_REFOLDS + 1):
            shutil.rmtree(project, ignore_errors=True)
            generate(graph, board, project)
            report["hls"] = {"project": "hls/", "simulated": opts.simulate}
            if not opts.simulate:
                break
            log(f"C-sim and cycle-level simulation of {opts.sim_frames} frames (g++), FIFO sizing...")
            x = random_inputs(loaded, opts.sim_frames, opts.seed + 1)
            simulation, _ = simulate_project(graph, board, project, x)
            depths = (simulation.get("fifo_sizing") or {}).get("depths")
            sized = {**report, **build_report(graph, board, opts.cap, depths), "simulation": simulation}
            if not over_cap(sized) or opts.folding is not None:
                report = sized
                break
            if attempt == MAX_REFOLDS:
                raise _cap_error(sized, board)
            reserve = reserve + _overshoot(sized, board)
            log(f"sized FIFOs put {', '.join(k.upper() for k in over_cap(sized))} over the cap; folding again")
            verification = report.get("verification")
            graph, report = compile_model(loaded, board, opts, reserve, verify_ir=False)
            if verification is not None:
                report["verification"] = verification  # folding does not change what the IR computes
            report["refolds"] = attempt + 1
        save_graph(graph, tmp)
        write_json(tmp / "folding.json", folding_to_data(graph))
        onnx.save(loaded.model.model, str(tmp / MODEL_COPY))  # normalised, data inline (no external file)
        report["deploy"] = write_deploy_package(graph, board, report, tmp / "deploy")
        report["synthesis"] = run_synthesis(project, opts.synth, out_dir)
        write_json(tmp / "report.json", report)
        write_report_html(report, tmp)
    return graph, report


def write_deploy_package(graph: DataflowGraph, board: FpgaBoard, report: dict[str, Any],
                         deploy: Path) -> dict[str, Any]:
    """deploy/ (shell scripts, driver, settings) and, where tclsh is installed, the block design checked against
    the stubbed Vivado commands."""
    simulated = (report.get("simulation") or {}).get("cycle_sim", {})
    fps = simulated.get("fps") or report.get("totals", {}).get("fps")
    files = write_deploy(graph, board, deploy, fps)
    info: dict[str, Any] = {"dir": "deploy/", "files": files, "shell": board.shell, "shell_check": None}
    if (deploy / "block_design.tcl").exists() and tclsh() is not None:
        check = check_block_design(deploy, AXI_BITS, board.clock_mhz)
        if not check.passed:  # a generator bug, not the user's: say so plainly
            raise EdgeError(f"{deploy / 'block_design.tcl'}: the generated block design fails its check: "
                            f"{check.problems[0]}")
        info["shell_check"] = {"passed": True, "cells": len(check.cells), "connections": len(check.connections),
                               "addresses": len(check.addresses)}
    return info


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

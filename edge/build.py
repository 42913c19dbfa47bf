"""`edge build` output: IR, folding, the HLS project, simulation results and the report, written atomically."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from boards.schema import FpgaBoard
from edge.fsutil import atomic_output_dir, write_json
from edge.report_html import write_report_html
from fpga.build import BuildOptions, compile_model, random_inputs
from fpga.folding import folding_to_data
from fpga.ir import DataflowGraph
from fpga.report import build_report, over_cap
from fpga.resources import Resources
from fpga.serialize import save_graph
from fpga.width import AXI_BITS
from frontend.errors import EdgeError
from frontend.qonnx_io import LoadedModel
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


def _fold_again(loaded: LoadedModel, board: FpgaBoard, opts: BuildOptions, sized: dict[str, Any],
                report: dict[str, Any], reserve: Resources, attempt: int,
                log: Callable[[str], None]) -> tuple[DataflowGraph, dict[str, Any], Resources]:
    """The sized FIFOs put a resource over the cap: fold again with the overshoot held back (or give up)."""
    if attempt == MAX_REFOLDS:
        raise _cap_error(sized, board)
    reserve = reserve + _overshoot(sized, board)
    log(f"sized FIFOs put {', '.join(k.upper() for k in over_cap(sized))} over the cap; folding again")
    verification = report.get("verification")
    graph, report = compile_model(loaded, board, opts, reserve, verify_ir=False)
    if verification is not None:
        report["verification"] = verification  # folding does not change what the IR computes
    report["refolds"] = attempt + 1
    return graph, report, reserve


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
            simulation, _ = simulate_project(graph, board, project, x, cap=opts.cap)
            depths = (simulation.get("fifo_sizing") or {}).get("depths")
            sized = {**report, **build_report(graph, board, opts.cap, depths), "simulation": simulation}
            if not over_cap(sized) or opts.folding is not None:
                report = sized
                break
            graph, report, reserve = _fold_again(loaded, board, opts, sized, report, reserve, attempt, log)
        save_graph(graph, tmp)
        write_json(tmp / "folding.json", folding_to_data(graph))
        onnx.save(loaded.model.model, str(tmp / MODEL_COPY))  # normalised, data inline (no external file)
        report["deploy"] = write_deploy_package(graph, board, report, tmp / "deploy")
        report["deploy"]["files"].append(write_sample_input(loaded, tmp / "deploy", opts.seed))
        report["synthesis"] = run_synthesis(project, opts.synth, out_dir)
        write_json(tmp / "report.json", report)
        write_report_html(report, tmp)
    return graph, report


SAMPLE_INPUT = "sample_input.npy"


def write_sample_input(loaded: LoadedModel, deploy: Path, seed: int, frames: int = 8) -> str:
    """deploy/sample_input.npy: a few float inputs in the model's input layout, so that the `edge run` command the
    build prints runs as printed (real data replaces it on the board)."""
    np.save(deploy / SAMPLE_INPUT, random_inputs(loaded, frames, seed + 2))
    return SAMPLE_INPUT


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


RTL_DIR = "rtl"


def _rtl_synth(project: Any, board: FpgaBoard, report: dict[str, Any], log: Callable[[str], None]) -> dict[str, Any]:
    """Yosys on the top for the board's family: totals and per-layer counts beside the resource model's."""
    from rtl.flow import synthesise, yosys_family
    from rtl.yosys import YosysError, yosys_command

    keys = ("lut", "ff", "bram36", "dsp")
    try:
        family = yosys_family(board.family)
        log(f"Yosys {yosys_command(family)} on the top (hierarchy kept)...")
        synth = synthesise(project, family)
    except YosysError as exc:
        raise EdgeError(f"{board.name}: {exc}") from None
    # the estimates the folder budgeted with: the RTL kernels' model on Xilinx parts; on an open family the model
    # in the family's own units (LUT4s, its block RAM)
    open_family = "family_resources" in report["totals"]
    est = {r["name"]: r for r in report["layers"]}
    for layer in synth["layers"]:
        e = est.get(layer["node"])
        if e is not None and open_family:
            kind = "streams" if layer["kind"] == "StreamingDataWidthConverter" else layer["kind"]
            e = Resources(**{k: e[k] for k in ("lut", "ff", "bram36", "uram", "dsp")}).for_family(
                board.family, kind).as_dict()
        layer["estimate"] = {k: e[k] for k in keys if k in e} if e else None
    t = report["totals"]["family_resources"] if open_family else report["totals"]["resources"]
    synth["estimate"] = {k: t[k] for k in keys}
    synth["resource_model"] = report.get("resource_model", "hls")
    if not open_family:
        f = report["totals"]["fifo_resources"]
        synth["fifo_estimate"] = {k: f[k] for k in keys}
    synth["ratio"] = {k: (round(synth["resources"][k] / t[k], 3) if t[k] else None) for k in keys}
    if family in ("xc7", "xcup"):
        synth["vivado"] = _vivado_synth(project, board, synth["estimate"], log)
    return synth


def _vivado_synth(project: Any, board: FpgaBoard, estimate: dict[str, float],
                  log: Callable[[str], None]) -> dict[str, Any] | None:
    """Vivado's out-of-context count of the same top, beside Yosys' and the model's, when vivado is on PATH."""
    from rtl import vivado

    if vivado.vivado() is None:
        return None
    log(f"Vivado synth_design -mode out_of_context for {board.part}...")
    try:
        out = vivado.synthesise(project, board.part)
    except vivado.VivadoError as exc:
        raise EdgeError(f"{board.name}: {exc}") from None
    out["ratio"] = {k: (round(out["resources"][k] / v, 3) if v else None) for k, v in estimate.items()}
    return out


def build_rtl_model(loaded: LoadedModel, board: FpgaBoard, opts: BuildOptions, out_dir: Path, synth: bool = False,
                    log: Callable[[str], None] = lambda _: None,
                    bitstream: bool = False) -> tuple[DataflowGraph, dict[str, Any]]:
    """`edge build --backend rtl`: compile, write the Verilog project (rtl/), run the Verilator model of the top on the
    verification inputs (bit-exact against the integer IR, which is checked against the QONNX golden) and under
    random back-pressure; with `synth`, Yosys on the top; with `bitstream` (open FPGAs), the top behind the UART
    shell placed, routed and packed, and deploy/. The output directory appears complete or not at all."""
    from fpga.build import verify_sample_count
    from fpga.execute import execute, quantize_input
    from fpga.lower import lower
    from rtl.flow import SIZING_FRAMES, size_fifos
    from rtl.kernels import UnsupportedKernel, missing_kernel
    from rtl.project import kernels, write_project
    from rtl.verilator import VerilatorError

    opts = replace(opts, backend="rtl")  # folded and estimated for the RTL kernels (the calibrated model)

    if bitstream or synth:  # the open tools are an extra: say so before minutes of folding and simulation
        from rtl.bitstream import BitstreamError, check_tools
        from rtl.yosys import YosysError, yosys

        osc = board.open_flow.oscillator_mhz if board.open_flow is not None else board.clock_mhz
        if bitstream and board.clock_mhz != osc:
            raise EdgeError(f"{board.name}: the board top runs on the {osc:g} MHz oscillator (no PLL in the open-FPGA "
                            f"shell yet), so --bitfile cannot clock it at {board.clock_mhz:g} MHz; drop --clock-mhz")
        try:
            if bitstream:
                check_tools(board.family)
            else:
                yosys()
        except (BitstreamError, YosysError) as exc:
            raise EdgeError(f"{board.name}: {exc}") from None
    missing = missing_kernel(lower(loaded, top_k=opts.top_k).nodes)
    if missing is not None:  # before folding: a kind without a kernel is the first thing to say
        raise EdgeError(f"{loaded.path}: {missing.name}: the RTL backend has no kernel for {missing.kind} yet; build "
                        "it with the HLS backend (--backend hls)")
    graph, report = compile_model(loaded, board, opts)
    try:
        kernels(graph)  # a configuration a kernel does not take: refuse before anything is written
    except UnsupportedKernel as exc:
        raise EdgeError(f"{loaded.path}: {exc}; build it with the HLS backend (--backend hls)") from None
    with atomic_output_dir(out_dir) as tmp:
        reserve = Resources()
        for attempt in range(MAX_REFOLDS + 1):
            sized: dict[str, int] | None = None
            if opts.simulate:
                frames = verify_sample_count(graph, opts.verify_samples) if opts.verify_samples else opts.sim_frames
                x_int = quantize_input(graph.pre, random_inputs(loaded, max(frames, 2), opts.seed))
                expected = execute(graph, x_int)[graph.output]
                log(f"Verilator: FIFO sizing on {min(len(x_int), SIZING_FRAMES)} frames with deep FIFOs...")
                shutil.rmtree(tmp / "fifo_sizing", ignore_errors=True)
                try:
                    sized = size_fifos(graph, x_int, tmp / "fifo_sizing")
                except VerilatorError as exc:
                    raise EdgeError(f"{out_dir}/{RTL_DIR}: {exc}") from None
            # Xilinx parts: ROMs and FIFO memories where the resource model put them; open families: where Yosys
            # puts them (calibrated so)
            shutil.rmtree(tmp / RTL_DIR, ignore_errors=True)
            project = write_project(graph, tmp / RTL_DIR, source=loaded.path.name, fifo_depths=sized,
                                    place_roms=board.open_flow is None)
            # the estimates with the RTL top's own FIFO depths
            depths = {f["stream"]: f["depth"] for f in project.fifos}
            keep = {k: report[k] for k in ("source", "folding_source", "verification", "refolds") if k in report}
            report = {**build_report(graph, board, opts.cap, depths, backend="rtl"), **keep, "backend": "rtl",
                      "fifo_depths": ("sized by Verilator (most words held with deep FIFOs, + 1)" if sized else
                                      "2 words each (not simulated)"),
                      "rtl_project": f"{RTL_DIR}/"}
            if not sized or not over_cap(report) or opts.folding is not None:
                break
            # the sized FIFOs (deep ones in block RAM) pushed a resource over the cap
            graph, report, reserve = _fold_again(loaded, board, opts, report, report, reserve, attempt, log)
        if opts.simulate:
            log(f"Verilator: the top on {len(x_int)} frames, then with random back-pressure...")
            try:
                summary, _ = simulate_rtl(project, x_int, expected, graph, board.clock_mhz)
            except VerilatorError as exc:
                raise EdgeError(f"{out_dir}/{RTL_DIR}: {exc}") from None
            ir_ok = bool((report.get("verification") or {}).get("bit_exact", True))
            summary["rtl_vs_ir_bit_exact"] = summary["bit_exact"]
            summary["ir_vs_golden_bit_exact"] = ir_ok if report.get("verification") else None
            # a transformer's IR is within its Softmax/LayerNorm bound of the golden model, not bit-exact to it
            summary["ir_vs_golden_passed"] = (bool(report["verification"].get("passed", ir_ok))
                                              if report.get("verification") else None)
            summary["bit_exact"] = bool(summary["bit_exact"] and ir_ok)
            report["rtl"] = summary
        if synth:
            report["synth"] = _rtl_synth(project, board, report, log)
        if bitstream:
            save_graph(graph, tmp)
            report["bitstream"] = _open_bitstream(project, board, report, tmp / "deploy", log)
            report["bitstream"]["deploy"]["files"].append(write_sample_input(loaded, tmp / "deploy", opts.seed))
            if opts.simulate:
                report["bitstream"]["serial_sim"] = _serial_check(project, board, x_int, expected, log)
            report["totals"]["estimated_utilisation"] = report["totals"]["utilisation"]
            report["totals"]["utilisation"] = {**report["bitstream"]["utilisation"], "uram": 0.0}
        save_graph(graph, tmp)
        write_json(tmp / "folding.json", folding_to_data(graph))
        onnx.save(loaded.model.model, str(tmp / MODEL_COPY))
        write_json(tmp / "report.json", report)
        write_report_html(report, tmp)
    return graph, report


def _uart_driver(project: Any, board: FpgaBoard, deploy: Path) -> list[str]:
    """deploy/driver/: the pyserial driver, the host steps it shares with the PYNQ driver, settings.json (with the
    link's baud rate and word sizes) and host_steps.npz."""
    import json

    import numpy as np

    from fpga.serialize import load_graph
    from hls.deploy import HOST_STEPS, settings_for
    from rtl.bitstream import shell_params
    from rtl.deploy import UART_DRIVER

    assert board.open_flow is not None
    graph = load_graph(project.directory.parent) if (project.directory.parent / "ir.json").exists() else None
    if graph is None:
        raise EdgeError(f"{project.directory.parent}: the IR must be saved before deploy/driver is written")
    settings, arrays = settings_for(graph, board, None)
    settings["dma"] = None
    settings["uart"] = {"baud": board.open_flow.baud, "clks_per_bit": shell_params(project, board)["CLKS_PER_BIT"],
                        "link": board.open_flow.link}
    driver = deploy / "driver"
    driver.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(UART_DRIVER, driver / "driver.py")
    shutil.copyfile(HOST_STEPS, driver / "host_steps.py")
    (driver / "settings.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    np.savez(driver / "host_steps.npz", **arrays)
    return ["driver/driver.py", "driver/host_steps.py", "driver/settings.json", "driver/host_steps.npz"]


def _open_bitstream(project: Any, board: FpgaBoard, report: dict[str, Any], deploy: Path,
                    log: Callable[[str], None]) -> dict[str, Any]:
    """Yosys, nextpnr and the packer on the top behind the UART shell; a design that does not fit or misses the
    clock stops the build with the layer to fold further. deploy/ gets the bitstream and its programming script."""
    import jinja2

    from rtl.bitstream import FAMILIES, TEMPLATES, BitstreamError, build_bitstream

    family = FAMILIES[board.family]
    log(f"{family.synth}, {family.nextpnr.removeprefix('yowasp-')} at {board.clock_mhz:g} MHz and "
        f"{family.packer.removeprefix('yowasp-')} for {board.name}...")
    largest = max(report["layers"], key=lambda r: r["lut"])["name"]
    try:
        bs = build_bitstream(project, board)
    except BitstreamError as exc:
        if "Unable to place" in str(exc) or "no BELs remaining" in str(exc):
            raise EdgeError(f"{board.name}: the design does not fit the {board.part} after placement (largest "
                            f"layer: {largest}); fold it further with a lower --target-fps") from None
        raise EdgeError(f"{board.name}: {exc}") from None
    if not bs["timing_met"]:
        raise EdgeError(f"{board.name}: routed Fmax {bs['fmax_mhz']} MHz is below the board's {board.clock_mhz:g} "
                        f"MHz clock (largest layer: {largest}); fold it further with a lower --target-fps")
    assert board.open_flow is not None
    deploy.mkdir(parents=True, exist_ok=True)
    name = Path(bs["path"]).name
    shutil.copy(project.directory / "pnr" / name, deploy / name)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    flow = board.open_flow
    script = env.get_template("program.sh.j2").render(bitstream=name, board=board.name, part=board.part,
                                                      baud=flow.baud, link=flow.link, programmer=flow.programmer)
    (deploy / "program.sh").write_text(script, encoding="utf-8")
    (deploy / "program.sh").chmod(0o755)
    files = [name, "program.sh", *_uart_driver(project, board, deploy)]
    bs["deploy"] = {"dir": "deploy/", "files": files, "baud": flow.baud, "link": flow.link}
    # 10 bits per byte on a full-duplex line: the direction with more bytes per frame bounds the frame rate
    in_bytes = project.in_words * ((project.in_format.width + 7) // 8)
    out_bytes = project.out_words * ((project.out_format.width + 7) // 8)
    bs["link_fps"] = round(flow.baud / 10 / max(in_bytes, out_bytes), 1)
    return bs


SERIAL_FRAMES = 4  # frames through the modelled UART: each costs (bytes per frame x 10) bit times


def _serial_check(project: Any, board: FpgaBoard, x_int: Any, expected: Any,
                  log: Callable[[str], None]) -> dict[str, Any]:
    """The board top (UART shell included) in Verilator with the host's line modelled bit by bit at the board's bit
    time: what the design transmits must be the integer IR's outputs."""
    import numpy as np

    from rtl.serial_sim import simulate_serial
    from rtl.verilator import VerilatorError

    k = min(SERIAL_FRAMES, len(x_int))
    log(f"Verilator: the board top with its UART on {k} frames (the serial line modelled bit by bit)...")
    try:
        result = simulate_serial(project, board, x_int[:k])
    except VerilatorError as exc:
        raise EdgeError(f"{board.name}: {exc}") from None
    return {"bit_exact": bool(np.array_equal(result.outputs.reshape(expected[:k].shape), expected[:k])),
            "frames": k, "cycles": result.cycles, "clks_per_bit": result.clks_per_bit,
            "cycles_per_frame": round(result.cycles / k, 1)}


def simulate_rtl(project: Any, x_int: Any, expected: Any, graph: DataflowGraph,
                 clock_mhz: float) -> tuple[dict[str, Any], Any]:
    """The Verilator run of a project's top, its cycles set against the folded estimate (the slowest node)."""
    from rtl.flow import simulate

    estimate = max(n.cycles() for n in graph.nodes)
    return simulate(project, x_int, expected, estimate, clock_mhz)

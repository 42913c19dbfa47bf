"""The RTL backend's flow over a written project: Verilator on frames (bit-exact against the integer IR, free
running and under random back-pressure) and Yosys on the top with its hierarchy kept (per-layer counts)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

from fpga.ir import DataflowGraph, DuplicateStreams
from rtl import verilator, yosys
from rtl.project import MIN_FIFO_DEPTH, TOP, Project, fifo_instance, write_project

SIM_DIR = "obj"  # the compiled Verilator model inside the project, reused by `edge simulate`
BACKPRESSURE_STALL_PERCENT = 30
BACKPRESSURE_FRAMES = 4
YOSYS_FAMILY = {"zynq-7000": "xc7", "zynq-ultrascale-plus": "xcup", "alveo": "xcup", "ecp5": "ecp5",
                "ice40": "ice40", "gowin": "gowin"}


def compile_top(project: Project, cycles: int = verilator.OPTIMISE_ABOVE_CYCLES) -> Path:
    """The Verilator model of the project's top (compiled once, kept in the project), optimised when the planned
    simulation runs `cycles` or more."""
    return verilator.compile_design(TOP, project.sources, project.directory / SIM_DIR, axis=True,
                                    optimise=cycles >= verilator.OPTIMISE_ABOVE_CYCLES)


SIZING_FRAMES = 6
MAX_PROBE_DEPTH = 1 << 16


def size_fifos(graph: DataflowGraph, x_int: np.ndarray, workdir: Path) -> dict[str, int]:
    """FIFO depths from a Verilator run with deep FIFOs: each stream's most words held, plus one. A FIFO that filled
    up sits in front of the bottleneck with the input running ahead (the testbench, like a DMA, sends at full
    rate): depth buys nothing there, it gets the minimum. The probe project lives in `workdir` and is removed."""
    probe = {s: min(MAX_PROBE_DEPTH, int(np.prod(t.shape))) for s, t in graph.tensors.items()}
    project = write_project(graph, workdir, "fifo sizing", probe)
    try:
        frames = x_int[:SIZING_FRAMES]
        n_out = int(np.prod(graph.tensors[graph.output].shape)) * len(frames)
        estimate = max(n.cycles() for n in graph.nodes)
        exe = compile_top(project, (len(frames) + 2) * estimate)
        result = verilator.simulate(exe, project.in_format, project.out_format,
                                    np.asarray(frames, np.int64).reshape(len(frames), -1), n_out, project.directory,
                                    max_cycles=1_000_000 + 20 * (len(frames) + 2) * estimate)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    peaks = {name.split(".")[-1]: peak for name, peak in (result.peaks or {}).items()}
    # with a fork in the graph a full FIFO may be a branch that must hold a whole frame: it keeps the probe's depth
    forked = any(isinstance(n, DuplicateStreams) for n in graph.nodes)
    depths = {}
    for f in project.fifos:
        peak = peaks.get(fifo_instance(f["stream"]))
        if peak is not None and peak < f["depth"]:
            depths[f["stream"]] = max(MIN_FIFO_DEPTH, peak + 1)
        else:
            depths[f["stream"]] = f["depth"] if forked else MIN_FIFO_DEPTH
    return depths


def steady_cycles(frame_cycles: tuple[int, ...]) -> float:
    """Cycles per frame over the second half of the run (the first frames fill the pipeline)."""
    n = len(frame_cycles)
    if n < 2:
        return float(frame_cycles[0]) if frame_cycles else 0.0
    k = n // 2
    return (frame_cycles[-1] - frame_cycles[k - 1]) / (n - k)


def simulate(project: Project, x_int: np.ndarray, expected: np.ndarray, estimated_cycles: int,
             clock_mhz: float, seed: int = 0) -> tuple[dict[str, Any], np.ndarray]:
    """Run the top on every frame of x_int (the IR's input, batch first) and on a few frames with random stalls on
    both AXI-Stream sides; returns the `rtl` summary and the free run's outputs, shaped like `expected`."""
    frames = len(x_int)
    planned = (frames + min(frames, BACKPRESSURE_FRAMES) * 2 + 2) * max(estimated_cycles, 1)  # stalls: ~2x slower
    t0 = time.perf_counter()
    exe = compile_top(project, planned)
    build_s = time.perf_counter() - t0
    flat = np.asarray(x_int, np.int64).reshape(frames, -1)
    n_out = int(np.prod(expected.shape))
    t1 = time.perf_counter()
    # a run far beyond the estimate has stopped making progress (a deadlock): end it there
    budget = 1_000_000 + 20 * (frames + 2) * max(estimated_cycles, 1)
    free = verilator.simulate(exe, project.in_format, project.out_format, flat, n_out, project.directory,
                              frame_words=project.out_words, max_cycles=budget)
    sim_s = time.perf_counter() - t1
    out = free.outputs.reshape(expected.shape)
    equal = out == expected
    k = min(frames, BACKPRESSURE_FRAMES)
    stalled = verilator.simulate(exe, project.in_format, project.out_format, flat[:k],
                                 int(np.prod(expected[:k].shape)), project.directory, seed=seed + 1,
                                 stall_percent=BACKPRESSURE_STALL_PERCENT, max_cycles=budget)
    per_frame = steady_cycles(free.frame_cycles)
    summary = {
        "bit_exact": bool(equal.all()),
        "frames": frames,
        "mismatching_frames": int((~equal.reshape(frames, -1).all(1)).sum()),
        "cycles_per_frame": round(per_frame, 1),
        "estimated_cycles_per_frame": int(estimated_cycles),
        "cycles_vs_estimate": round(per_frame / estimated_cycles - 1, 4) if estimated_cycles else None,
        "first_frame_cycles": free.frame_cycles[0] if free.frame_cycles else free.cycles,
        "fps": round(clock_mhz * 1e6 / per_frame, 1) if per_frame else None,
        "backpressure": bool(np.array_equal(stalled.outputs.reshape(expected[:k].shape), expected[:k])),
        "backpressure_frames": k,
        "backpressure_stall_percent": BACKPRESSURE_STALL_PERCENT,
        "simulator": "Verilator",
        "verilate_seconds": round(build_s, 1),
        "verilator_optimised": planned >= verilator.OPTIMISE_ABOVE_CYCLES,
        "simulation_seconds": round(sim_s, 2),
        "cycles_per_second": round(free.cycles / sim_s) if sim_s > 0 else None,
    }
    return summary, out


def yosys_family(board_family: str) -> str:
    """The Yosys family of a board family: synth_xilinx's 7-series or UltraScale+, or an open family."""
    if board_family not in YOSYS_FAMILY:
        raise yosys.YosysError(f"no Yosys flow for the board family '{board_family}'")
    return YOSYS_FAMILY[board_family]


def synthesise(project: Project, family: str, timeout: float = 3600) -> dict[str, Any]:
    """Yosys (synth_xilinx, synth_ecp5, synth_ice40 or synth_gowin) on the top, hierarchy kept: the top's totals and
    one count per kernel instance."""
    work = project.directory / "synth"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    # YoWASP sees its working directory only: sources and ROM files are copied next to the script
    for f in [*project.sources, *project.directory.glob("*.svh"), *project.directory.glob("*.mem")]:
        shutil.copy(f, work)
    # deferred: a kernel is elaborated only with its instances' parameters (its default ROM files do not exist)
    reads = " ".join(f"read_verilog -sv -defer {f.name};" for f in project.sources)
    script = (f"{reads} {yosys.SYNTH[family]} -top {TOP}; tee -q -o stat.json stat -json; "
              f"select {TOP}; write_json -selected top.json")
    t0 = time.perf_counter()
    done = subprocess.run([*yosys.yosys(), "-q", "-l", "yosys.log", "-p", script], capture_output=True, text=True,
                          cwd=work, timeout=timeout)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise yosys.YosysError(f"Yosys could not synthesise {TOP}: " + " | ".join(tail))
    stat = json.loads((work / "stat.json").read_text())
    for f in work.iterdir():
        if f.suffix in (".sv", ".svh", ".mem"):
            f.unlink()
    modules = stat["modules"]
    top_key = next(k for k in modules if k.lstrip("\\") == TOP)
    cells = json.loads((work / "top.json").read_text())["modules"][top_key.lstrip("\\")]["cells"]
    module_of = {name.lstrip("\\"): c["type"] for name, c in cells.items()}

    def counts(module: str | None) -> dict[str, float]:
        """A module's own primitives plus those of the modules it instantiates (hierarchy kept)."""
        if module not in modules:
            return {}
        by_type = modules[module]["num_cells_by_type"]
        total = yosys.count(by_type, family)
        for child, n in by_type.items():
            if child in modules:
                for k, v in counts(child).items():
                    total[k] = total.get(k, 0.0) + n * v
        return total

    layers = [{"node": inst["node"], "kind": inst["kind"], "resources": counts(module_of.get(inst["id"]))}
              for inst in project.instances]
    fifo_total = {"lut": 0.0, "ff": 0.0, "bram36": 0.0, "dsp": 0.0}
    for name, module in module_of.items():
        if name.startswith("fifo_"):
            for k, v in counts(module).items():
                fifo_total[k] += v
    return {"tool": yosys.version(), "family": family, "seconds": round(time.perf_counter() - t0, 1),
            "resources": yosys.count(stat["design"]["num_cells_by_type"], family), "top_module": top_key,
            "command": yosys.yosys_command(family),
            "layers": layers, "fifos": fifo_total, "log": "rtl/synth/yosys.log"}

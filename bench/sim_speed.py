"""Benchmark (not a test): speed of the cycle-level simulator and of FIFO sizing on FINN's TFC and CNV shapes.

Folds each reference network for pynq-z2 at 100 MHz, generates the HLS project, and reports the g++ compile
time of the simulator, simulated cycles per wall-clock second, and the time FIFO sizing takes (one run with
unbounded FIFOs, one with the sized depths). Goal: >= 1 M simulated cycles/s on CNV, CNV FIFO sizing < 10 s.

    python bench/sim_speed.py [--frames 8] [--out bench/results/sim_speed.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fpga_folding import export  # noqa: E402
from boards import load_board  # noqa: E402
from edge.table import render  # noqa: E402
from fpga.build import BuildOptions, compile_model, random_inputs  # noqa: E402
from frontend.qonnx_io import load_model  # noqa: E402
from hls.codegen import generate  # noqa: E402
from hls.flow import expected_outputs  # noqa: E402
from hls.simulate import compile_binary, run_cycle_sim, size_fifos  # noqa: E402

# cycles/s of the simulator before its words became 64-bit limbs (ap_uint words, every kernel polled each clock;
# bench/results/sim_speed.json at commit e74fff2, an AVX2 EPYC host)
BEFORE = {"tfc-w1a1": 130_197, "tfc-w2a2": 130_687, "cnv-w1a1": 152_010, "cnv-w2a2": 67_546}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "sim_speed.json")
    args = parser.parse_args()
    board = dataclasses.replace(load_board("pynq-z2"), clock_mhz=100.0)
    rows, runs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name, bits in (("tfc", 1), ("tfc", 2), ("cnv", 1), ("cnv", 2)):
            loaded = load_model(export(name, bits, Path(tmp)))
            graph, report = compile_model(loaded, board, BuildOptions(verify_samples=0))
            project = Path(tmp) / f"{name}{bits}"
            shutil.rmtree(project, ignore_errors=True)
            generate(graph, board, project)
            t0 = time.perf_counter()
            compile_binary(project, ["sim.cpp"], "sim.bin")
            compile_s = time.perf_counter() - t0
            x_int, expected = expected_outputs(graph, random_inputs(loaded, args.frames, seed=0))
            free = run_cycle_sim(project, x_int, None)
            sim_s = free.seconds  # the simulator process alone
            t2 = time.perf_counter()
            sizing = size_fifos(project, graph, x_int)
            sizing_s = time.perf_counter() - t2
            exact = bool(np.array_equal(free.outputs, expected))
            run = {"model": f"{name}-w{bits}a{bits}", "nodes": len(graph.nodes), "frames": args.frames,
                   "compile_seconds": round(compile_s, 2), "simulated_cycles": free.cycles,
                   "sim_seconds": round(sim_s, 3), "cycles_per_second": free.cycles / sim_s,
                   "cycles_per_second_before": BEFORE.get(f"{name}-w{bits}a{bits}"),
                   "fifo_sizing_seconds": round(sizing_s, 2), "fifo_sizing_simulations": len(sizing.runs),
                   "steady_cycles_per_frame": free.steady_cycles_per_frame,
                   "analytical_cycles_per_frame": report["totals"]["bottleneck_cycles"],
                   "outputs_bit_exact": exact, "sized_without_loss": sizing.throughput_kept}
            runs.append(run)
            rows.append([run["model"], run["nodes"], run["compile_seconds"], f"{run['simulated_cycles']:,}",
                         run["sim_seconds"], f"{run['cycles_per_second']:,.0f}",
                         f"{run['cycles_per_second_before'] or 0:,}", run["fifo_sizing_seconds"],
                         f"{run['steady_cycles_per_frame']:,.0f}", f"{run['analytical_cycles_per_frame']:,}",
                         exact])
    print(f"Cycle-level simulator on pynq-z2 foldings, {args.frames} frames")
    print(render(["model", "nodes", "compile s", "cycles", "sim s", "cycles/s", "before", "FIFO sizing s", "steady",
                  "estimate", "bit-exact"], rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": runs}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

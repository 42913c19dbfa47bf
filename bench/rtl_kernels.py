"""Benchmark (not a test): the RTL backend's kernels, one layer at a time, against the estimates.

For each MVAU of a model folded for a board (default: the bundled tfc w2a2 on pynq-z2, folded as `edge build
--target-fps` picks it): Verilator (exact against the IR? cycles with no stalls vs the folded cycle count,
simulated cycles per second, build time) and Yosys `synth_xilinx` for the board's family (LUT/FF/BRAM36/DSP vs
the RTL backend's resource model, fpga/resources_rtl.py, time). Other kinds are measured within whole designs by
bench/rtl_calibration.py and bench/rtl_build.py.

    python bench/rtl_kernels.py [--model M.onnx] [--board pynq-z2] [--target-fps 20000] [--vectors 64]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from boards import load_board  # noqa: E402
from edge.table import render  # noqa: E402
from fpga.build import BuildOptions, compile_model  # noqa: E402
from fpga.execute import run_node  # noqa: E402
from fpga.ir import MatrixVectorUnit  # noqa: E402
from fpga.resources_rtl import estimate_rtl  # noqa: E402
from frontend.qonnx_io import load_model  # noqa: E402
from rtl import verilator, yosys  # noqa: E402
from rtl.kernels import RTL_KERNEL, kernel_for  # noqa: E402


def _family(board) -> str:
    part = str(getattr(board, "part", "")).lower()
    return "xcup" if part.startswith(("xczu", "xck", "xcu", "xcvu")) else "xc7"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=ROOT / "edge" / "models" / "tfc_w2a2_digits.onnx")
    ap.add_argument("--board", default="pynq-z2")
    ap.add_argument("--vectors", type=int, default=64)
    ap.add_argument("--target-fps", type=float, default=20000.0,
                    help="fold for this FPS (default keeps layers small: Yosys in WebAssembly takes minutes on "
                         "hundreds of parallel multipliers)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "rtl_kernels.json")
    args = ap.parse_args()
    board = load_board(args.board)
    family = _family(board)
    opts = BuildOptions(verify_samples=0, target_fps=args.target_fps, backend="rtl")
    graph, _ = compile_model(load_model(args.model), board, opts, verify_ir=False)
    rng = np.random.default_rng(0)
    rows, skipped = [], sorted({n.kind for n in graph.nodes if not RTL_KERNEL.supports(type(n))})
    for node in graph.nodes:
        if not isinstance(node, MatrixVectorUnit):
            continue
        kernel = kernel_for(node)
        dt = node.in_dtype
        x = rng.choice([-1, 1], (args.vectors, node.mw)) if dt.bipolar else rng.integers(dt.min, dt.max + 1,
                                                                                       (args.vectors, node.mw))
        expected = run_node(node, [x])[0].reshape(-1)
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            verilator.build(kernel, Path(d), optimise=True)
            build_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            sim = verilator.run(kernel, x, expected.size, workdir=Path(d), optimise=True)
            sim_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        synth = yosys.synthesise(kernel, family)
        synth_s = time.perf_counter() - t0
        est, _ = estimate_rtl(node)
        rows.append({
            "layer": node.name, "kind": node.kind, "pe": node.pe, "simd": node.simd, "mw": node.mw, "mh": node.mh,
            "bit_exact": bool(np.array_equal(sim.outputs, expected)),
            "cycles": sim.cycles, "estimated_cycles": node.cycles() * args.vectors,
            "cycles_per_second": sim.cycles / sim_s, "verilator_build_seconds": build_s,
            "synth": synth, "estimate": {"lut": est.lut, "ff": est.ff, "bram36": est.bram36, "dsp": est.dsp},
            "synth_seconds": synth_s,
        })
    print(f"{args.model.name} on {args.board} ({family}) folded for {args.target_fps:,.0f} FPS, {args.vectors} vectors "
          f"per layer, {yosys.version()}\n")
    print(render(["layer", "PE x SIMD", "exact", "cycles (est)", "cyc/s", "LUT (est)", "FF (est)", "BRAM36 (est)",
                  "DSP (est)", "synth s"],
                 [[r["layer"], f"{r['pe']} x {r['simd']}", r["bit_exact"],
                   f"{r['cycles']:,} ({r['estimated_cycles']:,})", f"{r['cycles_per_second']:,.0f}",
                   f"{r['synth']['lut']:,.0f} ({r['estimate']['lut']:,.0f})",
                   f"{r['synth']['ff']:,.0f} ({r['estimate']['ff']:,.0f})",
                   f"{r['synth']['bram36']} ({r['estimate']['bram36']})",
                   f"{r['synth']['dsp']} ({r['estimate']['dsp']})", f"{r['synth_seconds']:.1f}"] for r in rows]))
    if skipped:
        print(f"\nno RTL kernel yet (not measured): {', '.join(skipped)}")
    result = {"model": args.model.name, "board": args.board, "family": family, "tool": yosys.version(),
              "vectors": args.vectors, "target_fps": args.target_fps, "layers": rows, "not_covered": skipped}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

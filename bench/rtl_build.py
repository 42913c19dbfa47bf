"""Benchmark (not a test): whole RTL builds (`edge build --backend rtl --synth`) against the estimates.

For each model and folding target: Verilator on the generated top (bit-exact against the IR and under random
back-pressure? steady cycles per frame vs the folded estimate, simulated cycles per second) and Yosys
`synth_xilinx` on the top for the board's family (LUT/FF/BRAM36/DSP vs the resource model, per kind, time).
Models default to the bundled TFC w2a2 digits model; pass QONNX files with --model (repeatable). `--zoo` runs the
RTL issue's benchmark instead: every zoo model (trained one epoch on digits: resources and cycles do not depend on
accuracy) at a target FPS of its size, and FINN's CNV-w1a1 at the most FPS the RTL backend fits on the pynq-z2.

    python bench/rtl_build.py [--model M.onnx ...] [--board pynq-z2] [--target-fps 2000 20000 0] [--hls-folding]
    python bench/rtl_build.py --zoo [--only dws --only cnv_1w1a]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from boards import load_board  # noqa: E402
from edge.build import build_rtl_model  # noqa: E402
from edge.table import render  # noqa: E402
from fpga.build import BuildOptions, compile_model  # noqa: E402
from fpga.folding import folding_to_data  # noqa: E402
from frontend.qonnx_io import load_model  # noqa: E402

KEYS = ("lut", "ff", "bram36", "dsp")
# --zoo: (zoo model, wbits, abits, target FPS, board), then FINN's CNV-w1a1 on the pynq-z2 at the most FPS the RTL
# backend fits under the cap (its Yosys counts checked against the cap in the table)
ZOO_RUNS = [("tfc", 1, 1, 20000, "pynq-z2"), ("sfc", 2, 2, 20000, "pynq-z2"), ("lfc", 1, 1, 1000, "pynq-z2"),
            ("cnv", 2, 2, 3000, "pynq-z2"), ("dws", 2, 2, 3000, "pynq-z2"), ("resnet", 2, 2, 2000, "pynq-z2"),
            ("vit", 4, 4, 500, "zcu104")]


def hls_folding(model: Path, board, work: Path) -> tuple[Path, float]:
    """The folding (and FPS) `edge build` picks for the HLS backend, as a folding file."""
    graph, report = compile_model(load_model(model), board, BuildOptions(verify_samples=0), verify_ir=False)
    path = work / f"{model.stem}_hls_folding.json"
    path.write_text(json.dumps(folding_to_data(graph)))
    return path, report["totals"]["fps"]


def run(model: Path, board: str, fps: float, work: Path, at_hls_folding: bool = False) -> dict:
    target = load_board(board)
    work.mkdir(parents=True, exist_ok=True)
    folding, hls_fps = hls_folding(model, target, work) if at_hls_folding else (None, None)
    opts = BuildOptions(target_fps=None if folding else (fps or None), folding=folding, verify_samples=32)
    t0 = time.perf_counter()
    _, report = build_rtl_model(load_model(model), target, opts, work / f"b_{int(fps)}", synth=True)
    seconds = time.perf_counter() - t0
    syn, rtl = report["synth"], report["rtl"]
    by_kind: dict[str, dict[str, float]] = {}
    for layer in syn["layers"]:
        agg = by_kind.setdefault(layer["kind"], {f"{k}_{s}": 0.0 for k in KEYS for s in ("yosys", "est")})
        for k in KEYS:
            agg[f"{k}_yosys"] += layer["resources"].get(k, 0)
            agg[f"{k}_est"] += (layer.get("estimate") or {}).get(k, 0)
    avail = target.resources.as_dict()
    # Yosys' counts against the board: within the utilisation cap?
    utilisation = {k: round(syn["resources"][k] / avail[k], 3) if avail.get(k) else None for k in KEYS}
    return {"model": model.name, "board": board,
            "target_fps": f"HLS backend's folding ({hls_fps:,.0f} FPS)" if folding else (fps or "max"),
            "fps": report["totals"]["fps"], "yosys_utilisation": utilisation, "rtl": rtl,
            "yosys": syn["resources"], "estimate": syn["estimate"], "ratio": syn["ratio"], "by_kind": by_kind,
            "fifos_yosys": syn["fifos"], "synth_seconds": syn["seconds"], "build_seconds": round(seconds, 1),
            "tool": syn["tool"], "family": syn["family"]}


HEADER = ["model", "board", "target FPS", "exact", "cycles/frame (est)", "Verilator cyc/s", "LUT (est)", "FF (est)",
          "BRAM36 (est)", "DSP (est)", "Yosys of board (LUT/FF/BRAM/DSP)", "Yosys s", "build s"]


def row(r: dict) -> list[str]:
    """One table row: exactness, cycles and resources against the estimate, speeds."""
    v = r["rtl"]

    def res(k: str) -> str:
        y, e = r["yosys"][k], r["estimate"][k]
        fmt = f"{y:,.1f} ({e:,.1f})" if k == "bram36" else f"{y:,.0f} ({e:,.0f})"
        return fmt + (f" {100 * (e / y - 1):+.1f}%" if k in ("lut", "ff") and y else "")

    # Verilator against the integer IR, free running and under back-pressure; the IR against the golden model is
    # bit-exact, or within the Softmax/LayerNorm bound for a transformer ("bound")
    exact = v["rtl_vs_ir_bit_exact"] and v["backpressure"]
    golden = "" if v.get("ir_vs_golden_bit_exact") is not False else " (IR: bound)" if v.get(
        "ir_vs_golden_passed") else " (IR: FAIL)"
    return [r["model"], r["board"], str(r["target_fps"]), ("yes" if exact else "NO") + golden,
            f"{v['cycles_per_frame']:,.0f} ({v['estimated_cycles_per_frame']:,}) {100 * v['cycles_vs_estimate']:+.1f}%",
            f"{v['cycles_per_second'] / 1e6:.1f} M", *[res(k) for k in KEYS],
            " / ".join(f"{100 * (r['yosys_utilisation'][k] or 0):.0f}%" for k in KEYS),
            f"{r['synth_seconds']:.0f}", f"{r['build_seconds']:.0f}"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, action="append")
    ap.add_argument("--board", default="pynq-z2")
    ap.add_argument("--target-fps", type=float, nargs="+", default=[2000, 100000, 0])
    ap.add_argument("--hls-folding", action="store_true",
                    help="build each model once, at the folding the HLS backend picks for the board (no --target-fps)")
    ap.add_argument("--zoo", action="store_true", help="every zoo model and FINN's CNV-w1a1 (see above)")
    ap.add_argument("--only", action="append", metavar="MODEL",
                    help="with --zoo: run only these models (e.g. dws, cnv_1w1a; repeatable) and replace their rows "
                         "in --out, keeping the others")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "rtl_build.json")
    ap.add_argument("--table", action="store_true", help="print the table of --out's results again (no builds)")
    args = ap.parse_args()
    if args.table:
        results = json.loads(args.out.read_text())["results"]
        print(render(HEADER, [row(r) for r in results]))
        return
    rows, results = [], []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.zoo:
            from bench.rtl_calibration import zoo
            from edge.corpus import bnn_pynq

            only = set(args.only or [])
            runs = [(zoo(work, m, wb, ab), fps, False, board) for m, wb, ab, fps, board in ZOO_RUNS
                    if not only or m in only]
            if not only or "cnv_1w1a" in only:
                runs.append((bnn_pynq("cnv_1w1a", work), 0.0, False, "pynq-z2"))
        else:
            models = args.model or [ROOT / "edge" / "models" / "tfc_w2a2_digits.onnx"]
            runs = [(m, fps, args.hls_folding, args.board) for m in models
                    for fps in ([0.0] if args.hls_folding else args.target_fps)]
        for i, (m, fps, at_hls, board) in enumerate(runs):
            r = run(m, board, fps, work / f"run{i}", at_hls)
            if args.zoo:
                r["model"] = m.parent.name if m.name == "model.onnx" else m.stem
            results.append(r)
            rows.append(row(r))
            print(rows[-1], flush=True)
    if args.zoo and args.only and args.out.exists():  # the other models' rows of the earlier run stay, in order
        fresh = {r["model"].split("_w")[0]: r for r in results}
        results = [fresh.pop(r["model"].split("_w")[0], r) for r in json.loads(args.out.read_text())["results"]]
        results += list(fresh.values())
        rows = [row(r) for r in results]
    print(render(HEADER, rows))
    worst = {k: max(abs(r["estimate"][k] / r["yosys"][k] - 1) for r in results if r["yosys"][k]) for k in ("lut", "ff")}
    cyc = max(abs(r["rtl"]["cycles_vs_estimate"]) for r in results)
    print(f"worst: cycles {100 * cyc:.1f}%, LUT {100 * worst['lut']:.1f}%, FF {100 * worst['ff']:.1f}% "
          "(estimate vs Verilator / Yosys)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"worst_estimate_error": {"cycles": cyc, **worst},
                                    "results": results}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

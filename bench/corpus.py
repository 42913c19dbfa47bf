"""Benchmark (not a test): the real-model corpus through every path, as a table.

Each model of edge.corpus (FINN's 11 bnn_pynq networks, finn-examples' KWS, UNSW-NB15 and RadioML architectures,
small models for each front-end idiom; random weights, randomised BatchNorm) goes through
`edge build --board pynq-z2` (IR vs golden, C-sim, cycle sim) and `edge export` to all four targets, each as a
separate process as a user would run it. Reports pass/fail, build and export time, and the build's estimated
FPS and peak utilisation.

    python bench/corpus.py [--models tfc_1w1a,cnv_1w1a] [--no-sim] [--out bench/results/corpus.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.corpus import BNN_PYNQ, FINN_EXAMPLES, IDIOMS, bnn_pynq  # noqa: E402
from edge.table import render  # noqa: E402

TARGETS = ("onnx", "tflite", "openvino", "tensorrt")


def run_edge(*args: str) -> tuple[int, dict[str, Any] | None, str, float]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "edge.cli", *args, "--json"], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    try:
        report = json.loads(proc.stdout) if proc.stdout.strip() else None
    except json.JSONDecodeError:
        report = None
    err = proc.stderr.strip().splitlines()
    return proc.returncode, report, err[-1] if err else "", seconds


def one_model(name: str, path: Path, work: Path, simulate: bool) -> dict[str, Any]:
    row: dict[str, Any] = {"model": name}
    args = ["build", "--board", "pynq-z2", str(path), "-o", str(work / f"{name}-build")]
    code, report, err, seconds = run_edge(*args, *([] if simulate else ["--no-sim"]))
    row["build_seconds"] = round(seconds, 1)
    if report is None:
        row.update(build="error", build_error=err)
    else:
        sim = report.get("simulation") or {}
        v = report["verification"]  # Softmax/LayerNorm models pass within their stated bound, not bit-exact
        row.update(build="bit-exact" if v["bit_exact"] else "within bound" if v["passed"] else "FAIL",
                   csim=("pass" if sim.get("csim", {}).get("passed") else "FAIL") if sim else "-",
                   cycle_sim=("pass" if sim.get("cycle_sim", {}).get("outputs_bit_exact") else "FAIL") if sim else "-",
                   fps=report["totals"].get("fps") or report.get("fps"),
                   utilisation=report["totals"]["utilisation"])
    for target in TARGETS:
        code, report, err, seconds = run_edge("export", str(path), "--target", target, "-o",
                                              str(work / f"{name}-{target}"))
        if report is None:
            row[target] = "error"
            row[f"{target}_error"] = err
        else:
            v = report["verification"]
            row[target] = "pass" if v["passed"] else f"FAIL ({v['max_diff_output_lsb']:.2f} LSB)"
        row[f"{target}_seconds"] = round(seconds, 1)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = [*BNN_PYNQ, *(m for m in FINN_EXAMPLES if m != "mobilenet_v1_w4a4"), *IDIOMS]
    parser.add_argument("--models", default=",".join(default),
                        help="comma-separated names (mobilenet_v1_w4a4 too, on a board that fits it)")
    parser.add_argument("--no-sim", action="store_true", help="skip C-sim and cycle simulation in the builds")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "corpus.json")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in args.models.split(","):
            makers = {**FINN_EXAMPLES, **IDIOMS}
            path = makers[name](work) if name in makers else bnn_pynq(name, work)
            rows.append(one_model(name, path, work, not args.no_sim))
            print(f"{name}: {rows[-1].get('build')} ({rows[-1]['build_seconds']} s)", file=sys.stderr)
    headers = ["model", "build", "csim", "cycle sim", "onnx", "tflite", "openvino", "tensorrt", "build s", "FPS",
               "LUT %", "BRAM %"]
    table = [[r["model"], r.get("build"), r.get("csim", "-"), r.get("cycle_sim", "-"), *[r[t] for t in TARGETS],
              r["build_seconds"], round(r["fps"]) if r.get("fps") else "-",
              round(100 * r["utilisation"]["lut"], 1) if r.get("utilisation") else "-",
              round(100 * r["utilisation"]["bram36"], 1) if r.get("utilisation") else "-"] for r in rows]
    print(render(headers, table))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"board": "pynq-z2", "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

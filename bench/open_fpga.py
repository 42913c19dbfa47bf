"""Benchmark (not a test): open FPGAs to a bitstream (`edge build --board B --bitfile`, Yosys + nextpnr + packer).

Per board and model: cycles per frame and FPS at the board clock (Verilator), routed Fmax and the FPS it would
allow, the UART's frame rate, routed LUT4/FF/block RAM/multipliers from nextpnr beside the resource model's estimate
(still the Xilinx model), the serial-line Verilator check, the seconds of each step and the peak RSS of the build.

    python bench/open_fpga.py [--model M.onnx ...] [--board ulx3s-85f tangnano-9k ...] [--target-fps 20000]
                              [--append]   (keep the other rows of the results file, replace these)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.table import render  # noqa: E402

KEYS = ("lut", "ff", "bram36", "dsp")
EDGE = Path(sys.executable).with_name("edge")


def run(model: Path, board: str, fps: float, work: Path) -> dict:
    """One `edge build --bitfile` in a child process (its own peak RSS)."""
    out = work / f"{board}_{model.stem}_{int(fps)}"
    cmd = [str(EDGE), "build", str(model), "--board", board, "--bitfile", "--json", "-o", str(out)]
    if fps:
        cmd += ["--target-fps", str(fps)]
    t0 = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    rss_mb = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    row = {"model": model.name, "board": board, "target_fps": fps or "max", "build_seconds": round(seconds, 1),
           "peak_rss_mb_children": round(rss_mb)}
    if done.returncode != 0:
        row["error"] = (done.stderr.strip().splitlines() or ["?"])[-1]
        return row
    report = json.loads(done.stdout)
    bs, rtl = report["bitstream"], report.get("rtl") or {}
    cycles = rtl.get("cycles_per_frame") or report["totals"]["bottleneck_cycles"]
    est = report["totals"]["resources"]
    row.update({
        "cycles_per_frame": cycles, "clock_mhz": bs["clock_mhz"], "fps_at_clock": round(bs["clock_mhz"] * 1e6 / cycles),
        "fmax_mhz": bs["fmax_mhz"], "fps_at_fmax": round((bs["fmax_mhz"] or 0) * 1e6 / cycles),
        "link_fps": bs["link_fps"], "rtl_bit_exact": rtl.get("bit_exact"),
        "serial_bit_exact": (bs.get("serial_sim") or {}).get("bit_exact"),
        "routed": bs["resources"], "utilisation": bs["utilisation"], "estimate": {k: est[k] for k in KEYS},
        "seconds": bs["seconds"], "bitstream_bytes": bs["bytes"],
    })
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, action="append")
    ap.add_argument("--board", nargs="+", default=["ulx3s-85f", "orangecrab-25f", "tangprimer-20k", "tangnano-9k"])
    ap.add_argument("--target-fps", type=float, nargs="+", default=[20000])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "open_fpga.json")
    ap.add_argument("--append", action="store_true", help="keep the results file's other rows")
    args = ap.parse_args()
    models = args.model or [ROOT / "edge" / "models" / "tfc_w2a2_digits.onnx"]
    rows, results = [], []
    kept = json.loads(args.out.read_text()) if args.append and args.out.exists() else []
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            for board in args.board:
                for fps in args.target_fps:
                    r = run(model, board, fps, Path(tmp))
                    results.append(r)
                    print(json.dumps(r), flush=True)
                    if "error" in r:
                        rows.append([r["model"], board, f"{fps:g}", r["error"][:60], *[""] * 8])
                        continue
                    s = r["seconds"]
                    rows.append([
                        r["model"], board, f"{fps:g}", f"{r['cycles_per_frame']:,.0f}",
                        f"{r['fmax_mhz']:g} ({r['clock_mhz']:g})", f"{r['fps_at_clock']:,} / {r['link_fps']:,.0f}",
                        "yes" if r["rtl_bit_exact"] and r["serial_bit_exact"] else "NO",
                        f"{r['routed']['lut']:,.0f} ({r['estimate']['lut']:,.0f})",
                        f"{r['routed']['ff']:,.0f} ({r['estimate']['ff']:,.0f})",
                        f"{r['routed']['bram36']:g} ({r['estimate']['bram36']:g})",
                        f"{s['yosys']:.0f}/{s['nextpnr']:.0f}/{s['pack']:.0f}", f"{r['build_seconds']:.0f}",
                    ])
    print(render(["model", "board", "target FPS", "cycles/frame", "Fmax (clock) MHz", "FPS clock / UART",
                  "exact", "LUT4 (est)", "FF (est)", "BRAM36 (est)", "yosys/pnr/pack s", "build s"], rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fresh = {(r["model"], r["board"], r["target_fps"]) for r in results}
    kept = [r for r in kept if (r["model"], r["board"], r["target_fps"]) not in fresh]
    args.out.write_text(json.dumps(kept + results, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

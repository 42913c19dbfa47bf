"""Benchmark (not a test): fold FINN's reference networks for three boards and compare with published FINN figures.

Builds TFC/SFC/LFC (784-{64,256,1024}x3-10) and CNV (32x32x3, FINN's exact shape) at w1a1 and w2a2 with random
valid quantised weights, compiles each for pynq-z2, zcu104 and alveo-u250 at 100 MHz, and prints estimated FPS,
latency and utilisation next to the published numbers, plus the resource-bound ceiling and our fraction of it.
Then applies finn-examples' own CNV-w1a1 and TFC-w1a1 foldings and prints our resource model against the
published post-synthesis figures.

    python bench/fpga_folding.py [--out bench/results/fpga_folding.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from torch import nn

from boards import load_board
from edge.corpus import FINN_EXAMPLES
from edge.table import render
from edge.train import export_qonnx_file
from edge.zoo import finn_cnv, finn_mlp
from fpga.build import random_inputs
from fpga.folding import fold_to_budget
from fpga.ir import MatrixVectorUnit, MaxPool, SlidingWindow
from fpga.lower import lower
from fpga.report import build_report
from fpga.resources import DSP_MIN_PRODUCT_BITS, XNOR_LUTS_PER_LANE, Resources, _mult_luts
from fpga.width import insert_width_converters
from frontend.errors import EdgeError
from frontend.qonnx_io import load_model
from hls.flow import simulate_project

BOARDS = ("pynq-z2", "zcu104", "alveo-u250")
CLOCK_MHZ = 100.0
PUBLISHED_FPS = {  # img/s at 100 MHz on xc7z020
    ("tfc", 1): ("finn-examples TFC-w1a1", 837_019),
    ("cnv", 1): ("finn-examples CNV-w1a1 / BNN-PYNQ CNV-W1A1", 3_020),
}
BNN_PYNQ_CNV_W1A1 = 9_150
# finn-examples CNV-w1a1 on xc7z020 at 100 MHz: (PE, SIMD) for conv1..conv6, fc1..fc3; SWG SIMD 3 then 32
FINN_CNV_W1A1_FOLDING = [(16, 3), (32, 32), (16, 32), (16, 32), (4, 32), (1, 32), (1, 4), (1, 8), (5, 1)]
FINN_CNV_W1A1_PUBLISHED = {"lut": 21_135, "ff": 31_517, "bram36": 98 + 9 / 2, "dsp": 0, "bottleneck_cycles": 32_768}
FINN_TFC_W1A1_FOLDING = [(16, 49), (8, 8), (8, 8), (10, 8)]
# Second published point, not used for calibration: FINN's UNSW-NB15 MLP w2a2 (cybersecurity notebooks, finn v0.6)
# on xc7z020 at 100 MHz, 8,667 LUT, 22 BRAM18, 211 cycles latency; folding from the notebook's target_fps=1e6
# build (final_hw_config.json): (PE, SIMD) per MVAU.
FINN_UNSW_FOLDING = [(32, 15), (4, 16), (4, 16), (1, 1)]
FINN_UNSW_PUBLISHED = {"lut": 8_667, "bram36": 22 / 2, "latency_cycles": 211}


def random_model(name: str, bits: int) -> nn.Module:
    """A reference network with random weights and random BatchNorm statistics (valid, non-trivial thresholds)."""
    torch.manual_seed(0)
    model = finn_cnv(bits, bits) if name == "cnv" else finn_mlp({"tfc": 64, "sfc": 256, "lfc": 1024}[name], bits, bits)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            m.running_mean.uniform_(-2, 2)
            m.running_var.uniform_(0.5, 4)
            m.weight.data.uniform_(0.5, 2)
    return model.eval()


def export(name: str, bits: int, directory: Path) -> Path:
    path = directory / f"{name}_w{bits}a{bits}.onnx"
    shape = (3, 32, 32) if name == "cnv" else (784,)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx_file(random_model(name, bits), shape, path, {"edge.model": name})
    return path


def macs_per_frame(graph) -> int:
    return sum(n.mw * n.mh * n.vectors for n in graph.nodes if isinstance(n, MatrixVectorUnit))


def lane_luts(bits: int) -> float:
    """LUTs of one MAC lane in our model: XNOR-popcount at 1 bit, a fabric multiplier plus adder tree above."""
    if bits == 1:
        return XNOR_LUTS_PER_LANE
    if 2 * bits >= DSP_MIN_PRODUCT_BITS:
        return 2 * bits
    return _mult_luts(bits, bits) + 2 * bits


def with_folding(graph, mvau_folds, swg_simd):
    """Apply a published folding: MVAUs in order, SWG SIMD in order, max-pools over all channels per cycle."""
    mvau, swg, nodes = iter(mvau_folds), iter(swg_simd), []
    for n in graph.nodes:
        if isinstance(n, MatrixVectorUnit):
            pe, simd = next(mvau)
            n = n.with_fold(pe, simd)
        elif isinstance(n, SlidingWindow):
            n = n.with_fold(1, next(swg))
        elif isinstance(n, MaxPool):
            n = n.with_fold(n.channels, 1)  # FINN's StreamingMaxPool takes a whole pixel per cycle
        nodes.append(n)
    return graph.with_nodes(tuple(nodes))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "fpga_folding.json")
    args = parser.parse_args()
    results: dict = {"clock_mhz": CLOCK_MHZ, "runs": [], "calibration": {}}
    rows: list[list] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("tfc", "sfc", "lfc", "cnv"):
            for bits in (1, 2):
                path = export(name, bits, Path(tmp))
                t0 = time.perf_counter()
                loaded = load_model(path)
                graph = lower(loaded)
                lower_s = time.perf_counter() - t0
                macs = macs_per_frame(graph)
                for board_name in BOARDS:
                    board = dataclasses.replace(load_board(board_name), clock_mhz=CLOCK_MHZ)
                    t1 = time.perf_counter()
                    try:
                        folded = fold_to_budget(graph, board, cap=0.8)
                    except EdgeError as exc:
                        results["runs"].append({"model": f"{name}-w{bits}a{bits}", "board": board_name,
                                                "fits": False, "reason": str(exc)})
                        rows.append([f"{name}-w{bits}a{bits}", board_name, "does not fit", "", "", "", "", "", "",
                                     "", ""])
                        notes.append(f"{name}-w{bits}a{bits} on {board_name}: {exc}")
                        continue
                    fold_s = time.perf_counter() - t1
                    rep = build_report(folded, board, 0.8)
                    t = rep["totals"]
                    ceiling = board.clock_hz * (board.resources.lut * 0.8 / lane_luts(bits)) / macs
                    pub = PUBLISHED_FPS.get((name, bits)) if board_name == "pynq-z2" else None
                    run = {"model": f"{name}-w{bits}a{bits}", "board": board_name, "fits": True, "fps": t["fps"],
                           "latency_us": t["latency_us"], "utilisation": t["utilisation"],
                           "bottleneck": t["bottleneck"], "bottleneck_cycles": t["bottleneck_cycles"],
                           "macs_per_frame": macs, "ceiling_fps": ceiling, "fraction_of_ceiling": t["fps"] / ceiling,
                           "build_seconds": round(lower_s + fold_s, 3),
                           "published": {"source": pub[0], "fps": pub[1]} if pub else None}
                    results["runs"].append(run)
                    u = t["utilisation"]
                    rows.append([run["model"], board_name, round(t["fps"]), round(t["latency_us"], 1),
                                 f"{u['lut']:.0%}", f"{u['bram36']:.0%}", f"{u['dsp']:.0%}", round(ceiling),
                                 f"{run['fraction_of_ceiling']:.0%}", f"{pub[1]:,}" if pub else "-",
                                 round(lower_s + fold_s, 2)])
                if name == "cnv" and bits == 1:
                    folded = with_folding(graph, FINN_CNV_W1A1_FOLDING, [3, 32, 32, 32, 32, 32])
                    results["calibration"]["cnv_w1a1"] = calibrate(folded, loaded, FINN_CNV_W1A1_PUBLISHED,
                                                                   Path(tmp) / "cnv_cal")
                if name == "tfc" and bits == 1:
                    tfc = with_folding(graph, FINN_TFC_W1A1_FOLDING, [])
                    results["calibration"]["tfc_w1a1_cycles"] = max(n.cycles() for n in tfc.nodes)
        unsw = load_model(FINN_EXAMPLES["unsw_mlp_w2a2"](Path(tmp)))
        folded = with_folding(lower(unsw), FINN_UNSW_FOLDING, [])
        results["calibration"]["unsw_w2a2"] = calibrate(folded, unsw, FINN_UNSW_PUBLISHED, Path(tmp) / "unsw_cal")
    print(f"Estimated throughput at {CLOCK_MHZ:g} MHz, 80% utilisation cap (ceiling: LUT budget / LUTs per MAC lane)")
    print(render(["model", "board", "FPS", "latency us", "LUT", "BRAM", "DSP", "ceiling FPS", "of ceil",
                  "FINN published", "build s"], rows))
    print(f"(BNN-PYNQ CNV-W1A1: {BNN_PYNQ_CNV_W1A1:,} img/s on xc7z020 at 100 MHz)")
    for note in notes:
        print("  " + note)
    for key, title in (("cnv_w1a1", "finn-examples' CNV-w1a1 (calibration point)"),
                       ("unsw_w2a2", "FINN's UNSW-NB15 MLP w2a2 (held-out point)")):
        cal = results["calibration"][key]
        print(f"\nResource model on {title} folding (xc7z020, 100 MHz), FIFOs sized by the cycle simulation:")
        crow = [[k, f"{cal['predicted'][k]:,.1f}", f"{cal['published'][k]:,.1f}",
                 f"{(cal['predicted'][k] / cal['published'][k] - 1):+.1%}" if cal["published"][k] else "-"]
                for k in cal["published"] if k in cal["predicted"]]
        print(render(["", "predicted", "published", "error"], crow))
        print(f"  of which FIFOs: {cal['fifo_resources']}; converters: {cal['converter_resources']}")
    print(f"TFC-w1a1 with finn-examples' folding: {results['calibration']['tfc_w1a1_cycles']} cycles/frame "
          "(published: 64)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


def calibrate(folded, loaded, published: dict, project: Path) -> dict:
    """Our estimate of a published FINN build at its own folding: nodes, width converters and the FIFOs our
    cycle-level simulation sizes (4 frames), against the published post-synthesis figures."""
    board = dataclasses.replace(load_board("pynq-z2"), clock_mhz=CLOCK_MHZ)
    graph = insert_width_converters(folded)
    sim, _ = simulate_project(graph, board, project, random_inputs(loaded, 4, seed=0))
    rep = build_report(graph, board, 1.0, sim["fifo_sizing"]["depths"])
    res = rep["totals"]["resources"]
    dwc = sum((Resources(r["lut"], r["ff"], r["bram36"]) for r in rep["layers"]
               if r["op"] == "StreamingDataWidthConverter"), Resources())
    predicted = {"lut": res["lut"], "ff": res["ff"], "bram36": res["bram36"], "dsp": res["dsp"],
                 "bottleneck_cycles": rep["totals"]["bottleneck_cycles"],
                 "latency_cycles": sim["cycle_sim"]["first_frame_latency_cycles"]}
    return {"predicted": predicted, "published": published, "fifo_resources": rep["totals"]["fifo_resources"],
            "converter_resources": dwc.as_dict(), "simulation_passed": sim["passed"],
            "fifo_depths": sim["fifo_sizing"]["depths"],
            "per_layer": [{k: r[k] for k in ("name", "pe", "simd", "cycles", "lut", "bram36", "memory")}
                          for r in rep["layers"]]}


if __name__ == "__main__":
    sys.exit(main())

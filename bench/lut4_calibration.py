"""Benchmark (not a test): the resource model against Yosys on the open families (ECP5, iCE40, Gowin).

The resource model counts Xilinx LUT6/FF/BRAM36/DSP48; an open board has LUT4s, 18 Kb (ECP5, Gowin) or 4 Kb (iCE40)
block RAM and its own multipliers. This synthesises the same RTL tops with synth_ecp5, synth_ice40 and synth_gowin
(hierarchy kept) and reports, per family, Yosys' counts over the model's: the factors fpga/resources.py holds in
FAMILY_FACTORS (the folder scales the board's budget by them, the report states LUT4 figures). For iCE40 it also
places the top with nextpnr to relate LUT4s and flip-flops to the logic cells the part has (one LUT4 and one FF
each): ICE40_FF_PER_LC.

    python bench/lut4_calibration.py [--out bench/results/lut4_calibration.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.table import render  # noqa: E402

KEYS = ("lut", "ff", "bram36", "dsp")
FAMILIES = ("ecp5", "ice40", "gowin")
EDGE = Path(sys.executable).with_name("edge")


def tiny_mlp(path: Path, hidden: list[int]) -> Path:
    """A small Brevitas MLP on digits (2-bit): the size an iCE40UP5K holds."""
    from edge.data import load_digits_dataset
    from edge.train import TrainConfig, export_qonnx_file, fit
    from edge.zoo import QuantMLP

    model = QuantMLP(64, hidden, 10, 2, 2)
    fit(model, TrainConfig("tiny", 2, 2, epochs=5), load_digits_dataset(), (64,), "tiny", progress=False)
    export_qonnx_file(model, (64,), path, {})
    return path


def zoo(work: Path, model: str, wbits: int, abits: int) -> Path:
    out = work / f"{model}_w{wbits}a{abits}"
    subprocess.run([str(EDGE), "train", "--model", model, "--wbits", str(wbits), "--abits", str(abits), "--epochs",
                    "2", "--no-float-baseline", "-o", str(out)], check=True, capture_output=True)
    return out / "model.onnx"


def design(model: Path, fps: float, work: Path) -> tuple[Path, dict, dict]:
    """An RTL project (no simulation), the model's estimate for it and its per-layer estimates (node -> counts)."""
    out = work / f"{model.stem}_{model.parent.name}_{int(fps)}"
    subprocess.run([str(EDGE), "build", str(model), "--board", "ulx3s-85f", "--no-sim", "--target-fps", str(fps),
                    "-o", str(out)], check=True, capture_output=True)
    report = json.loads((out / "report.json").read_text())
    layers = {ly["name"]: {k: ly[k] for k in KEYS} for ly in report["layers"]}
    layers["FIFOs"] = {k: report["totals"]["fifo_resources"][k] for k in KEYS}
    return out / "rtl", {k: report["totals"]["resources"][k] for k in KEYS}, layers


def by_kind(syn: dict, layers: dict) -> dict:
    """Yosys' and the model's LUT/FF per layer kind (the top's FIFOs as StreamingFIFO)."""
    out: dict[str, dict[str, float]] = {}
    rows = [(ly["kind"], ly["resources"], layers.get(ly["node"], {})) for ly in syn["layers"]]
    rows.append(("StreamingFIFO", syn["fifos"], layers["FIFOs"]))
    for kind, got, est in rows:
        k = out.setdefault(kind, {"lut": 0.0, "lut_est": 0.0, "ff": 0.0, "ff_est": 0.0})
        for key in ("lut", "ff"):
            k[key] += got.get(key, 0.0)
            k[f"{key}_est"] += est.get(key, 0.0)
    return out


def ice40_logic_cells(project_dir: Path) -> dict:
    """nextpnr-ice40 on the iCEBreaker's board top (the design behind its UART shell): logic cells used, beside the
    LUT4s and flip-flops of the netlist it placed."""
    from collections import Counter

    from boards import load_board
    from rtl.bitstream import BOARD_TOP, build_bitstream
    from rtl.project import load_project
    from rtl.yosys import count

    try:
        bs = build_bitstream(load_project(project_dir), load_board("icebreaker"))
    except Exception as exc:  # too big for the UP5K: no logic-cell figure
        return {"error": str(exc).splitlines()[0][:120]}
    netlist = json.loads((project_dir / "pnr" / "board.json").read_text())["modules"][BOARD_TOP]["cells"]
    cells = count(dict(Counter(c["type"] for c in netlist.values())), "ice40")
    return {"logic_cells": bs["resources"]["lut"], "lut": cells["lut"], "ff": cells["ff"]}


def main() -> None:
    from rtl.flow import synthesise
    from rtl.project import load_project

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "lut4_calibration.json")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        models = [
            (ROOT / "edge" / "models" / "tfc_w2a2_digits.onnx", [20000, 2000]),
            (tiny_mlp(work / "tiny16.onnx", [16]), [5000]),
            (tiny_mlp(work / "tiny32x2.onnx", [32, 32]), [5000, 1000]),
            (zoo(work, "tfc", 1, 1), [20000]),
            (zoo(work, "tfc", 4, 4), [5000]),
            (zoo(work, "cnv", 1, 1), [2000]),
            (zoo(work, "dws", 2, 2), [2000]),
        ]
        for model, rates in models:
            for fps in rates:
                project_dir, est, layers = design(model, fps, work)
                row = {"model": f"{model.parent.name}/{model.name}" if model.parent != work else model.name,
                       "target_fps": fps, "estimate": est, "yosys": {}, "by_kind": {}, "seconds": {}}
                for family in FAMILIES:
                    t0 = time.perf_counter()
                    syn = synthesise(load_project(project_dir), family)
                    row["yosys"][family] = {k: syn["resources"][k] for k in KEYS}
                    row["by_kind"][family] = by_kind(syn, layers)
                    row["seconds"][family] = round(time.perf_counter() - t0, 1)
                if row["yosys"]["ice40"]["lut"] < 5000:
                    row["ice40_pnr"] = ice40_logic_cells(project_dir)
                results.append(row)
                print(json.dumps(row), flush=True)
    factors = {}
    for family in FAMILIES:
        factors[family] = {}
        for k in ("lut", "ff", "bram36"):
            est = sum(r["estimate"][k] for r in results)
            got = sum(r["yosys"][family][k] for r in results)
            factors[family][k] = round(got / est, 3) if est else None
    kinds: dict[str, dict[str, dict[str, float]]] = {}
    for family in FAMILIES:
        acc: dict[str, dict[str, float]] = {}
        for r in results:
            for kind, v in r["by_kind"][family].items():
                a = acc.setdefault(kind, {"lut": 0.0, "lut_est": 0.0, "ff": 0.0, "ff_est": 0.0})
                for key in a:
                    a[key] += v[key]
        streams = [acc[k] for k in ("StreamingFIFO", "StreamingDataWidthConverter") if k in acc]
        acc["streams"] = {key: sum(a[key] for a in streams) for key in ("lut", "lut_est", "ff", "ff_est")}
        others = [a for k, a in acc.items() if k not in ("StreamingFIFO", "StreamingDataWidthConverter", "streams",
                                                          "MatrixVectorUnit")]
        acc["other"] = {key: sum(a[key] for a in others) for key in ("lut", "lut_est", "ff", "ff_est")}
        kinds[family] = {kind: {key: (round(a[key] / a[f"{key}_est"], 3) if a[f"{key}_est"] else None)
                                for key in ("lut", "ff")} for kind, a in acc.items()}
    lc = [(r["ice40_pnr"], r["ice40_pnr"]["logic_cells"]) for r in results
          if "logic_cells" in (r.get("ice40_pnr") or {})]
    # logic cells = LUT4s + the flip-flops that found no LUT to pair: the share of FFs that take a cell of their own
    ff_per_lc = round(sum(c - y["lut"] for y, c in lc) / sum(y["ff"] for y, _ in lc), 3) if lc else None
    rows = []
    for r in results:
        e = r["estimate"]
        rows.append([r["model"], f"{r['target_fps']:g}", f"{e['lut']:,.0f} / {e['ff']:,.0f} / {e['bram36']:g}",
                     *[f"{r['yosys'][f]['lut']:,.0f} / {r['yosys'][f]['ff']:,.0f} / {r['yosys'][f]['bram36']:g}"
                       for f in FAMILIES],
                     str((r.get("ice40_pnr") or {}).get("logic_cells", "-"))])
    print(render(["model", "target FPS", "estimate LUT/FF/BRAM36", *[f"{f} LUT4/FF/BRAM36" for f in FAMILIES],
                  "iCE40 LCs"], rows))
    print("factors (Yosys / estimate over all designs): " + json.dumps(factors))
    print("per kind (Yosys / estimate, LUT and FF): " + json.dumps(kinds))
    print(f"iCE40: flip-flops taking a logic cell of their own, per FF: {ff_per_lc}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    summary = {"designs": results, "factors": factors, "by_kind": kinds, "ice40_ff_per_lc": ff_per_lc}
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

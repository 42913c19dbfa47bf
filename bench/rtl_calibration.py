"""Benchmark (not a test): the RTL backend's resource model against Yosys on Xilinx parts, and its calibration.

Builds RTL tops of zoo models at several foldings (`edge build --backend rtl --board pynq-z2 --no-sim`),
synthesises each with `synth_xilinx -family xc7` (hierarchy kept), and synthesises stream FIFOs of several widths
and depths and width converters of several word sizes on their own. Per layer it records the features
fpga/resources_rtl.py scales and Yosys' LUT and FF counts, fits the coefficients per group (non-negative least
squares, weighted towards relative error) and prints them for fpga/resources_rtl.py COEFFICIENTS. Each design is
also predicted with coefficients fitted on the other designs only (leave one design out): the table's error columns
are on designs the fit has not seen.

    python bench/rtl_calibration.py [--rows earlier.json [--kernel-sweeps] [--refeature]] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.table import render  # noqa: E402

KEYS = ("lut", "ff", "bram36", "dsp")
EDGE = Path(sys.executable).with_name("edge")
BOARD = "pynq-z2"
# (zoo model, wbits, abits, target FPS values); the bundled TFC w2a2 comes first
DESIGNS = [
    ("tfc", 1, 1, [20000, 200000]),
    ("tfc", 4, 4, [5000, 50000, 200000]),
    ("sfc", 2, 2, [5000, 50000]),
    ("cnv", 1, 1, [500, 3000, 8000]),
    ("cnv", 2, 2, [500, 3000]),
    ("dws", 2, 2, [1000, 5000]),
    ("resnet", 2, 2, [500, 3000]),
]
FINN_CNV_FPS = (1000, 8000)  # 8,000: about what the HLS backend reaches on the pynq-z2 (7,972)
# FIFO shapes as simulation sizes them: narrow and deep, depths not powers of two, LUT RAM and block RAM
FIFOS = [(w, d) for w in (2, 6, 8, 18, 32, 64) for d in (2, 3, 8, 16, 40, 64, 100, 161, 256, 450, 577, 1024, 5168)]
# (IN, OUT, element bits) of width converters on their own: the designs have few, most of them 8 -> 1
CONVERTERS = [(8, 1, 8), (8, 2, 8), (8, 4, 8), (1, 8, 8), (2, 8, 8), (2, 5, 8), (5, 2, 8), (3, 2, 4), (2, 3, 4),
              (1, 6, 2), (6, 1, 2), (4, 6, 4), (6, 4, 4), (16, 1, 4), (1, 16, 4), (8, 3, 8), (3, 8, 8), (1, 5, 7),
              (4, 1, 16), (1, 3, 2), (2, 5, 2), (12, 8, 4)]
# (channels, PE, input bits, output levels) of LayerNorm and Softmax kernels on their own (transformer widths)
LAYER_NORMS = [(16, 1, 8, 15), (32, 1, 8, 15), (32, 2, 8, 15), (64, 2, 4, 3), (32, 1, 4, 7), (64, 1, 8, 15),
               (16, 4, 8, 7), (16, 2, 6, 15)]
# (channels, PE, input bits, output bits) of Thresholding searched by edge_thrsearch (16 levels and more)
SEARCHES = [(16, 1, 12, 8), (64, 1, 16, 8), (64, 4, 16, 8), (32, 2, 10, 5), (256, 1, 16, 8), (128, 8, 14, 6),
            (8, 8, 16, 8), (512, 2, 18, 8)]
SOFTMAXES = [(8, 1, 8, 255), (16, 1, 8, 255), (16, 2, 8, 255), (32, 1, 8, 255), (32, 4, 4, 15), (64, 2, 8, 255),
             (8, 2, 4, 15), (64, 1, 8, 15)]


def zoo(work: Path, model: str, wbits: int, abits: int) -> Path:
    """A zoo model trained one epoch on digits (resources do not depend on accuracy)."""
    out = work / f"{model}_w{wbits}a{abits}"
    subprocess.run([str(EDGE), "train", "--model", model, "--wbits", str(wbits), "--abits", str(abits), "--epochs",
                    "1", "--no-float-baseline", "-o", str(out)], check=True, capture_output=True)
    return out / "model.onnx"


def design_rows(model: Path, name: str, fps: float, work: Path) -> list[dict]:
    """Per layer, and the top's FIFOs together: group, features, Yosys' xc7 counts and the HLS model's."""
    from fpga.resources import estimate
    from fpga.resources_rtl import features
    from fpga.serialize import load_graph
    from rtl.flow import synthesise
    from rtl.project import load_project

    out = work / f"{name}_{int(fps)}"
    subprocess.run([str(EDGE), "build", str(model), "--backend", "rtl", "--board", BOARD, "--no-sim",
                    "--target-fps", str(fps), "-o", str(out)], check=True, capture_output=True)
    graph = {n.name: n for n in load_graph(out).nodes}
    project = load_project(out / "rtl")
    t0 = time.perf_counter()
    syn = synthesise(project, "xc7")
    seconds = time.perf_counter() - t0
    design = f"{name}@{fps:g}"
    rows = []
    for layer in syn["layers"]:
        node = graph[layer["node"]]
        group, lut, ff = features(node)
        hls = estimate(node)[0]
        rows.append({"design": design, "node": node.name, "kind": node.kind, "group": group, "lut_features": lut,
                     "ff_features": ff, "yosys": {k: layer["resources"][k] for k in KEYS},
                     "hls_model": {"lut": hls.lut, "ff": hls.ff, "bram36": hls.bram36, "dsp": hls.dsp}})
    shapes = [[f["width"], f["depth"]] for f in project.fifos]
    rows.append({"design": design, "node": "FIFOs", "kind": "StreamingFIFO", "group": "fifo", "fifos": shapes,
                 **fifo_sum_features(shapes), "yosys": syn["fifos"], "hls_model": {k: 0.0 for k in KEYS}})
    print(f"{design}: {len(rows)} rows, Yosys {seconds:.0f} s", flush=True)
    return rows


def fifo_sum_features(shapes: list[list[int]]) -> dict[str, list[float]]:
    """A design's FIFOs as one row: the sum of each FIFO's features (width, depth as built)."""
    from fpga.resources_rtl import fifo_features

    each = [fifo_features(w, d) for w, d in shapes]
    return {"lut_features": [float(sum(f[1][i] for f in each)) for i in range(len(each[0][1]))],
            "ff_features": [float(sum(f[2][i] for f in each)) for i in range(len(each[0][2]))]}


def refeature_fifos(rows: list[dict]) -> list[dict]:
    """The designs' FIFO rows with features recomputed by the current model from their shapes. A row of an earlier run
    without shapes is kept only when all its FIFOs were depth 2 (no pointers): then its count and width sum suffice."""
    from fpga.resources_rtl import fifo_features

    out = []
    for r in rows:
        if r["group"] != "fifo" or r["design"].endswith(" sweep"):
            out.append(r)
        elif "fifos" in r:
            out.append({**r, **fifo_sum_features(r["fifos"])})
        elif r["ff_features"][1] == 0:  # depth 2 only: one 1 x 2 FIFO's features scaled by count and width sum
            count, width_sum = r["lut_features"][0], r["lut_features"][1]
            _, lut, ff = fifo_features(1, 2)
            out.append({**r, "lut_features": [count * x for x in lut[:1]] + [width_sum * lut[1]]
                        + [0.0] * (len(lut) - 2), "ff_features": [count * ff[0]] + [0.0] * (len(ff) - 1)})
        else:
            print(f"dropped {r['design']} FIFOs: deeper than 2 and no shapes recorded", flush=True)
    return out


def refeature(rows: list[dict], work: Path, group: str = "dot") -> list[dict]:
    """The `group` rows' FF features recomputed by the current fpga/resources_rtl.py, Yosys' counts kept (for a change
    of features, not of the RTL). Each design is built again at its target FPS without simulation or synthesis. A
    row whose LUT features come out different was folded differently then (the model has changed since): its node
    is not the one Yosys counted, so the row is dropped, unless it has no LUT ROM either way (its FF features do not
    depend on the change)."""
    from fpga.resources_rtl import features
    from fpga.serialize import load_graph

    models: dict[str, Path] = {"tfc_w2a2": ROOT / "edge" / "models" / "tfc_w2a2_digits.onnx"}
    out, dropped = [], []
    for design in dict.fromkeys(r["design"] for r in rows):
        mine = [r for r in rows if r["design"] == design]
        if design.endswith(" sweep") or not any(r["group"] == group for r in mine):
            out += mine
            continue
        name, fps = design.rsplit("@", 1)
        if name not in models:
            if name == "finn_cnv_1w1a":
                from edge.corpus import bnn_pynq

                models[name] = bnn_pynq("cnv_1w1a", work)
            else:
                model, bits = name.split("_w")
                wb, ab = bits.split("a")
                models[name] = zoo(work, model, int(wb), int(ab))
        build = work / f"{name}_{fps}"
        subprocess.run([str(EDGE), "build", str(models[name]), "--backend", "rtl", "--board", BOARD, "--no-sim",
                        "--verify-samples", "0", "--target-fps", fps, "-o", str(build)], check=True,
                       capture_output=True)
        graph = {n.name: n for n in load_graph(build).nodes}
        for r in mine:
            if r["group"] != group:
                out.append(r)
                continue
            _, lut, ff = features(graph[r["node"]])
            if np.allclose(lut, r["lut_features"]):
                out.append({**r, "ff_features": list(ff)})
            elif r["ff_features"][-1] == 0 and ff[-1] == 0:
                out.append(r)
            else:
                dropped.append(f"{design} {r['node']}")
        print(f"{design}: features recomputed", flush=True)
    if dropped:
        print(f"dropped (folded differently now): {', '.join(dropped)}", flush=True)
    return out


def fifo_rows() -> list[dict]:
    """edge_fifo on its own at several widths and depths (the designs above have depth-2 FIFOs only)."""
    from fpga.resources import fifo_estimate
    from fpga.resources_rtl import fifo_features
    from rtl import yosys
    from rtl.kernels import fifo

    rows = []
    for w, d in FIFOS:
        group, lut, ff = fifo_features(w, d)
        got = yosys.synthesise(fifo(w, d), "xc7")
        hls = fifo_estimate(w, d)[0]
        rows.append({"design": "fifo sweep", "node": f"fifo {w}x{d}", "kind": "StreamingFIFO", "group": group,
                     "lut_features": lut, "ff_features": ff, "yosys": got,
                     "hls_model": {"lut": hls.lut, "ff": hls.ff, "bram36": hls.bram36, "dsp": hls.dsp}})
    print(f"fifo sweep: {len(rows)} FIFOs", flush=True)
    return rows


def converter_rows() -> list[dict]:
    """edge_dwc on its own for several word sizes, divisible and not."""
    from fpga.datatypes import IntType
    from fpga.ir import StreamingDataWidthConverter
    from fpga.resources import estimate
    from fpga.resources_rtl import dwc_features
    from rtl import yosys
    from rtl.kernels import kernel_for

    rows = []
    for i, o, b in CONVERTERS:
        node = StreamingDataWidthConverter(name="dwc", inputs=("a",), output="b", in_elems=i, out_elems=o,
                                           elems=i * o * 4, dtype=IntType(b, False))
        group, lut, ff = dwc_features(i, o, b)
        hls = estimate(node)[0]
        rows.append({"design": "converter sweep", "node": f"dwc {i}->{o} x{b}", "kind": node.kind, "group": group,
                     "lut_features": lut, "ff_features": ff, "yosys": yosys.synthesise(kernel_for(node), "xc7"),
                     "hls_model": {"lut": hls.lut, "ff": hls.ff, "bram36": hls.bram36, "dsp": hls.dsp}})
    print(f"converter sweep: {len(rows)} converters", flush=True)
    return rows


KERNEL_GROUPS = ("layernorm", "softmax", "search")  # calibrated from kernels synthesised on their own


def transformer_rows(cache: Path | None = None) -> list[dict]:
    """edge_layernorm, edge_softmax and edge_thrsearch on their own (random thresholds and tables of the IR's
    shape). With `cache` (JSON lines of node name and Yosys counts) a kernel synthesised before is not again."""
    from fpga.datatypes import IntType
    from fpga.ir import LayerNorm, Softmax, Thresholding, Thresholds
    from fpga.resources import estimate
    from fpga.resources_rtl import estimate_rtl, features
    from rtl import yosys
    from rtl.kernels import kernel_for

    rng = np.random.default_rng(0)
    nodes = []
    for c, pe, ib, levels in LAYER_NORMS:
        z_hi = (int(np.sqrt(c)) + 1) << LayerNorm.FRAC_BITS
        out = IntType(max(1, int(levels).bit_length()), False)
        th = Thresholds(np.sort(rng.integers(-z_hi, z_hi, size=(c, levels)), axis=1), np.zeros(c, bool), 0, 1, out)
        nodes.append(LayerNorm(name=f"layernorm C{c} PE{pe} in{ib} L{levels}", inputs=("x",), output="y", pe=pe,
                               channels=c, vectors=16, in_dtype=IntType(ib, True), thresholds=th,
                               eps_fix=int(rng.integers(1, 1 << 30))))
    for c, pe, ib, omax in SOFTMAXES:
        scale = 8.0 / (1 << ib)
        n = min(1 << ib, 256)
        table = np.rint(2.0 ** Softmax.EXP_BITS * np.exp(-scale * np.arange(n))).astype(np.int64)
        nodes.append(Softmax(name=f"softmax C{c} PE{pe} in{ib} O{omax}", inputs=("x",), output="y", pe=pe,
                             channels=c, vectors=16, in_dtype=IntType(ib, True), table=table,
                             recip=round(2**Softmax.RECIP_BITS * omax),
                             out_dtype=IntType(int(omax).bit_length(), False)))
    for c, pe, ib, ob in SEARCHES:
        out = IntType(ob, False)
        it = IntType(ib, True)
        vals = np.sort(rng.integers(it.min, it.max + 1, size=(c, out.max)), axis=1)
        th = Thresholds(vals, rng.random(c) < 0.3, 0, 1, out)
        nodes.append(Thresholding(name=f"search C{c} PE{pe} in{ib} out{ob}", inputs=("x",), output="y", pe=pe,
                                  channels=c, vectors=4, in_dtype=it, thresholds=th))
    rows = []
    for node in nodes:
        t0 = time.perf_counter()
        group, lut, ff = features(node)
        hls = estimate(node)[0]
        done = {}
        if cache is not None and cache.exists():
            done = {e["node"]: e["yosys"] for e in map(json.loads, cache.read_text().splitlines())}
        got = done.get(node.name) or yosys.synthesise(kernel_for(node), "xc7")
        if cache is not None and node.name not in done:
            with open(cache, "a") as f:
                f.write(json.dumps({"node": node.name, "yosys": got}) + "\n")
        rtl_bram_dsp = estimate_rtl(node)[0]
        rows.append({"design": f"{group} sweep", "node": node.name, "kind": node.kind, "group": group,
                     "lut_features": lut, "ff_features": ff, "yosys": got,
                     "hls_model": {"lut": hls.lut, "ff": hls.ff, "bram36": hls.bram36, "dsp": hls.dsp},
                     "rtl_model_bram36": rtl_bram_dsp.bram36, "rtl_model_dsp": rtl_bram_dsp.dsp})
        print(f"{node.name}: {got} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return rows


def sweep_table(rows: list[dict]) -> list[dict]:
    """Kernels synthesised on their own, each predicted with coefficients fitted without it (leave one out)."""
    out = []
    for r in rows:
        if r["group"] not in KERNEL_GROUPS:
            continue
        held_out = predict([r], fit([o for o in rows if o is not r]))
        out.append({"node": r["node"], "yosys": r["yosys"], "hls_model": r["hls_model"],
                    "rtl_model_held_out": held_out, "rtl_model_bram36": r.get("rtl_model_bram36"),
                    "rtl_model_dsp": r.get("rtl_model_dsp"),
                    "held_out_error": {k: round(held_out[k] / r["yosys"][k] - 1, 3) for k in ("lut", "ff")}})
    return out


def nnls(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares with non-negative coefficients: refit without the most negative one until none is."""
    active = list(range(a.shape[1]))
    while True:
        c = np.zeros(a.shape[1])
        if active:
            c[active] = np.linalg.lstsq(a[:, active], y, rcond=None)[0]
        negative = [i for i in active if c[i] < 0]
        if not negative:
            return c
        active.remove(min(negative, key=lambda i: c[i]))


def fit(rows: list[dict]) -> dict[str, dict[str, list[float]]]:
    """Per group and resource: coefficients of its features (weights 1/sqrt(count): small kernels count too)."""
    out: dict[str, dict[str, list[float]]] = {}
    for group in sorted({r["group"] for r in rows}):
        mine = [r for r in rows if r["group"] == group]
        out[group] = {}
        for key in ("lut", "ff"):
            a = np.array([r[f"{key}_features"] for r in mine], float)
            y = np.array([r["yosys"][key] for r in mine], float)
            w = 1 / np.sqrt(np.maximum(y, 30))
            out[group][key] = [round(float(c), 3) for c in nnls(a * w[:, None], y * w)]
    return out


def predict(rows: list[dict], coefficients: dict[str, dict[str, list[float]]]) -> dict[str, float]:
    """A design's LUT and FF as the RTL model states them with these coefficients."""
    total = {"lut": 0.0, "ff": 0.0}
    for r in rows:
        for key in total:
            c = coefficients.get(r["group"], {}).get(key)
            if c is not None:
                total[key] += float(np.dot(c, r[f"{key}_features"]))
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=Path, help="refit the per-layer rows of an earlier run (its JSON output)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "rtl_calibration.json")
    ap.add_argument("--kernel-sweeps", action="store_true",
                    help="with --rows: synthesise the FIFOs and the LayerNorm, Softmax and threshold-search kernels "
                         "again, keep the other rows")
    ap.add_argument("--refeature", action="store_true",
                    help="with --rows: recompute the design rows' features (builds without synthesis), keep Yosys' "
                         "counts")
    args = ap.parse_args()
    if args.rows:
        rows = json.loads(args.rows.read_text())["rows"]
        if args.refeature:
            with tempfile.TemporaryDirectory() as tmp:
                rows = refeature(rows, Path(tmp))
        if args.kernel_sweeps:
            rows = refeature_fifos(rows)
            rows = [r for r in rows if r["group"] not in (*KERNEL_GROUPS, "fifo") or r["design"] != "fifo sweep"]
            rows = ([r for r in rows if r["group"] not in KERNEL_GROUPS] + fifo_rows()
                    + transformer_rows(args.out.with_suffix(".kernels.jsonl")))
    else:
        rows = fifo_rows() + converter_rows() + transformer_rows(args.out.with_suffix(".kernels.jsonl"))
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            for fps in (2000, 20000):
                rows += design_rows(ROOT / "edge" / "models" / "tfc_w2a2_digits.onnx", "tfc_w2a2", fps, work)
            for model, wb, ab, rates in DESIGNS:
                path = zoo(work, model, wb, ab)
                for fps in rates:
                    rows += design_rows(path, f"{model}_w{wb}a{ab}", fps, work)
            # FINN's CNV-w1a1 (brevitas_examples, CIFAR-10 shape): XNOR layers hundreds of lanes wide
            from edge.corpus import bnn_pynq

            cnv = bnn_pynq("cnv_1w1a", work)
            for fps in FINN_CNV_FPS:
                rows += design_rows(cnv, "finn_cnv_1w1a", fps, work)
    coefficients = fit(rows)
    designs = [d for d in dict.fromkeys(r["design"] for r in rows) if not d.endswith(" sweep")]
    table, results = [], []
    for d in designs:
        mine = [r for r in rows if r["design"] == d]
        got = {k: sum(r["yosys"][k] for r in mine) for k in KEYS}
        hls = {k: sum(r["hls_model"][k] for r in mine) for k in KEYS}
        held_out = predict(mine, fit([r for r in rows if r["design"] != d]))
        err = {k: round(held_out[k] / got[k] - 1, 3) for k in ("lut", "ff")}
        hls_err = {k: round(hls[k] / got[k] - 1, 3) for k in ("lut", "ff")}
        results.append({"design": d, "yosys": got, "hls_model": hls, "rtl_model_held_out": held_out,
                        "held_out_error": err, "hls_model_error": hls_err})
        table.append([d, f"{got['lut']:,.0f}", f"{hls['lut']:,.0f} ({100 * hls_err['lut']:+.0f}%)",
                      f"{held_out['lut']:,.0f} ({100 * err['lut']:+.1f}%)", f"{got['ff']:,.0f}",
                      f"{hls['ff']:,.0f} ({100 * hls_err['ff']:+.0f}%)",
                      f"{held_out['ff']:,.0f} ({100 * err['ff']:+.1f}%)",
                      f"{got['bram36']:g} / {hls['bram36']:g}", f"{got['dsp']:g} / {hls['dsp']:g}"])
    print(render(["design", "LUT Yosys", "HLS model", "RTL model (held out)", "FF Yosys", "HLS model",
                  "RTL model (held out)", "BRAM36 Yosys / model", "DSP Yosys / model"], table))
    worst = {k: max(abs(r["held_out_error"][k]) for r in results) for k in ("lut", "ff")}
    print(f"worst held-out error: LUT {100 * worst['lut']:.1f}%, FF {100 * worst['ff']:.1f}%")
    kernels = sweep_table(rows)
    print(render(["kernel alone", "LUT Yosys", "HLS model", "RTL model (held out)", "FF Yosys", "HLS model",
                  "RTL model (held out)", "BRAM36 Yosys / RTL model", "DSP Yosys / RTL model"],
                 [[k["node"], f"{k['yosys']['lut']:,.0f}",
                   f"{k['hls_model']['lut']:,.0f} ({100 * (k['hls_model']['lut'] / k['yosys']['lut'] - 1):+.0f}%)",
                   f"{k['rtl_model_held_out']['lut']:,.0f} ({100 * k['held_out_error']['lut']:+.1f}%)",
                   f"{k['yosys']['ff']:,.0f}",
                   f"{k['hls_model']['ff']:,.0f} ({100 * (k['hls_model']['ff'] / k['yosys']['ff'] - 1):+.0f}%)",
                   f"{k['rtl_model_held_out']['ff']:,.0f} ({100 * k['held_out_error']['ff']:+.1f}%)",
                   f"{k['yosys']['bram36']:g} / {k['rtl_model_bram36']:g}",
                   f"{k['yosys']['dsp']:g} / {k['rtl_model_dsp']:g}"] for k in kernels]))
    if kernels:
        worst_k = {k: max(abs(r["held_out_error"][k]) for r in kernels) for k in ("lut", "ff")}
        print(f"LayerNorm/Softmax/search alone, worst held-out error: LUT {100 * worst_k['lut']:.1f}%, "
              f"FF {100 * worst_k['ff']:.1f}%")
    print("COEFFICIENTS = " + json.dumps(coefficients))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"board": BOARD, "family": "xc7", "coefficients": coefficients,
                                    "worst_held_out_error": worst, "designs": results, "kernels": kernels,
                                    "rows": rows}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

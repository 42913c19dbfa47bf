"""Benchmark (not a test): transformers on both paths.

Models: the vit zoo transformer (`edge train --model vit --wbits 4 --abits 4`, digits, 40 epochs), a small
Hugging Face BERT and ViT built from configs (tests/ptq_models.py:bert and :hf_vit, no download) quantised by
`edge quantize` in its integer transformer form (8-bit, calibrated on random token ids / images), and a Brevitas
QuantMultiheadAttention encoder block as users write it (edge/corpus.py, random weights). Per model and FPGA
board (zcu104, kv260):
`edge build` with C-sim and cycle sim: FPS and first-frame latency estimated and simulated, the bottleneck, and
LUT/BRAM36/DSP summed per kernel kind; per edge target (onnx, openvino, tflite): `edge export` then `edge bench`
(p50 latency on this host, one thread) with the export's own verdict. FINN+ publishes transformer results for
other models and data sets only (no 8x8 digits ViT, no 2-layer 32-wide BERT), so there is no like-for-like row.

    python bench/transformer.py [--models vit,bert,hf_vit,mha] [--boards zcu104,kv260] [--targets onnx,openvino,tflite]
        [--out bench/results/transformer.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.table import render  # noqa: E402

EDGE = Path(sys.executable).parent / "edge"


def _run(*args: str) -> tuple[dict, float, int]:
    """Run `edge ARGS --json`; returns (report, seconds, exit code)."""
    t0 = time.perf_counter()
    p = subprocess.run([str(EDGE), *args, "--json"], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    return (json.loads(p.stdout) if p.stdout.strip() else {"error": p.stderr.strip()}), seconds, p.returncode


def build_row(model: Path, board: str, work: Path) -> dict:
    r, seconds, code = _run("build", "--board", board, str(model), "-o", str(work / f"build_{board}"))
    if "layers" not in r:
        return {"board": board, "error": r.get("error", f"exit {code}")}
    kinds: dict[str, dict[str, float]] = defaultdict(lambda: {"lut": 0.0, "bram36": 0.0, "dsp": 0.0})
    for layer in r["layers"]:
        for key in ("lut", "bram36", "dsp"):
            kinds[layer["op"]][key] += layer[key]
    sim = r["simulation"]["cycle_sim"]
    t = r["totals"]
    return {"board": board, "fps_estimated": t["fps"], "fps_simulated": sim["fps"],
            "latency_us_estimated": t["latency_us"], "latency_us_simulated": sim["first_frame_latency_us"],
            "bottleneck": t["bottleneck"], "utilisation": t["utilisation"],
            "verification": r["verification"].get("approximate", {}).get("equal_share"),
            "passed": bool(r["verification"]["passed"] and r["simulation"]["passed"]), "seconds": seconds,
            "per_kind": {k: {q: round(v, 1) for q, v in d.items()} for k, d in sorted(kinds.items())}}


def export_row(model: Path, target: str, work: Path, calib: list[str]) -> dict:
    out = work / f"export_{target}"
    r, seconds, code = _run("export", "--target", target, str(model), "-o", str(out), *calib)
    if "verification" not in r:
        return {"target": target, "error": r.get("error", f"exit {code}")}
    v = r["verification"]
    b, _, _ = _run("bench", str(out), "--runs", "300")
    return {"target": target, "passed": v["passed"], "max_diff_output_lsb": v["max_diff_output_lsb"],
            "top1_agreement": v["top1_agreement"], "export_seconds": seconds,
            "p50_ms": b.get("latency_ms", {}).get("p50"), "runtime": b.get("runtime")}


def vit_model(work: Path) -> tuple[dict, Path, list[str]]:
    train, seconds, code = _run("train", "--model", "vit", "--wbits", "4", "--abits", "4", "--no-float-baseline",
                                "-o", str(work / "vit"))
    if code:
        raise RuntimeError(train.get("error"))
    return ({"model": "vit w4a4 (digits)", "test_accuracy": train["quant_test_accuracy"], "train_seconds": seconds},
            work / "vit" / "model.onnx", [])


def _quantized(work: Path, factory: str, calib: Any, title: str) -> tuple[dict, Path, list[str]]:
    """`edge quantize tests/ptq_models.py:FACTORY` on `calib` (saved beside the model)."""
    import numpy as np

    path = work / f"{factory}_calib.npy"
    np.save(path, calib)
    q, seconds, code = _run("quantize", f"{ROOT / 'tests' / 'ptq_models.py'}:{factory}", "--calib", str(path),
                            "-o", str(work / factory))
    if code:
        raise RuntimeError(q.get("error"))
    return ({"model": title, "output_sqnr_db": q.get("output_sqnr_db"), "quantize_seconds": seconds},
            Path(q["model"]), ["--calib", str(path)])


def bert_model(work: Path) -> tuple[dict, Path, list[str]]:
    import numpy as np

    return _quantized(work, "bert", np.random.default_rng(0).integers(0, 64, (64, 12)),
                      "HF BERT 2x32, 12 tokens, int8 PTQ (transformer mode)")


def hf_vit_model(work: Path) -> tuple[dict, Path, list[str]]:
    import numpy as np

    return _quantized(work, "hf_vit", np.random.default_rng(0).uniform(0, 1, (64, 1, 8, 8)).astype(np.float32),
                      "HF ViT 2x32, 8x8 image, 17 tokens, int8 PTQ (transformer mode)")


def mha_model(work: Path) -> tuple[dict, Path, list[str]]:
    from edge.corpus import mha_encoder

    return {"model": "Brevitas QuantMultiheadAttention encoder block (random weights)"}, mha_encoder(work), []


MODELS = {"vit": vit_model, "bert": bert_model, "hf_vit": hf_vit_model, "mha": mha_model}


def report(entry: dict) -> None:
    builds, exports = entry["builds"], entry["exports"]
    print(f"\n== {entry['model']}")
    print(render(["board", "FPS est", "FPS sim", "latency us est/sim", "bottleneck", "LUT", "BRAM36", "DSP",
                  "passed", "s"],
                 [[b["board"], f"{b['fps_estimated']:,.0f}", f"{b['fps_simulated']:,.0f}",
                   f"{b['latency_us_estimated']:,.1f} / {b['latency_us_simulated']:,.1f}", b["bottleneck"],
                   f"{b['utilisation']['lut']:.1%}", f"{b['utilisation']['bram36']:.1%}",
                   f"{b['utilisation']['dsp']:.1%}", b["passed"], f"{b['seconds']:.0f}"]
                  if "error" not in b else [b["board"], "does not fit", *[""] * 8] for b in builds]))
    for b in builds:
        if "error" in b:
            print(f"{b['board']}: {b['error']}")
    for b in builds:
        if "per_kind" in b:
            print(f"\n{b['board']}: resources per kernel kind")
            print(render(["kind", "LUT", "BRAM36", "DSP"],
                         [[k, f"{v['lut']:,.0f}", v["bram36"], v["dsp"]] for k, v in b["per_kind"].items()]))
    print()
    print(render(["target", "passed", "max |delta| (output LSB)", "top-1", "p50 ms (1 thread)", "export s"],
                 [[e["target"], e["passed"], f"{e['max_diff_output_lsb']:.2f}", f"{e['top1_agreement']:.2%}",
                   e["p50_ms"], f"{e['export_seconds']:.0f}"] if "error" not in e else [e["target"], "error", "", "",
                                                                                          "", ""]
                  for e in exports]))
    for e in exports:
        if "error" in e:
            print(f"{e['target']}: {e['error']}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="vit,bert,hf_vit,mha")
    ap.add_argument("--boards", default="zcu104,kv260")
    ap.add_argument("--targets", default="onnx,openvino,tflite")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "transformer.json")
    args = ap.parse_args()
    entries = []
    for name in args.models.split(","):
        with tempfile.TemporaryDirectory() as d:
            work = Path(d)
            try:
                entry, model, calib = MODELS[name](work)
            except RuntimeError as exc:
                print(f"{name}: {exc}", file=sys.stderr)
                return 1
            entry["builds"] = [build_row(model, b, work) for b in args.boards.split(",")]
            entry["exports"] = [export_row(model, t, work, calib) for t in args.targets.split(",")]
        report(entry)
        entries.append(entry)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"models": entries}, indent=1) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

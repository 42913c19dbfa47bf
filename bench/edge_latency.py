"""Edge latency benchmark (not a test): for each zoo model, p50 latency of PyTorch float, onnxruntime on the QDQ
export, LiteRT int8 (our TFLite writer) and OpenVINO int8 on this host, their ratios, and export time per target.

    python bench/edge_latency.py [--bits 4] [--epochs 10] [--runs 300] [--out bench/results/edge_latency.json]

Goals from the issue: LiteRT int8 no slower than onnxruntime on the same QDQ model; every export under 2 s.
Export time is the conversion alone (write + serialise), measured separately from the self-verification.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore")

MODELS = ["tfc", "sfc", "lfc", "cnv", "dws", "resnet"]


def torch_p50(model, shape, runs: int) -> float:
    import torch

    torch.set_num_threads(1)
    x = torch.rand(1, *shape)
    model.eval()
    with torch.no_grad():
        for _ in range(20):
            model(x)
        t = []
        for _ in range(runs):
            s = time.perf_counter()
            model(x)
            t.append(time.perf_counter() - s)
    return float(np.median(t) * 1e3)


def export_seconds(loaded, target: str, out: Path) -> float:
    """Conversion time alone, as the median of 3 runs."""
    import onnx
    import openvino as ov

    from edge.export.qdq import to_qdq, to_tensorrt_qdq
    from edge.export.targets import int8_program_onnx
    from edge.export.tflite import to_tflite
    from fpga.lower import lower

    def once() -> None:
        if target == "onnx":
            onnx.save(to_qdq(loaded)[0], str(out / "m.onnx"))
        elif target == "tflite":
            (out / "m.tflite").write_bytes(to_tflite(lower(loaded), "bench").flatbuffer)
        elif target == "openvino":  # as `edge export` does it: the int8 program when exact, else QDQ of QONNX
            program = int8_program_onnx(lower(loaded), "bench", out)
            src = program[0] if program is not None else out / "o.onnx"
            if program is None:
                onnx.save(to_qdq(loaded, "openvino")[0], str(src))
            ov.save_model(ov.convert_model(str(src)), str(out / "m.xml"))
        else:
            onnx.save(to_tensorrt_qdq(loaded)[0], str(out / "t.onnx"))

    times = []
    for _ in range(3):
        s = time.perf_counter()
        once()
        times.append(time.perf_counter() - s)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bits", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "edge_latency.json")
    args = ap.parse_args()

    from edge.bench_device import benchmark, host_description
    from edge.data import load_digits_dataset
    from edge.export.targets import export
    from edge.table import render
    from edge.train import TrainConfig, train
    from edge.zoo import build_float_model
    from frontend.qonnx_io import load_model

    data = load_digits_dataset()
    rows, results = [], []
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        for name in MODELS:
            run = work / name
            train(TrainConfig(model=name, wbits=args.bits, abits=args.bits, epochs=args.epochs,
                              float_baseline=False), data, run, progress=False)
            loaded = load_model(run / "model.onnx")
            float_model = build_float_model(name, (1, 8, 8), 10)  # same architecture in float32 (latency only)
            p50 = {"pytorch_float": torch_p50(float_model, loaded.input_shape[1:], args.runs)}
            paths = {t: Path(export(loaded, t, work / f"{name}_{t}")["path"]) for t in ("onnx", "tflite", "openvino")}
            for t, rt in (("onnx", "onnxruntime"), ("tflite", "litert"), ("openvino", "openvino")):
                p50[rt] = benchmark(str(paths[t]), rt, threads=1, warmup=30, runs=args.runs)["latency_ms"]["p50"]
            secs = {t: export_seconds(loaded, t, work) for t in ("onnx", "tflite", "openvino", "tensorrt")}
            res = {"model": name, "bits": args.bits, "p50_ms": p50, "export_s": secs,
                   "litert_vs_onnxruntime": p50["onnxruntime"] / p50["litert"],
                   "litert_vs_pytorch": p50["pytorch_float"] / p50["litert"]}
            results.append(res)
            rows.append([f"{name} w{args.bits}a{args.bits}", *(f"{p50[k]:.3f}" for k in
                         ("pytorch_float", "onnxruntime", "litert", "openvino")),
                         f"{res['litert_vs_onnxruntime']:.1f}x", f"{res['litert_vs_pytorch']:.1f}x",
                         " / ".join(f"{secs[t]:.2f}" for t in ("onnx", "tflite", "openvino", "tensorrt"))])
            print(rows[-1], flush=True)
    print(render(["model", "torch fp32 ms", "ORT QDQ ms", "LiteRT int8 ms", "OpenVINO int8 ms", "LiteRT vs ORT",
                  "LiteRT vs torch", "export s (onnx/tflite/ov/trt)"], rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"host": host_description(), "threads": 1, "results": results}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

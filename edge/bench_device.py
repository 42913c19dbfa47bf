#!/usr/bin/env python3
"""Latency benchmark of one exported model on this machine: LiteRT (.tflite), OpenVINO (.xml) or onnxruntime (.onnx).

Standalone on purpose: it needs only Python 3.8+, numpy and the one runtime you benchmark, so it can be copied
to a Raspberry Pi or a Jetson and run there (`python3 bench_device.py model.tflite --json out.json`). `edge
bench` uses the same code, so results from the device and from the host share one JSON schema (SCHEMA).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

SCHEMA = "edge-bench/1"
RUNTIMES = ("litert", "openvino", "onnxruntime")


class BenchError(Exception):
    """A user mistake (missing file, unknown runtime, runtime not installed): one line, exit 2."""


# ISA features that decide which integer kernels an int8 runtime picks (and so whether a program is exact there):
# /proc/cpuinfo flag (x86 "flags", ARM "Features") -> the name reported
ISA_FLAGS = {"avx2": "avx2", "avx512f": "avx512f", "avx512bw": "avx512bw", "avx512_vnni": "avx512_vnni",
             "avx_vnni": "avx_vnni", "amx_int8": "amx", "asimd": "neon", "asimddp": "dotprod", "i8mm": "i8mm"}


def isa_features(cpuinfo_text: str) -> dict[str, bool]:
    """Which of ISA_FLAGS' features the first CPU in a /proc/cpuinfo text has (all False when unknown)."""
    flags: set[str] = set()
    for line in cpuinfo_text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags = set(value.split())
            break
    return {name: flag in flags for flag, name in ISA_FLAGS.items()}


def host_description() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    text = ""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        pass
    for line in text.splitlines():
        key = line.split(":")[0].strip().lower()
        if key in ("model name", "hardware", "cpu model"):
            cpu = line.split(":", 1)[1].strip()
            break
    try:
        with open("/proc/device-tree/model") as f:  # Raspberry Pi, Jetson
            board = f.read().strip("\x00\n ")
    except OSError:
        board = ""
    return {"machine": platform.machine(), "system": f"{platform.system()} {platform.release()}", "cpu": cpu,
            "isa": isa_features(text), "board": board, "cores": os.cpu_count() or 1,
            "python": platform.python_version()}


def runtime_for(path: str, runtime: str) -> str:
    if runtime != "auto":
        if runtime not in RUNTIMES:
            raise BenchError(f"unknown runtime '{runtime}'; choose auto or one of {', '.join(RUNTIMES)}")
        return runtime
    ext = os.path.splitext(path)[1].lower()
    by_ext = {".tflite": "litert", ".xml": "openvino", ".onnx": "onnxruntime"}
    if ext not in by_ext:
        raise BenchError(f"{path}: cannot tell the runtime from the extension '{ext}'; pass --runtime")
    return by_ext[ext]


Runner = Callable[[np.ndarray], Any]


def _input_array(shape: list[int], dtype: Any, rng: np.random.Generator) -> np.ndarray:
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in shape]  # dynamic dimensions: 1
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return rng.uniform(0, 1, size=shape).astype(dt)
    if dt.itemsize >= 4:  # token ids: 0 and 1 index every embedding table (the latency does not depend on them)
        return rng.integers(0, 1, size=shape, endpoint=True).astype(dt)
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dt)


def load_litert(path: str, threads: int, rng: np.random.Generator) -> tuple[Runner, np.ndarray, str]:
    try:
        import ai_edge_litert
        from ai_edge_litert.interpreter import Interpreter  # the maintained successor of tflite-runtime
        version = f"ai-edge-litert {getattr(ai_edge_litert, '__version__', '?')}"
    except ImportError:
        try:
            import tflite_runtime
            from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef]
            version = f"tflite-runtime {getattr(tflite_runtime, '__version__', '?')}"
        except ImportError:
            raise BenchError("LiteRT is not installed: pip install ai-edge-litert") from None
    interp = Interpreter(model_path=path, num_threads=threads)
    inp = interp.get_input_details()[0]
    shape = [int(d) for d in inp["shape"]]
    if shape and shape[0] != 1:
        interp.resize_tensor_input(inp["index"], [1, *shape[1:]])
    interp.allocate_tensors()
    x = _input_array([1, *shape[1:]], inp["dtype"], rng)
    out_index = interp.get_output_details()[0]["index"]

    def run(a: np.ndarray) -> Any:
        interp.set_tensor(inp["index"], a)
        interp.invoke()
        return interp.get_tensor(out_index)

    return run, x, version


def load_openvino(path: str, threads: int, rng: np.random.Generator) -> tuple[Runner, np.ndarray, str]:
    try:
        import openvino as ov
    except ImportError:
        raise BenchError("OpenVINO is not installed: pip install openvino") from None
    core = ov.Core()
    model = core.read_model(path)
    port = model.inputs[0]
    shape = [d.get_length() if d.is_static else 1 for d in port.get_partial_shape()]
    if not port.get_partial_shape().is_static:
        model.reshape({port.get_any_name(): shape})
    # as `edge export` verified it: f32 around the int8 ops, no dynamic re-quantisation of FC inputs (VNNI/AMX CPUs)
    compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": str(threads), "PERFORMANCE_HINT": "LATENCY",
                                                "INFERENCE_PRECISION_HINT": "f32",
                                                "DYNAMIC_QUANTIZATION_GROUP_SIZE": "0"})
    request = compiled.create_infer_request()
    x = _input_array(shape, port.get_element_type().to_dtype(), rng)

    def run(a: np.ndarray) -> Any:
        return request.infer({0: a})

    return run, x, f"openvino {ov.__version__}"


def load_onnxruntime(path: str, threads: int, rng: np.random.Generator) -> tuple[Runner, np.ndarray, str]:
    try:
        import onnxruntime as ort
    except ImportError:
        raise BenchError("onnxruntime is not installed: pip install onnxruntime") from None
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    try:
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        raise BenchError(f"{path}: onnxruntime cannot load it ({str(exc).splitlines()[0][:160]}); a QONNX model "
                         "must be exported first: edge export --target onnx") from None
    inp = sess.get_inputs()[0]
    types = {"tensor(float)": np.float32, "tensor(int8)": np.int8, "tensor(uint8)": np.uint8,
             "tensor(int32)": np.int32, "tensor(int64)": np.int64}  # int32/int64: token ids
    x = _input_array([d if isinstance(d, int) else 1 for d in inp.shape], types.get(inp.type, np.float32), rng)

    def run(a: np.ndarray) -> Any:
        return sess.run(None, {inp.name: a})

    return run, x, f"onnxruntime {ort.__version__}"


LOADERS = {"litert": load_litert, "openvino": load_openvino, "onnxruntime": load_onnxruntime}


def peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024.0 / (1024.0 if sys.platform == "darwin" else 1.0)  # bytes on macOS, KiB on Linux


def benchmark(path: str, runtime: str = "auto", threads: int = 1, warmup: int = 20, runs: int = 200,
              progress: Callable[[int], None] | None = None, seed: int = 0) -> dict[str, Any]:
    """Load the model, run `warmup` untimed and `runs` timed single-sample inferences; the result dict (SCHEMA)."""
    if not os.path.isfile(path):
        raise BenchError(f"{path}: no such model file")
    if threads < 1 or warmup < 0 or runs < 1:
        raise BenchError("--threads and --runs must be >= 1 and --warmup >= 0")
    runtime = runtime_for(path, runtime)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    run, x, version = LOADERS[runtime](path, threads, rng)
    run(x)  # the first inference finishes lazy initialisation in every runtime: part of init time
    init_ms = (time.perf_counter() - t0) * 1e3
    for _ in range(warmup):
        run(x)
    times = np.empty(runs)
    for i in range(runs):
        s = time.perf_counter()
        run(x)
        times[i] = time.perf_counter() - s
        if progress is not None:
            progress(i + 1)
    ms = times * 1e3
    return {
        "schema": SCHEMA, "model": os.path.abspath(path), "runtime": runtime, "runtime_version": version,
        "threads": threads, "warmup": warmup, "runs": runs,
        "input": {"shape": list(x.shape), "dtype": x.dtype.name},
        "init_ms": round(init_ms, 3),
        "latency_ms": {k: round(float(v), 4) for k, v in (
            ("min", ms.min()), ("p50", np.percentile(ms, 50)), ("p90", np.percentile(ms, 90)),
            ("p99", np.percentile(ms, 99)), ("max", ms.max()), ("mean", ms.mean()))},
        "throughput_per_s": round(1e3 / float(ms.mean()), 2),
        "samples_ms": [round(float(v), 4) for v in ms],  # every timed run, for histograms
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "host": host_description(),
    }


def format_table(r: dict[str, Any]) -> str:
    lat = r["latency_ms"]
    rows = [("model", r["model"]), ("runtime", f"{r['runtime_version']}, {r['threads']} thread(s)"),
            ("host", f"{r['host']['board'] or r['host']['cpu']} ({r['host']['machine']}, {r['host']['cores']} cores)"),
            ("ISA", " ".join(k for k, v in r["host"].get("isa", {}).items() if v) or "-"),
            ("input", f"{r['input']['dtype']} {r['input']['shape']}"), ("init", f"{r['init_ms']:.1f} ms"),
            ("latency p50 / p90 / p99", f"{lat['p50']:.3f} / {lat['p90']:.3f} / {lat['p99']:.3f} ms"),
            ("latency min / mean / max", f"{lat['min']:.3f} / {lat['mean']:.3f} / {lat['max']:.3f} ms"),
            ("throughput", f"{r['throughput_per_s']:.0f} inferences/s (batch 1)"),
            ("peak RSS", f"{r['peak_rss_mb']:.0f} MB"), ("runs", f"{r['runs']} timed after {r['warmup']} warm-up")]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help=".tflite, .xml (OpenVINO IR) or .onnx")
    p.add_argument("--runtime", default="auto", help="auto (by extension), litert, openvino or onnxruntime")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--json", metavar="FILE", help="also write the result as JSON ('-' for stdout only)")
    args = p.parse_args(argv)

    def tick(i: int) -> None:
        if sys.stderr.isatty() and (i % max(1, args.runs // 50) == 0 or i == args.runs):
            sys.stderr.write(f"\r{i}/{args.runs} runs")
            sys.stderr.flush()
            if i == args.runs:
                sys.stderr.write("\n")

    try:
        result = benchmark(args.model, args.runtime, args.threads, args.warmup, args.runs, tick)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json == "-":
        print(json.dumps(result, indent=2))
        return 0
    print(format_table(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

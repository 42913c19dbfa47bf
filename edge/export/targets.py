"""`edge export`: write a target format, run it with its own runtime, and compare it with the golden model."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edge.errors import EdgeError
from edge.export.qdq import to_qdq
from edge.fsutil import atomic_output_dir, write_json
from edge.qonnx_io import GoldenModel, LoadedModel

TARGETS = ("onnx", "openvino")
PLANNED = ("tflite", "tensorrt")  # named by board profiles; not written by this version yet
TOP1_FLOOR = 0.995
MAX_LSB = 1.0


@dataclass
class Verification:
    """How the exported model's outputs compare with the golden model's on the same inputs."""

    samples: int
    data: str
    top1_agreement: float
    max_abs_diff: float
    max_diff_lsb: float
    runtime: str
    passed: bool
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"samples": self.samples, "data": self.data, "runtime": self.runtime,
                "top1_agreement": self.top1_agreement, "max_abs_diff": self.max_abs_diff,
                "max_diff_output_lsb": self.max_diff_lsb, "passed": self.passed, **self.extra}


def output_lsb(loaded: LoadedModel, n_out: int) -> np.ndarray:
    """One output LSB per output channel: the scale of the last integer accumulator (from the exact lowering)."""
    from fpga.lower import lower

    try:
        scale = np.abs(lower(loaded).post.scale)
    except EdgeError:
        return np.full(n_out, np.nan)
    return np.broadcast_to(scale, (n_out,)).astype(np.float64)


def calibration_data(loaded: LoadedModel, calib: Path | None) -> tuple[np.ndarray, str]:
    """The digits test set when the model takes digits, a user .npy batch, or else random inputs in [0, 1]."""
    shape = tuple(loaded.input_shape[1:])
    if calib is not None:
        try:
            x = np.load(calib, allow_pickle=False).astype(np.float32)
        except (OSError, ValueError) as exc:
            raise EdgeError(f"{calib}: not a numeric .npy array ({type(exc).__name__})") from None
        if tuple(x.shape[1:]) != shape:
            raise EdgeError(f"{calib}: samples have shape {tuple(x.shape[1:])}, the model takes {shape}")
        return x, str(calib)
    if int(np.prod(shape)) == 64:
        from edge.data import load_digits_dataset

        return load_digits_dataset().x_test.reshape(-1, *shape), "digits test set"
    return np.random.default_rng(0).uniform(0, 1, size=(256, *shape)).astype(np.float32), "random inputs in [0, 1]"


def compare(ours: np.ndarray, golden: np.ndarray, lsb: np.ndarray, runtime: str, data: str,
            exact: bool) -> Verification:
    diff = np.abs(ours.astype(np.float64) - golden.astype(np.float64))
    per_lsb = diff.reshape(len(diff), -1) / lsb.reshape(1, -1) if ours.ndim == 2 else diff / np.nanmax(lsb)
    top1 = float((ours.argmax(1) == golden.argmax(1)).mean()) if ours.ndim == 2 else 1.0
    max_lsb = float(np.nanmax(per_lsb)) if np.isfinite(per_lsb).any() else float("nan")
    if exact:  # equal up to float32 rounding of the last layer
        ok = bool(np.allclose(ours, golden, rtol=1e-5, atol=1e-5 * np.abs(golden).max()))
    else:
        ok = top1 >= TOP1_FLOOR and max_lsb <= MAX_LSB
    return Verification(len(ours), data, top1, float(diff.max()), max_lsb, runtime, ok)


def _ort_run(proto: onnx.ModelProto, x: np.ndarray, optimise: bool) -> np.ndarray:
    """Run the whole batch at once: the golden model runs the same batch size, so float32 kernels sum in the
    same order (a different batch size can pick a different convolution algorithm and flip exact ties)."""
    import onnxruntime as ort
    from qonnx.core.modelwrapper import ModelWrapper

    from edge.qonnx_io import with_batch

    batched = with_batch(ModelWrapper(proto), len(x)).model
    so = ort.SessionOptions()
    if not optimise:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(batched.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def export_onnx(loaded: LoadedModel, tmp: Path, x: np.ndarray, golden: np.ndarray, lsb: np.ndarray, data: str,
                target: str = "onnx") -> tuple[dict[str, Any], onnx.ModelProto]:
    proto, widened = to_qdq(loaded, target)
    path = tmp / "model.qdq.onnx"
    onnx.save(proto, str(path))
    exact = compare(_ort_run(proto, x, optimise=False), golden, lsb, "onnxruntime (no graph optimisation)", data,
                    exact=True)
    fused = compare(_ort_run(proto, x, optimise=True), golden, lsb, "onnxruntime (default: fused int8 kernels)",
                    data, exact=False)
    return {"path": path.name, "widened": widened, "verification": exact.as_dict(),
            "onnxruntime_optimised": fused.as_dict()}, proto


def export_openvino(loaded: LoadedModel, tmp: Path, x: np.ndarray, golden: np.ndarray, lsb: np.ndarray,
                    data: str) -> dict[str, Any]:
    import openvino as ov

    report, proto = export_onnx(loaded, tmp, x, golden, lsb, data, target="openvino")
    model = ov.convert_model(str(tmp / report["path"]))
    ov.save_model(model, str(tmp / "model.xml"))
    core = ov.Core()
    name = model.inputs[0].get_any_name()
    model.reshape({name: [len(x), *loaded.input_shape[1:]]})
    # f32, not the CPU default: on bf16-capable CPUs OpenVINO otherwise runs non-int8 parts in bf16
    compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": "1", "INFERENCE_PRECISION_HINT": "f32"})
    out = compiled(x)[compiled.outputs[0]]
    layers = []
    for op in compiled.get_runtime_model().get_ordered_ops():
        rt = op.get_rt_info()
        kind = rt["layerType"].astype(str) if "layerType" in rt else op.get_type_name()
        prec = rt["runtimePrecision"].astype(str) if "runtimePrecision" in rt else "?"
        if kind not in ("Input", "Output", "Const"):
            layers.append({"name": op.get_friendly_name(), "type": kind, "precision": prec})
    check = compare(out, golden, lsb, f"openvino {ov.__version__} CPU", data, exact=False)
    return {"path": "model.xml", "qdq_onnx": report["path"], "widened": report["widened"],
            "verification": check.as_dict(), "layers": layers,
            "int8_layers": sum(1 for layer in layers if layer["precision"] in ("i8", "u8"))}


def export(loaded: LoadedModel, target: str, out_dir: Path, calib: Path | None = None) -> dict[str, Any]:
    """Write `target` into out_dir (atomically) and verify it; returns the export report."""
    if target in PLANNED:
        raise EdgeError(f"target '{target}' is not available in this version of edge yet; "
                        f"use --target {' or '.join(TARGETS)}")
    if target not in TARGETS:
        raise EdgeError(f"unknown target '{target}'; choose one of {', '.join(TARGETS)}")
    x, data = calibration_data(loaded, calib)
    golden = GoldenModel(loaded, batch=len(x)).run(x)
    lsb = output_lsb(loaded, int(np.prod(golden.shape[1:])))
    t0 = time.perf_counter()
    with atomic_output_dir(out_dir) as tmp:
        if target == "onnx":
            report, _ = export_onnx(loaded, tmp, x, golden, lsb, data)
        else:
            report = export_openvino(loaded, tmp, x, golden, lsb, data)
        report.update(target=target, source=str(loaded.path), seconds=round(time.perf_counter() - t0, 2))
        write_json(tmp / "export.json", report)
    report["path"] = str(out_dir / report["path"])
    return report

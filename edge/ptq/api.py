"""`quantize`: a float model in, a QONNX model that every other edge command takes out, with quantize.json."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from edge.fsutil import atomic_output_dir, write_json
from edge.ptq.flow import layer_sqnr, ptq, run, run_float64
from edge.ptq.recipe import Recipe
from edge.ptq.source import as_logits, as_model_input, load_float_model
from frontend.errors import EdgeError

MODEL_FILE = "model.onnx"
REPORT_FILE = "quantize.json"
STATE_FILE = "quantized.pt"


def _top1(y: np.ndarray, labels: np.ndarray) -> float:
    return float((y.argmax(-1) == labels).mean())


def _check_inputs(model: torch.nn.Module, calib: np.ndarray, labels: np.ndarray | None,
                  where: str) -> torch.nn.Module:
    """Run the float model on two calibration samples: a one-line error if their shape or dtype does not fit; the
    model reduced to its logits."""
    if labels is not None and len(labels) != len(calib):
        raise EdgeError(f"--labels has {len(labels)} entries for {len(calib)} calibration samples")
    try:
        model = as_logits(model, as_model_input(calib[:2]))
        with torch.no_grad():
            y = model(as_model_input(calib[:2]))
    except EdgeError:
        raise
    except Exception as exc:  # noqa: BLE001 - the data does not fit the user's model
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EdgeError(f"{where}: calibration data of shape {tuple(calib.shape)} and dtype {calib.dtype} does not "
                        f"fit the model ({type(exc).__name__}: {msg[:200]}); give a batch of real inputs, batch "
                        "first") from None
    if not isinstance(y, torch.Tensor) or y.ndim < 1:
        raise EdgeError(f"{where}: the model returned {type(y).__name__}, not a tensor of outputs")
    return model


def _golden(path: Path, x: np.ndarray) -> np.ndarray:
    """The exported QONNX model's outputs by QONNX execution: edge's batched golden model for float inputs, qonnx's
    executor sample by sample for integer (token id) inputs, which the rest of edge does not take yet."""
    if x.dtype.kind == "f":
        from frontend.qonnx_io import GoldenModel, load_model

        return np.asarray(GoldenModel(load_model(path)).run(np.asarray(x, np.float32)), np.float64)
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    wrapper = ModelWrapper(str(path)).transform(InferShapes())
    name_in, name_out = wrapper.graph.input[0].name, wrapper.graph.output[0].name
    return np.concatenate([np.asarray(execute_onnx(wrapper, {name_in: x[i:i + 1].astype(np.int64)})[name_out],
                                      np.float64) for i in range(len(x))])


def quantize(spec: str, calib: np.ndarray, output: Path, recipe: Recipe, labels: np.ndarray | None = None,
             checkpoint: Path | None = None, batch: int = 64, progress: bool = True, verify_samples: int = 256,
             mp_tolerance_db: float = 1.0, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """PTQ of the float model `spec` (FILE.py:FACTORY or .onnx) on `calib`; writes DIR/model.onnx (QONNX),
    DIR/quantized.pt and DIR/quantize.json, and returns the report (also its JSON)."""
    t0 = time.perf_counter()
    model = load_float_model(spec, checkpoint)
    model = _check_inputs(model, calib, labels, spec)
    float_out = run(model, calib)
    t_ptq = time.perf_counter()
    result = ptq(model, calib, recipe, batch=batch, progress=progress, mp_tolerance_db=mp_tolerance_db, log=log)
    ptq_s = time.perf_counter() - t_ptq
    quant_out = run(result.model, calib)
    layers = layer_sqnr(result, calib[: min(len(calib), 256)])
    n_verify = min(len(calib), verify_samples)
    with atomic_output_dir(output) as tmp:
        path = tmp / MODEL_FILE
        from edge.train import export_qonnx_file

        meta = {"edge.source": spec, "edge.command": "quantize", "edge.wbits": str(recipe.as_dict()["wbits"]),
                "edge.abits": str(recipe.abits), "edge.method": recipe.method}
        try:
            export_qonnx_file(result.model, tuple(calib.shape[1:]), path, meta, example=as_model_input(calib[:1]))
        except Exception as exc:  # noqa: BLE001 - an op Brevitas' exporter cannot write
            raise EdgeError(f"{spec}: exporting the quantised model to QONNX failed: {type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
        try:
            if x_is_float := calib.dtype.kind == "f":
                from frontend.qonnx_io import load_model

                onnx.save(load_model(path).model.model, str(path))  # ship the cleaned, annotated graph
            golden = _golden(path, calib[:n_verify])
        except EdgeError as exc:  # name the file the user will see, not the temporary directory
            raise EdgeError(str(exc).replace(str(tmp), str(output))) from None
        torch.save(result.model.state_dict(), tmp / STATE_FILE)
        # the export's check: a sample whose class the torch model's own float32 and float64 runs disagree on sits on
        # a rounding tie (a sum on a quantiser's boundary, 20+ layers deep), where summation order decides the class;
        # such samples are counted apart, the others must agree with the QONNX golden
        torch_out = quant_out[:n_verify]
        ties = torch_out.argmax(-1) != run_float64(result.model, calib[:n_verify]).argmax(-1)
        same = golden.argmax(-1) == torch_out.argmax(-1)
        agree_golden = float(same.mean())
        report: dict[str, Any] = {
            "model": str(output / MODEL_FILE),
            "source": spec,
            **recipe.as_dict(),
            "mode": result.mode,
            "calibration_samples": len(calib),
            "float_accuracy": None if labels is None else _top1(float_out, labels),
            "quant_accuracy": None if labels is None else _top1(quant_out, labels),
            "qonnx_accuracy": None if labels is None else _top1(golden, labels[:n_verify]),
            "agreement": float((float_out.argmax(-1) == quant_out.argmax(-1)).mean()),
            "output_sqnr_db": _finite(10 * math.log10(max(float(np.sum(float_out ** 2)), 1e-30) /
                                                      max(float(np.sum((float_out - quant_out) ** 2)), 1e-30))),
            "qonnx_vs_torch": {"samples": n_verify, "top1_agreement": agree_golden,
                               "rounding_ties": int(ties.sum()),
                               "top1_agreement_off_ties": float(same[~ties].mean()) if (~ties).any() else None,
                               "max_abs_diff": float(np.abs(golden - torch_out).max())},
            "layers": layers,
            "sensitivity": {k: {str(b): _finite(s) for b, s in v.items()} for k, v in result.sensitivity.items()},
            "input": {"shape": list(calib.shape[1:]), "dtype": "float32" if x_is_float else "int64"},
            "ptq_seconds": round(ptq_s, 2),
            "seconds": round(time.perf_counter() - t0, 2),
        }
        write_json(tmp / REPORT_FILE, report)
    return report


def _finite(v: float) -> float | None:
    return None if not math.isfinite(v) else round(v, 2)

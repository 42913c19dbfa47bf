"""What every export is checked against (the golden outputs on the verification data, the integer IR, one LSB per
output) and how a runtime's outputs are compared with it; shared by the targets and TensorRT."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from fpga.ir import DataflowGraph
from frontend.errors import EdgeError
from frontend.qonnx_io import GoldenModel, LoadedModel, activation_elements

TOP1_FLOOR = 0.995
MAX_LSB = 1.0
DEFAULT_SAMPLES = 256
VERIFY_ELEMENTS = 1 << 27  # default verification work: activation elements over all samples


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


def calibration_data(loaded: LoadedModel, calib: Path | None) -> tuple[np.ndarray, str]:
    """The digits test set when the model takes digits, a user .npy batch, or else random inputs in [0, 1]."""
    shape = tuple(loaded.input_shape[1:])
    if calib is None and loaded.input_dtype != np.float32:
        raise EdgeError(f"{loaded.path}: the model takes token ids; give --calib ids.npy (int64, batch first) to "
                        "verify the export on real inputs")
    if calib is not None:
        try:
            x = np.load(calib, allow_pickle=False).astype(loaded.input_dtype)
        except (OSError, ValueError) as exc:
            raise EdgeError(f"{calib}: not a numeric .npy array ({type(exc).__name__})") from None
        if tuple(x.shape[1:]) != shape:
            raise EdgeError(f"{calib}: samples have shape {tuple(x.shape[1:])}, the model takes {shape}")
        return x, str(calib)
    if int(np.prod(shape)) == 64:
        from edge.data import load_digits_dataset

        return load_digits_dataset().x_test.reshape(-1, *shape), "digits test set"
    n = default_samples(loaded)
    data = "random inputs in [0, 1]"
    if n < DEFAULT_SAMPLES:
        data += f" ({n} samples for a model this size; give --calib for more)"
    return np.random.default_rng(0).uniform(0, 1, size=(n, *shape)).astype(np.float32), data


def default_samples(loaded: LoadedModel) -> int:
    """256 random samples, fewer for large models (an ImageNet-sized one gets 8: seconds, not minutes)."""
    return max(8, min(DEFAULT_SAMPLES, VERIFY_ELEMENTS // activation_elements(loaded)))


def batches(n: int, size: int) -> list[slice]:
    """Consecutive slices of at most `size` samples covering range(n)."""
    return [slice(s, min(s + size, n)) for s in range(0, n, max(size, 1))]


def top1_agreement(ours: np.ndarray, golden: np.ndarray) -> float:
    """Share of samples whose top class is a top class of the golden model: where the golden model has several
    classes at the same value (common with 1-2 bit activations), any of them agrees."""
    pick = ours.argmax(1)
    best = golden.max(1)
    tol = 1e-5 * max(float(np.abs(golden).max(initial=0.0)), 1e-30)
    return float((golden[np.arange(len(golden)), pick] >= best - tol).mean())


def int8_output_lsb(golden: np.ndarray, acc_lsb: np.ndarray) -> float:
    """One LSB of an int8 output: the golden outputs' range over 255 steps (never finer than the accumulator's)."""
    span = float(golden.max() - golden.min())
    return max(span / 255.0, float(np.nanmax(acc_lsb)) if np.isfinite(acc_lsb).any() else 0.0)


@dataclass(frozen=True)
class Reference:
    """What every export is checked against: the inputs, the golden outputs, the integer IR (when the model
    lowers), one accumulator LSB per output, and the samples at golden float ties."""

    x: np.ndarray
    data: str
    golden: np.ndarray
    graph: DataflowGraph | None
    acc_lsb: np.ndarray
    ties: frozenset[int]
    batch: int = 256  # samples per streamed batch (golden, integer IR and runtimes alike)
    # samples where a Softmax/LayerNorm's golden value sits within a few float32 ulps of a rounding boundary: a
    # runtime evaluating that function in float32 decides the side by its own rounding
    float_ties: frozenset[int] = frozenset()

    def batches(self) -> list[slice]:
        return batches(len(self.x), self.batch)

    def sample_lsb(self, ours: np.ndarray, step: float) -> np.ndarray:
        """Per sample: the largest |delta| from the golden outputs, in output LSB of `step`."""
        diff = np.abs(ours.reshape(self.golden.shape).astype(np.float64) - self.golden.astype(np.float64))
        return diff.reshape(len(diff), -1).max(1) / step

    def compare(self, ours: np.ndarray, runtime: str, exact: bool, out_step: float | None = None,
                runtime_ties: frozenset[int] = frozenset()) -> Verification:
        """Exact (QDQ ONNX): equal up to float32 rounding. Otherwise top-1 agreement and |delta| <= 1 int8 output
        LSB; both distances are reported, in int8 output LSB (the criterion) and in accumulator LSB.

        Samples where some QONNX quantiser receives a value on a rounding boundary (and the integer IR took the
        other side) are left out of the |delta| bound and of the top-1 floor (both top-1 figures, with and without
        them, are reported; a net with near-equal logits flips its argmax at a tie): there the golden model's own answer
        depends on float summation order, so an int8 runtime may legitimately differ. So are samples where a
        Softmax/LayerNorm's golden value lies within a few float32 ulps of a boundary (the runtime's own float
        evaluation of that function decides the side); both counts are reported."""
        golden, lsb = self.golden, self.acc_lsb
        ours = ours.reshape(golden.shape)
        diff = np.abs(ours.astype(np.float64) - golden.astype(np.float64))
        ties = sorted(i for i in self.ties if i < len(diff))
        float_ties = sorted(i for i in self.float_ties - self.ties if i < len(diff))
        at_runtime = sorted(i for i in runtime_ties - self.ties - self.float_ties if i < len(diff))
        if not exact:
            for group in (ties, float_ties, at_runtime):
                if group:
                    diff[group] = 0.0
        acc = diff.reshape(len(diff), -1) / lsb.reshape(1, -1) if ours.ndim == 2 else diff / np.nanmax(lsb)
        top1 = top1_agreement(ours, golden) if ours.ndim == 2 else 1.0
        keep = np.setdiff1d(np.arange(len(ours)), np.array([*ties, *float_ties, *at_runtime], np.int64))
        top1_off = top1_agreement(ours[keep], golden[keep]) if ours.ndim == 2 and len(keep) else top1
        acc_max = float(np.nanmax(acc)) if np.isfinite(acc).any() else float("nan")
        step = out_step if out_step is not None else int8_output_lsb(golden, lsb)
        out_lsb = float(diff.max()) / step
        if exact:
            ok = bool(np.allclose(ours, golden, rtol=1e-5, atol=1e-5 * np.abs(golden).max()))
        else:
            ok = top1_off >= TOP1_FLOOR and out_lsb <= MAX_LSB
        return Verification(len(ours), self.data, top1, float(diff.max()), out_lsb, runtime, ok,
                            {"max_diff_accumulator_lsb": acc_max, "output_lsb": step,
                             "golden_tie_samples_excluded": 0 if exact else len(ties),
                             "golden_float_function_tie_samples_excluded": 0 if exact else len(float_ties),
                             "runtime_tie_samples_excluded": len(at_runtime),
                             "top1_agreement_off_ties": top1_off})


def reference(loaded: LoadedModel, calib: Path | None, ties: bool) -> Reference:
    """Golden outputs on the verification data, and the integer IR lowered once for everything that needs it."""
    from fpga.lower import lower
    from fpga.verify import stream_batch, verify

    x, data = calibration_data(loaded, calib)
    batch = min(stream_batch(loaded), len(x))
    try:
        graph = lower(loaded)
    except EdgeError:
        graph = None
    checked = verify(graph, loaded, x, batch) if ties and graph is not None else None
    # the tie search runs the golden model on every batch already: its outputs are the reference (same batches)
    golden = (np.concatenate(checked.golden_outputs, axis=0) if checked is not None
              else GoldenModel(loaded, batch=batch).run(x))
    n_out = int(np.prod(golden.shape[1:]))
    if graph is None:
        return Reference(x, data, golden, None, np.full(n_out, np.nan), frozenset(), batch)
    scale = np.abs(np.asarray(graph.post.scale, np.float64)).reshape(-1)
    if golden.ndim > 2 and scale.size == golden.shape[1] > 1:  # per-channel scale of an image output (N, C, ...)
        scale = scale.reshape(-1, *([1] * (golden.ndim - 2)))
        acc_lsb = np.broadcast_to(scale, golden.shape[1:]).reshape(-1)
    else:
        acc_lsb = np.broadcast_to(scale, (n_out,))
    tie_samples = frozenset(checked.tie_samples) if checked is not None else frozenset()
    float_ties = frozenset(checked.float_tie_samples) if checked is not None else frozenset()
    return Reference(x, data, golden, graph, acc_lsb, tie_samples, batch, float_ties)


def ort_run(proto: onnx.ModelProto, x: np.ndarray, optimise: bool, batch: int | None = None) -> np.ndarray:
    """Run in the golden model's batches (`batch`, default all at once): the same batch sizes make float32 kernels
    sum in the same order (a different batch size can pick a different convolution algorithm and flip exact
    ties), and memory stays flat on large models."""
    import onnxruntime as ort
    from qonnx.core.modelwrapper import ModelWrapper

    from frontend.qonnx_io import with_batch

    so = ort.SessionOptions()
    if not optimise:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sessions: dict[int, Any] = {}
    outs = []
    for part in batches(len(x), batch or len(x)):
        chunk = x[part]
        if len(chunk) not in sessions:
            batched = with_batch(ModelWrapper(proto), len(chunk)).model
            sessions[len(chunk)] = ort.InferenceSession(batched.SerializeToString(), so,
                                                        providers=["CPUExecutionProvider"])
        sess = sessions[len(chunk)]
        outs.append(sess.run(None, {sess.get_inputs()[0].name: chunk})[0])
    return np.concatenate(outs, axis=0)

"""Check a lowered IR against the golden QONNX model, layer by layer and end to end.

Layer by layer, each IR node gets the golden model's own inputs (teacher forcing), so a difference cannot
propagate and every mismatch is attributed to one quantiser. A mismatch is a *tie* when QONNX's float32 value
before that quantiser lies within TIE_EPS of a rounding boundary: float32 accumulation order then decides the
side, and no integer implementation can reproduce it. Any other mismatch is a lowering bug.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edge.qonnx_io import GoldenModel, LoadedModel, activation_elements
from fpga.execute import quantize_input, run_model, run_node
from fpga.ir import DataflowGraph, DuplicateStreams

TIE_EPS = 1e-4  # in units of the quantiser's step
STREAM_BYTES = 256 << 20  # activations held at once while verifying (golden context + integer IR)


@dataclass
class ProbeResult:
    stream: str
    onnx_tensor: str
    values: int
    mismatches: int
    ties: int

    @property
    def errors(self) -> int:
        return self.mismatches - self.ties


@dataclass
class VerifyReport:
    samples: int
    probes: list[ProbeResult] = field(default_factory=list)
    top1_agreement: float = 0.0
    max_abs_diff: float = 0.0
    tie_samples: set[int] = field(default_factory=set)  # samples in which some quantiser saw a tie
    differing_samples: set[int] = field(default_factory=set)  # samples whose final output differs end to end

    @property
    def values(self) -> int:
        return sum(p.values for p in self.probes)

    @property
    def errors(self) -> int:
        return sum(p.errors for p in self.probes)

    @property
    def ties(self) -> int:
        return sum(p.ties for p in self.probes)

    @property
    def unexplained_samples(self) -> set[int]:
        """Samples that differ end to end without a tie in them: must be empty."""
        return self.differing_samples - self.tie_samples

    @property
    def exact(self) -> bool:
        return self.errors == 0 and not self.unexplained_samples

    def as_dict(self) -> dict:
        return {
            "samples": self.samples,
            "values_compared": self.values,
            "mismatches_at_float_ties": self.ties,
            "mismatches_other": self.errors,
            "samples_with_ties": len(self.tie_samples),
            "samples_differing_end_to_end": len(self.differing_samples),
            "samples_differing_without_tie": len(self.unexplained_samples),
            "bit_exact": self.exact,
            "top1_agreement": self.top1_agreement,
            "max_abs_output_diff": self.max_abs_diff,
        }


def _channel_scale(scale: np.ndarray, ndim: int) -> np.ndarray:
    """A per-channel scale (C,) shaped to divide an ONNX batch (N, C, ...) along its channel axis."""
    scale = np.asarray(scale, np.float64)
    return scale.reshape(-1, *([1] * (ndim - 2))) if scale.size > 1 else scale


def _tie_mask(loaded: LoadedModel, ctx: dict[str, np.ndarray], onnx_tensor: str, scale: np.ndarray) -> np.ndarray:
    """Where the float value entering the quantiser that produced `onnx_tensor` sits on a decision boundary."""
    producer = loaded.model.find_producer(onnx_tensor)
    if producer is None or producer.op_type not in ("Quant", "BipolarQuant"):
        return np.zeros(ctx[onnx_tensor].shape, bool)
    pre = ctx[producer.input[0]].astype(np.float64)
    if producer.op_type == "BipolarQuant":
        return np.abs(pre) <= TIE_EPS * np.abs(pre).max(initial=1.0)
    level = pre / scale
    return np.abs(np.abs(level - np.floor(level)) - 0.5) <= TIE_EPS


def verify(graph: DataflowGraph, loaded: LoadedModel, x: np.ndarray, batch: int | None = None) -> VerifyReport:
    """Teacher-forced per-probe comparison plus end-to-end output agreement on x, streamed `batch` samples at a
    time (default: what `stream_batch` allows), so that memory stays flat however many samples are checked."""
    step = max(1, batch or stream_batch(loaded))
    total = VerifyReport(samples=len(x))
    agree = 0.0
    for start in range(0, len(x), step):
        part = _verify_batch(graph, loaded, x[start : start + step])
        if not total.probes:
            total.probes = [ProbeResult(p.stream, p.onnx_tensor, 0, 0, 0) for p in part.probes]
        for mine, theirs in zip(total.probes, part.probes, strict=True):
            mine.values += theirs.values
            mine.mismatches += theirs.mismatches
            mine.ties += theirs.ties
        total.tie_samples |= {start + i for i in part.tie_samples}
        total.differing_samples |= {start + i for i in part.differing_samples}
        agree += part.top1_agreement * part.samples
        total.max_abs_diff = max(total.max_abs_diff, part.max_abs_diff)
    total.top1_agreement = agree / max(len(x), 1)
    return total


def stream_batch(loaded: LoadedModel, budget_bytes: int | None = None) -> int:
    """Samples per batch whose every intermediate tensor (float64 at worst) fits in `budget_bytes` together."""
    budget = budget_bytes or STREAM_BYTES
    return max(1, min(256, budget // max(8 * activation_elements(loaded), 1)))


def _verify_batch(graph: DataflowGraph, loaded: LoadedModel, x: np.ndarray) -> VerifyReport:
    golden = GoldenModel(loaded, batch=len(x))
    ctx = golden.run_all(x)
    forced = {s: p.layout.to_ir(np.rint(ctx[p.onnx_tensor] / _channel_scale(p.scale, ctx[p.onnx_tensor].ndim))
                                .astype(np.int64)) for s, p in graph.probes.items()}
    report = VerifyReport(samples=len(x))
    env = {graph.input: quantize_input(graph.pre, x)}
    computed: dict[str, np.ndarray] = {}
    if graph.input in forced:
        computed[graph.input] = env[graph.input]
        env[graph.input] = forced[graph.input]
    for node in graph.nodes:
        outs = run_node(node, [env[i] for i in node.inputs])
        names = node.outputs if isinstance(node, DuplicateStreams) else (node.output,)
        for name, out in zip(names, outs, strict=True):
            out = out.reshape(len(out), *graph.tensors[name].shape)
            computed[name] = out
            env[name] = forced.get(name, out)
    for stream, probe in graph.probes.items():
        diff = computed[stream] != forced[stream]
        ties = probe.layout.to_ir(_tie_mask(loaded, ctx, probe.onnx_tensor,
                                            _channel_scale(probe.scale, ctx[probe.onnx_tensor].ndim)))
        report.probes.append(ProbeResult(stream, probe.onnx_tensor, int(diff.size), int(diff.sum()),
                                         int((diff & ties).sum())))
        report.tie_samples |= set(np.flatnonzero((diff & ties).reshape(len(x), -1).any(1)).tolist())
    ours, ref = run_model(graph, x), ctx[loaded.output_name]
    if ours.shape == ref.shape:
        # the host-side float affine differs from QONNX's float Gemm only by float32 rounding
        close = np.isclose(ours, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max(initial=1.0))
        report.differing_samples = set(np.flatnonzero(~close.reshape(len(x), -1).all(1)).tolist())
    if ours.ndim == 2 and ours.shape == ref.shape:
        report.top1_agreement = float((ours.argmax(1) == ref.argmax(1)).mean())
    report.max_abs_diff = float(np.abs(ours.astype(np.float64) - ref).max()) if ours.shape == ref.shape else 0.0
    return report

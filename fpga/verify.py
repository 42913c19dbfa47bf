"""Check a lowered IR against the golden QONNX model, layer by layer and end to end.

Layer by layer, each IR node gets the golden model's own inputs (teacher forcing), so a difference cannot
propagate and every mismatch is attributed to one quantiser. A mismatch is a *tie* when QONNX's float32 value
before that quantiser lies within TIE_EPS of a rounding boundary: float32 accumulation order then decides the
side, and no integer implementation can reproduce it. Any other mismatch is a lowering bug.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fpga.execute import quantize_input, run_model, run_node
from fpga.ir import DataflowGraph, DuplicateStreams
from frontend.qonnx_io import GoldenModel, LoadedModel, activation_elements

TIE_EPS = 1e-4  # in units of the quantiser's step
# Softmax and LayerNorm kernels approximate a float function (exp table, fixed-point reciprocal and square root):
# their outputs must equal the golden's in at least this share of elements and never differ by more than one level
APPROX_KINDS = ("Softmax", "LayerNorm")
APPROX_EQUAL_SHARE = 0.995
APPROX_MAX_LEVELS = 1
APPROX_TOP1 = 0.99
# a float function's golden value this close to a rounding boundary (in float32 ulps of the value) is decided by
# the float rounding of whichever runtime evaluates it: no float32 runtime can be held to the golden's side there
FLOAT_TIE_ULPS = 4
STREAM_BYTES = 256 << 20  # activations held at once while verifying (golden context + integer IR)


@dataclass
class ProbeResult:
    stream: str
    onnx_tensor: str
    values: int
    mismatches: int
    ties: int
    approximate: bool = False  # written by a Softmax/LayerNorm kernel: checked against the stated bound
    far: int = 0  # elements more than APPROX_MAX_LEVELS levels away (approximate probes)
    max_diff: int = 0  # largest difference in levels

    @property
    def within_bound(self) -> bool:
        return self.far == 0 and self.mismatches <= (1 - APPROX_EQUAL_SHARE) * self.values

    @property
    def errors(self) -> int:
        if self.approximate:
            return 0 if self.within_bound else max(self.far, 1)
        return self.mismatches - self.ties


@dataclass
class VerifyReport:
    samples: int
    probes: list[ProbeResult] = field(default_factory=list)
    top1_agreement: float = 0.0
    max_abs_diff: float = 0.0
    tie_samples: set[int] = field(default_factory=set)  # samples in which some quantiser saw a tie
    differing_samples: set[int] = field(default_factory=set)  # samples whose final output differs end to end
    golden_outputs: list[np.ndarray] = field(default_factory=list, repr=False)  # per batch, for reuse by callers
    approx_samples: set[int] = field(default_factory=set)  # samples in which a Softmax/LayerNorm output differs
    # samples in which a Softmax/LayerNorm quantiser's golden input lies within FLOAT_TIE_ULPS of a boundary
    float_tie_samples: set[int] = field(default_factory=set)

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
        """Samples that differ end to end without a tie or an approximate kernel's difference in them: must be
        empty."""
        return self.differing_samples - self.tie_samples - self.approx_samples

    @property
    def approximate(self) -> list[ProbeResult]:
        return [p for p in self.probes if p.approximate]

    @property
    def exact(self) -> bool:
        """Bit-exact everywhere (ties aside): no approximate kernel differs anywhere."""
        return self.passed and not any(p.mismatches for p in self.approximate)

    @property
    def passed(self) -> bool:
        """Bit-exact wherever the function is exact; Softmax/LayerNorm outputs within their bound, and then top-1
        agreement of at least APPROX_TOP1."""
        if self.errors or self.unexplained_samples:
            return False
        return not self.approximate or self.top1_agreement >= APPROX_TOP1

    def as_dict(self) -> dict:
        return {
            "samples": self.samples,
            "values_compared": self.values,
            "mismatches_at_float_ties": self.ties,
            "mismatches_other": self.errors,
            "samples_with_ties": len(self.tie_samples),
            "samples_with_float_function_ties": len(self.float_tie_samples),
            "samples_differing_end_to_end": len(self.differing_samples),
            "samples_differing_without_tie": len(self.unexplained_samples),
            "bit_exact": self.exact,
            "passed": self.passed,
            "top1_agreement": self.top1_agreement,
            "max_abs_output_diff": self.max_abs_diff,
            **({"approximate": self.approximate_dict()} if self.approximate else {}),
        }

    def approximate_dict(self) -> dict:
        """The Softmax/LayerNorm outputs against their bound (teacher-forced, so each is measured alone)."""
        probes = self.approximate
        values = sum(p.values for p in probes)
        equal = values - sum(p.mismatches for p in probes)
        return {
            "bound": f">= {APPROX_EQUAL_SHARE:.1%} of elements equal, none off by more than {APPROX_MAX_LEVELS} "
                     f"level, top-1 agreement >= {APPROX_TOP1:.0%}",
            "values": values,
            "equal_share": equal / max(values, 1),
            "max_level_diff": max(p.max_diff for p in probes),
            "samples_differing": len(self.approx_samples),
            "within_bound": all(p.within_bound for p in probes),
            "layers": [{"stream": p.stream, "tensor": p.onnx_tensor, "values": p.values, "different": p.mismatches,
                        "max_level_diff": p.max_diff} for p in probes],
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


def _float_tie_mask(loaded: LoadedModel, ctx: dict[str, np.ndarray], onnx_tensor: str,
                    scale: np.ndarray) -> np.ndarray:
    """Where a float function's value entering its quantiser is within FLOAT_TIE_ULPS float32 ulps of a boundary."""
    producer = loaded.model.find_producer(onnx_tensor)
    if producer is None or producer.op_type != "Quant":
        return np.zeros(ctx[onnx_tensor].shape, bool)
    level = ctx[producer.input[0]].astype(np.float64) / scale
    ulps = FLOAT_TIE_ULPS * 2.0**-23 * np.maximum(np.abs(level), 1.0)
    return np.abs(np.abs(level - np.floor(level)) - 0.5) <= ulps


def verify(graph: DataflowGraph, loaded: LoadedModel, x: np.ndarray, batch: int | None = None) -> VerifyReport:
    """Teacher-forced per-probe comparison plus end-to-end output agreement on x, streamed `batch` samples at a
    time (default: what `stream_batch` allows), so that memory stays flat however many samples are checked."""
    step = max(1, batch or stream_batch(loaded))
    total = VerifyReport(samples=len(x))
    agree = 0.0
    for start in range(0, len(x), step):
        part = _verify_batch(graph, loaded, x[start : start + step])
        if not total.probes:
            total.probes = [ProbeResult(p.stream, p.onnx_tensor, 0, 0, 0, p.approximate) for p in part.probes]
        for mine, theirs in zip(total.probes, part.probes, strict=True):
            mine.values += theirs.values
            mine.mismatches += theirs.mismatches
            mine.ties += theirs.ties
            mine.far += theirs.far
            mine.max_diff = max(mine.max_diff, theirs.max_diff)
        total.tie_samples |= {start + i for i in part.tie_samples}
        total.approx_samples |= {start + i for i in part.approx_samples}
        total.float_tie_samples |= {start + i for i in part.float_tie_samples}
        total.differing_samples |= {start + i for i in part.differing_samples}
        agree += part.top1_agreement * part.samples
        total.max_abs_diff = max(total.max_abs_diff, part.max_abs_diff)
        total.golden_outputs += part.golden_outputs
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
    x_int = quantize_input(graph.pre, x)
    env = {graph.input: x_int.reshape(len(x_int), *graph.tensors[graph.input].shape)}
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
    approx = {n.output for n in graph.nodes if n.kind in APPROX_KINDS}
    for stream, probe in graph.probes.items():
        delta = np.abs(computed[stream] - forced[stream])
        diff = delta != 0
        ties = probe.layout.to_ir(_tie_mask(loaded, ctx, probe.onnx_tensor,
                                            _channel_scale(probe.scale, ctx[probe.onnx_tensor].ndim)))
        result = ProbeResult(stream, probe.onnx_tensor, int(diff.size), int(diff.sum()), int((diff & ties).sum()),
                             approximate=stream in approx, far=int((delta > APPROX_MAX_LEVELS).sum()),
                             max_diff=int(delta.max(initial=0)))
        report.probes.append(result)
        report.tie_samples |= set(np.flatnonzero((diff & ties).reshape(len(x), -1).any(1)).tolist())
        if result.approximate:
            report.approx_samples |= set(np.flatnonzero(diff.reshape(len(x), -1).any(1)).tolist())
            near = _float_tie_mask(loaded, ctx, probe.onnx_tensor,
                                   _channel_scale(probe.scale, ctx[probe.onnx_tensor].ndim))
            report.float_tie_samples |= set(np.flatnonzero(near.reshape(len(x), -1).any(1)).tolist())
    ours, ref = run_model(graph, x), ctx[loaded.output_name]
    report.golden_outputs.append(ref)
    if ours.shape == ref.shape:
        # the host-side float affine differs from QONNX's float Gemm only by float32 rounding
        close = np.isclose(ours, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max(initial=1.0))
        report.differing_samples = set(np.flatnonzero(~close.reshape(len(x), -1).all(1)).tolist())
    if ours.ndim == 2 and ours.shape == ref.shape:
        report.top1_agreement = float((ours.argmax(1) == ref.argmax(1)).mean())
    report.max_abs_diff = float(np.abs(ours.astype(np.float64) - ref).max()) if ours.shape == ref.shape else 0.0
    return report

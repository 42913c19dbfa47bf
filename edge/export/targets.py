"""`edge export`: write a target format, run it with its own runtime, and compare it with the golden model."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edge.bench_device import host_description
from edge.export.kernel_paths import summarise
from edge.export.qdq import to_qdq
from edge.export.reference import MAX_LSB, Reference, ort_run, reference
from edge.fsutil import atomic_output_dir, write_json
from edge.report_html import write_export_html
from fpga.ir import DataflowGraph, node_outputs
from frontend.errors import EdgeError
from frontend.qonnx_io import GoldenModel, LoadedModel

TARGETS = ("onnx", "tflite", "openvino", "tensorrt")
PROGRAM_EXACT_SHARE = 0.99  # OpenVINO runs the int8 program when this share of its channels is exact


# How OpenVINO must run an exported model to compute what it says, on every x86 CPU: f32, not the CPU default (on
# bf16-capable CPUs the non-int8 parts otherwise run in bf16), and no dynamic quantisation (on VNNI/AMX CPUs it
# re-quantises the float inputs of fully connected layers per group: measured on an AMD EPYC with AVX-512 VNNI and
# BF16, 339 of 22,976 first-layer outputs of sfc w4a4 one level off; 0 with it off).
OPENVINO_CONFIG = {"INFERENCE_PRECISION_HINT": "f32", "DYNAMIC_QUANTIZATION_GROUP_SIZE": "0"}


def activation_probes(proto: onnx.ModelProto) -> list[tuple[str, float]]:
    """(tensor, scale) of every activation DequantizeLinear output: QONNX Quant outputs under the same name."""
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer}
    return [(n.output[0], float(np.asarray(inits[n.input[1]]).reshape(-1)[0])) for n in proto.graph.node
            if n.op_type == "DequantizeLinear" and n.input[0] not in inits and n.input[1] in inits]


def with_outputs(proto: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    """A copy of the model that also outputs the named tensors (shapes are inferred)."""
    extra = onnx.ModelProto()
    extra.CopyFrom(proto)
    keep = [v for v in extra.graph.value_info if v.name not in names]
    del extra.graph.value_info[:]
    extra.graph.value_info.extend(keep)
    for name in names:
        extra.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    return extra


def per_layer_rows(got: dict[str, np.ndarray], golden_all: dict[str, np.ndarray],
                   probes: list[tuple[str, float]]) -> list[dict[str, Any]]:
    rows = []
    for name, scale in probes:
        if name not in got or name not in golden_all:
            continue
        d = np.abs(got[name].astype(np.float64) - golden_all[name].reshape(got[name].shape)) / scale
        rows.append({"tensor": name, "mismatches": int((d > 0.5).sum()), "values": int(d.size),
                     "max_diff_lsb": float(d.max())})
    return rows


def merge_rows(total: list[dict[str, Any]], part: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-layer rows of one more batch added to the rows so far (counts add up, maxima take the max)."""
    if not total:
        return [dict(r) for r in part]
    for mine, theirs in zip(total, part, strict=True):
        mine["mismatches"] += theirs["mismatches"]
        mine["values"] += theirs["values"]
        mine["max_diff_lsb"] = max(mine["max_diff_lsb"], theirs["max_diff_lsb"])
    return total


class _Runtime:
    """One model on one runtime with every named tensor as an output, run batch by batch (sessions per size)."""

    def __init__(self, proto: onnx.ModelProto, names: list[str], runtime: str,
                 config: dict[str, str] | None = None) -> None:
        self.proto, self.names, self.runtime = proto, names, runtime
        self.config = config if config is not None else OPENVINO_CONFIG
        self.sessions: dict[int, Any] = {}

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        n = len(x)
        if self.runtime == "openvino":
            import tempfile

            import openvino as ov

            if n not in self.sessions:
                with tempfile.TemporaryDirectory() as d:
                    onnx.save(with_outputs(self.proto, self.names), f"{d}/m.onnx")
                    model = ov.convert_model(f"{d}/m.onnx")
                model.reshape({model.inputs[0].get_any_name(): list(x.shape)})
                self.sessions[n] = ov.Core().compile_model(model, "CPU", self.config)
            compiled = self.sessions[n]
            res = compiled(x)
            return {name: np.asarray(res[out]) for out in compiled.outputs for name in out.get_names()}
        import onnxruntime as ort
        from qonnx.core.modelwrapper import ModelWrapper

        from frontend.qonnx_io import with_batch

        if n not in self.sessions:
            batched = with_outputs(with_batch(ModelWrapper(self.proto), n).model, self.names)
            self.sessions[n] = ort.InferenceSession(batched.SerializeToString(), providers=["CPUExecutionProvider"])
        sess = self.sessions[n]
        outs = sess.run(None, {sess.get_inputs()[0].name: x})
        return {o.name: v for o, v in zip(sess.get_outputs(), outs, strict=True)}


def qdq_per_layer(proto: onnx.ModelProto, loaded: LoadedModel, ref: Reference, runtime: str) -> list[dict[str, Any]]:
    """Each activation quantiser's output in the exported model against the golden model, in its own LSB,
    streamed in the reference's batches."""
    probes = activation_probes(proto)
    rt = _Runtime(proto, [n for n, _ in probes], runtime)
    golden = GoldenModel(loaded, batch=ref.batch)
    rows: list[dict[str, Any]] = []
    for part in ref.batches():
        x = ref.x[part]
        rows = merge_rows(rows, per_layer_rows(rt.run(x), golden.run_all(x), probes))
    return rows


def qdq_runtime_tie_samples(proto: onnx.ModelProto, loaded: LoadedModel, ref: Reference, runtime: str,
                            config: dict[str, str], size: int, out: np.ndarray,
                            samples: np.ndarray) -> frozenset[int]:
    """Of the samples over the bound, those whose first departure from the golden model's levels (activation
    quantisers in graph order) lies wholly at golden float ties, as `runtime_tie_samples` decides for TFLite. The
    quantisers come from a second run, in the checked run's batches of `size`, with each of them as an output; a
    sample counts only where that run's output equals the checked run's (the same computation)."""
    from fpga.verify import _float_tie_mask, _tie_mask

    pending = set(int(i) for i in samples) - set(ref.ties)
    if not pending:
        return frozenset()
    probes = activation_probes(proto)
    final = proto.graph.output[0].name
    rt = _Runtime(proto, [n for n, _ in probes], runtime, config)
    found: set[int] = set()
    for part in ref.batches():
        for start in range(part.start, part.stop, size):
            stop = min(start + size, part.stop)
            mine = [i for i in range(start, stop) if i in pending]
            if not mine:
                continue
            chunk = ref.x[start:stop]
            if len(chunk) < size:  # padded as the checked run was
                chunk = np.concatenate([chunk, np.repeat(chunk[:1], size - len(chunk), axis=0)])
            got = rt.run(chunk)
            ctx = GoldenModel(loaded, batch=ref.batch).run_all(chunk)
            for i in mine:
                k = i - start
                if not np.array_equal(np.asarray(got[final][k]).reshape(-1), out[i].reshape(-1)):
                    continue
                for name, scale in probes:
                    if name not in got or name not in ctx:
                        continue
                    have = np.rint(np.asarray(got[name][k], np.float64) / scale)
                    want = np.rint(ctx[name][k].astype(np.float64).reshape(have.shape) / scale)
                    off = have != want
                    if off.any():
                        tie = (_tie_mask(loaded, ctx, name, np.float64(scale)) |
                               _float_tie_mask(loaded, ctx, name, np.float64(scale)))[k].reshape(have.shape)
                        if tie[off].all():
                            found.add(i)
                        break
    return frozenset(found)


def export_onnx(loaded: LoadedModel, tmp: Path, ref: Reference,
                target: str = "onnx") -> tuple[dict[str, Any], onnx.ModelProto]:
    proto, widened, conv = to_qdq(loaded, target)
    path = tmp / "model.qdq.onnx"
    onnx.save(proto, str(path))
    exact = ref.compare(ort_run(proto, ref.x, optimise=False, batch=ref.batch),
                        "onnxruntime (no graph optimisation)", exact=True)
    fused = ref.compare(ort_run(proto, ref.x, optimise=True, batch=ref.batch),
                        "onnxruntime (default: fused int8 kernels)",
                        exact=False)
    return {"path": path.name, "widened": widened, "notes": conv.notes, "verification": exact.as_dict(),
            "onnxruntime_optimised": fused.as_dict(),
            "kernel_paths": {**summarise(conv.paths), "notes": conv.kernel_notes}}, proto


def int8_program_onnx(graph: DataflowGraph | None, where: str, tmp: Path) -> tuple[Path, Any] | None:
    """The TFLite writer's int8 program (fitted requantisation from the integer IR) as QDQ ONNX, when its
    requantisation is exact in (nearly) every channel; None otherwise (8-bit weights), or when the model does not
    lower."""
    from edge.export.qdq import fake_quant_safe_scale
    from edge.export.tflite import to_int8_onnx

    if graph is None:
        return None
    try:
        program = to_int8_onnx(graph, where, lambda s, t: fake_quant_safe_scale(s, t.quant.value_range[1]))
    except EdgeError:
        return None
    # channels exact only in exact arithmetic may differ at float near-ties (as the golden model's float32 does);
    # a handful of channels off by a level (the 8-bit first layer of an ImageNet net) still beats OpenVINO's own
    # BatchNorm folding (ProxylessNAS: 0.0 vs 4.1 output LSB); a program whose fits miss widely (8-bit weights
    # everywhere) leaves OpenVINO the QDQ form
    rq = program.requant
    if rq["exact_in_exact_arithmetic"] < PROGRAM_EXACT_SHARE * rq["channels"]:
        return None
    path = tmp / "model.int8.onnx"
    path.write_bytes(program.flatbuffer)
    return path, program


# float functions a QDQ export keeps in float: not reproducible bit for bit across runtimes
FLOAT_FUNCTIONS = frozenset({"LayerNormalization", "Softmax", "Gelu", "Erf", "Tanh", "Sigmoid", "Exp", "Sqrt"})


def export_openvino(loaded: LoadedModel, tmp: Path, ref: Reference, per_layer: bool) -> dict[str, Any]:
    """OpenVINO IR from the exact int8 program when it exists (its activations are the IR's integers whatever
    order OpenVINO folds scales in), else from the QDQ model of the QONNX graph."""
    import openvino as ov

    x = ref.x
    program = int8_program_onnx(ref.graph, str(loaded.path), tmp)
    if program is not None:
        onnx_path, prog = program
        report = {"path": onnx_path.name, "widened": prog.widened, "form": "int8 program from the integer IR "
                  "(fitted per-channel requantisation)", "kernel_paths": prog.kernel_paths}
    else:
        report, _ = export_onnx(loaded, tmp, ref, target="openvino")
        report["form"] = "QDQ of the QONNX graph (8-bit weights: OpenVINO folds BatchNorm itself)"
        onnx_path = tmp / report["path"]
    model = ov.convert_model(str(onnx_path))
    ov.save_model(model, str(tmp / "model.xml"))
    core = ov.Core()
    name = model.inputs[0].get_any_name()
    size = min(ref.batch, len(x))
    try:
        model.reshape({name: [size, *loaded.input_shape[1:]]})
    except RuntimeError:  # a batch-1 constant baked in at export (a class token Concat): one sample at a time
        size = 1
        model.reshape({name: [1, *loaded.input_shape[1:]]})
    compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": "1", **OPENVINO_CONFIG})
    outs = []
    for part in ref.batches():  # one compiled batch size: the last batch is padded with its own first sample
        for start in range(part.start, part.stop, size):
            chunk = x[start:min(start + size, part.stop)]
            n = len(chunk)
            if n < size:
                chunk = np.concatenate([chunk, np.repeat(chunk[:1], size - n, axis=0)])
            outs.append(np.asarray(compiled(chunk)[compiled.outputs[0]])[:n])
    out = np.concatenate(outs, axis=0)
    layers = []
    for op in compiled.get_runtime_model().get_ordered_ops():
        rt = op.get_rt_info()
        kind = rt["layerType"].astype(str) if "layerType" in rt else op.get_type_name()
        prec = rt["runtimePrecision"].astype(str) if "runtimePrecision" in rt else "?"
        if kind not in ("Input", "Output", "Const"):
            layers.append({"name": op.get_friendly_name(), "type": kind, "precision": prec})
    runtime = f"openvino {ov.__version__} CPU"
    check = ref.compare(out, runtime, exact=False)
    if not check.passed and program is None:
        over = np.flatnonzero(ref.sample_lsb(out, check.extra["output_lsb"]) > MAX_LSB)
        if out.ndim == 2:
            over = np.union1d(over, np.flatnonzero(out.argmax(1) != ref.golden.reshape(len(out), -1).argmax(1)))
        extra = qdq_runtime_tie_samples(onnx.load(str(onnx_path)), loaded, ref, "openvino",
                                        {"INFERENCE_NUM_THREADS": "1", **OPENVINO_CONFIG}, size, out, over)
        if extra:
            check = ref.compare(out, runtime, exact=False, runtime_ties=extra)
    result = {"path": "model.xml", "qdq_onnx": onnx_path.name, "compile_config": dict(OPENVINO_CONFIG),
              "form": report["form"], "widened": report["widened"],
              "kernel_paths": report["kernel_paths"], "verification": check.as_dict(), "layers": layers,
              "int8_layers": sum(1 for layer in layers if layer["precision"] in ("i8", "u8"))}
    floats = sorted({n.op_type for n in loaded.model.graph.node} & FLOAT_FUNCTIONS)
    if floats and not check.passed:
        result["notes"] = [f"{', '.join(floats)} run in float32 on OpenVINO in its own order: at a near-tie the "
                           "quantiser after them takes the other level than onnxruntime's, and the flip propagates "
                           "downstream; --per-layer shows each quantiser's agreement"]
    if per_layer:
        if program is not None:
            result["per_layer"] = int8_program_per_layer(program[1], ref, tmp)
        else:
            result["per_layer"] = qdq_per_layer(onnx.load(str(onnx_path)), loaded, ref, "openvino")
    return result


def int8_program_per_layer(prog: Any, ref: Reference, tmp: Path) -> list[dict[str, Any]]:
    """OpenVINO running the int8 program: every int8 tensor against the integer IR, in levels, batch by batch."""
    from fpga.execute import execute, quantize_input

    graph = ref.graph
    proto = onnx.ModelProto.FromString(prog.flatbuffer)
    produced = {n.output[0] for n in proto.graph.node}
    wanted = {name: stream for stream, (name, _) in prog.streams.items()
              if (stream in graph.probes or stream == graph.input) and name in produced}
    zero = {i.name[: -len("/zero_point")]: int(onnx.numpy_helper.to_array(i)) for i in proto.graph.initializer
            if i.name.endswith("/zero_point")}
    rt = _Runtime(proto, list(wanted), "openvino")
    rows: list[dict[str, Any]] = []
    for part in ref.batches():
        x = ref.x[part]
        ir = execute(graph, quantize_input(graph.pre, x), keep_all=True)
        got = rt.run(x)
        batch_rows = []
        for n, stream in wanted.items():
            if n not in got or stream not in ir:
                continue
            want = ir[stream]
            want = np.moveaxis(want, -1, 1) if want.ndim == 4 else want
            d = np.abs(got[n].astype(np.int64).reshape(want.shape) - zero[n] - want)
            batch_rows.append({"tensor": n, "ir_stream": stream, "mismatches": int((d > 0).sum()),
                               "values": int(d.size), "max_diff_lsb": float(d.max())})
        rows = merge_rows(rows, batch_rows)
    return rows


def export_tflite(loaded: LoadedModel, tmp: Path, ref: Reference, io: str, int8_only: bool = False) -> dict[str, Any]:
    """The int8 program; if it misses the check where some layer's int8 requantisation cannot be exact, the
    program again with those layers in float32 on exact integers (unless int8_only), reporting both."""
    from edge.export.tflite import to_tflite
    from fpga.lower import lower

    graph = ref.graph if ref.graph is not None else lower(loaded)  # lower() raises the error naming the node
    model = to_tflite(graph, str(loaded.path), io)
    report = run_tflite(model, graph, tmp, ref, io, loaded)
    if report["verification"]["passed"] or int8_only or not model.requant["inexact"]:
        return report
    exact = to_tflite(graph, str(loaded.path), io, exact_float=True)
    retry = run_tflite(exact, graph, tmp, ref, io, loaded)
    v = report["verification"]
    retry["int8_attempt"] = {"max_diff_output_lsb": v["max_diff_output_lsb"], "top1_agreement": v["top1_agreement"],
                             "inexact": model.requant["inexact"]}
    retry.setdefault("notes", []).append(
        f"the all-int8 program missed the check ({v['max_diff_output_lsb']:.2f} output LSB, top-1 "
        f"{v['top1_agreement']:.1%}): the layers whose int8 "
        "requantisation cannot be exact run in float32 on exact integers (--int8-only keeps them int8)")
    return retry


def run_tflite(model: Any, graph: DataflowGraph, tmp: Path, ref: Reference, io: str,
               loaded: LoadedModel) -> dict[str, Any]:
    """Write one TFLite program, run it on the reference inputs and compare every int8 tensor with the IR."""
    from edge.export.tflite_run import TfliteRunner
    from fpga.execute import execute, quantize_input

    (tmp / "model.tflite").write_bytes(model.flatbuffer)
    runner = TfliteRunner(model, threads=1, keep_tensors=True)
    outs = []
    layers: list[dict[str, Any]] = []
    for part in ref.batches():  # every int8 tensor against the integer IR (itself bit-exact with the golden)
        x = ref.x[part]
        outs.append(runner.run_float(x, graph.pre))
        ir = execute(graph, quantize_input(graph.pre, x), keep_all=True)
        batch_rows = []
        for stream, (name, zp) in model.streams.items():
            if stream in ir and (stream in graph.probes or stream == graph.input):
                got = (runner.tensor(name).astype(np.int64) - zp).reshape(ir[stream].shape)
                d = np.abs(got - ir[stream])
                batch_rows.append({"tensor": name, "ir_stream": stream, "mismatches": int((d > 0).sum()),
                                   "values": int(d.size), "max_diff_lsb": float(d.max())})
        layers = merge_rows(layers, batch_rows)
        del ir
    step = model.output_quant[0] if model.output_quant else None  # int8 output: its own step is the LSB
    ours = np.concatenate(outs, axis=0)
    runtime = f"LiteRT {runner.version} CPU"
    check = ref.compare(ours, runtime, exact=False, out_step=step)
    if not check.passed:
        over = np.flatnonzero(ref.sample_lsb(ours, check.extra["output_lsb"]) > MAX_LSB)
        if ours.ndim == 2:  # and the samples whose top-1 differs
            flipped = np.flatnonzero(ours.argmax(1) != ref.golden.reshape(len(ours), -1).argmax(1))
            over = np.union1d(over, flipped)
        extra = runtime_tie_samples(model, runner, graph, ref, loaded, over)
        if extra:
            check = ref.compare(ours, runtime, exact=False, out_step=step, runtime_ties=extra)
    check.extra["int8_tensors_equal_to_ir"] = all(layer["mismatches"] == 0 for layer in layers)
    return {"path": "model.tflite", "io": io, "input": runner.input_info(), "output": runner.output_info(),
            "ops": model.ops, "widened": model.widened, "requantisation": model.requant,
            "kernel_paths": model.kernel_paths,
            "verification": check.as_dict(), "per_layer": layers}


def runtime_tie_samples(model: Any, runner: Any, graph: DataflowGraph, ref: Reference, loaded: LoadedModel,
                        samples: np.ndarray) -> frozenset[int]:
    """Of the samples over the bound, those whose first departure from the golden model's levels (in stream
    order) lies wholly at golden float ties: the quantiser's float input within TIE_EPS of a rounding boundary
    (or a float function's within FLOAT_TIE_ULPS). Up to there the runtime equals the golden, so the golden's own
    float rounding decided; what follows is that tie propagated."""
    from fpga.verify import _channel_scale, _float_tie_mask, _tie_mask

    if not len(samples):
        return frozenset()
    order = [graph.input, *(o for n in graph.nodes for o in node_outputs(n))]
    streams = [s for s in order if s in model.streams and s in graph.probes]
    found: set[int] = set()
    for part in ref.batches():
        mine = [i for i in samples if part.start <= i < part.stop and i not in ref.ties]
        if not mine:
            continue
        x = ref.x[part]
        runner.run_float(x, graph.pre)
        ctx = GoldenModel(loaded, batch=len(x)).run_all(x)  # the reference's batch: the same float summation order
        pending = {i - part.start for i in mine}
        for stream in streams:
            if not pending:
                break
            probe = graph.probes[stream]
            scale = _channel_scale(probe.scale, ctx[probe.onnx_tensor].ndim)
            want = probe.layout.to_ir(np.rint(ctx[probe.onnx_tensor] / scale).astype(np.int64))
            name, zp = model.streams[stream]
            got = (runner.tensor(name).astype(np.int64) - zp).reshape(want.shape)
            tie = probe.layout.to_ir(_tie_mask(loaded, ctx, probe.onnx_tensor, scale)
                                     | _float_tie_mask(loaded, ctx, probe.onnx_tensor, scale))
            for i in sorted(pending):
                off = got[i] != want[i]
                if off.any():
                    pending.discard(i)
                    if tie[i][off].all():
                        found.add(part.start + i)
    return frozenset(found)


def export(loaded: LoadedModel, target: str, out_dir: Path, calib: Path | None = None, io: str = "float",
           per_layer: bool = False, int8_only: bool = False) -> dict[str, Any]:
    """Write `target` into out_dir (atomically) and verify it; returns the export report."""
    if target not in TARGETS:
        raise EdgeError(f"unknown target '{target}'; choose one of {', '.join(TARGETS)}")
    ref = reference(loaded, calib, ties=target != "onnx")
    t0 = time.perf_counter()
    with atomic_output_dir(out_dir) as tmp:
        if target == "onnx":
            report, _ = export_onnx(loaded, tmp, ref)
        elif target == "tflite":  # always compares every int8 tensor with the integer IR
            report = export_tflite(loaded, tmp, ref, io, int8_only)
        elif target == "tensorrt":
            from edge.export.tensorrt import export_tensorrt

            report = export_tensorrt(loaded, tmp, ref)
        else:
            report = export_openvino(loaded, tmp, ref, per_layer)
        report.update(target=target, source=str(loaded.path), seconds=round(time.perf_counter() - t0, 2),
                      host=host_description())
        if per_layer and target in ("onnx", "tensorrt"):
            proto = onnx.load(str(tmp / report["path"]))
            report["per_layer"] = qdq_per_layer(proto, loaded, ref, target)
        write_json(tmp / "export.json", report)
        write_export_html(report, tmp)
    report["path"] = str(out_dir / report["path"])
    return report

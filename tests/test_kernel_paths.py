"""Exact on every CPU: numpy models of the int8 kernel paths, checked against the real runtime on this host and
applied to every exported program, so that a VNNI/AMX host still catches a program that would break on AVX2."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge.bench_device import host_description, isa_features
from edge.export.kernel_paths import (
    INT16_MAX,
    U8S8_PAIRS,
    dot_arm_int16_pairs,
    dot_int32,
    dot_s8s8_signed_input,
    dot_u8s8_pairs,
    layer_paths,
    max_fold,
    worst_pair,
)
from edge.export.targets import export
from edge.export.tflite import _zero_point
from fpga.execute import execute, quantize_input
from fpga.ir import MatrixVectorUnit, VectorVectorUnit
from fpga.lower import lower
from frontend.qonnx_io import load_model

ZOO = [pytest.param(m, b, id=f"{m}-w{b}a{b}") for m in ("tfc", "cnv", "dws", "resnet") for b in (2, 4)]


def test_pair_model_saturates_and_is_exact_within_the_bound():
    x = np.full((1, 4), 255)
    w = np.full((1, 4), 127)
    assert dot_u8s8_pairs(x, w)[0, 0] == 2 * INT16_MAX  # two pairs of 64770, each clamped
    assert dot_int32(x, w)[0, 0] == 4 * 255 * 127
    rng = np.random.default_rng(0)
    for _ in range(20):
        w = rng.integers(-127, 128, size=(8, 33))
        u8_max = int(rng.integers(1, 256))
        f = max_fold(w // 8 + 1, u8_max)
        wf = (w // 8 + 1) * f[:, None]
        assert np.abs(wf).max() <= 127 and worst_pair(wf, u8_max) <= INT16_MAX
        x = rng.integers(0, u8_max + 1, size=(16, 33))
        np.testing.assert_array_equal(dot_u8s8_pairs(x, wf), dot_int32(x, wf))
    # ARM NEON without dotprod: -128 * -128 twice wraps in int16; [-127, 127] never does
    xs = np.full((1, 2), -128)
    assert dot_arm_int16_pairs(xs, np.full((1, 2), -128))[0, 0] != dot_int32(xs, np.full((1, 2), -128))[0, 0]
    assert dot_arm_int16_pairs(xs, np.full((1, 2), -127))[0, 0] == 2 * 128 * 127
    assert not layer_paths("l", np.array([[-128, 3]]), 10).exact["arm-int16-pairs"]


def _ov_matmul(x: np.ndarray, w: np.ndarray, signed_input: bool) -> np.ndarray:
    """OpenVINO on this CPU: DQ(x) @ DQ(w int8) with unit scales, i.e. its integer dot product."""
    import openvino as ov

    zx = np.int8(0) if signed_input else np.uint8(0)
    inits = [numpy_helper.from_array(w.T.astype(np.int8), "w"), numpy_helper.from_array(np.float32(1), "s"),
             numpy_helper.from_array(np.asarray(zx), "zx"), numpy_helper.from_array(np.int8(0), "zw")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zx"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "zx"], ["xf"]),
             helper.make_node("DequantizeLinear", ["w", "s", "zw"], ["wf"]),
             helper.make_node("MatMul", ["xf", "wf"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [x.shape[0], w.shape[0]])],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    compiled = ov.Core().compile_model(ov.Core().read_model(model.SerializeToString(), b""), "CPU",
                                       {"INFERENCE_PRECISION_HINT": "f32"})
    return compiled(x.astype(np.float32))[compiled.outputs[0]].astype(np.int64)


@pytest.mark.parametrize("signed_input", [False, True], ids=["u8-input", "s8-input"])
def test_the_model_predicts_openvino_on_this_cpu(signed_input):
    """On a CPU without VNNI/AMX OpenVINO's int8 MatMul equals the saturating-pair model bit for bit; with them it
    equals the exact int32 dot product. Either way the model's bound keeps both equal to the exact result."""
    isa = host_description()["isa"]
    rng = np.random.default_rng(1)
    w = rng.integers(-127, 128, size=(16, 64))
    x = rng.integers(-128, 128, size=(8, 64)) if signed_input else rng.integers(0, 256, size=(8, 64))
    got = _ov_matmul(x, w, signed_input)
    pairs = dot_s8s8_signed_input(x, w) if signed_input else dot_u8s8_pairs(x, w)
    exact = dot_int32(x, w)
    assert not np.array_equal(pairs, exact)  # this matrix does saturate on the pair path
    has_int32_dot = isa["avx512_vnni"] or isa["avx_vnni"] or isa["amx"] or not isa["avx2"]
    np.testing.assert_array_equal(got, exact if has_int32_dot else pairs)
    bounded = w // 2  # |w| <= 64: 255 * 128 <= 32767
    np.testing.assert_array_equal(_ov_matmul(x, bounded, signed_input), dot_int32(x, bounded))


def test_isa_features_from_cpuinfo():
    x86 = "processor: 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni amx_int8\n"
    arm = "processor\t: 0\nFeatures\t: fp asimd asimddp i8mm\n"
    assert isa_features(x86)["avx512_vnni"] and isa_features(x86)["amx"] and not isa_features(x86)["neon"]
    assert isa_features(arm)["dotprod"] and isa_features(arm)["i8mm"] and not isa_features(arm)["avx2"]
    assert set(host_description()["isa"]) >= {"avx2", "avx512f", "avx512_vnni", "amx", "neon", "dotprod"}


def _layer_inputs(graph, ir, node) -> tuple[np.ndarray, bool]:
    """The integers a layer reduces over, as (rows, K) for an MVAU or (rows, K, C) for a VVAU."""
    x = ir[node.inputs[0]]
    if isinstance(node, VectorVectorUnit):
        return x.reshape(-1, node.k, node.channels), True
    return x.reshape(-1, node.mw), False


def _check_layers(program, graph, ir, path: str) -> int:
    """Run each MVAU/VVAU of a program through one kernel model on the IR's own integers; returns layers checked."""
    nodes = {n.name: n for n in graph.nodes}
    skip = set(program.kernel_paths.get("uint8_weight_layers", [])) if path == U8S8_PAIRS else set()
    checked = 0
    for layer in program.int8_layers:
        node = nodes[layer.node]
        if not isinstance(node, MatrixVectorUnit | VectorVectorUnit) or layer.node in skip:
            continue  # pools and residual adds (all-one weights) are covered by the static bound; uint8 layers
            # take u8*u8 kernels
        xs, depthwise = _layer_inputs(graph, ir, node)
        vmin, vmax = layer.input_range
        # QDQ ONNX: uint8 from zero, or int8 that enters the pairs as x + 128; TFLite: the stored int8 is value +
        # zero point, and the kernel subtracts zero point * sum(w) afterwards
        qdq_offset = 0 if vmin >= 0 else -vmin
        offset = qdq_offset if path == U8S8_PAIRS else _zero_point(vmin, vmax)

        def model(x, w, offset=offset):
            if path == U8S8_PAIRS:
                return dot_u8s8_pairs(x + offset, w) - offset * w.sum(1)[None, :]
            return dot_arm_int16_pairs(x + offset, w) - offset * w.sum(1)[None, :]

        if depthwise:
            for c in range(xs.shape[2]):
                w = layer.weights[c : c + 1]
                np.testing.assert_array_equal(model(xs[:, :, c], w), dot_int32(xs[:, :, c], w), err_msg=layer.node)
        else:
            np.testing.assert_array_equal(model(xs, layer.weights), dot_int32(xs, layer.weights), err_msg=layer.node)
        checked += 1
    return checked


@pytest.mark.parametrize("model,bits", ZOO)
def test_every_int8_program_is_exact_on_every_kernel_path(trained, tmp_path, model, bits):
    """Each exported program's int8 layers, run through the kernel models its runtimes may pick, on the IR's own
    integers, give the exact accumulators: the QDQ ONNX form (OpenVINO, onnxruntime) on the x86 u8*s8 pairs, the
    TFLite file on ARM's int16 pairs. The static bound holds too (it covers every input, not only these)."""
    from edge.export.reference import calibration_data
    from edge.export.tflite import to_int8_onnx, to_tflite

    loaded = load_model(trained(model, bits, bits, epochs=4) / "model.onnx")
    graph = lower(loaded)
    x, _ = calibration_data(loaded, None)
    ir = execute(graph, quantize_input(graph.pre, x[:64]), keep_all=True)
    onnx_form = to_int8_onnx(graph, str(loaded.path))
    tflite = to_tflite(graph, str(loaded.path))
    assert onnx_form.kernel_paths["paths"] == {U8S8_PAIRS: "exact", "arm-int16-pairs": "exact", "int32": "exact"}
    assert tflite.kernel_paths["paths"]["arm-int16-pairs"] == tflite.kernel_paths["paths"]["int32"] == "exact"
    assert tflite.kernel_paths["paths"][U8S8_PAIRS].startswith("not taken by LiteRT")
    assert _check_layers(onnx_form, graph, ir, U8S8_PAIRS) + len(onnx_form.kernel_paths["uint8_weight_layers"]) >= 2
    assert _check_layers(tflite, graph, ir, "arm-int16-pairs") >= 2
    report = export(loaded, "openvino", tmp_path / "ov")
    assert report["kernel_paths"]["paths"][U8S8_PAIRS] == "exact" and report["verification"]["passed"]
    assert report["host"]["isa"] == host_description()["isa"]


def test_the_model_catches_an_unbounded_program(trained, monkeypatch):
    """Without the pair bound on the weight fold (the previous writer), the model flags the first layer of a
    digits TFC (8-bit pixels x weights folded to +-127), on any host."""
    import edge.export.tflite as tflite

    loaded = load_model(trained("tfc", 2, 2, epochs=4) / "model.onnx")
    graph = lower(loaded)
    monkeypatch.setattr(tflite, "max_fold", lambda w, u8_max: np.full(len(w), 127))
    program = tflite.to_int8_onnx(graph, str(loaded.path))
    assert program.kernel_paths["paths"][U8S8_PAIRS] != "exact"
    first = program.int8_layers[0]
    xs = np.full((1, first.weights.shape[1]), first.u8_max)
    assert not np.array_equal(dot_u8s8_pairs(xs, first.weights), dot_int32(xs, first.weights))


@pytest.mark.parametrize("target", ["onnx", "openvino"])
def test_qdq_int8_weights_stay_within_the_pair_bound(trained, tmp_path, target):
    """8-bit weights x 8-bit activations cannot meet the bound in int8: those layers carry uint8 weights (zero
    point 128), which runtimes run on u8*u8 kernels; every remaining int8 weight meets the bound."""
    loaded = load_model(trained("cnv", 8, 8, epochs=4) / "model.onnx")
    report = export(loaded, target, tmp_path / "out")
    assert report["verification"]["passed"], report["verification"]
    kp = report["kernel_paths"]
    assert kp["paths"][U8S8_PAIRS] == "exact" and kp["notes"]
    proto = onnx.load(str(tmp_path / "out" / ("model.qdq.onnx")))
    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    producers = {n.output[0]: n for n in proto.graph.node}
    uint8_layers = 0
    for n in proto.graph.node:
        if n.op_type not in ("Conv", "MatMul", "Gemm"):
            continue
        dq = producers[n.input[1]]
        w = inits[dq.input[0]]
        if w.dtype == np.uint8:
            uint8_layers += 1
            assert np.all(inits[dq.input[2]] == 128)
        else:
            rows = w.reshape(len(w), -1) if n.op_type == "Conv" else w.reshape(w.shape[0], -1).T
            assert worst_pair(rows.astype(np.int64), 255) <= INT16_MAX, n.name
    assert uint8_layers >= 3

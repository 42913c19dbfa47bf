"""Edge export: QDQ ONNX keeps the QAT scales and matches the golden model; OpenVINO IR runs int8 on the CPU."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from edge.cli import bundled_model_path
from edge.export.targets import export
from frontend.qonnx_io import GoldenModel, load_model
from tests.litert import run_tflite_file

BITS = [2, 4, 8]
# the zoo's shapes: MLPs (tfc, sfc; lfc is the same shape, larger, and built in tests/test_hls.py), a CNN, depthwise
# separable, residual
MODELS = ["tfc", "sfc", "cnv", "dws", "resnet"]
ZOO = [pytest.param(m, b, id=f"{m}-w{b}a{b}") for m in MODELS for b in BITS]
TFLITE_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D", "AVERAGE_POOL_2D", "MEAN", "ADD",
              "RESHAPE", "CONCATENATION", "PAD", "SOFTMAX", "QUANTIZE", "DEQUANTIZE", "MINIMUM", "MAXIMUM"}


@pytest.mark.parametrize("bits", BITS, ids=[f"w{b}a{b}" for b in BITS])
@pytest.mark.parametrize("model", MODELS)
def test_qdq_onnx_is_exact(trained, tmp_path, model, bits):
    loaded = load_model(trained(model, bits, bits, epochs=4) / "model.onnx")
    report = export(loaded, "onnx", tmp_path / "out")
    v = report["verification"]
    assert v["passed"] and v["top1_agreement"] == 1.0 and v["max_diff_output_lsb"] < 0.01, v
    proto = onnx.load(str(tmp_path / "out" / "model.qdq.onnx"))
    ops = {n.op_type for n in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops and not ops & {"Quant", "BipolarQuant"}
    assert all(o.domain in ("", "ai.onnx") for o in proto.opset_import)
    # weights are int8 initialisers holding the QAT integers: at most 2**(bits-1) - 1 in magnitude (narrow range);
    # where a u8*s8 pair could saturate on x86 without VNNI, uint8 around zero point 128 holds the same integers
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer}
    w = [a.astype(np.int64) for n, a in inits.items() if n.endswith("_int8")]
    w += [a.astype(np.int64) - 128 for n, a in inits.items() if n.endswith("_uint8")]
    assert w and all(np.abs(a).max() <= 2 ** (bits - 1) - 1 for a in w)
    assert report["kernel_paths"]["paths"]["x86-u8s8-pairs"] == "exact"
    # per-channel scales stay per-channel
    dq = [n for n in proto.graph.node if n.op_type == "DequantizeLinear"]
    dq_axes = [a.i for n in dq for a in n.attribute if a.name == "axis"]
    assert dq_axes


def test_openvino_runs_int8_and_matches_the_bundled_model(tmp_path, run_cli):
    code, out, err = run_cli("export", "--target", "openvino", "-o", str(tmp_path / "ov"), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert (tmp_path / "ov" / "model.xml").exists() and (tmp_path / "ov" / "model.bin").exists()
    assert report["int8_layers"] >= 3  # the three hidden fully connected layers run in int8 (the last in float)
    v = report["verification"]
    assert v["passed"] and v["top1_agreement"] >= 0.995 and v["max_diff_output_lsb"] <= 1.0

    import openvino as ov

    x = np.random.default_rng(0).uniform(0, 1, size=(1, 64)).astype(np.float32)
    compiled = ov.Core().compile_model(str(tmp_path / "ov" / "model.xml"), "CPU")
    golden = GoldenModel(load_model(bundled_model_path())).run(x)
    # the criterion, not the exporter's own figure: within one int8 output LSB of the golden model
    np.testing.assert_allclose(compiled(x)[compiled.outputs[0]], golden, rtol=0, atol=v["output_lsb"])


def test_export_errors(trained, run_cli, tmp_path):
    code, out, err = run_cli("export", str(trained("tfc", 1, 1) / "model.onnx"), "--target", "tflite", "-o",
                             str(tmp_path / "bnn"), "--json")  # a BNN: -1/+1 in int8, exact
    assert code == 0 and json.loads(out)["verification"]["int8_tensors_equal_to_ir"], err
    code, _, err = run_cli("export", "--board", "pynq-z2", "-o", str(tmp_path / "x"))
    assert code == 2 and "is an FPGA" in err
    code, _, err = run_cli("export", "--target", "onnx", "--io", "int8", "-o", str(tmp_path / "x"))
    assert code == 2 and "--io int8 applies to --target tflite only" in err
    np.save(tmp_path / "c.npy", np.zeros((4, 3), np.float32))
    code, _, err = run_cli("export", "--calib", str(tmp_path / "c.npy"), "-o", str(tmp_path / "x"))
    assert code == 2 and "the model takes (64,)" in err


def test_calibration_file_is_used(tmp_path, run_cli):
    x = np.random.default_rng(1).uniform(0, 1, size=(40, 64)).astype(np.float32)
    np.save(tmp_path / "c.npy", x)
    code, out, err = run_cli("export", "--calib", str(tmp_path / "c.npy"), "-o", str(tmp_path / "o"), "--json")
    assert code == 0, err
    v = json.loads(out)["verification"]
    assert v["samples"] == 40 and v["data"] == str(tmp_path / "c.npy") and v["passed"]


@pytest.mark.parametrize("model,bits", ZOO)
def test_tflite_keeps_the_qat_integers(trained, tmp_path, model, bits):
    from ai_edge_litert import schema_py_generated as schema

    loaded = load_model(trained(model, bits, bits, epochs=4) / "model.onnx")
    report = export(loaded, "tflite", tmp_path / "out")
    v = report["verification"]
    assert v["passed"] and v["top1_agreement"] >= 0.995 and v["max_diff_output_lsb"] <= 1.0, v
    if bits <= 4:  # spare int8 headroom in the weights: requantisation reproduces every threshold
        rq = report["requantisation"]
        assert rq["exact_channels"] == rq["channels"] > 0, rq
        assert v["int8_tensors_equal_to_ir"], report["per_layer"]
        assert v["max_diff_accumulator_lsb"] < 0.01, v
    # the file itself: only the planned int8 ops, NHWC (no TRANSPOSE), per-channel int8 weights
    buf = (tmp_path / "out" / "model.tflite").read_bytes()
    m = schema.Model.GetRootAsModel(buf, 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    ops = {names[m.OperatorCodes(i).BuiltinCode()] for i in range(m.OperatorCodesLength())}
    assert ops <= TFLITE_OPS, ops
    sub = m.Subgraphs(0)
    convs = [sub.Operators(i) for i in range(sub.OperatorsLength())
             if names[m.OperatorCodes(sub.Operators(i).OpcodeIndex()).BuiltinCode()] in ("CONV_2D", "FULLY_CONNECTED")]
    w = sub.Tensors(convs[0].Inputs(1))
    assert w.Type() == schema.TensorType.INT8 and w.Quantization().ScaleLength() > 1
    # an independent run of the written file against the golden model
    x = np.random.default_rng(3).uniform(0, 1, size=(16, *loaded.input_shape[1:])).astype(np.float32)
    got = run_tflite_file(tmp_path / "out" / "model.tflite", x)
    golden = GoldenModel(loaded, batch=16).run(x)
    assert (got.argmax(1) == golden.argmax(1)).mean() >= 15 / 16
    # the exact reference is the integer IR lowered from the same QONNX: the golden's own float32 can sit on a
    # near-tie and flip a level (a ResNet on an Intel AVX-512 host: one of 16 samples 4.9 LSB off, IR == TFLite
    # there); the export's verification resolves such ties, this independent run compares with the integers
    from fpga.execute import run_model
    from fpga.lower import lower

    ir = run_model(lower(loaded), x)
    assert np.abs(got - ir).max() <= v["output_lsb"] * 1.0 + 1e-6


def test_tflite_int8_io(trained, tmp_path, run_cli):
    code, out, err = run_cli("export", str(trained("cnv", 4, 4, epochs=4) / "model.onnx"), "--target", "tflite",
                             "--io", "int8", "-o", str(tmp_path / "t"), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["input"]["dtype"] == "int8" and report["output"]["dtype"] == "int8"
    assert report["input"]["layout"] == "nhwc" and report["input"]["shape"] == [-1, 8, 8, 1]
    v = report["verification"]
    assert v["passed"] and v["output_lsb"] == pytest.approx(report["output"]["scale"], rel=1e-6)


@pytest.mark.parametrize("model,bits", ZOO)
def test_openvino_zoo(trained, tmp_path, model, bits):
    loaded = load_model(trained(model, bits, bits, epochs=4) / "model.onnx")
    report = export(loaded, "openvino", tmp_path / "ov", per_layer=bits <= 4)
    v = report["verification"]
    assert v["passed"] and v["top1_agreement"] >= 0.995 and v["max_diff_output_lsb"] <= 1.0, v
    assert report["int8_layers"] >= 2
    if bits <= 4:  # the int8 program with fitted requantisation: every int8 tensor equals the IR's integers
        assert report["qdq_onnx"] == "model.int8.onnx" and report["per_layer"]
        assert all(r["mismatches"] == 0 for r in report["per_layer"]), report["per_layer"]
        assert v["max_diff_accumulator_lsb"] < 0.01, v


@pytest.mark.parametrize("model,bits", ZOO)
def test_tensorrt_form(trained, tmp_path, model, bits):
    loaded = load_model(trained(model, bits, bits, epochs=4) / "model.onnx")
    trt = export(loaded, "tensorrt", tmp_path / "trt")
    proto = onnx.load(str(tmp_path / "trt" / "model.trt.onnx"))
    zps = [onnx.numpy_helper.to_array(i) for i in proto.graph.initializer if i.name.endswith("_zp")]
    assert trt["symmetric_int8"] and all(z.dtype == np.int8 and not z.any() for z in zps)
    script = (tmp_path / "trt" / "build_engine.sh").read_text()
    assert "trtexec --onnx=model.trt.onnx --int8" in script and "$(dirname" in script
    if bits < 8:  # k-bit unsigned activations fit symmetric int8 exactly; the 8-bit input is offset exactly
        assert trt["verification"]["passed"] and trt["verification"]["max_abs_diff"] < 1e-4, trt["verification"]
        assert not trt["reduced"]
    else:  # 8-bit unsigned activations lose one bit in symmetric int8, and the report says so
        assert any("7 bits" in r for r in trt["reduced"])


def test_per_layer_points_at_each_tensor(tmp_path, run_cli):
    code, out, err = run_cli("export", "--target", "tflite", "-o", str(tmp_path / "t"), "--per-layer")
    assert code == 0, err
    assert "ir/input" in out and "differing values" in out and "<- first divergence" not in out
    code, out, err = run_cli("export", "--target", "onnx", "-o", str(tmp_path / "o"), "--per-layer", "--json")
    assert code == 0, err
    rows = json.loads(out)["per_layer"]
    assert len(rows) >= 4 and all(r["mismatches"] == 0 for r in rows)
    for sub in ("t", "o"):  # every export writes a self-contained report.html with the per-tensor LSB bars
        page = (tmp_path / sub / "report.html").read_text(encoding="utf-8")
        assert "PASS" in page and "<script" not in page and page.count("<svg") == 1
    page = (tmp_path / "o" / "report.html").read_text(encoding="utf-8")
    assert all(r["tensor"] in page for r in rows) and page.count('class="bar"') == len(rows)


@pytest.mark.parametrize("bits", [2, 4])
def test_fitted_requantisation_reproduces_every_threshold(trained, bits):
    """Exhaustively over each layer's reachable accumulators: round(M * (f * acc + B)), clamped, in float32
    with either rounding rule, gives the level the integer IR's thresholds give."""
    from edge.export.requant import fit_requant
    from edge.export.tflite import _bounds
    from fpga.ir import MatrixVectorUnit
    from fpga.lower import lower

    graph = lower(load_model(trained("sfc", bits, bits, epochs=4) / "model.onnx"))
    checked = 0
    for node in graph.nodes:
        if not isinstance(node, MatrixVectorUnit) or node.thresholds is None:
            continue
        th = node.thresholds
        dtype = graph.tensors[node.inputs[0]].dtype
        lo, hi = _bounds(node.weights, dtype.min, dtype.max)
        rq = fit_requant(th.values, th.descending, th.base, lo, hi, np.abs(node.weights).max(1))
        assert rq.exact.all()
        for c in range(0, len(lo), 7):
            acc = np.arange(lo[c], hi[c] + 1)
            folded = (rq.sign[c] * rq.fold[c] * acc + rq.bias[c]).astype(np.float32)
            v = folded * np.float32(rq.multiplier[c])
            for rounded in (np.rint(v), np.floor(v + np.float32(0.5))):  # half-even and half-up
                got = np.clip(rounded, th.base, th.base + th.levels)
                vals = th.values[c][None, :]
                count = (acc[:, None] <= vals) if th.descending[c] else (acc[:, None] >= vals)
                want = th.base + count.sum(1)
                np.testing.assert_array_equal(got, want)
            checked += 1
    assert checked > 10


@pytest.mark.parametrize("target", ["onnx", "tflite", "openvino"])
def test_streamed_verification_gives_the_one_batch_verdict(trained, tmp_path, monkeypatch, target):
    """Verification in batches of 7 samples (golden, integer IR, tie search, runtime and per-layer rows batch by
    batch) reports exactly what the default batches (256: two for the 359 digits) report."""
    import fpga.verify
    from frontend.qonnx_io import activation_elements

    loaded = load_model(trained("resnet", 4, 4, epochs=4) / "model.onnx")
    whole = export(loaded, target, tmp_path / "whole", per_layer=True)
    monkeypatch.setattr(fpga.verify, "STREAM_BYTES", 8 * activation_elements(loaded) * 7)  # 7 samples a batch
    assert fpga.verify.stream_batch(loaded) == 7
    streamed = export(loaded, target, tmp_path / "streamed", per_layer=True)
    for key in ("samples", "top1_agreement", "max_diff_output_lsb", "passed", "golden_tie_samples_excluded"):
        assert streamed["verification"][key] == pytest.approx(whole["verification"][key], abs=1e-9), key
    assert streamed["per_layer"] == whole["per_layer"] and whole["per_layer"]
    assert whole["verification"]["samples"] == 359 and whole["verification"]["passed"]

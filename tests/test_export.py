"""Edge export: QDQ ONNX keeps the QAT scales and matches the golden model; OpenVINO IR runs int8 on the CPU."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from edge.cli import bundled_model_path
from edge.export.targets import export
from edge.qonnx_io import GoldenModel, load_model

BITS = [2, 4, 8]
MODELS = ["tfc", "sfc", "cnv", "dws", "resnet"]


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
    # weights are int8 initialisers holding the QAT integers: at most 2**(bits-1) - 1 in magnitude (narrow range)
    w = [onnx.numpy_helper.to_array(i) for i in proto.graph.initializer if i.name.endswith("_int8")]
    assert w and all(np.abs(a).max() <= 2 ** (bits - 1) - 1 for a in w)
    # per-channel scales stay per-channel
    dq = [n for n in proto.graph.node if n.op_type == "DequantizeLinear"]
    dq_axes = [a.i for n in dq for a in n.attribute if a.name == "axis"]
    assert dq_axes


def test_openvino_runs_int8_and_matches_the_bundled_model(tmp_path, run_cli):
    code, out, err = run_cli("export", "--target", "openvino", "-o", str(tmp_path / "ov"), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert (tmp_path / "ov" / "model.xml").exists() and (tmp_path / "ov" / "model.bin").exists()
    assert report["int8_layers"] >= 4  # the four fully connected layers run in int8
    v = report["verification"]
    assert v["passed"] and v["top1_agreement"] >= 0.995 and v["max_diff_output_lsb"] <= 1.0

    import openvino as ov

    x = np.random.default_rng(0).uniform(0, 1, size=(1, 64)).astype(np.float32)
    compiled = ov.Core().compile_model(str(tmp_path / "ov" / "model.xml"), "CPU")
    golden = GoldenModel(load_model(bundled_model_path())).run(x)
    np.testing.assert_allclose(compiled(x)[compiled.outputs[0]], golden, atol=report["verification"]["max_abs_diff"]
                               + 1e-5)


def test_export_errors(trained, run_cli, tmp_path):
    code, _, err = run_cli("export", str(trained("tfc", 1, 1) / "model.onnx"), "-o", str(tmp_path / "x"))
    assert code == 2 and "bipolar (w1a1)" in err and "edge build" in err
    assert not (tmp_path / "x").exists()
    code, _, err = run_cli("export", "--board", "pynq-z2", "-o", str(tmp_path / "x"))
    assert code == 2 and "is an FPGA" in err
    code, _, err = run_cli("export", "--board", "raspberry-pi-5", "-o", str(tmp_path / "x"))
    assert code == 2 and "target 'tflite' is not available in this version" in err
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

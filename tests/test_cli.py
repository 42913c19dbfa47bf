"""The `edge` CLI: version, help, and inspect on the bundled and on trained models."""

from __future__ import annotations

import json

from edge import __version__
from edge.cli import bundled_model_path


def test_version_and_help(run_cli):
    code, out, _ = run_cli("--version")
    assert code == 0 and __version__ in out
    code, out, _ = run_cli("--help")
    assert code == 0 and "Workflow" in out and "edge train" in out


def test_inspect_bundled_model_counts_macs_and_bits(run_cli):
    code, out, _ = run_cli("inspect", "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["path"] == str(bundled_model_path())
    layers = summary["layers"]
    # TFC on 8x8 digits: 64-64-64-64-10
    assert [layer["macs"] for layer in layers] == [64 * 64, 64 * 64, 64 * 64, 64 * 10]
    assert [layer["weight_quant"] for layer in layers] == ["int2"] * 4
    assert [layer["input_quant"] for layer in layers] == ["uint8", "uint2", "uint2", "uint2"]
    assert summary["total_weight_bits"] == 2 * (3 * 64 * 64 + 640)
    assert all(t["supported"] for t in summary["targets"])


def test_inspect_conv_model_macs_from_shapes(trained, run_cli):
    code, out, _ = run_cli("inspect", str(trained("cnv", 2, 2) / "model.onnx"), "--json")
    assert code == 0
    convs = [layer for layer in json.loads(out)["layers"] if layer["op"] == "Conv"]
    assert len(convs) == 4
    for layer in convs:
        cout, cin_per_group, kh, kw = layer["weight_shape"]
        _, c, h, w = layer["output_shape"]
        assert c == cout and layer["macs"] == cout * h * w * cin_per_group * kh * kw


def test_inspect_accepts_bipolar_for_every_target(trained, run_cli):
    code, out, _ = run_cli("inspect", str(trained("tfc", 1, 1) / "model.onnx"), "--json")
    assert code == 0
    targets = {t["target"]: t for t in json.loads(out)["targets"]}
    assert all(t["supported"] for t in targets.values()), targets


def test_inspect_table(run_cli):
    code, out, _ = run_cli("inspect")
    assert code == 0 and "MatMul_0" in out and "fpga: supported" in out

"""Transformers on both paths: the vit zoo model trained for real, its integer IR (Softmax and LayerNorm within
their stated bound, everything else bit-exact), HLS C-sim and cycle sim on zcu104, QDQ ONNX and OpenVINO exports;
the integer Softmax/LayerNorm/StreamMatMul kernels against float references on random data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from edge.data import Dataset
from edge.train import TrainConfig, train
from edge.zoo import ZOO, build_model
from fpga.datatypes import IntType
from fpga.execute import layer_norm_z, softmax_levels, stream_matmul
from fpga.ir import LayerNorm, Softmax, StreamMatMul
from fpga.lower import index_of, lower, moved
from fpga.verify import APPROX_EQUAL_SHARE, verify
from frontend.qonnx_io import GoldenModel, load_model
from tests.litert import run_tflite_file

VIT_EPOCHS = 40  # the bar (95% at 4-bit weights, 8-bit attention) needs the full default schedule


@pytest.fixture(scope="module")
def vit(tmp_path_factory: pytest.TempPathFactory, digits: Dataset) -> Path:
    out = tmp_path_factory.mktemp("vit") / "run"
    cfg = TrainConfig(model="vit", wbits=4, abits=4, epochs=VIT_EPOCHS, lr=ZOO["vit"].lr, float_baseline=False)
    train(cfg, digits, out, progress=False)
    return out


def test_vit_trains_to_95_percent_with_4_bit_weights(vit: Path) -> None:
    metrics = json.loads((vit / "metrics.json").read_text())
    assert metrics["quant_test_accuracy"] >= 0.95
    ops = {n.op_type for n in load_model(vit / "model.onnx").model.graph.node}
    assert {"LayerNormalization", "Softmax", "MatMul", "ReduceMean", "Transpose"} <= ops


def test_vit_integer_ir_against_golden(vit: Path, digits: Dataset) -> None:
    loaded = load_model(vit / "model.onnx")
    graph = lower(loaded)
    kinds = [n.kind for n in graph.nodes]
    assert kinds.count("LayerNorm") == 5 and kinds.count("Softmax") == 2 and kinds.count("StreamMatMul") == 4
    assert "AddConstant" in kinds  # the learned position embedding
    x = digits.x_test.reshape(-1, 1, 8, 8)
    report = verify(graph, loaded, x)
    d = report.as_dict()
    assert d["passed"] and d["mismatches_other"] == 0 and d["samples_differing_without_tie"] == 0
    a = d["approximate"]
    assert a["within_bound"] and a["max_level_diff"] <= 1 and a["equal_share"] >= APPROX_EQUAL_SHARE
    # everything that is not a Softmax/LayerNorm output is bit-exact (teacher-forced, float ties aside)
    assert all(p.mismatches == p.ties for p in report.probes if not p.approximate)
    assert report.top1_agreement >= 0.99
    golden = GoldenModel(loaded).run(x)
    assert (golden.argmax(1) == digits.y_test).mean() >= 0.95


def test_vit_builds_for_zcu104_with_csim_and_cycle_sim(vit: Path, run_cli, tmp_path: Path) -> None:
    code, out, err = run_cli("build", "--board", "zcu104", str(vit / "model.onnx"), "-o", str(tmp_path / "b"),
                             "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["verification"]["passed"] and r["verification"]["approximate"]["within_bound"]
    sim = r["simulation"]
    assert sim["passed"] and sim["csim"]["passed"] and sim["cycle_sim"]["outputs_bit_exact"]
    ops = {layer["op"] for layer in r["layers"]}
    assert {"LayerNorm", "Softmax", "StreamMatMul", "AddConstant"} <= ops
    assert all(u <= 0.8 for u in r["totals"]["utilisation"].values())


def test_vit_exports_exact_to_qdq_onnx(vit: Path, run_cli, tmp_path: Path) -> None:
    code, out, err = run_cli("export", "--target", "onnx", str(vit / "model.onnx"), "-o", str(tmp_path / "o"),
                             "--json")
    assert code == 0, err
    v = json.loads(out)["verification"]
    assert v["passed"] and v["max_diff_output_lsb"] == 0


def test_vit_openvino_passes_or_names_its_gap(vit: Path, run_cli, tmp_path: Path) -> None:
    """Known gap, stated rather than hidden: OpenVINO runs LayerNorm (MVN) and Softmax in float32 in its own
    order; at a near-tie the quantiser after them takes the other level than onnxruntime's and the flip propagates
    through the residual stream. Whether a trained vit crosses the 1-LSB bar depends on its weights (measured: one
    training 2.7 output LSB, another within 1 LSB; top-1 100% both). The check itself is never relaxed: a model
    that misses it fails the export, and the report must say why."""
    code, out, err = run_cli("export", "--target", "openvino", str(vit / "model.onnx"), "-o", str(tmp_path / "v"),
                             "--json")
    r = json.loads(out)
    v = r["verification"]
    assert v["top1_agreement"] >= 0.99
    if v["passed"]:
        assert code == 0 and v["max_diff_output_lsb"] <= 1.0
    else:
        assert code == 1 and v["max_diff_output_lsb"] > 1.0
        assert any("LayerNormalization" in n and "--per-layer" in n for n in r["notes"]), r.get("notes")


def test_vit_exports_to_tflite_within_one_lsb(vit: Path, run_cli, tmp_path: Path) -> None:
    """LiteRT runs the vit: BATCH_MATMUL of exact integers for Q K^T and A V (requantised exactly), SOFTMAX and
    LayerNorm (MEAN, RSQRT) in float32 as the golden model computes them, the position embedding and residual sums
    exact in int32; the check against the QONNX golden is the export's usual one (1 output LSB, top-1)."""
    code, out, err = run_cli("export", "--target", "tflite", str(vit / "model.onnx"), "-o", str(tmp_path / "t"),
                             "--json")
    assert code == 0, err
    r = json.loads(out)
    v = r["verification"]
    assert v["passed"] and v["max_diff_output_lsb"] <= 1.0 and v["top1_agreement"] >= 0.99, v
    ops = {o["op"] for o in r["ops"]}
    assert {"BATCH_MATMUL", "SOFTMAX", "MEAN", "RSQRT", "GATHER"} <= ops, ops
    assert r["requantisation"]["exact_channels"] == r["requantisation"]["channels"]
    assert sum("LayerNorm" in w for w in r["widened"]) == 5 and sum("Softmax" in w for w in r["widened"]) == 2
    # the file runs on its own in LiteRT, batch of 8, and agrees with the golden model
    loaded = load_model(vit / "model.onnx")
    x = np.random.default_rng(5).uniform(0, 1, (8, 1, 8, 8)).astype(np.float32)
    got = run_tflite_file(tmp_path / "t" / "model.tflite", x)
    golden = GoldenModel(loaded, batch=8).run(x)
    assert (got.argmax(1) == golden.argmax(1)).mean() >= 7 / 8


def test_inspect_says_what_runs_in_float(vit: Path, run_cli) -> None:
    code, out, err = run_cli("inspect", str(vit / "model.onnx"), "--json")
    assert code == 0, err
    verdicts = {t["target"]: t for t in json.loads(out)["targets"]}
    assert verdicts["openvino"]["supported"]
    assert any("LayerNormalization runs in float" in n for n in verdicts["openvino"]["notes"])
    assert verdicts["tflite"]["supported"]
    assert any("LayerNormalization runs in float32" in n for n in verdicts["tflite"]["notes"])
    assert any("BATCH_MATMUL" in n for n in verdicts["tflite"]["notes"])
    layers = {layer["name"]: layer for layer in json.loads(out)["layers"]}
    scores = next(v for k, v in layers.items() if k.endswith("attn/MatMul"))
    assert scores["weight_bits"] == 0 and scores["weight_quant"].startswith("act ")
    assert scores["macs"] == 2 * 16 * 16 * 16  # heads x queries x keys x head dim


def test_vit_builds_at_every_bit_width(digits: Dataset) -> None:
    x = torch.from_numpy(digits.x_test[:4].reshape(4, 1, 8, 8))
    for bits in (2, 4, 8):
        model = build_model("vit", digits.image_shape, 10, bits, bits).eval()
        with torch.no_grad():
            out = model(x)
        assert (out.value if hasattr(out, "value") else out).shape == (4, 10)


# ----------------------------------------------------------------------------------- kernels against float
@pytest.mark.parametrize("seed", range(4))
def test_softmax_kernel_within_one_level_of_float(seed: int) -> None:
    rng = np.random.default_rng(seed)
    channels, vectors = int(rng.choice([4, 16, 50])), 64
    in_t = IntType(8, True)
    s_in, s_out = float(rng.uniform(0.01, 0.2)), 1 / 255
    d = np.arange(256, dtype=np.float64)
    table = np.rint(2.0 ** Softmax.EXP_BITS * np.exp(-s_in * d)).astype(np.int64)
    node = Softmax(name="s", inputs=("a",), output="b", channels=channels, vectors=vectors, in_dtype=in_t,
                   table=table, recip=round(2**Softmax.RECIP_BITS / s_out), out_dtype=IntType(8, False))
    x = rng.integers(-128, 128, (3, vectors, channels))
    got = softmax_levels(node, x)
    z = x * s_in
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    want = np.clip(np.round(p / s_out), 0, 255)
    delta = np.abs(got - want)
    assert delta.max() <= 1 and (delta == 0).mean() >= APPROX_EQUAL_SHARE


@pytest.mark.parametrize("seed", range(4))
def test_layer_norm_z_is_the_floor_of_the_exact_value(seed: int) -> None:
    rng = np.random.default_rng(seed)
    channels = int(rng.choice([8, 32, 96]))
    in_t = IntType(9, True)
    s, eps = float(rng.uniform(0.01, 0.1)), 1e-5
    eps_fix = round(256 * channels**2 * eps / s**2)
    node = LayerNorm(name="n", inputs=("a",), output="b", channels=channels, vectors=8, in_dtype=in_t,
                     eps_fix=eps_fix)
    x = rng.integers(-256, 256, (5, 8, channels))
    x[0, 0] = 7  # a constant vector: variance 0, z = 0
    z = layer_norm_z(node, x) / 2.0**LayerNorm.FRAC_BITS
    xf = x.astype(np.float64)
    ref = (xf - xf.mean(-1, keepdims=True)) / np.sqrt(xf.var(-1, keepdims=True) + eps_fix / 256 / channels**2)
    assert np.all(np.abs(z - ref) <= 2.0**-LayerNorm.FRAC_BITS + 1e-12)
    assert np.all(z[0, 0] == 0)
    assert np.all(np.abs(z) <= math.sqrt(channels))


@pytest.mark.parametrize("order", ["nbk", "kbn"])
def test_stream_matmul_both_buffer_orders(order: str) -> None:
    rng = np.random.default_rng(1)
    m, b, k, n = 5, 3, 4, 6
    a = rng.integers(-8, 8, (2, m, b, k))
    bm = rng.integers(-8, 8, (2, b, k, n))  # logical (batch, K, N)
    stream_b = bm.transpose(0, 3, 1, 2) if order == "nbk" else bm.transpose(0, 2, 1, 3)
    node = StreamMatMul(name="mm", inputs=("a", "b"), output="c", rows=m, batch=b, inner=k, cols=n, b_order=order)
    got = stream_matmul(node, a.reshape(2, -1), stream_b.reshape(2, -1))
    assert np.array_equal(got, np.einsum("xmbk,xbkn->xmbn", a, bm))


def test_index_layout_follows_reshape_and_transpose() -> None:
    from fpga.ir import Layout

    # an NCHW map (C=3, H=2, W=2) streamed NHWC, flattened to tokens (3, 4) and transposed to (4, 3)
    index = index_of(Layout("nhwc"), (3, 2, 2))
    tokens = moved(moved(index, (3, 2, 2), None), (3, 4), [1, 0])
    x = np.arange(12).reshape(1, 3, 2, 2)
    t = x.reshape(1, 3, 4).transpose(0, 2, 1)  # what the QONNX graph computes
    ir = Layout("nhwc").to_ir(x)  # what the stream carries
    assert np.array_equal(Layout("index", tokens).to_ir(t), ir)
    assert np.array_equal(Layout("index", tokens).to_onnx(ir, (4, 3)), t)


def test_activation_tables_exact_on_both_paths(tmp_path: Path, run_cli) -> None:
    """GELU, and SiLU + tanh of one quantised tensor, each become one Lookup (the golden model's own output per
    input level): the IR is bit-exact; QDQ ONNX exact and OpenVINO within its check keep them in float; TFLite
    GATHERs from the same tables, and its 8-bit layers (whose float bias no int8 requantisation reproduces) run in
    float32 on exact integers, so every int8 tensor equals the IR."""
    from edge.corpus import activation_tables

    path = activation_tables(tmp_path)
    loaded = load_model(path)
    graph = lower(loaded)
    lookups = [n for n in graph.nodes if n.kind == "Lookup"]
    assert len(lookups) == 2 and lookups[0].table.shape == (1, 256) and lookups[1].table.shape == (1, 64)
    x = np.random.default_rng(0).uniform(0, 1, (512, 64)).astype(np.float32)
    assert verify(graph, loaded, x).exact
    for target in ("onnx", "openvino"):
        code, out, err = run_cli("export", "--target", target, str(path), "-o", str(tmp_path / target), "--json")
        assert code == 0, err
        assert json.loads(out)["verification"]["passed"]
    code, out, err = run_cli("export", "--target", "tflite", str(path), "-o", str(tmp_path / "t"), "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["verification"]["passed"] and r["verification"]["int8_tensors_equal_to_ir"], r["verification"]
    assert r["requantisation"]["exact_channels"] == r["requantisation"]["channels"]
    assert [o["op"] for o in r["ops"]].count("GATHER") == 2
    assert r["int8_attempt"]["max_diff_output_lsb"] > 1.0  # the all-int8 program: one level off at float biases
    code, out, err = run_cli("export", "--target", "tflite", str(path), "-o", str(tmp_path / "t8"), "--int8-only",
                             "--json")
    assert code == 1 and not json.loads(out)["verification"]["passed"]


def test_brevitas_multihead_attention_encoder_on_both_paths(tmp_path: Path, run_cli) -> None:
    """Brevitas' QuantMultiheadAttention as users write it (batch_first, packed in-projection sliced into Q, K, V,
    seq-first head split with the batch baked into Reshape targets): the front end frees the batch and splits the
    projection; the IR is within the Softmax/LayerNorm bound; C-sim and cycle sim pass; QDQ ONNX is exact."""
    from edge.corpus import mha_encoder

    path = mha_encoder(tmp_path)
    loaded = load_model(path)
    assert any("split packed projection" in r for r in loaded.rewrites)
    assert any("-1" in r and "Reshape" in r for r in loaded.rewrites)
    x = np.random.default_rng(0).normal(0, 1, (8, 8, 32)).astype(np.float32)
    g = GoldenModel(loaded).run(x)
    assert np.allclose(g, np.concatenate([GoldenModel(loaded).run(x[i : i + 1]) for i in range(8)]), atol=1e-6)
    code, out, err = run_cli("build", "--board", "zcu104", str(path), "-o", str(tmp_path / "b"), "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["verification"]["passed"] and r["simulation"]["passed"]
    assert [layer["op"] for layer in r["layers"]].count("StreamMatMul") == 2
    code, out, err = run_cli("export", "--target", "onnx", str(path), "-o", str(tmp_path / "o"), "--json")
    assert code == 0, err
    assert json.loads(out)["verification"]["max_diff_output_lsb"] == 0
    code, out, err = run_cli("export", "--target", "tflite", str(path), "-o", str(tmp_path / "t"), "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["verification"]["passed"] and {"BATCH_MATMUL", "SOFTMAX"} <= {o["op"] for o in r["ops"]}
    # OpenVINO: the int8 program has no Linear over tokens, so the QDQ form runs (was a traceback)
    code, out, err = run_cli("export", "--target", "openvino", str(path), "-o", str(tmp_path / "v"), "--json")
    assert code == 0, err
    assert json.loads(out)["verification"]["passed"]


def test_host_steps_take_whole_token_ids_only() -> None:
    """The deploy package's host step looks token ids up in the embedding table: integral float ids work (a .npy
    of float ids), fractional ones and ids outside the table are refused, not truncated or wrapped."""
    from fpga.host_steps import preprocess

    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    pre = {"host_ops": [{"op": "Gather", "const": "table"}], "raw_shape": [], "onnx_shape": [2, 3],
           "bipolar": False, "bits": 8, "signed": True, "narrow": False, "scale": 1.0, "rounding_mode": "ROUND",
           "map_1d": False}
    ids = np.array([[0, -1]])
    assert preprocess(ids.astype(np.float32), pre, {"table": table}).tolist() == [[0, 1, 2, 9, 10, 11]]
    with pytest.raises(ValueError, match="must be integers"):
        preprocess(np.array([[0.5, 1.0]]), pre, {"table": table})
    with pytest.raises(ValueError, match=r"must lie in \[-4, 4\)"):
        preprocess(np.array([[0, 4]]), pre, {"table": table})

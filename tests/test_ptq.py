"""edge quantize: real Brevitas PTQ of float models trained here on digits, then the real downstream chain (QONNX
golden, FPGA build with C-sim and cycle sim, LiteRT, onnxruntime); torchvision and Hugging Face models built from
configs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from edge.data import Dataset

HERE = Path(__file__).parent
MODELS = HERE / "ptq_models.py"


@pytest.fixture(scope="module")
def float_cnn(tmp_path_factory: pytest.TempPathFactory, digits: Dataset) -> dict[str, Path]:
    """tests/ptq_models.py:cnn trained in float on digits (plain PyTorch, Adam, 30 epochs), with its data files."""
    from bench.ptq_methods import train_float
    from tests.ptq_models import cnn

    model = train_float(cnn(), digits.x_train, digits.y_train, epochs=30)
    d = tmp_path_factory.mktemp("float_cnn")
    torch.save(model.state_dict(), d / "float.pt")
    np.save(d / "calib.npy", digits.x_train[:512])
    np.save(d / "x_test.npy", digits.x_test)
    np.save(d / "y_test.npy", digits.y_test.astype(np.int64))
    return {"dir": d, "ckpt": d / "float.pt", "calib": d / "calib.npy", "x": d / "x_test.npy", "y": d / "y_test.npy"}


def _quantize(run_cli, f: dict[str, Path], out: Path, *extra: str) -> dict:
    code, stdout, err = run_cli("quantize", f"{MODELS}:cnn", "--checkpoint", str(f["ckpt"]), "--calib",
                                str(f["x"]), "--labels", str(f["y"]), "-o", str(out), "--json", *extra)
    assert code == 0, err
    report = json.loads(stdout)
    assert json.loads((out / "quantize.json").read_text()) == report
    return report


def _golden_matches_torch(report: dict) -> None:
    g = report["qonnx_vs_torch"]
    assert g["top1_agreement"] == 1.0 and g["max_abs_diff"] < 1e-4, g


def test_cnn_w8a8_builds_bit_exact_and_exports(run_cli, float_cnn: dict[str, Path], tmp_path: Path) -> None:
    report = _quantize(run_cli, float_cnn, tmp_path / "q8")
    for key in ("model", "wbits", "abits", "float_accuracy", "quant_accuracy", "agreement", "layers"):
        assert key in report
    assert report["wbits"] == 8 and report["abits"] == 8 and report["mode"] == "graph"
    assert report["float_accuracy"] > 0.85
    # a sanity bound on PTQ quality (catches a broken calibration: that drops to chance); how close w8a8 gets to
    # float (the 0.5-point target) is measured per method in bench/ptq_methods.py
    assert report["quant_accuracy"] >= report["float_accuracy"] - 0.04
    assert report["agreement"] >= 0.9
    _golden_matches_torch(report)
    assert [r["name"] for r in report["layers"]] == ["stem", "block.dw", "block.pw", "fc"]
    assert all(r["wbits"] == 8 and r["sqnr_db"] > 15 for r in report["layers"])
    model = report["model"]

    code, out, err = run_cli("build", "--board", "pynq-z2", model, "-o", str(tmp_path / "build"), "--json")
    assert code == 0, err
    build = json.loads(out)
    assert build["model"] == "model.onnx"  # reports name the model by its file, not the ONNX graph name
    assert "<title>edge build: model.onnx on pynq-z2</title>" in (tmp_path / "build" / "report.html").read_text()
    assert build["verification"]["bit_exact"], build["verification"]
    sim = build["simulation"]
    assert sim["csim"]["passed"] and sim["csim"]["mismatches"] == 0
    assert sim["cycle_sim"]["outputs_bit_exact"] and not sim["cycle_sim"]["deadlock"] and sim["passed"]

    code, out, err = run_cli("export", "--target", "tflite", model, "-o", str(tmp_path / "tfl"), "--json")
    assert code == 0, err
    v = json.loads(out)["verification"]
    assert v["passed"] and v["max_diff_output_lsb"] <= 1.0 and v["top1_agreement"] >= 0.995

    # int32 biases as DequantizeLinear(int32): onnxruntime reproduces the golden model exactly
    code, out, err = run_cli("export", "--target", "onnx", model, "-o", str(tmp_path / "qdq"), "--json")
    assert code == 0, err
    assert json.loads(out)["verification"]["max_diff_output_lsb"] == 0


def test_cnn_w4a8_first_last_at_8_bits(run_cli, float_cnn: dict[str, Path], tmp_path: Path) -> None:
    report = _quantize(run_cli, float_cnn, tmp_path / "q4", "--wbits", "4", "--abits", "8")
    bits = {r["name"]: r["wbits"] for r in report["layers"]}
    assert bits == {"stem": 8, "block.dw": 4, "block.pw": 4, "fc": 8}
    assert report["quant_accuracy"] >= report["float_accuracy"] - 0.08
    _golden_matches_torch(report)
    code, _, err = run_cli("export", "--target", "tflite", report["model"], "-o", str(tmp_path / "tfl"))
    assert code == 0, err


def test_mixed_precision_and_full_method(run_cli, float_cnn: dict[str, Path], tmp_path: Path) -> None:
    report = _quantize(run_cli, float_cnn, tmp_path / "mp", "--wbits", "3-8", "--method", "mse+equalize+gptq+bias")
    assert report["wbits"] == "3-8" and report["method"] == "mse+equalize+gptq+bias"
    middle = [r for r in report["layers"] if r["name"] in ("block.dw", "block.pw")]
    assert set(report["sensitivity"]) == {"block.dw", "block.pw"}
    for r in middle:
        table = {int(b): s for b, s in report["sensitivity"][r["name"]].items()}
        assert sorted(table) == [3, 4, 5, 6, 7, 8]
        assert 3 <= r["wbits"] <= 8
        # the narrowest width within the tolerance (1 dB) of the widest
        assert table[r["wbits"]] >= table[8] - 1.0
        assert all(table[b] < table[8] - 1.0 for b in table if b < r["wbits"])
    _golden_matches_torch(report)


def test_board_defaults(run_cli, float_cnn: dict[str, Path], tmp_path: Path) -> None:
    code, out, err = run_cli("quantize", f"{MODELS}:cnn", "--checkpoint", str(float_cnn["ckpt"]), "--calib",
                             str(float_cnn["calib"]), "--board", "jetson-orin-nano", "-o", str(tmp_path / "t"),
                             "--json")
    assert code == 0, err
    r = json.loads(out)
    assert (r["wbits"], r["abits"], r["signed_only"], r["target"]) == (8, 8, True, "tensorrt:jetson-orin-nano")
    from boards import load_board
    from edge.ptq import board_recipe

    fpga = board_recipe(load_board("pynq-z2"))
    assert fpga.abits == 8 and fpga.wbits == (4, 8) and not fpga.signed_only


def test_float_onnx_model(run_cli, float_cnn: dict[str, Path], tmp_path: Path) -> None:
    """A float .onnx goes through onnx2torch, then the same PTQ."""
    from tests.ptq_models import small_convnet

    path = tmp_path / "float.onnx"
    torch.onnx.export(small_convnet(), torch.zeros(1, 1, 8, 8), str(path), dynamo=False, opset_version=13)
    code, out, err = run_cli("quantize", str(path), "--calib", str(float_cnn["x"]), "-o", str(tmp_path / "q"),
                             "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["mode"] == "graph" and [x["wbits"] for x in r["layers"]] == [8, 8]
    assert r["agreement"] >= 0.95
    _golden_matches_torch(r)


def test_float_onnx_with_an_op_pytorch_cannot_take(run_cli, float_cnn: dict[str, Path], tmp_path: Path) -> None:
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((64, 10), np.float32), "w")
    nodes = [helper.make_node("Flatten", ["x"], ["f"], name="flat"),
             helper.make_node("MatMul", ["f", "w"], ["m"], name="fc"),
             helper.make_node("Hardmax", ["m"], ["y"], name="pick")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], [w])
    path = tmp_path / "odd.onnx"
    import onnx

    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    code, _, err = run_cli("quantize", str(path), "--calib", str(float_cnn["calib"]), "-o", str(tmp_path / "q"))
    assert code == 2 and err.count("\n") == 1 and "node 'pick' (Hardmax" in err, err
    assert not (tmp_path / "q").exists()


def _quantize_random_images(run_cli, tmp_path: Path, factory: str, shape: tuple[int, ...]) -> dict:
    """`edge quantize` of a tests/ptq_models.py factory on standard-normal images (saved as tmp_path/x.npy)."""
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    code, out, err = run_cli("quantize", f"{MODELS}:{factory}", "--calib", str(tmp_path / "x.npy"), "-o",
                             str(tmp_path / "q"), "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize("factory", ["mobilenet_v2", "resnet18"])
def test_torchvision_models(run_cli, tmp_path: Path, factory: str) -> None:
    r = _quantize_random_images(run_cli, tmp_path, factory, (32, 3, 32, 32))
    assert r["mode"] == "graph" and len(r["layers"]) >= 20
    # every sample off a rounding tie has the golden's class (a tie: torch's float32 and float64 runs disagree, as
    # for one ResNet-18 sample in 32 on an Intel host, where the integer IR sided with the golden); ties are rare
    check = r["qonnx_vs_torch"]
    assert check["top1_agreement_off_ties"] == 1.0 and check["rounding_ties"] <= 2, check
    code, out, err = run_cli("export", "--target", "onnx", r["model"], "-o", str(tmp_path / "qdq"), "--calib",
                             str(tmp_path / "x.npy"), "--json")
    assert code == 0, err
    assert json.loads(out)["verification"]["max_diff_output_lsb"] == 0


def _integer_attention(path: Path) -> None:
    """Every Softmax and LayerNormalization reads and writes quantised tensors and both operands of each matrix
    product of two activations are quantised (through head reshapes): the integer program the FPGA lowers."""
    import onnx

    graph = onnx.load(str(path)).graph
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    inits = {i.name for i in graph.initializer}

    def quantised(t: str) -> bool:
        n = producer.get(t)
        while n is not None and n.op_type in ("Reshape", "Transpose"):
            n = producer.get(n.input[0])
        return n is not None and n.op_type == "Quant"

    def static(t: str) -> bool:
        while t not in inits and t in producer and producer[t].op_type in ("Quant", "Reshape", "Transpose"):
            t = producer[t].input[0]
        return t in inits

    products = [n for n in graph.node if n.op_type == "MatMul" and not any(static(i) for i in n.input)]
    assert len(products) == 4, [n.name for n in products]  # Q K^T and A V in each of two blocks
    assert all(quantised(i) for n in products for i in n.input)
    for n in graph.node:
        if n.op_type in ("Softmax", "LayerNormalization"):
            assert [c.op_type for c in consumers[n.output[0]]] == ["Quant"], n.name
        if n.op_type == "Softmax":
            assert quantised(n.input[0]), n.name


def _normalised_graph_is_exact(path: Path, ids: np.ndarray, tmp_path: Path) -> None:
    """The front end's rewrites (constant rows of quantised embedding tables folded, ...) leave every output
    unchanged: qonnx executes the exported graph and the normalised one to the same floats."""
    import onnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    from frontend.qonnx_io import load_model

    loaded = load_model(path)
    assert any("quantised constant" in note for note in loaded.rewrites), loaded.rewrites
    onnx.save(loaded.model.model, str(tmp_path / "normalised.onnx"))
    outs = []
    for p in (path, tmp_path / "normalised.onnx"):
        m = ModelWrapper(str(p)).transform(InferShapes())
        outs.append(np.concatenate([execute_onnx(m, {m.graph.input[0].name: ids[i:i + 1].astype(np.int64)})[
            m.graph.output[0].name] for i in range(len(ids))]))
    assert np.array_equal(outs[0], outs[1])


def test_hugging_face_bert(run_cli, tmp_path: Path) -> None:
    ids = np.random.default_rng(0).integers(0, 64, (16, 12))
    np.save(tmp_path / "ids.npy", ids)
    code, out, err = run_cli("quantize", f"{MODELS}:bert", "--calib", str(tmp_path / "ids.npy"), "-o",
                             str(tmp_path / "q"), "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["mode"] == "transformer" and r["input"]["dtype"] == "int64"
    assert len(r["layers"]) >= 12  # Q, K, V, output, 2 MLP per block x 2 + pooler + classifier
    assert all(layer["wbits"] == 8 for layer in r["layers"])
    _golden_matches_torch(r)  # the shipped (normalised) graph: position/token-type rows folded to quantised constants
    _integer_attention(Path(r["model"]))
    _normalised_graph_is_exact(Path(r["model"]), ids[:4], tmp_path)
    code, out, err = run_cli("inspect", r["model"], "--json")
    assert code == 0, err
    verdicts = {t["target"]: t for t in json.loads(out)["targets"]}
    assert verdicts["fpga"]["supported"], verdicts["fpga"]
    assert verdicts["tflite"]["supported"], verdicts["tflite"]
    _transformer_on_the_fpga(run_cli, Path(r["model"]), tmp_path, {"AddConstant", "Lookup"})
    # token ids in, Gather/LayerNorm/Softmax/GELU passed through: QDQ ONNX is exact on onnxruntime, OpenVINO
    # within the export's check
    ids_file = str(tmp_path / "ids.npy")
    code, out, err = run_cli("export", "--target", "onnx", r["model"], "-o", str(tmp_path / "qdq"), "--calib",
                             ids_file, "--json")
    assert code == 0, err
    assert json.loads(out)["verification"]["max_diff_output_lsb"] == 0
    code, out, err = run_cli("export", "--target", "openvino", r["model"], "-o", str(tmp_path / "ov"), "--calib",
                             ids_file, "--json")
    assert code == 0, err
    v = json.loads(out)["verification"]
    assert v["passed"] and v["top1_agreement"] >= 0.995 and v["max_diff_output_lsb"] <= 1.0
    # LiteRT: int32 ids into a GATHER of the int8 table, the class token a GATHER along the token axis
    code, out, err = run_cli("export", "--target", "tflite", r["model"], "-o", str(tmp_path / "t"), "--calib",
                             ids_file, "--json")
    assert code == 0, err
    t = json.loads(out)
    assert t["input"]["dtype"] == "int32" and t["verification"]["passed"]
    assert t["verification"]["max_diff_output_lsb"] <= 1.0 and t["verification"]["top1_agreement"] >= 0.99
    assert sum(op["op"] == "GATHER" for op in t["ops"]) >= 2
    for export in ("qdq", "ov", "t"):  # edge bench feeds each runtime token ids of the type its input takes
        code, out, err = run_cli("bench", str(tmp_path / export), "--runs", "5", "--warmup", "1", "--json")
        assert code == 0 and json.loads(out)["latency_ms"]["p50"] > 0, err
    code, _, err = run_cli("export", "--target", "onnx", r["model"], "-o", str(tmp_path / "noids"))
    assert code == 2 and "token ids" in err


def _transformer_on_the_fpga(run_cli, model: Path, tmp_path: Path, kinds: set[str]) -> None:
    """A quantised Hugging Face transformer through `edge build --board zcu104` (the whole encoder and the
    class-token pooler in the dataflow, C-sim and cycle sim, IR against the golden model within the Softmax/
    LayerNorm bound), then its sample inputs through the PYNQ driver (`edge run --sim`)."""
    code, out, err = run_cli("build", "--board", "zcu104", str(model), "-o", str(tmp_path / "b"), "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["verification"]["passed"] and r["verification"]["approximate"]["within_bound"]
    sim = r["simulation"]
    assert sim["passed"] and sim["csim"]["passed"] and sim["cycle_sim"]["outputs_bit_exact"]
    ops = {layer["op"] for layer in r["layers"]}
    assert {"LayerNorm", "Softmax", "StreamMatMul", "TokenSelect"} | kinds <= ops, ops
    deploy = tmp_path / "b" / "deploy"
    code, out, err = run_cli("run", str(deploy), "--sim", "--input", str(deploy / "sample_input.npy"), "--output",
                             str(tmp_path / "y.npy"))
    assert code == 0, err
    assert out.startswith("PASS") and "bit-exact" in out and "within that bound" in out


def test_hugging_face_vit(run_cli, tmp_path: Path) -> None:
    # float images in, a class token concatenated at the front, pre-norm blocks: the integer transformer form
    # (patch-embedding Conv2d included) with one quantiser for the residual stream (patch projection, class token,
    # position table, every block output added to it), the golden model batched; both paths
    r = _quantize_random_images(run_cli, tmp_path, "hf_vit", (16, 1, 8, 8))
    assert r["mode"] == "transformer"
    _golden_matches_torch(r)
    graph = onnx.load(r["model"]).graph
    producers = {o: n for n in graph.node for o in n.output}
    concat = next(n for n in graph.node if n.op_type == "Concat")
    assert all(producers[i].op_type == "Quant" for i in concat.input[:1]), "the class token is quantised"
    norms_read = {i for n in graph.node if n.op_type == "LayerNormalization" for i in n.input}
    residual = [n for n in graph.node if n.op_type == "Add" and n.output[0] in norms_read]
    assert len(residual) == 5  # embeddings + 2 per block: integer sums of quantised terms
    assert all(producers[i].op_type in ("Quant", "Add", "Concat") for n in residual for i in n.input)
    code, out, err = run_cli("inspect", r["model"], "--json")
    assert code == 0, err
    verdicts = {t["target"]: t for t in json.loads(out)["targets"]}
    assert verdicts["fpga"]["supported"] and not verdicts["fpga"]["reasons"], verdicts["fpga"]
    _transformer_on_the_fpga(run_cli, Path(r["model"]), tmp_path, {"ConcatConstant", "AddConstant", "AddStreams"})
    for target, name in (("onnx", "qdq"), ("tflite", "t")):
        code, out, err = run_cli("export", "--target", target, r["model"], "-o", str(tmp_path / name), "--calib",
                                 str(tmp_path / "x.npy"), "--json")
        assert code == 0, err
        v = json.loads(out)["verification"]
        assert v["passed"] and v["max_diff_output_lsb"] <= 1, (target, v)
        if target == "onnx":
            assert v["max_diff_output_lsb"] == 0
    # OpenVINO runs LayerNorm, Softmax, GELU and its convolution in float32 in its own order (the vit zoo model's
    # known gap, test_transformer.py): within the check, or a failed check that names the gap (64 random images:
    # 3.1 output LSB from one tie flip at the patch projection). --per-layer runs the QDQ model at the batch of 16
    # (the class token's batch-1 constant is expanded to the batch beside it; this was a traceback)
    code, out, err = run_cli("export", "--target", "openvino", r["model"], "-o", str(tmp_path / "ov"), "--calib",
                             str(tmp_path / "x.npy"), "--json", "--per-layer")
    report = json.loads(out)
    v = report["verification"]
    assert v["top1_agreement"] >= 0.99 and len(report["per_layer"]) > 20
    if v["passed"]:
        assert code == 0 and v["max_diff_output_lsb"] <= 1
    else:
        assert code == 1 and any("LayerNormalization" in n and "--per-layer" in n for n in report["notes"])


@pytest.mark.parametrize("args, message", [
    (["nofile.py:build"], "no such model file"),
    ([f"{MODELS}:missing"], "defines no callable 'missing'"),
    ([f"{MODELS}:not_a_module"], "not a torch.nn.Module"),
    ([f"{MODELS}:cnn", "--checkpoint", "CKPT_OF_OTHER"], "does not match the model"),
    ([f"{MODELS}:cnn", "--calib", "WRONG_SHAPE"], "does not fit the model"),
    ([f"{MODELS}:cnn", "--method", "gptq"], "start with a calibration"),
    ([f"{MODELS}:cnn", "--wbits", "9"], "give a width from 2 to 8"),
    ([f"{MODELS}:cnn", "--calib", "TEXT"], "not a .npy array"),
])
def test_errors_are_one_line(run_cli, float_cnn: dict[str, Path], tmp_path: Path, args: list[str],
                             message: str) -> None:
    np.save(tmp_path / "wrong.npy", np.zeros((4, 3, 5, 5), np.float32))
    (tmp_path / "text.npy").write_text("hello")
    torch.save(nn.Linear(3, 3).state_dict(), tmp_path / "other.pt")
    subst = {"CKPT_OF_OTHER": str(tmp_path / "other.pt"), "WRONG_SHAPE": str(tmp_path / "wrong.npy"),
             "TEXT": str(tmp_path / "text.npy")}
    argv = [subst.get(a, a) for a in args]
    if "--calib" not in argv:
        argv += ["--calib", str(float_cnn["calib"])]
    code, out, err = run_cli("quantize", *argv, "-o", str(tmp_path / "out"))
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "out").exists()


def test_compress_a_float_model(run_cli, float_cnn: dict[str, Path], tmp_path: Path) -> None:
    """edge compress --model FILE.py:FACTORY --checkpoint FLOAT.pt: PTQ to the w4a4 baseline form first, QAT, then
    the search; workers rebuild the same PTQ structure and the residual's shared scale stays shared."""
    code, out, err = run_cli("compress", "--model", f"{MODELS}:cnn", "--checkpoint", str(float_cnn["ckpt"]),
                             "--epochs", "2", "--ft-epochs", "1", "--screen", "6", "--shortlist", "2", "--workers",
                             "2", "-o", str(tmp_path / "c"), "--json")
    assert code == 0, err
    result = json.loads(out)
    kept = json.loads((tmp_path / "c" / "search" / "baseline.json").read_text())
    assert 0 < kept["ptq_accuracy"] < 1 and result["baseline"]["accuracy"] > 0.5
    assert result["fine_tuned"] == 2
    code, _, err = run_cli("build", "--board", "pynq-z2", str(tmp_path / "c" / "model.onnx"), "-o",
                           str(tmp_path / "b"), "--no-sim")
    assert code == 0, err

"""QONNX ingest: the golden executor, and a one-line error with exit code 2 for every kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edge.cli import bundled_model_path
from edge.fsutil import atomic_output_dir, inside
from frontend.errors import EdgeError
from frontend.qonnx_io import GoldenModel, load_model


def _float_model(path: Path) -> Path:
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3], np.ones(12, np.float32).tolist())
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="fc0")], "float_mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], [w],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def _with_node(path: Path, op: str) -> Path:
    proto = onnx.load(str(bundled_model_path()))
    out = proto.graph.output[0]
    old = out.name
    proto.graph.node.append(helper.make_node(op, [old], ["odd_out"], name="odd_node"))
    out.name = "odd_out"
    onnx.save(proto, str(path))
    return path


def _dynamic(path: Path) -> Path:
    proto = onnx.load(str(bundled_model_path()))
    dim = proto.graph.input[0].type.tensor_type.shape.dim[1]
    dim.Clear()
    dim.dim_param = "features"
    onnx.save(proto, str(path))
    return path


def _truncated(path: Path) -> Path:
    data = bundled_model_path().read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


BAD_INPUTS = {
    "missing": (lambda p: p / "nope.onnx", "no such file"),
    "directory": (lambda p: p, "not a file"),
    "text": (lambda p: (p / "notes.onnx").write_text("hello, not a model") and p / "notes.onnx", "not an ONNX model"),
    "truncated": (lambda p: _truncated(p / "cut.onnx"), "not an ONNX model or truncated"),
    "float": (lambda p: _float_model(p / "float.onnx"), "this is a float model"),
    "unsupported_op": (lambda p: _with_node(p / "odd.onnx", "Sin"), "node 'odd_node' has unsupported op Sin"),
    "dynamic": (lambda p: _dynamic(p / "dyn.onnx"), "dynamic dimension 'features' at axis 1"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_model_gives_one_line_error(tmp_path, run_cli, case):
    make, message = BAD_INPUTS[case]
    path = make(tmp_path)
    code, out, err = run_cli("inspect", str(path))
    assert code == 2, err
    assert out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert message in err and str(path) in err


def test_dynamic_batch_is_accepted(tmp_path):
    proto = onnx.load(str(bundled_model_path()))
    dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    dim.Clear()
    dim.dim_param = "batch"
    onnx.save(proto, str(tmp_path / "dynbatch.onnx"))
    assert load_model(tmp_path / "dynbatch.onnx").input_shape == (1, 64)


def test_golden_batches_agree_with_single_samples_and_bundled_metrics(digits):
    loaded = load_model(bundled_model_path())
    golden = GoldenModel(loaded, batch=100)
    x = digits.x_test.reshape(len(digits.x_test), 64)
    batched = golden.run(x)
    single = np.concatenate([GoldenModel(loaded, batch=1).run(x[i : i + 1]) for i in range(5)])
    # the final float Gemm sums in a different order per batch size: equal up to float32 rounding
    np.testing.assert_allclose(batched[:5], single, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(batched[:5].argmax(1), single.argmax(1))
    shipped = json.loads(bundled_model_path().with_suffix(".json").read_text())
    assert (batched.argmax(1) == digits.y_test).mean() == pytest.approx(shipped["qonnx_test_accuracy"])
    with pytest.raises(EdgeError, match="per-sample shape"):
        golden.run(np.zeros((2, 8, 8), np.float32))


def test_atomic_output_dir_keeps_old_output_on_failure(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_output_dir(target) as tmp:
        (tmp / "half.txt").write_text("new")
        raise RuntimeError("boom")
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    with atomic_output_dir(target) as tmp:
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.txt"]


def test_paths_from_models_cannot_escape_output(tmp_path):
    assert inside(tmp_path, "a/b.txt") == (tmp_path / "a/b.txt").resolve()
    with pytest.raises(EdgeError, match="outside the output directory"):
        inside(tmp_path, "../../etc/passwd")

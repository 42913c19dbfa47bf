"""QAT on real data: accuracy floors, exported QONNX that reproduces PyTorch, and the written outputs."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from edge.data import Dataset, load_npz_dataset
from edge.train import logits
from edge.zoo import ZOO, build_model, model_input_shape
from frontend.errors import EdgeError
from frontend.qonnx_io import GoldenModel, load_model


def _reload_torch(run, digits: Dataset):
    ckpt = torch.load(run / "model.pt", weights_only=False)
    cfg = ckpt["config"]
    model = build_model(cfg["model"], digits.image_shape, digits.num_classes, cfg["wbits"], cfg["abits"])
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), tuple(ckpt["input_shape"])


@pytest.mark.parametrize(("model", "wbits", "abits", "floor"), [("tfc", 2, 2, 0.85), ("cnv", 2, 2, 0.85),
                                                                 ("tfc", 1, 1, 0.75)])
def test_training_clears_accuracy_floor_and_qonnx_matches_pytorch(trained, digits, model, wbits, abits, floor):
    run = trained(model, wbits, abits)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["quant_test_accuracy"] >= floor

    # independent check: rebuild the PyTorch model from the checkpoint and run the golden QONNX model ourselves
    torch_model, shape = _reload_torch(run, digits)
    x = digits.x_test.reshape(len(digits.x_test), *shape)
    with torch.no_grad():
        expected = logits(torch_model, torch.from_numpy(x)).numpy()
    golden = GoldenModel(load_model(run / "model.onnx")).run(x)
    assert golden.shape == expected.shape
    # Exact ties (an integer accumulator of 0 before a sign) may round differently in float; allow one in 200.
    assert (golden.argmax(1) == expected.argmax(1)).mean() >= 0.995
    assert np.mean(np.isclose(golden, expected, atol=1e-4).all(axis=1)) >= 0.995
    assert (golden.argmax(1) == digits.y_test).mean() == pytest.approx(metrics["qonnx_test_accuracy"])


def test_bipolar_model_exports_bipolar_quant_nodes(trained):
    ops = {n.op_type for n in onnx.load(str(trained("tfc", 1, 1) / "model.onnx")).graph.node}
    assert "BipolarQuant" in ops


def test_outputs_and_metadata(trained, digits):
    run = trained("tfc", 2, 2)
    assert sorted(p.name for p in run.iterdir()) == ["metrics.json", "model.onnx", "model.pt"]
    loaded = load_model(run / "model.onnx")
    meta = loaded.metadata()
    assert meta["edge.model"] == "tfc" and meta["edge.wbits"] == "2" and "edge train" in meta["edge.command"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["input_shape"] == list(model_input_shape("tfc", digits.image_shape)) == [64]
    assert metrics["test_samples"] + metrics["train_samples"] == 1797


@pytest.mark.parametrize("name", ["sfc", "lfc", "dws", "resnet"])
def test_every_zoo_model_builds_and_runs_at_each_bit_width(digits, name):
    shape = model_input_shape(name, digits.image_shape)
    x = torch.from_numpy(digits.x_test[:4].reshape(4, *shape))
    for bits in (b for b in (1, 2, 4, 8) if b >= ZOO[name].min_bits):
        model = build_model(name, digits.image_shape, 10, bits, bits).eval()
        with torch.no_grad():
            assert logits(model, x).shape == (4, 10)


def test_bad_bit_width_and_model_are_user_errors(run_cli):
    code, _, err = run_cli("train", "--model", "tfc", "--wbits", "9")
    assert code == 2 and "--wbits must be between 1 and 8" in err
    code, _, err = run_cli("train", "--model", "vgg")
    assert code == 2 and "unknown model 'vgg'" in err


def test_npz_dataset_with_explicit_split(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, size=(40, 6, 6), dtype=np.uint8)
    y = np.arange(40) % 4
    split = (np.arange(40) % 5 == 0).astype(np.int8)
    np.savez(tmp_path / "d.npz", x=x, y=y, split=split)
    data = load_npz_dataset(tmp_path / "d.npz")
    assert data.image_shape == (1, 6, 6) and len(data.y_test) == 8 and data.num_classes == 4
    assert data.x_train.min() >= 0.0 and data.x_train.max() <= 1.0
    np.savez(tmp_path / "bad.npz", x=x)
    with pytest.raises(EdgeError, match="missing array 'y'"):
        load_npz_dataset(tmp_path / "bad.npz")

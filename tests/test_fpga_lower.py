"""Lowering QONNX to the integer dataflow IR is bit-exact against the golden QONNX model.

Every quantised QONNX tensor that the IR carries (a probe) must hold exactly the same integers, for every zoo
model at w1a1, w2a2, w4a4 and w8a8, on the digits test set and on random inputs.
"""

from __future__ import annotations

import numpy as np
import pytest

from edge.zoo import ZOO
from fpga.ir import MatrixVectorUnit, Thresholding, VectorVectorUnit
from fpga.lower import lower
from fpga.verify import verify
from frontend.errors import EdgeError
from frontend.qonnx_io import load_model

LOWER_EPOCHS = 4  # enough for trained BatchNorm statistics and scales; accuracy is tested elsewhere
BITS = [(1, 1), (2, 2), (4, 4), (8, 8)]
# every zoo model at every width it is built for (the vit needs at least 2 bits); the vit at w4a4 is checked,
# fully trained, in tests/test_transformer.py (lfc is tfc/sfc's shape, only larger)
CASES = [(m, w, a) for m in sorted(ZOO.keys() - {"lfc"}) for w, a in BITS if min(w, a) >= ZOO[m].min_bits
         and (m, w) != ("vit", 4)]


def _inputs(digits, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    n = 64
    return {
        "digits": digits.x_test.reshape(len(digits.x_test), *shape),
        # beyond [0, 1] too, so the input quantiser clips
        "random": rng.uniform(-0.25, 1.25, size=(n, *shape)).astype(np.float32),
    }


def assert_probes_exact(graph, loaded, x: np.ndarray) -> int:
    """Every probed stream equals its QONNX tensor, layer by layer, except at float32 rounding ties."""
    report = verify(graph, loaded, x)
    for p in report.probes:
        assert p.errors == 0, f"{p.stream} vs {p.onnx_tensor}: {p.errors} of {p.values} values differ (not ties)"
    # ties are rare: an accumulator that lands exactly on a rounding boundary
    assert report.ties <= 1e-4 * report.values
    # free-running end to end, a sample may differ only if one of its quantisers saw a tie
    assert not report.unexplained_samples, f"samples {sorted(report.unexplained_samples)[:5]} differ without a tie"
    assert report.top1_agreement >= 0.99
    return len(report.probes)


@pytest.mark.parametrize(("model", "wbits", "abits"), CASES, ids=[f"{m}-w{w}a{a}" for m, w, a in CASES])
def test_ir_is_bit_exact_against_qonnx(trained, digits, model, wbits, abits):
    loaded = load_model(trained(model, wbits, abits, epochs=LOWER_EPOCHS) / "model.onnx")
    graph = lower(loaded)
    for x in _inputs(digits, loaded.input_shape[1:]).values():
        assert assert_probes_exact(graph, loaded, x) >= 2


def test_lfc_lowers_exactly(trained, digits):
    loaded = load_model(trained("lfc", 2, 2, epochs=2) / "model.onnx")
    graph = lower(loaded)
    assert [n.mh for n in graph.nodes] == [1024, 1024, 1024, 10]
    assert_probes_exact(graph, loaded, _inputs(digits, (64,))["digits"][:100])


def test_bipolar_layers_become_xnor_and_padding_widens_bipolar(trained):
    tfc = lower(load_model(trained("tfc", 1, 1, epochs=LOWER_EPOCHS) / "model.onnx"))
    assert [n.xnor for n in tfc.nodes] == [False, True, True, True]  # uint8 input x binary weights first
    cnv = lower(load_model(trained("cnv", 1, 1, epochs=LOWER_EPOCHS) / "model.onnx"))
    mvaus = [n for n in cnv.nodes if isinstance(n, MatrixVectorUnit)]
    assert mvaus[1].in_dtype.name == "INT2" and not mvaus[1].xnor  # zero padding cannot be bipolar
    assert mvaus[-2].xnor  # the FC after the last pool takes bipolar inputs


def test_thresholds_are_per_channel_and_sorted(trained):
    graph = lower(load_model(trained("cnv", 4, 4, epochs=LOWER_EPOCHS) / "model.onnx"))
    for node in graph.nodes:
        th = getattr(node, "thresholds", None)
        if th is None:
            continue
        assert th.levels == 15  # 4-bit unsigned: 16 levels, 15 thresholds
        ascending = th.values[~th.descending]
        assert np.all(np.diff(ascending, axis=1) >= 0)
        descending = th.values[th.descending]
        assert np.all(np.diff(descending, axis=1) <= 0)
    assert any(isinstance(n, MatrixVectorUnit | VectorVectorUnit | Thresholding) for n in graph.nodes)


def test_unlowerable_pattern_names_the_node(trained, tmp_path):
    import onnx
    from onnx import helper

    proto = onnx.load(str(trained("tfc", 2, 2) / "model.onnx"))
    # put a Sigmoid-free but non-linear op (Softmax) between the first accumulator and its quantiser
    first_bn = next(n for n in proto.graph.node if n.op_type == "BatchNormalization")
    old_out = first_bn.output[0]
    first_bn.output[0] = "bn_raw"
    proto.graph.node.append(helper.make_node("Softmax", ["bn_raw"], [old_out], name="sneaky_softmax", axis=1))
    onnx.save(proto, str(tmp_path / "m.onnx"))
    with pytest.raises(EdgeError, match="sneaky_softmax.*Softmax between an accumulator and its quantiser"):
        lower(load_model(tmp_path / "m.onnx"))


def test_top_k_needs_one_output_scale(trained):
    with pytest.raises(EdgeError, match="--top-k needs one positive output scale"):
        lower(load_model(trained("tfc", 2, 2) / "model.onnx"), top_k=1)

"""Models nobody here wrote: FINN's reference networks from brevitas_examples (shipped in the brevitas wheel),
exported with `export_qonnx` exactly as their users do, through the front end, `edge build` and `edge export`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from boards.registry import list_boards, load_board
from boards.schema import FpgaBoard
from edge.corpus import FINN_EXAMPLES, IDIOMS, bnn_pynq
from edge.export.targets import export
from fpga.build import BuildOptions, compile_model
from fpga.folding import fold_to_budget
from fpga.ir import MatrixVectorUnit, SlidingWindow
from fpga.lower import lower
from fpga.report import build_report
from fpga.width import insert_width_converters
from frontend.errors import EdgeError
from frontend.qonnx_io import GoldenModel, load_model

# all 11 bnn_pynq configs; the *_1w1a MLPs quantise their input with BipolarQuant (sign of 2x - 1)
BUILDS = ["tfc_1w1a", "tfc_1w2a", "tfc_2w2a", "sfc_1w1a", "sfc_1w2a", "sfc_2w2a", "lfc_1w1a", "lfc_1w2a",
          "cnv_1w1a", "cnv_1w2a", "cnv_2w2a"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("bnn_pynq")
    cache: dict[tuple[str, bool], Path] = {}

    def get(name: str, dynamo: bool = True) -> Path:
        if (name, dynamo) not in cache:
            makers = {**FINN_EXAMPLES, **IDIOMS}
            cache[(name, dynamo)] = makers[name](out) if name in makers else bnn_pynq(name, out, dynamo)
        return cache[(name, dynamo)]

    return get


@pytest.mark.parametrize("name", BUILDS)
def test_bnn_pynq_builds_bit_exact(corpus, name):
    loaded = load_model(corpus(name))
    graph, report = compile_model(loaded, load_board("pynq-z2"), BuildOptions(verify_samples=16))
    v = report["verification"]
    assert v["bit_exact"] and v["mismatches_other"] == 0 and v["values_compared"] > 0, v
    assert report["totals"]["utilisation"]["lut"] > 0


FPGA_BOARDS = sorted(b.name for b in list_boards() if isinstance(b, FpgaBoard))


@pytest.mark.parametrize("name", BUILDS + sorted(FINN_EXAMPLES) + sorted(IDIOMS))
def test_cap_holds_on_every_fpga_board(corpus, name):
    """Issue 11's promise on the real-model corpus: nodes + width converters + AXI adapters + FIFOs stay under the
    cap on every FPGA board in the registry, or the build stops with one line naming the resource and layer."""
    graph = lower(load_model(corpus(name)))
    fitted = []
    for board_name in FPGA_BOARDS:
        board = load_board(board_name)
        try:
            folded = insert_width_converters(fold_to_budget(graph, board, 0.8))
        except EdgeError as exc:
            assert "largest user" in str(exc) and "\n" not in str(exc), str(exc)
            continue
        report = build_report(folded, board, 0.8)
        util = report["totals"]["utilisation"]
        assert all(u <= 0.8 + 1e-9 for u in util.values()), (board_name, util)
        rows = report["layers"] + report["fifos"]
        assert abs(sum(r["lut"] for r in rows) - report["totals"]["resources"]["lut"]) <= len(rows)
        fitted.append(board_name)
    assert "alveo-u250" in fitted


def test_torchscript_export_is_normalised_with_the_rewrites_listed(corpus, run_cli):
    """TensorNorm's Pow/Sqrt sub-graph and the batch-1 `x.view(x.shape[0], -1)` come out of the legacy exporter;
    normalisation folds them, and `edge inspect` lists what it did."""
    loaded = load_model(corpus("cnv_2w2a", dynamo=False))
    assert any("folded" in r for r in loaded.rewrites), loaded.rewrites
    x = np.random.default_rng(0).uniform(0, 1, size=(3, 3, 32, 32)).astype(np.float32)
    assert GoldenModel(loaded).run(x).shape == (3, 10)  # any batch size, after the rewrites
    _, report = compile_model(loaded, load_board("pynq-z2"), BuildOptions(verify_samples=8))
    assert report["verification"]["bit_exact"]
    code, out, err = run_cli("inspect", str(corpus("cnv_2w2a", dynamo=False)), "--json")
    assert code == 0, err
    import json

    assert json.loads(out)["normalisation"] == list(loaded.rewrites)


def test_input_preprocessing_is_an_exact_host_step(corpus, tmp_path, run_cli):
    """FINN's BNNs compute 2x - 1 before the input quantiser: the IR applies it on the host, and `edge build`'s
    C-sim and cycle simulation stay bit-exact with the golden model."""
    path = corpus("tfc_2w2a")
    code, out, err = run_cli("build", "--board", "pynq-z2", str(path), "-o", str(tmp_path / "b"), "--json")
    assert code == 0, err
    import json

    report = json.loads(out)
    assert report["verification"]["bit_exact"]
    sim = report["simulation"]
    assert sim["csim"]["passed"] and sim["cycle_sim"]["outputs_bit_exact"], sim
    from fpga.serialize import load_graph

    graph = load_graph(tmp_path / "b")
    ops = [op.op for op in graph.pre.host_ops]
    assert "Mul" in ops and "Sub" in ops, ops  # 2 * x - 1, kept through ir.json / ir.npz


def test_bipolar_input_builds_with_csim_and_cycle_sim(corpus, tmp_path, run_cli):
    """tfc_1w1a: BipolarQuant on the preprocessed pixels (host step), XNOR layers throughout."""
    code, out, err = run_cli("build", "--board", "pynq-z2", str(corpus("tfc_1w1a")), "-o", str(tmp_path / "b"),
                             "--json")
    assert code == 0, err
    import json

    report = json.loads(out)
    sim = report["simulation"]
    assert report["verification"]["bit_exact"] and sim["passed"], sim
    from fpga.serialize import load_graph

    graph = load_graph(tmp_path / "b")
    assert graph.pre.bipolar and graph.tensors[graph.input].dtype.bipolar
    assert any(getattr(n, "xnor", False) for n in graph.nodes)


# the MLP for each weight/activation kind (binary with XNOR everywhere, 1-bit weights, 2-bit) and the binary CNN
EXPORTS = ["tfc_1w1a", "tfc_1w2a", "tfc_2w2a", "cnv_1w1a"]  # cnv_2w2a: bench/corpus.py (test time)


@pytest.mark.parametrize("target", ["onnx", "tflite", "openvino", "tensorrt"])
@pytest.mark.parametrize("name", EXPORTS)
def test_bnn_pynq_exports(corpus, tmp_path, name, target):
    """Binary and low-bit networks on every edge target, +-1 held in int8: verified against the
    golden model, and (TFLite) every int8 tensor equal to the integer IR."""
    loaded = load_model(corpus(name))
    report = export(loaded, target, tmp_path / "out")
    v = report["verification"]
    assert v["passed"] and v["top1_agreement"] >= 0.995, v
    if target == "tflite":
        assert v["int8_tensors_equal_to_ir"], report["per_layer"]
        assert any(op["op"] in ("MUL", "SUB", "ADD") for op in report["ops"])  # 2x - 1 in the model itself
    if target == "openvino":
        assert report["form"].startswith("int8 program"), report["form"]


@pytest.mark.parametrize("name", ["kws_mlp_w3a3", "unsw_mlp_w2a2", "radioml_vgg10_w4a4", "trunc_avgpool",
                                  "ceil_pool", "per_channel_act", "concat", "stem_pool", "unet",
                                  "activation_tables", "a2q", "conv_transpose", "conv_transpose_4x4",
                                  "conv_transpose_3x3"])
def test_finn_examples_architectures_build_with_simulation(corpus, tmp_path, run_cli, name):
    """finn-examples' KWS and UNSW-NB15 MLPs and RadioML's 1-D VGG10 (Conv1d, MaxPool1d on 2 x 1024 I/Q
    samples): IR, C-sim and cycle simulation bit-exact on pynq-z2."""
    code, out, err = run_cli("build", "--board", "pynq-z2", str(corpus(name)), "-o", str(tmp_path / "b"), "--json")
    assert code == 0, err
    import json

    report = json.loads(out)
    assert report["verification"]["bit_exact"], report["verification"]
    assert report["simulation"]["passed"], report["simulation"]


@pytest.mark.parametrize("target", ["onnx", "tflite", "openvino", "tensorrt"])
@pytest.mark.parametrize("name", ["kws_mlp_w3a3", "unsw_mlp_w2a2", "radioml_vgg10_w4a4", "ceil_pool", "concat",
                                  "stem_pool", "unet", "a2q", "conv_transpose", "conv_transpose_4x4",
                                  "conv_transpose_3x3"])
def test_finn_examples_architectures_export(corpus, tmp_path, name, target):
    report = export(load_model(corpus(name)), target, tmp_path / "out")
    v = report["verification"]
    isa = report["host"]["isa"]
    if name.startswith("radioml") and target == "openvino" and not isa["amx"]:
        # known gap: without AMX OpenVINO's int8 program of this 1-D VGG is up to 6.45 output LSB off the golden model
        # (seen on an AVX2-only AMD host and on AMD Zen 4 with AVX-512 VNNI; exact on Intel with AMX) and the
        # exporter says FAIL; kernel_paths' u8*s8 pair model does not explain it yet. Strict: the day it passes
        # here, this branch must go.
        assert not v["passed"] and v["max_diff_output_lsb"] > 1.0, v
        pytest.xfail(f"OpenVINO int8 RadioML VGG10 without AMX: {v['max_diff_output_lsb']:.2f} output LSB (known gap)")
    assert v["passed"], v
    if target == "tflite":
        assert v["int8_tensors_equal_to_ir"]


def test_trunc_avgpool_on_int8_targets_is_reported_not_hidden(corpus, run_cli, tmp_path):
    """Trunc rounds sum/4 half to even: level boundaries 3, 5, 3, 5 apart, which no linear int8 requantisation
    reproduces. All-int8 TFLite (--int8-only) says which channels may differ and fails its check; by default the
    pool runs in float32 on exact integers, where ROUND (half to even) of sum/4 is exactly Trunc's rounding; QDQ
    ONNX keeps Trunc in float."""
    import json

    code, out, err = run_cli("export", str(corpus("trunc_avgpool")), "--target", "tflite", "-o",
                             str(tmp_path / "t8"), "--int8-only", "--json")
    report = json.loads(out)
    assert code == 1 and report["requantisation"]["inexact"], report["requantisation"]
    code, out, err = run_cli("export", str(corpus("trunc_avgpool")), "--target", "tflite", "-o",
                             str(tmp_path / "t"), "--json")
    report = json.loads(out)
    assert code == 0 and report["verification"]["int8_tensors_equal_to_ir"], report["verification"]
    assert report["int8_attempt"]["inexact"] and any("exact integers" in w for w in report["widened"])
    # QDQ ONNX writes Trunc as the float32 operations qonnx executes: exact
    report = export(load_model(corpus("trunc_avgpool")), "onnx", tmp_path / "o")
    assert report["verification"]["passed"] and report["verification"]["max_abs_diff"] == 0.0, report
    assert any("Trunc" in n for n in report["notes"])


def test_per_channel_activation_scales(corpus, run_cli, tmp_path):
    """Per-channel scales into a depthwise conv: the int8 program keeps them exact (requantisation is fitted on
    the integers); the QDQ form quantises along the channel axis (QuantizeLinear's axis), exactly."""
    import onnx

    path = corpus("per_channel_act")
    proto = onnx.load(str(path))
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer}
    scales = [inits[n.input[1]] for n in proto.graph.node if n.op_type == "Quant" and n.input[1] in inits]
    assert any(s.size > 1 and len(np.unique(s)) > 1 for s in scales)  # really per channel
    for target in ("tflite", "openvino", "onnx"):
        report = export(load_model(path), target, tmp_path / target)
        assert report["verification"]["passed"], (target, report["verification"])
    qdq = onnx.load(str(tmp_path / "onnx" / "model.qdq.onnx"))
    assert any(a.name == "axis" for n in qdq.graph.node if n.op_type == "QuantizeLinear" for a in n.attribute)


@pytest.mark.parametrize("target", ["onnx", "tflite", "openvino"])
def test_imagenet_mobilenet_v1_exports_within_its_check(corpus, tmp_path, target):
    """brevitas_examples' MobileNet-v1 w4a4 at 224x224 (the export that once ran out of 24 GB): the default
    verification set is small and says so, it streams one sample at a time, and every target passes."""
    from fpga.verify import stream_batch

    loaded = load_model(corpus("mobilenet_v1_w4a4"))
    assert stream_batch(loaded) <= 2
    report = export(loaded, target, tmp_path / target)
    v = report["verification"]
    assert v["passed"] and v["samples"] == 8 and "8 samples for a model this size" in v["data"], v
    if target == "onnx":
        assert v["max_abs_diff"] == 0.0


def test_imagenet_mobilenet_v1_builds_bit_exact(corpus, run_cli, tmp_path):
    """brevitas_examples' quant_mobilenet_v1_4b (random weights): per-channel activation scales into depthwise
    convolutions, TruncAvgPool, Int32Bias. On an Alveo U250: IR bit-exact (as many samples as fit), folded within
    the cap with sized FIFOs, HLS generated, C-sim and cycle simulation of 4 frames bit-exact; the settled cycle
    simulation (16+ frames: the start-up transient takes ten to leave this 90-kernel pipeline) within 2% of the
    estimate (issue 24's bound; FIFOs sized on 4 frames alone lost 5.1%). Frame rates: bench/fpga_scale.py."""
    code, out, err = run_cli("build", "--board", "alveo-u250", str(corpus("mobilenet_v1_w4a4")), "-o",
                             str(tmp_path / "b"), "--sim-frames", "4", "--json")
    assert code == 0, err
    import json

    report = json.loads(out)
    v = report["verification"]
    assert v["bit_exact"] and v["samples"] >= 2 and v["values_compared"] > 0, v
    sim = report["simulation"]
    assert sim["passed"] and sim["csim"]["passed"] and sim["cycle_sim"]["outputs_bit_exact"], sim["csim"]
    assert sim["fifo_sizing"]["no_deadlock_no_throughput_loss"] and report["fifo_depths"] == "simulated"
    c = sim["cycle_sim"]
    assert c["steady_settled"] and c["steady_frames"] > 4 and abs(c["steady_vs_analytical"]) <= 0.02, c
    assert all(u <= 0.8 + 1e-9 for u in report["totals"]["utilisation"].values())
    assert (tmp_path / "b" / "hls" / "top.cpp").exists() and (tmp_path / "b" / "hls" / "params.cpp").exists()


def test_sub_pixel_super_resolution_on_both_paths(corpus, run_cli, tmp_path):
    """PixelShuffle (DepthToSpace, CRD) to an 8-bit 16x16 image: on pynq-z2 the IR, C-sim and cycle simulation
    are bit-exact and the simulator meets the estimate; QDQ ONNX is exact and OpenVINO/TensorRT's form pass;
    TFLite (GATHER into DCR order, DEPTH_TO_SPACE) stays within one output LSB and names the one layer (the
    255-level output quantiser) whose requantisation int8 cannot pin exactly."""
    import json

    import onnx

    path = corpus("pixel_shuffle")
    assert "DepthToSpace" in {n.op_type for n in onnx.load(str(path)).graph.node}
    code, out, _ = run_cli("inspect", str(path))
    assert code == 0 and "fpga: supported" in out and "tflite: supported" in out, out
    code, out, err = run_cli("build", "--board", "pynq-z2", str(path), "-o", str(tmp_path / "b"), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["verification"]["bit_exact"] and report["simulation"]["passed"], report["simulation"]
    assert abs(report["simulation"]["cycle_sim"]["steady_vs_analytical"]) <= 0.02
    assert any(layer["op"] == "DepthToSpace" for layer in report["layers"])
    loaded = load_model(path)
    for target in ("onnx", "openvino", "tensorrt"):
        v = export(loaded, target, tmp_path / target)["verification"]
        assert v["passed"], (target, v)
    tfl = export(loaded, "tflite", tmp_path / "tflite")
    assert tfl["verification"]["passed"] and tfl["verification"]["max_diff_output_lsb"] <= 1.0, tfl["verification"]
    assert [op["op"] for op in tfl["ops"]][-3:-1] == ["GATHER", "DEPTH_TO_SPACE"]
    assert all(s.startswith("MVAU_1:") for s in tfl["requantisation"]["inexact"])


def test_atrous_pyramid_on_both_paths(corpus, run_cli, tmp_path):
    """DeepLab's atrous spatial pyramid (3x3 branches at dilation 2 and 4 beside a 1x1, concatenated): the windows
    keep their nine taps (the MVAUs' columns are 9 x C, not the 25 x C or 81 x C of zero-filled kernels); IR, C-sim
    and cycle simulation bit-exact at the estimate on pynq-z2; QDQ ONNX and TensorRT's form exact; TFLite and
    OpenVINO (CONV_2D with its dilation factors) within one output LSB."""
    import json

    from fpga.serialize import load_graph

    path = corpus("atrous")
    code, out, err = run_cli("build", "--board", "pynq-z2", str(path), "-o", str(tmp_path / "b"), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["verification"]["bit_exact"] and report["simulation"]["passed"], report["simulation"]
    assert abs(report["simulation"]["cycle_sim"]["steady_vs_analytical"]) <= 0.02
    graph = load_graph(tmp_path / "b")
    windows = [n for n in graph.nodes if isinstance(n, SlidingWindow)]
    assert sorted(n.dilation for n in windows) == [(1, 1), (2, 2), (4, 4)]
    assert all(n.kernel == (3, 3) for n in windows)
    widths = [n.mw for n in graph.nodes if isinstance(n, MatrixVectorUnit)]
    assert widths.count(9 * 8) == 2 and not {25 * 8, 81 * 8} & set(widths), widths
    loaded = load_model(path)
    for target in ("onnx", "tensorrt"):
        v = export(loaded, target, tmp_path / target)["verification"]
        assert v["passed"] and v["max_diff_output_lsb"] == 0.0, (target, v)
    for target in ("tflite", "openvino"):
        v = export(loaded, target, tmp_path / target)["verification"]
        assert v["passed"] and v["max_diff_output_lsb"] <= 1.0, (target, v)


@pytest.mark.parametrize("name, conv", [("conv_transpose", "1x1"), ("conv_transpose_4x4", "3x3"),
                                        ("conv_transpose_3x3", "2x2")])
def test_conv_transpose_is_a_sub_pixel_conv(corpus, tmp_path, run_cli, name, conv):
    """Brevitas' QuantConvTranspose2d (2x2/2; overlapping 4x4/2 padding 1 and 3x3/2 padding 1 output padding 1),
    with BatchNorm and a quantised ReLU after it, becomes a Conv to Cout*4 channels (each output phase's taps), the
    element-wise chain, then DepthToSpace: the rewritten golden model equals the original graph run by
    qonnx/onnxruntime; both paths are checked by the build and export tests above. A ConvTranspose whose output is
    not stride x its input (2x2/2 with padding 1) is refused in one line naming the node and what is supported."""
    import onnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    path = corpus(name)
    loaded = load_model(path)
    assert any("ConvTranspose" in r and f"{conv} Conv" in r and "DepthToSpace(2)" in r for r in loaded.rewrites), \
        loaded.rewrites
    ops = [n.op_type for n in loaded.model.graph.node]
    assert "ConvTranspose" not in ops and ops.index("Quant", ops.index("Relu")) < ops.index("DepthToSpace")
    original = ModelWrapper(onnx.load(str(path)))
    for n in original.graph.node:
        if n.op_type == "Quant":
            n.domain = "qonnx.custom_op.general"
    x = np.random.default_rng(2).uniform(0, 1, (4, 1, 8, 8)).astype(np.float32)
    name_in, name_out = original.graph.input[0].name, original.graph.output[0].name
    want = np.concatenate([execute_onnx(original, {name_in: x[i : i + 1]})[name_out] for i in range(len(x))])
    assert np.allclose(GoldenModel(loaded).run(x), want, rtol=1e-5, atol=1e-6)
    if name != "conv_transpose":
        return
    # output not stride x input: not the sub-pixel form
    proto = onnx.load(str(path))
    ct = next(n for n in proto.graph.node if n.op_type == "ConvTranspose")
    for a in ct.attribute:
        if a.name == "pads":
            a.ints[:] = [1, 1, 1, 1]
    bad = tmp_path / "padded.onnx"
    onnx.save(proto, str(bad))
    code, _, err = run_cli("inspect", str(bad))
    assert code == 2 and err.count("\n") == 1 and "ConvTranspose" in err and "sub-pixel form" in err, err


def test_a2q_accumulators_fit_their_declared_width(corpus, run_cli, tmp_path):
    """Brevitas A2Q (8-bit weights; accumulators declared at 16, 12 and 14 bits): edge's exporter writes the weights
    PyTorch computes with (Brevitas' QONNX export writes the raw, unnormalised ones, which overflow), so the golden
    model equals PyTorch, and every MVAU's accumulator, sized from its weights and input range, stays within its
    layer's declared width in the IR and the build report (the build above checks C-sim and cycle sim)."""
    import json

    import torch

    from edge.a2q import declared_accumulator_bits
    from edge.corpus import A2QNet, randomise_batchnorm

    path = corpus("a2q")
    torch.manual_seed(0)
    model = A2QNet()
    randomise_batchnorm(model)
    model.eval()
    declared = declared_accumulator_bits(model)
    assert declared == A2QNet.ACCUMULATOR_BITS
    x = torch.rand(32, 1, 8, 8)
    with torch.no_grad():
        expected = model(x).numpy()
    loaded = load_model(path)
    # equal but for float32 summation order: PyTorch's and onnxruntime's kernels add in an ISA-dependent order (up to
    # 2 ulps apart on AMD Zen 4, identical on Intel); the raw weights Brevitas' export writes are off by far more
    golden = GoldenModel(loaded).run(x.numpy())
    np.testing.assert_allclose(golden, expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())
    mvaus = [n for n in lower(loaded).nodes if n.kind == "MatrixVectorUnit"]
    assert all(n.acc_dtype.bits <= declared[k] for n, k in zip(mvaus, ("conv1", "conv2", "fc"), strict=True))
    code, out, err = run_cli("build", "--board", "pynq-z2", str(path), "-o", str(tmp_path / "b"), "--json",
                             "--no-sim")
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)["layers"]}
    assert [rows[n.name]["accumulator_bits"] for n in mvaus] == [n.acc_dtype.bits for n in mvaus]

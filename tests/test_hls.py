"""HLS backend: generated C++ C-sims bit-exact, the cycle-level simulation agrees with the estimate, FIFOs size.

Real g++ on the generated project, for every zoo model at w1a1, w2a2 and w4a4.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import torch

from boards import load_board
from edge.zoo import ZOO
from fpga.build import BuildOptions, compile_model
from fpga.datatypes import IntType
from fpga.execute import dequantize_output, execute, quantize_input
from fpga.ir import (
    ConcatConstant,
    DataflowGraph,
    InputQuant,
    LabelSelect,
    Layout,
    MatrixVectorUnit,
    OutputAffine,
    SlidingWindow,
    TensorInfo,
    Thresholding,
    Thresholds,
    VectorVectorUnit,
)
from fpga.latency import first_frame_latency
from fpga.lower import lower
from fpga.verify import verify
from fpga.width import insert_width_converters
from frontend.qonnx_io import GoldenModel, load_model
from hls.flow import STEADY_TOLERANCE, simulate_project

BITS = [(1, 1), (2, 2), (4, 4)]
# every zoo model at every width it is built for; the vit at w4a4 only (its attention kernels are the same at every
# width, the w2a2 lowering is checked in tests/test_fpga_lower.py)
CASES = [(m, w, a) for m in sorted(ZOO) for w, a in BITS if min(w, a) >= ZOO[m].min_bits and (m, w) != ("vit", 2)]
SIM_FRAMES = 16
LATENCY_TOLERANCE = 0.15  # measured: within 4.3% on every zoo CNN and MLP, 9.6% on the vit (attention)


@pytest.mark.parametrize(("model", "wbits", "abits"), CASES, ids=[f"{m}-w{w}a{a}" for m, w, a in CASES])
def test_generated_hls_is_bit_exact_and_cycle_accurate(trained, digits, tmp_path, model, wbits, abits):
    loaded = load_model(trained(model, wbits, abits, epochs=4) / "model.onnx")
    # LFC-w4a4's weights outgrow a Z-7020; so do the vit's 8-bit LayerNorm thresholds (zcu104, as FINN+ targets)
    board = load_board({"lfc": "alveo-u250", "vit": "zcu104"}.get(model, "pynq-z2"))
    graph, _ = compile_model(loaded, board, BuildOptions(verify_samples=0))
    x = digits.x_test[:SIM_FRAMES].reshape(SIM_FRAMES, *loaded.input_shape[1:])
    summary, csim_out = simulate_project(graph, board, tmp_path / "hls", x)

    # C-sim == IR executor, integer for integer (the testbench compares; we compare again here)
    assert summary["csim"]["passed"] and summary["csim"]["mismatches"] == 0
    expected = execute(graph, quantize_input(graph.pre, x))[graph.output]
    np.testing.assert_array_equal(csim_out, expected.reshape(SIM_FRAMES, -1))
    # ... and through the host-side post-processing it is the QONNX golden model's output
    golden = GoldenModel(loaded).run(x)
    ours = dequantize_output(graph.post, csim_out.reshape(SIM_FRAMES, *graph.tensors[graph.output].shape))
    report = verify(graph, loaded, x)
    close = np.isclose(ours, golden, rtol=1e-5, atol=1e-5 * np.abs(golden).max()).all(axis=1)
    # a sample may differ only through a float tie or a Softmax/LayerNorm output within its bound (transformers)
    assert set(np.flatnonzero(~close)) <= report.tie_samples | report.approx_samples

    c = summary["cycle_sim"]
    assert c["outputs_bit_exact"] and not c["deadlock"]
    assert abs(c["steady_vs_analytical"]) <= STEADY_TOLERANCE, c
    # the first frame's latency through the empty pipeline, as estimated for report.json, against the simulation
    latency = first_frame_latency(graph)
    assert abs(latency / c["first_frame_latency_cycles"] - 1) <= LATENCY_TOLERANCE, (latency, c)
    sizing = summary["fifo_sizing"]
    assert sizing["no_deadlock_no_throughput_loss"]
    assert sizing["sized_cycles"] == sizing["unbounded_cycles"]
    assert all(d >= 2 for d in sizing["depths"].values())
    top = (tmp_path / "hls" / "top.cpp").read_text()
    assert "#pragma HLS DATAFLOW" in top and "#pragma HLS STREAM" in top


def _hand_graph(pe: int, simd: int, k: int) -> DataflowGraph:
    """A 12-input, 10-class MVAU without activation, then LabelSelect: exercises odd width ratios and top-k."""
    rng = np.random.default_rng(3)
    w = rng.integers(-3, 4, size=(10, 12))
    i4, acc = IntType(4, False), IntType(10, True)
    mvau = MatrixVectorUnit(name="MVAU_0", inputs=("input",), output="acc", pe=pe, simd=simd, mw=12, mh=10, vectors=1,
                            weights=w, in_dtype=i4, w_dtype=IntType(3, True), acc_dtype=acc)
    sel = LabelSelect(name="LabelSelect_0", inputs=("acc",), output="top", pe=pe, labels=10, k=k, in_dtype=acc)
    tensors = {"input": TensorInfo((12,), i4), "acc": TensorInfo((10,), acc),
               "top": TensorInfo((k,), IntType(4, False))}
    graph = DataflowGraph(name="hand", nodes=(mvau, sel), tensors=tensors, input="input", output="top",
                          pre=InputQuant(1 / 15, 4, False, False, "ROUND", (12,)),
                          post=OutputAffine(np.ones(10), np.zeros(10), (10,), Layout("flat"), top_k=k))
    return insert_width_converters(graph)


@pytest.mark.parametrize(("pe", "simd", "k"), [(5, 3, 3), (2, 4, 1), (10, 12, 10)])
def test_label_select_and_width_converters(tmp_path, pe, simd, k):
    graph = _hand_graph(pe, simd, k)
    x = np.random.default_rng(pe).uniform(0, 1, size=(SIM_FRAMES, 12)).astype(np.float32)
    x[:, 5] = x[:, 6]  # equal inputs: ties between classes are likely, the lower index must win
    summary, out = simulate_project(graph, load_board("pynq-z2"), tmp_path / "hls", x)
    assert summary["passed"], summary
    acc = execute(graph, quantize_input(graph.pre, x), keep_all=True)["acc"]
    np.testing.assert_array_equal(out, np.argsort(-acc, axis=1, kind="stable")[:, :k])


def test_edge_simulate_cli(run_cli, tmp_path, digits):
    out = tmp_path / "build"
    code, stdout, err = run_cli("build", "-o", str(out), "--sim-frames", "4")
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    assert report["simulation"]["passed"] and (out / "hls" / "run_hls.tcl").exists()
    assert "set_part xc7z020clg400-1" in (out / "hls" / "run_hls.tcl").read_text()
    assert report["synthesis"]["ran"] is False and "vitis_hls -f run_hls.tcl" in report["synthesis"]["commands"][0]

    x = digits.x_test[:6].reshape(6, 64)
    np.save(tmp_path / "x.npy", x)
    code, stdout, err = run_cli("simulate", str(out), "--input", str(tmp_path / "x.npy"), "--output",
                                str(tmp_path / "y.npy"), "--json")
    assert code == 0, err
    result = json.loads(stdout)
    assert result["passed"] and result["ir_vs_golden"]["bit_exact"]
    y = np.load(tmp_path / "y.npy")
    golden = GoldenModel(load_model(out / "model.onnx")).run(x)
    np.testing.assert_allclose(y, golden, rtol=1e-5, atol=1e-5)

    np.save(tmp_path / "bad.npy", np.zeros((3, 8, 8), np.float32))
    code, _, err = run_cli("simulate", str(out), "--input", str(tmp_path / "bad.npy"))
    assert code == 2 and "the model takes (64,)" in err


def test_no_sim_still_writes_the_hls_project(run_cli, tmp_path):
    out = tmp_path / "b"
    code, _, err = run_cli("build", "-o", str(out), "--no-sim", "--json")
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    assert "simulation" not in report and report["hls"]["simulated"] is False
    assert {"top.cpp", "tb.cpp", "sim.cpp", "params.hpp", "Makefile"} <= {p.name for p in (out / "hls").iterdir()}


def _one_node_graph(node, in_shape: tuple[int, int], in_t: IntType, out_shape: tuple[int, int],
                    out_t: IntType) -> DataflowGraph:
    """A graph of one node from stream "input" (integers in, scale 1) to stream "y", with its width converters."""
    graph = DataflowGraph(name=node.kind, nodes=(node,), input="input", output="y",
                          tensors={"input": TensorInfo(in_shape, in_t), "y": TensorInfo(out_shape, out_t)},
                          pre=InputQuant(1.0, in_t.bits, in_t.signed, False, "ROUND", in_shape),
                          post=OutputAffine(np.ones(out_shape[-1]), np.zeros(out_shape[-1]), out_shape,
                                            Layout("flat")))
    return insert_width_converters(graph)


@pytest.mark.parametrize(("levels", "pe"), [(15, 2), (16, 4), (100, 2), (255, 1)])
def test_thresholds_searched_or_compared_agree_with_the_ir(tmp_path, levels, pe):
    """Thresholding of a 9-bit stream: few levels compared at once, 16 and more by the kernels' binary search
    (`edge::threshold`); ascending and descending channels, repeated thresholds, inputs beyond both ends."""
    rng = np.random.default_rng(levels)
    channels, vectors = 8, 6
    i9 = IntType(9, True)
    values = np.sort(rng.integers(-300, 300, size=(channels, levels)), axis=1)
    values[:, levels // 3: levels // 3 + 4] = values[:, levels // 3: levels // 3 + 1]  # repeated thresholds
    descending = np.arange(channels) % 3 == 1
    values[descending] = values[descending, ::-1]
    out = IntType(levels.bit_length() + 1, True)  # base -(levels // 2) .. base + levels
    th = Thresholds(values=values, descending=descending, base=-(levels // 2), step=1, out_dtype=out)
    node = Thresholding(name="Thresholding_0", inputs=("input",), output="y", pe=pe, channels=channels,
                        vectors=vectors, in_dtype=i9, thresholds=th)
    graph = _one_node_graph(node, (vectors, channels), i9, (vectors, channels), out)
    x = rng.integers(-320, 320, size=(SIM_FRAMES, vectors, channels)).astype(np.float32)
    x[:4] = values[None, None, :, rng.integers(0, levels)]  # exactly at a threshold
    summary, y = simulate_project(graph, load_board("zcu104"), tmp_path / "hls", x)
    assert summary["passed"], summary
    xc = np.clip(x, -256, 255).astype(np.int64)  # the 9-bit input quantiser
    expected = th.apply(xc)
    np.testing.assert_array_equal(y.reshape(expected.shape), expected)
    naive = th.base + np.where(descending, (xc[..., None] <= values).sum(-1), (xc[..., None] >= values).sum(-1))
    np.testing.assert_array_equal(expected, naive)


@pytest.mark.parametrize(("at_front", "pe"), [(True, 1), (True, 4), (False, 2)])
def test_concat_constant_inserts_rows_exactly(tmp_path, at_front, pe):
    """Constant rows (a class token) before or after a stream's tokens: C-sim and cycle sim against the IR, the
    rows wider than the stream's own type (the output type holds both)."""
    rng = np.random.default_rng(pe)
    channels, vectors, count = 8, 5, 2
    i4, out = IntType(4, True), IntType(6, True)
    table = rng.integers(-32, 32, size=(count, channels))
    node = ConcatConstant(name="ConcatConstant_0", inputs=("input",), output="y", pe=pe, channels=channels,
                          vectors=vectors, at=0 if at_front else vectors, table=table, in_dtype=i4, out_dtype=out)
    graph = _one_node_graph(node, (vectors, channels), i4, (vectors + count, channels), out)
    x = rng.integers(-8, 8, size=(SIM_FRAMES, vectors, channels)).astype(np.float32)
    summary, y = simulate_project(graph, load_board("zcu104"), tmp_path / "hls", x)
    assert summary["passed"], summary
    rows = np.broadcast_to(table, (SIM_FRAMES, count, channels))
    expected = np.concatenate([rows, x] if at_front else [x, rows], axis=1).astype(np.int64)
    np.testing.assert_array_equal(y.reshape(expected.shape), expected)


class _Depthwise(torch.nn.Module):
    """Two depthwise 3x3 convolutions (stride 2 then 1, padding 1) between pointwise ones, then a classifier."""

    def __init__(self) -> None:
        import brevitas.nn as qnn
        from brevitas.quant import Uint8ActPerTensorFloat

        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, bit_width=4, return_quant_tensor=True)
        self.pw0 = qnn.QuantConv2d(2, 8, 1, weight_bit_width=4, bias=False)
        self.dw1 = qnn.QuantConv2d(8, 8, 3, stride=2, padding=1, groups=8, weight_bit_width=4, bias=False)
        self.dw2 = qnn.QuantConv2d(8, 8, 3, padding=1, groups=8, weight_bit_width=4, bias=False)
        self.acts = torch.nn.ModuleList(qnn.QuantReLU(bit_width=4, return_quant_tensor=True) for _ in range(3))
        self.fc = qnn.QuantLinear(8 * 5 * 5, 4, weight_bit_width=4, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.acts[0](self.pw0(self.inp(x)))
        x = self.acts[1](self.dw1(x))
        x = self.acts[2](self.dw2(x))
        return self.fc(x.flatten(1))


@pytest.mark.parametrize("taps", [3, 9])
def test_multi_tap_vvau_is_exact_and_faster(tmp_path, taps):
    """Depthwise convolutions with stride and padding folded to all channels and `taps` window taps per word (the
    parallel-window SWG feeding the multi-tap VVAU): C-sim and cycle sim bit-exact, the steady state as estimated,
    the VVAUs `taps` times faster than at one tap per word; and the folder picks them when the frame rate asks."""
    from edge.corpus import _export

    torch.manual_seed(0)
    model = _Depthwise()
    with torch.no_grad():
        model(torch.rand(32, 2, 10, 10))
    loaded = load_model(_export(model, (1, 2, 10, 10), tmp_path / "dw.onnx", dynamo=False))
    graph = lower(loaded)

    def fold(n):
        if isinstance(n, VectorVectorUnit):
            return n.with_fold(n.channels, taps)
        if isinstance(n, SlidingWindow) and n.depthwise:
            return n.with_fold(1, n.channels * min(taps, n.kernel[1]))
        return n

    folded = insert_width_converters(graph.with_nodes(tuple(fold(n) for n in graph.nodes)))
    before = [n for n in graph.nodes if isinstance(n, VectorVectorUnit)]
    after = [n for n in folded.nodes if isinstance(n, VectorVectorUnit)]
    assert len(after) == 2 and all(a.cycles() * taps == b.cycles() // (b.channels // b.pe)
                                   for a, b in zip(after, before, strict=True))
    x = np.random.default_rng(1).uniform(0, 1, size=(SIM_FRAMES, 2, 10, 10)).astype(np.float32)
    summary, out = simulate_project(folded, load_board("zcu104"), tmp_path / "hls", x)
    assert summary["passed"], summary
    assert abs(summary["cycle_sim"]["steady_vs_analytical"]) <= STEADY_TOLERANCE
    ir = execute(folded, quantize_input(folded.pre, x))[folded.output]
    np.testing.assert_array_equal(out, ir.reshape(len(x), -1))
    chosen, _ = compile_model(loaded, load_board("zcu104"), BuildOptions(verify_samples=0))
    assert any(n.simd > 1 for n in chosen.nodes if isinstance(n, VectorVectorUnit)), "the folder keeps one tap"


class _Dilated(torch.nn.Module):
    """A dilated 3x3 convolution (dilation 2, padding 2) on two channels, then a dilated depthwise one with stride 2
    (dilation 2, padding 2), then a classifier: the idioms of a segmentation backbone (DeepLab's atrous convs)."""

    def __init__(self) -> None:
        import brevitas.nn as qnn
        from brevitas.quant import Uint8ActPerTensorFloat

        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, bit_width=4, return_quant_tensor=True)
        self.conv = qnn.QuantConv2d(2, 8, 3, padding=2, dilation=2, weight_bit_width=4, bias=False)
        self.dw = qnn.QuantConv2d(8, 8, 3, stride=2, padding=2, dilation=2, groups=8, weight_bit_width=4, bias=False)
        self.acts = torch.nn.ModuleList(qnn.QuantReLU(bit_width=4, return_quant_tensor=True) for _ in range(2))
        self.fc = qnn.QuantLinear(8 * 6 * 6, 4, weight_bit_width=4, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.acts[0](self.conv(self.inp(x)))
        x = self.acts[1](self.dw(x))
        return self.fc(x.flatten(1))


def test_dilated_convolutions_are_exact_with_parallel_windows(tmp_path):
    """Dilated standard and depthwise convolutions (with padding, and stride on the depthwise one) lower to 3x3
    windows that skip a row and a column between taps (nine taps per window, not the 25 of a zero-filled 5x5): the
    IR is bit-exact against QONNX; with the parallel-window SWG (a whole kernel row, three taps two columns apart,
    per word from both windows; three taps per word into the depthwise VVAU) C-sim and cycle sim are bit-exact with
    the steady state as estimated; the folder picks several pixels per word only when the target frame rate needs
    them."""
    from edge.corpus import _export

    torch.manual_seed(0)
    model = _Dilated()
    with torch.no_grad():
        model(torch.rand(32, 2, 12, 12))
    path = _export(model, (1, 2, 12, 12), tmp_path / "dilated.onnx", dynamo=False)
    loaded = load_model(path)
    graph = lower(loaded)
    swgs = [n for n in graph.nodes if isinstance(n, SlidingWindow)]
    assert [(s.kernel, s.stride, s.dilation, s.depthwise) for s in swgs] == [((3, 3), (1, 1), (2, 2), False),
                                                                              ((3, 3), (2, 2), (2, 2), True)]
    assert [n.mw for n in graph.nodes if isinstance(n, MatrixVectorUnit)][0] == 2 * 9
    x = np.random.default_rng(3).uniform(0, 1, size=(SIM_FRAMES, 2, 12, 12)).astype(np.float32)
    report = verify(graph, loaded, x)
    assert report.exact and report.values > 0 and report.errors == 0, report

    def fold(n):
        if isinstance(n, SlidingWindow):
            return n.with_fold(1, n.channels * 3)  # a whole kernel row of pixels (taps) per word
        if isinstance(n, VectorVectorUnit):
            return n.with_fold(n.channels, 3)
        if isinstance(n, MatrixVectorUnit) and n.mw == 2 * 9:
            return n.with_fold(n.mh, 6)
        return n

    folded = insert_width_converters(graph.with_nodes(tuple(fold(n) for n in graph.nodes)))
    assert [s.pixels for s in folded.nodes if isinstance(s, SlidingWindow)] == [3, 3]
    summary, out = simulate_project(folded, load_board("zcu104"), tmp_path / "hls", x)
    assert summary["passed"], summary
    assert abs(summary["cycle_sim"]["steady_vs_analytical"]) <= STEADY_TOLERANCE
    ir = execute(folded, quantize_input(folded.pre, x))[folded.output]
    np.testing.assert_array_equal(out, ir.reshape(len(x), -1))

    def first_window(fps: float) -> SlidingWindow:
        chosen, _ = compile_model(loaded, load_board("zcu104"), BuildOptions(verify_samples=0, target_fps=fps))
        return next(n for n in chosen.nodes if isinstance(n, SlidingWindow))

    # the folder writes several pixels per word only when one pixel per word cannot keep up with the target
    assert first_window(20_000).pixels == 1 and first_window(200_000).pixels > 1


@pytest.mark.parametrize(("model", "bits"), [("tfc", 1), ("cnv", 2)])
def test_synthesis_arithmetic_path_matches(trained, digits, tmp_path, model, bits):
    """The kernels' C-sim fast path (64-bit limbs) is off under Vitis; the ap_uint path it replaces must agree."""
    from hls.codegen import generate, read_frames, write_frames
    from hls.flow import expected_outputs
    from hls.simulate import compile_binary

    loaded = load_model(trained(model, bits, bits, epochs=4) / "model.onnx")
    board = load_board("pynq-z2")
    graph, _ = compile_model(loaded, board, BuildOptions(verify_samples=0))
    project = tmp_path / "hls"
    generate(graph, board, project)
    binary = compile_binary(project, ["tb.cpp", "top.cpp"], "csim_hls_path.bin", ("-DEDGE_NO_FAST_CSIM",))
    x_int, expected = expected_outputs(graph, digits.x_test[:8].reshape(8, *loaded.input_shape[1:]))
    write_frames(project / "input.txt", x_int)
    write_frames(project / "expected.txt", expected)
    result = subprocess.run([str(binary), str(project)], capture_output=True, text=True)
    assert result.returncode == 0 and "PASS" in result.stdout, result.stdout[-500:]
    np.testing.assert_array_equal(read_frames(project / "csim_output.txt"), expected)


def test_multi_pixel_sliding_window_is_exact_and_faster(trained, digits, tmp_path):
    """A first convolution with one input channel: SIMD = 3 x C writes three window taps per clock (FINN's
    parallel window), a third of the SWG's cycles, with C-sim and cycle simulation still bit-exact."""
    loaded = load_model(trained("cnv", 2, 2, epochs=4) / "model.onnx")
    graph = lower(loaded)
    swg = next(n for n in graph.nodes if isinstance(n, SlidingWindow))
    assert swg.channels == 1 and swg.fold_ok(1, 3) and not swg.fold_ok(1, 2)
    mvau = next(n for n in graph.nodes if isinstance(n, MatrixVectorUnit))
    folded = graph.with_nodes(tuple(n.with_fold(1, 3) if n is swg else n.with_fold(mvau.mh, 3) if n is mvau else n
                                    for n in graph.nodes))
    fast, slow = folded.nodes[graph.nodes.index(swg)], swg.with_fold(1, 1)
    assert fast.pixels == 3 and fast.cycles() < slow.cycles()
    folded = insert_width_converters(folded)
    x = digits.x_test[:SIM_FRAMES].reshape(SIM_FRAMES, *loaded.input_shape[1:])
    summary, csim_out = simulate_project(folded, load_board("pynq-z2"), tmp_path / "hls", x)
    assert summary["passed"], summary
    expected = execute(folded, quantize_input(folded.pre, x))[folded.output]
    np.testing.assert_array_equal(csim_out, expected.reshape(SIM_FRAMES, -1))
    assert ", 3, 1, 1>" in next(line for line in (tmp_path / "hls" / "top.cpp").read_text().splitlines()
                                if "edge::SlidingWindow<" in line)  # PIX = 3, no dilation

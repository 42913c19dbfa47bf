"""Folding, estimates, IR files and `edge build`: legal folds, an optimum under the model, clear errors."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from boards import load_board
from edge.cli import bundled_model_path
from fpga.execute import run_model
from fpga.folding import RESOURCE_KEYS, budget, fold_options, fold_to_budget, graph_edges, stream_cost
from fpga.ir import MatrixVectorUnit
from fpga.lower import lower
from fpga.report import build_report
from fpga.resources import bram18_count, estimate, map_memory
from fpga.serialize import load_graph, save_graph
from fpga.width import insert_width_converters
from frontend.errors import EdgeError
from frontend.qonnx_io import load_model


@pytest.fixture(scope="module")
def tfc_graph():
    return lower(load_model(bundled_model_path()))


@pytest.fixture(scope="module")
def cnv_graph(trained):
    return lower(load_model(trained("cnv", 2, 2) / "model.onnx"))


def test_fold_options_are_legal_and_cycles_follow_the_mvau_formula(cnv_graph):
    for node in cnv_graph.nodes:
        limits = node.fold_limits()
        for opt in fold_options(node, uram=False):
            assert all(limits[k] % v == 0 for k, v in (("pe", opt.pe), ("simd", opt.simd)) if k in limits)
            if isinstance(node, MatrixVectorUnit):
                assert opt.cycles == (node.mh // opt.pe) * (node.mw // opt.simd) * node.vectors


def _lower_bound(graph, options, limit, key):
    """No folding meeting `limit` can use less of `key` than this: each node at its own minimum, plus each
    stream (FIFO, converter) at the minimum over its two ends' options."""
    i = RESOURCE_KEYS.index(key)
    ok = [[o for o in opts if o.cycles <= limit] for opts in options]
    nodes = sum(min(getattr(o.res, key) for o in opts) for opts in ok)
    streams = 0.0
    for e in graph_edges(graph):
        outs = {e.axi} if e.src == -1 else {o.out_elems for o in ok[e.src]}
        ins = {e.axi} if e.dst == -1 else {o.in_elems for o in ok[e.dst]}
        streams += min(stream_cost(a, b, e.dtype, e.elems, e.src == -1, e.dst == -1)[i] for a in outs for b in ins)
    return nodes + streams


@pytest.mark.parametrize("board_name", ["pynq-z2", "zcu104"])
def test_optimiser_is_optimal_under_the_model(cnv_graph, board_name):
    board = load_board(board_name)
    folded = fold_to_budget(cnv_graph, board, cap=0.8)
    avail = budget(board, 0.8)
    best = max(n.cycles() for n in folded.nodes)
    report = build_report(insert_width_converters(folded), board, 0.8)  # nodes, converters, FIFOs
    total = report["totals"]["resources"]
    assert all(total[k] <= avail[k] + 1 for k in RESOURCE_KEYS)
    options = [fold_options(n, board.resources.uram > 0) for n in cnv_graph.nodes]
    floor = max(min(o.cycles for o in opts) for opts in options)
    faster = sorted({o.cycles for opts in options for o in opts if floor <= o.cycles < best})
    if faster:
        # the next faster bottleneck is impossible: some resource's lower bound already exceeds the budget
        limit = faster[-1]
        assert any(_lower_bound(cnv_graph, options, limit, k) > avail[k] for k in RESOURCE_KEYS)
    else:
        assert best == floor  # already as fast as any folding allows


def test_target_fps_uses_fewer_resources(tfc_graph):
    board = load_board("pynq-z2")
    fast = fold_to_budget(tfc_graph, board)
    slow = fold_to_budget(tfc_graph, board, target_fps=100_000)
    assert max(n.cycles() for n in slow.nodes) <= board.clock_hz / 100_000
    lut = lambda g: sum(estimate(n)[0].lut for n in g.nodes)  # noqa: E731
    assert lut(slow) < lut(fast)


def test_model_that_cannot_fit_names_the_resource(tfc_graph):
    tiny = dataclasses.replace(load_board("pynq-z2"),
                               resources=dataclasses.replace(load_board("pynq-z2").resources, lut=500))
    with pytest.raises(EdgeError, match=r"does not fit pynq-z2 even fully folded.*LUT needs"):
        fold_to_budget(tfc_graph, tiny)


def test_rtl_backend_folds_and_reports_in_its_own_resource_model(tfc_graph):
    """A Xilinx board with --backend rtl: folding, layers, FIFOs and totals in the RTL kernels' model (no URAM, BRAM
    and DSPs as the HLS model places them); an open board keeps the HLS model in its family's units; HLS is HLS."""
    from fpga.resources_rtl import estimate_rtl, fifo_estimate_rtl

    zcu = load_board("zcu104")  # has URAM: the RTL model never uses it
    folded = insert_width_converters(fold_to_budget(tfc_graph, zcu, 0.8, backend="rtl"))
    rtl = build_report(folded, zcu, 0.8, backend="rtl")
    assert rtl["resource_model"] == "rtl-xilinx" and rtl["totals"]["resources"]["uram"] == 0
    for node, row in zip(folded.nodes, rtl["layers"], strict=True):
        res, _ = estimate_rtl(node)
        assert row["lut"] == round(res.lut) and row["ff"] == round(res.ff)
        assert row["bram36"] == estimate(node)[0].bram36 and row["dsp"] == round(estimate(node)[0].dsp)
    assert all(f["lut"] == round(fifo_estimate_rtl(f["width"], f["depth"])[0].lut) for f in rtl["fifos"])
    hls = build_report(folded, zcu, 0.8)
    assert hls["resource_model"] == "hls" and hls["totals"]["resources"] != rtl["totals"]["resources"]
    ulx = load_board("ulx3s-85f")
    open_rtl = build_report(fold_to_budget(tfc_graph, ulx, 0.8, backend="rtl"), ulx, 0.8, backend="rtl")
    assert open_rtl["resource_model"] == "hls" and "family_resources" in open_rtl["totals"]


def test_lut_rom_read_registers_count_distinct_columns():
    """Synthesis keeps one read register per distinct non-constant bit column of a LUT ROM: none for one word, at
    most 2^depth - 2 for a shallow ROM however wide (FINN CNV's 576-lane MVAU: 8 words, 4,608 bits), every bit
    of a deep one."""
    from fpga.resources_rtl import distinct_columns

    assert distinct_columns(4_608, 1) == 0
    assert 250 < distinct_columns(4_608, 8) <= 254
    assert distinct_columns(10, 8) == pytest.approx(10, rel=0.05)
    assert distinct_columns(4_608, 32) == pytest.approx(4_608, rel=1e-5) and distinct_columns(500, 64) == 500


def test_bram_and_lutram_mapping():
    assert bram18_count(36, 512) == 1
    assert bram18_count(32, 18432) == 36  # 32 bits wide: best as 36-bit x 512 stacks
    assert bram18_count(4, 32768) == 8
    assert map_memory(3, 36).style == "lutram"
    assert map_memory(32, 144).style == "bram" and map_memory(32, 144, copies=16).bram36 == 8
    assert map_memory(72, 8192, uram_available=True).uram == 2


def test_ir_files_round_trip(tmp_path, cnv_graph, digits):
    save_graph(cnv_graph, tmp_path)
    again = load_graph(tmp_path)
    assert [n.kind for n in again.nodes] == [n.kind for n in cnv_graph.nodes]
    x = digits.x_test[:50]
    np.testing.assert_array_equal(run_model(again, x), run_model(cnv_graph, x))
    with pytest.raises(EdgeError, match="no dataflow IR here"):
        load_graph(tmp_path / "missing")


def test_edge_build_writes_everything_and_verifies(run_cli, tmp_path):
    out = tmp_path / "build"
    code, stdout, err = run_cli("build", "--board", "pynq-z2", "-o", str(out))
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["deploy", "folding.json", "hls", "ir.json", "ir.npz", "model.onnx",
                                                     "report.html", "report.json"]
    report = json.loads((out / "report.json").read_text())
    assert report["verification"]["bit_exact"] and report["verification"]["values_compared"] > 0
    t = report["totals"]
    assert t["fps"] == pytest.approx(100e6 / t["bottleneck_cycles"])
    assert all(v <= 0.8 for v in t["utilisation"].values())
    assert "throughput" in stdout and "MVAU_0" in stdout


def test_folding_file_round_trip_and_errors(run_cli, tmp_path):
    out = tmp_path / "b1"
    assert run_cli("build", "-o", str(out), "--verify-samples", "0", "--no-sim")[0] == 0
    fold = json.loads((out / "folding.json").read_text())
    code, stdout, _ = run_cli("build", "-o", str(tmp_path / "b2"), "--folding", str(out / "folding.json"), "--json",
                              "--no-sim")
    assert code == 0
    layers = [r for r in json.loads(stdout)["layers"] if r["op"] != "StreamingDataWidthConverter"]
    assert {r["name"]: {"pe": r["pe"], "simd": r["simd"]} for r in layers} == fold["folding"]

    fold["folding"]["MVAU_0"]["pe"] = 7
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(fold))
    code, _, err = run_cli("build", "-o", str(tmp_path / "b3"), "--folding", str(bad))
    assert code == 2 and "node 'MVAU_0': PE=7 is not a legal folding (legal: 1, 2, 4, 8, 16, 32, 64)" in err
    assert not (tmp_path / "b3").exists()  # nothing half-written

    fold["folding"] = {"MVAU_9": {"pe": 1}}
    bad.write_text(json.dumps(fold))
    code, _, err = run_cli("build", "-o", str(tmp_path / "b4"), "--folding", str(bad))
    assert code == 2 and "unknown node 'MVAU_9'" in err


def test_edge_build_rejects_edge_devices_and_bad_models(run_cli, tmp_path):
    code, _, err = run_cli("build", "--board", "raspberry-pi-5", "-o", str(tmp_path / "x"))
    assert code == 2 and "edge device" in err
    code, _, err = run_cli("build", str(tmp_path / "nope.onnx"), "-o", str(tmp_path / "x"))
    assert code == 2 and "no such file" in err

"""FPGA compiler at scale: the utilisation cap holds after width converters and FIFOs on every board, FIFOs are
estimated per stream and sized to the smallest depths that keep throughput, the simulator reports its speed."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from boards import list_boards, load_board
from boards.schema import FpgaBoard
from edge.zoo import ZOO
from fpga.build import BuildOptions, compile_model, random_inputs
from fpga.folding import RESOURCE_KEYS, fold_to_budget
from fpga.lower import lower
from fpga.report import build_report
from fpga.resources import Resources, bram18_count, fifo_estimate
from frontend.errors import EdgeError
from frontend.qonnx_io import load_model
from hls.codegen import generate
from hls.flow import expected_outputs
from hls.simulate import (
    MIN_DEPTH,
    PACE_SLACK,
    REFINE_FIFOS,
    REFINE_MIN_DEPTH,
    _keeps_throughput,
    repeat_frames,
    run_cycle_sim,
    size_fifos,
)

FPGA_BOARDS = sorted(b.name for b in list_boards() if isinstance(b, FpgaBoard))
CAP = 0.8


def assert_report_within_cap(report: dict, cap: float) -> None:
    """Totals are the sum of layers (converters included) and FIFOs, and each is within the cap."""
    rows = report["layers"] + report["fifos"]
    for k in RESOURCE_KEYS:
        assert math.isclose(sum(r[k] for r in rows), report["totals"]["resources"][k], abs_tol=len(rows)), k
    over = {k: u for k, u in report["totals"]["utilisation"].items() if u > cap + 1e-9}
    assert not over, (report["board"], over)


def test_fifo_estimate_follows_the_streaming_fifo_styles():
    assert fifo_estimate(64, MIN_DEPTH) == (Resources(), "none")  # the kernels' output register
    srl, style = fifo_estimate(64, 100)
    assert style == "srl" and srl.bram36 == 0 and srl.lut >= 64 * 4  # 4 SRL32 per bit
    assert fifo_estimate(64, 32)[0].lut < srl.lut < fifo_estimate(64, 256)[0].lut
    bram, style = fifo_estimate(36, 300)  # past the SRL limit: block RAM, depth rounded to 512
    assert style == "bram" and bram.bram36 == bram18_count(36, 512) / 2 == 0.5
    assert fifo_estimate(64, 3000)[0].bram36 == bram18_count(64, 4096) / 2


@pytest.mark.parametrize("model", sorted(ZOO))
def test_cap_holds_after_converters_and_fifos_on_every_board(trained, model):
    graph = lower(load_model(trained(model, 2, 2, epochs=4) / "model.onnx"))
    fitted = 0
    for name in FPGA_BOARDS:
        board = load_board(name)
        try:
            graph_c, report = compile_model_for(graph, board)
        except EdgeError as exc:  # a part too small even fully folded: the error names resource and layer
            assert "needs" in str(exc) and "largest user" in str(exc) and "\n" not in str(exc)
            continue
        fitted += 1
        assert_report_within_cap(report, CAP)
        assert report["fifo_depths"].startswith("default")
        assert any(n.kind == "StreamingDataWidthConverter" for n in graph_c.nodes)
    # the open-FPGA boards (5K-84K LUT4) hold the small models only; at least half of the Xilinx parts hold each
    xilinx = [n for n in FPGA_BOARDS if load_board(n).open_flow is None]
    assert fitted >= len(xilinx) // 2


def compile_model_for(graph, board):
    from fpga.width import insert_width_converters

    folded = insert_width_converters(fold_to_budget(graph, board, CAP))
    return folded, build_report(folded, board, CAP)


def test_optimiser_prefers_matching_stream_widths(trained):
    """Where a producer can write what its consumer reads at no other cost, no converter is left between them."""
    graph = lower(load_model(trained("cnv", 2, 2, epochs=4) / "model.onnx"))
    board = load_board("zcu104")
    folded, _ = compile_model_for(graph, board)
    inner = [n for n in folded.nodes[1:-1] if n.kind == "StreamingDataWidthConverter"]
    independent = sum(1 for n in graph.nodes)  # a loose upper bound: one converter per node
    assert len(inner) < independent
    # every SWG feeding an MVAU directly has the MVAU's SIMD when the MVAU's SIMD divides the channels
    for a, b in zip(folded.nodes, folded.nodes[1:], strict=False):
        if a.kind == "SlidingWindow" and b.kind == "MatrixVectorUnit" and a.channels % b.simd == 0:
            assert a.simd == b.simd, (a.name, a.simd, b.name, b.simd)


def _sized(trained, tmp_path_factory, model: str, bits: int):
    loaded = load_model(trained(model, bits, bits, epochs=4) / "model.onnx")
    board = load_board("pynq-z2")
    graph, _ = compile_model(loaded, board, BuildOptions(verify_samples=0))
    project = tmp_path_factory.mktemp(f"{model}_fifos") / "hls"
    generate(graph, board, project)
    x_int, _ = expected_outputs(graph, random_inputs(loaded, 4, seed=2))
    return graph, project, x_int, size_fifos(project, graph, x_int)


@pytest.fixture(scope="module")
def cnv_sized(trained, tmp_path_factory):
    return _sized(trained, tmp_path_factory, "cnv", 2)


def test_fifo_sizing_is_minimal_and_proven_by_simulation(trained, tmp_path_factory):
    """ResNet's skip branches must buffer while the main branch convolves: those FIFOs stay deep, at the smallest
    depth that keeps throughput; everything else shrinks far below its unbounded peak."""
    graph, project, x_int, sizing = _sized(trained, tmp_path_factory, "resnet", 1)
    assert sizing.throughput_kept and not sizing.sized.deadlock
    inner = [n for n in sizing.peaks if n not in (graph.input, graph.output)]
    assert all(MIN_DEPTH <= sizing.depths[n] <= sizing.peaks[n] for n in inner)
    # unbounded peaks overstate what is needed (a fast producer runs ahead); the search gives that back
    assert sum(sizing.depths[n] for n in inner) < sum(sizing.peaks[n] for n in inner)
    # a design this small is searched over the frames its unbounded run needs to settle (more than the 4 given)
    free = sizing.settled_unbounded
    assert free is not None and free.settled and sizing.search_frames == free.frames > len(x_int)
    assert sizing.settled is not None and sizing.settled.settled and not sizing.grown
    assert sizing.settled.settled_cycles_per_frame <= free.settled_cycles_per_frame * 1.001
    deep = [n for n in inner if sizing.depths[n] > REFINE_MIN_DEPTH]
    assert deep, sizing.depths
    for name in deep[:REFINE_FIFOS]:  # one word less and the design loses cycles: the depth found is the smallest
        fewer = {**sizing.depths, name: sizing.depths[name] - 1}
        run = run_cycle_sim(project, repeat_frames(x_int, free.frames), fewer, timing_only=True)
        assert not _keeps_throughput(run, free), name


def test_a_paced_host_keeps_the_steady_state_without_running_ahead(cnv_sized):
    """The reference for growing FIFOs: a host sending frames just faster than the steady state keeps that state,
    and the stream before the slowest stage no longer holds what an unpaced host ran ahead; a host slower than the
    design sets the interval itself and its waits are not a deadlock."""
    graph, project, x_int, sizing = cnv_sized
    free = sizing.settled_unbounded
    frames = repeat_frames(x_int, free.frames)
    interval = free.settled_cycles_per_frame
    paced = run_cycle_sim(project, frames, None, timing_only=True, pace=interval * (1 - PACE_SLACK))
    assert not paced.deadlock and paced.settled
    assert paced.settled_cycles_per_frame <= interval * 1.001
    ahead = max(free.fifos, key=lambda n: free.fifos[n]["peak"])  # where the unpaced host's words pile up
    assert paced.fifos[ahead]["peak"] * 4 < free.fifos[ahead]["peak"], (ahead, paced.fifos[ahead], free.fifos[ahead])
    slow = run_cycle_sim(project, frames, None, timing_only=True, pace=3 * interval)
    assert not slow.deadlock and len(slow.frame_done) == free.frames
    assert abs(slow.settled_cycles_per_frame - 3 * interval) <= 1.0, (slow.settled_cycles_per_frame, interval)


def test_sized_fifos_are_in_the_report(cnv_sized):
    graph, _, _, sizing = cnv_sized
    board = load_board("pynq-z2")
    default = build_report(graph, board, CAP)
    sized = build_report(graph, board, CAP, sizing.depths)
    assert sized["fifo_depths"] == "simulated"
    rows = {r["stream"]: r for r in sized["fifos"]}
    for name, depth in sizing.depths.items():
        if name in rows:
            assert rows[name]["depth"] == depth
            assert rows[name]["style"] == fifo_estimate(rows[name]["width"], depth)[1]
    assert sized["totals"]["fifo_resources"] != default["totals"]["fifo_resources"]
    assert_report_within_cap(sized, CAP)


def test_build_holds_the_cap_after_sizing_and_reports_simulator_speed(run_cli, tmp_path, trained):
    """`edge build` with simulation: sized FIFOs counted, every resource under the cap; `edge simulate --json`
    reports how fast the cycle-level simulator ran."""
    model = trained("resnet", 1, 1, epochs=4) / "model.onnx"
    out = tmp_path / "b"
    code, stdout, err = run_cli("build", str(model), "--board", "pynq-z2", "-o", str(out), "--sim-frames", "4",
                                "--util-cap", "0.3", "--json")
    assert code == 0, err
    report = json.loads(stdout)
    assert report["simulation"]["passed"] and report["fifo_depths"] == "simulated"
    assert_report_within_cap(report, 0.3)
    depths = report["simulation"]["fifo_sizing"]["depths"]
    assert {r["stream"]: r["depth"] for r in report["fifos"]} == {k: v for k, v in depths.items()
                                                                   if k in {r["stream"] for r in report["fifos"]}}
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("<svg") == page.count("</svg>") >= 3 and "<script" not in page and "https://" not in page
    assert report["totals"]["bottleneck"] in page and all(f["stream"] in page for f in report["fifos"])
    assert f"{report['totals']['utilisation']['lut']:.1%}" in page  # utilisation bars carry the numbers
    (out / "report.html").unlink()
    code, stdout, err = run_cli("report", str(out), "--no-open")
    assert code == 0 and stdout.strip().endswith("report.html") and (out / "report.html").exists(), err
    code, _, err = run_cli("report", str(tmp_path / "nowhere"), "--no-open")
    assert code == 2 and "no report.json" in err
    code, stdout, err = run_cli("simulate", str(out), "--frames", "3", "--json")
    assert code == 0, err
    c = json.loads(stdout)["cycle_sim"]
    assert c["seconds"] > 0 and c["cycles_per_second"] > 0 and c["total_cycles"] > 0


def test_no_folding_fits_names_the_resource_and_the_layer(run_cli, tmp_path):
    code, _, err = run_cli("build", "--board", "pynq-z2", "-o", str(tmp_path / "b"), "--util-cap", "0.02",
                           "--no-sim")
    errors = [line for line in err.strip().splitlines() if line.startswith("error")]
    assert code == 2 and len(errors) == 1, err
    assert "LUT needs" in errors[0] and "largest user MVAU_" in errors[0]
    assert not (tmp_path / "b").exists()


def test_simulation_outputs_are_exact_with_limb_words(cnv_sized):
    """The simulator's words are 64-bit limbs, not ap_uint: outputs still equal the IR executor's."""
    graph, project, x_int, sizing = cnv_sized
    from fpga.execute import execute

    expected = execute(graph, x_int.reshape(len(x_int), *graph.tensors[graph.input].shape))[graph.output]
    np.testing.assert_array_equal(sizing.sized.outputs, expected.reshape(len(x_int), -1))

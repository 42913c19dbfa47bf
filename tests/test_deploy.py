"""deploy/: the block design checked by tclsh against stubbed Vivado commands, the PYNQ driver's host steps and
packing against the build's own, and the driver run end to end (real pynq 3.1) on a simulated board whose DMA
feeds the cycle-level simulator."""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from boards import load_board
from edge.build import build_model
from edge.cli import bundled_model_path
from edge.corpus import bnn_pynq, radioml_vgg10, unsw_mlp
from edge.data import Dataset
from edge.deploy_run import PYNQ_ENV
from fpga.build import BuildOptions, random_inputs
from fpga.execute import quantize_input
from fpga.width import AXI_BITS
from frontend.qonnx_io import load_model
from hls.codegen import raw_bits
from hls.deploy import DRIVER, SHELLS
from hls.deploy.check import check_block_design

ROOT = Path(__file__).resolve().parents[1]


def pynq_python() -> str:
    """The pynq 3.1 environment `make install` creates (or $EDGE_PYNQ_PYTHON): required, never skipped."""
    candidate = os.environ.get(PYNQ_ENV) or str(ROOT / ".venv-pynq" / "bin" / "python")
    assert Path(candidate).exists(), f"no pynq environment at {candidate}: run `make install` ({PYNQ_ENV})"
    return candidate


def load_driver():
    spec = importlib.util.spec_from_file_location("edge_driver_under_test", DRIVER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def shells(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The bundled model built (no simulation) for a Zynq-7000 and a Zynq UltraScale+ board."""
    out = {}
    for board in ("pynq-z2", "zcu104"):
        d = tmp_path_factory.mktemp(board) / "build"
        build_model(load_model(bundled_model_path()), load_board(board), BuildOptions(simulate=False), d)
        out[board] = d
    return out


@pytest.mark.parametrize("board", ["pynq-z2", "zcu104"])
def test_block_design_runs_under_tclsh_with_the_driver_addresses(shells: dict[str, Path], board: str) -> None:
    deploy = shells[board] / "deploy"
    settings = json.loads((deploy / "driver" / "settings.json").read_text())
    target = load_board(board)
    check = check_block_design(deploy, AXI_BITS, target.clock_mhz)
    assert check.passed, check.output
    ps = SHELLS[target.shell]
    assert check.cells[ps.name].startswith(ps.vlnv.rsplit(":", 1)[0])
    assert check.cells["axi_dma_0"].startswith("xilinx.com:ip:axi_dma:")
    assert check.cells["edge_top_0"] == settings["accelerator"]["vlnv"]
    links = {(a, b) for a, b, _ in check.connections}
    assert ("axi_dma_0/M_AXIS_MM2S", "edge_top_0/in_stream") in links
    assert ("edge_top_0/out_stream", "axi_dma_0/S_AXIS_S2MM") in links
    assert (f"{ps.name}/{ps.master}", "ctrl_interconnect/S00_AXI") in links
    assert ("mem_interconnect/M00_AXI", f"{ps.name}/{ps.slave}") in links
    # the address map the driver uses is the one the block design assigns
    space = f"{ps.name}/Data"
    assert check.addresses[(space, "edge_top_0/s_axi_control/Reg")] == (settings["accelerator"]["base"], "64K")
    assert check.addresses[(space, "axi_dma_0/S_AXI_LITE/Reg")] == (settings["dma"]["base"], "64K")
    for dma_space in ("axi_dma_0/Data_MM2S", "axi_dma_0/Data_S2MM"):
        assert check.addresses[(dma_space, f"{ps.name}/{ps.ddr_segment}")][0] == 0
    assert check.clock_mhz == pytest.approx(target.clock_mhz) == settings["clock_mhz"]
    report = json.loads((shells[board] / "report.json").read_text())
    assert report["deploy"]["shell_check"]["passed"]
    assert "Block design executed by tclsh" in (shells[board] / "report.html").read_text()
    files = {p.relative_to(deploy).as_posix() for p in deploy.rglob("*") if p.is_file()}
    assert {"block_design.tcl", "build_bitfile.tcl", "README.md", "driver/driver.py", "driver/settings.json",
            "driver/host_steps.npz"} <= files


@pytest.mark.parametrize("mutation, expected", [
    (("connect_bd_intf_net [get_bd_intf_pins edge_top_0/out_stream] [get_bd_intf_pins axi_dma_0/S_AXIS_S2MM]", ""),
     "interface edge_top_0/out_stream is not connected"),
    (("-offset 0x40400000", "-offset 0x43C08000"), "overlaps"),
    (("CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ {100}", "CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ {150}"), "MHz"),
    (("CONFIG.PCW_USE_S_AXI_HP0 {1}", "CONFIG.PCW_USE_S_AXI_HP0 {0}"), "not enabled"),
    (("CONFIG.c_m_axis_mm2s_tdata_width {64}", "CONFIG.c_m_axis_mm2s_tdata_width {32}"), "streams 64 bits"),
    (("[get_bd_pins axi_dma_0/axi_resetn] ", ""), "axi_dma_0/axi_resetn (rst) is not driven"),
    (("-offset 0x43C00000", "-offset 0x83C00000"), "outside"),
])
def test_stubbed_vivado_rejects_broken_block_designs(shells: dict[str, Path], tmp_path: Path,
                                                     mutation: tuple[str, str], expected: str) -> None:
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    text = (shells["pynq-z2"] / "deploy" / "block_design.tcl").read_text()
    assert mutation[0] in text
    (deploy / "block_design.tcl").write_text(text.replace(mutation[0], mutation[1]))
    check = check_block_design(deploy, AXI_BITS, 100.0)
    assert not check.passed
    assert any(expected in p for p in check.problems), check.problems


def test_driver_host_steps_and_packing_match_the_build(tmp_path: Path) -> None:
    """The driver's numpy re-implementation against the build's own quantisation and the HLS word layout, on models
    with host preprocessing ops, a bipolar input, a 1-D map and signed inputs."""
    driver = load_driver()
    from hls.deploy import settings_for

    cases = [("bundled", load_model(bundled_model_path()))]
    cases += [("tfc_1w1a", load_model(bnn_pynq("tfc_1w1a", tmp_path))),
              ("radioml_vgg10", load_model(radioml_vgg10(tmp_path))), ("unsw_mlp", load_model(unsw_mlp(tmp_path)))]
    from fpga.build import compile_model

    for name, loaded in cases:
        board = load_board("zcu104")
        graph, _ = compile_model(loaded, board, BuildOptions(simulate=False, verify_samples=0))
        settings, arrays = settings_for(graph, board, None)
        settings = json.loads(json.dumps(settings))  # exactly what the driver reads
        x = random_inputs(loaded, 7, seed=3)
        x[0].flat[0] = 0.0  # BipolarQuant's sign(0) = +1 and exact zeros
        q = driver.preprocess(x, settings["pre"], arrays)
        expected = quantize_input(graph.pre, x).reshape(len(x), -1)
        assert np.array_equal(q, expected), name
        io = settings["input"]
        words = driver.pack(q, io, settings["axi_bits"])
        assert words.shape == (len(x) * io["words_per_frame"], settings["axi_bits"] // 64)
        # element i of a word in bits [i*b, (i+1)*b), as hls/codegen packs stream words
        raw = raw_bits(q, graph.tensors[graph.input].dtype).reshape(-1, io["elems_per_word"])
        for i in range(io["elems_per_word"]):
            got = (words[:, 0] >> np.uint64(i * io["bits"])) & np.uint64((1 << io["bits"]) - 1)
            assert np.array_equal(got.astype(np.int64), raw[:, i]), name
        assert np.array_equal(driver.unpack(words, io, len(x)), q), name


@pytest.fixture(scope="module")
def cnn_build(tmp_path_factory: pytest.TempPathFactory, trained: Callable[..., Path]) -> Path:
    out = tmp_path_factory.mktemp("cnn") / "build"
    build_model(load_model(trained("cnv", 2, 2) / "model.onnx"), load_board("pynq-z2"), BuildOptions(sim_frames=4),
                out)
    return out


def test_driver_runs_a_cnn_on_the_simulated_board(cnn_build: Path, digits: Dataset, tmp_path: Path,
                                                  run_cli: Callable[..., tuple[int, str, str]]) -> None:
    x = digits.x_test[:20]
    np.save(tmp_path / "x.npy", x)
    code, out, err = run_cli("run", str(cnn_build / "deploy"), "--sim", "--input", str(tmp_path / "x.npy"),
                             "--output", str(tmp_path / "y.npy"), "--python", pynq_python(), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["passed"] and result["golden"]["bit_exact_vs_integer_model"] and result["golden"]["golden_close"]
    assert result["golden"]["top1_agreement"] == 1.0
    assert result["frames"] == 20 and result["batches"] == 1
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (20, 10)
    # the DMA-fed simulation runs at the cycle rate the build's own simulation measured
    report = json.loads((cnn_build / "report.json").read_text())
    build_steady = report["simulation"]["cycle_sim"]["steady_cycles_per_frame"]
    assert result["steady_cycles_per_frame"] == pytest.approx(build_steady, rel=0.02)
    assert result["cycles"] > 20 * build_steady
    # pynq's DMA driver flushed the input buffer and invalidated the output buffer, as on a board
    assert result["cache_flushes"] >= 1 and result["cache_invalidates"] >= 1


def test_driver_bipolar_model_on_zcu104_and_throughput_mode(trained: Callable[..., Path], digits: Dataset,
                                                            tmp_path: Path,
                                                            run_cli: Callable[..., tuple[int, str, str]]) -> None:
    build = tmp_path / "build"
    code, _, err = run_cli("build", str(trained("tfc", 1, 1) / "model.onnx"), "--board", "zcu104", "-o", str(build),
                           "--sim-frames", "2")
    assert code == 0, err
    np.save(tmp_path / "x.npy", digits.x_test[:9].reshape(9, -1))  # the zoo MLPs take flat features
    code, out, err = run_cli("run", str(build / "deploy"), "--sim", "--input", str(tmp_path / "x.npy"), "--output",
                             str(tmp_path / "y.npy"), "--python", pynq_python(), "--throughput", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["passed"] and result["clock_mhz"] == load_board("zcu104").clock_mhz
    assert result["frames"] == 9
    throughput = result["throughput"]
    assert throughput["frames"] == 1000 and throughput["driver"]["frames"] == 1000
    assert throughput["driver"]["images_per_s"] > 0 and throughput["driver"]["clock_mhz"] == result["clock_mhz"]
    assert throughput["fps"] == pytest.approx(result["fps"], rel=0.02)


def test_edge_run_errors_are_one_line(shells: dict[str, Path], tmp_path: Path,
                                      run_cli: Callable[..., tuple[int, str, str]]) -> None:
    deploy = shells["pynq-z2"] / "deploy"
    np.save(tmp_path / "x.npy", np.zeros((2, 64), np.float32))
    np.save(tmp_path / "bad.npy", np.zeros((2, 3), np.float32))
    cases = [
        (["run", str(deploy), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")], "--sim"),
        (["run", str(tmp_path), "--sim", "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")],
         "settings.json"),
        (["run", str(deploy), "--sim", "--input", str(tmp_path / "bad.npy"), "--output", str(tmp_path / "y.npy")],
         "the model takes"),
        (["run", str(deploy), "--sim", "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"),
          "--python", "/nonexistent/python"], "pynq"),
    ]
    for args, words in cases:
        code, out, err = run_cli(*args)
        assert code == 2, (args, out, err)
        assert words in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def test_alveo_build_has_link_config_and_a_memory_mapped_top(tmp_path: Path) -> None:
    """Alveo: the top reads and writes device memory (m_axi); C-sim runs through those ports."""
    out = tmp_path / "build"
    _, report = build_model(load_model(bundled_model_path()), load_board("alveo-u250"), BuildOptions(sim_frames=4),
                            out)
    assert report["simulation"]["csim"]["passed"]
    deploy = out / "deploy"
    assert "sp=edge_top_1.in_mem:DDR[0]" in (deploy / "link.cfg").read_text()
    assert "export_design -format xo" in (deploy / "package_xo.tcl").read_text()
    assert "m_axi port = in_mem" in (out / "hls" / "top.cpp").read_text()
    settings = json.loads((deploy / "driver" / "settings.json").read_text())
    assert settings["dma"] is None and settings["accelerator"]["registers"]["frames"] == 0x28


FAKE_VITIS_HLS = """#!/bin/sh
echo "vitis_hls $* in $(basename "$PWD")" >> "$EDGE_FAKE_LOG"
"""
FAKE_VIVADO = """#!/bin/sh
echo "vivado $* in $(basename "$PWD")" >> "$EDGE_FAKE_LOG"
mkdir -p bitfile && echo bit > bitfile/edge.bit && echo hwh > bitfile/edge.hwh
"""


def test_bitfile_runs_vitis_hls_then_vivado_when_they_are_on_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: Callable[..., tuple[int, str, str]]) -> None:
    """The orchestration of --bitfile with stand-in tools (no Vivado here): order, working directories, the
    results recorded in report.json; and without the tools a one-line error before any work."""
    out = tmp_path / "build"
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    code, _, err = run_cli("build", "--board", "pynq-z2", "-o", str(out), "--bitfile", "--no-sim")
    assert code == 2 and "--bitfile needs vitis_hls and vivado" in err and not out.exists(), err
    tools = tmp_path / "bin"
    tools.mkdir()
    for name, script in (("vitis_hls", FAKE_VITIS_HLS), ("vivado", FAKE_VIVADO)):
        (tools / name).write_text(script)
        (tools / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:/usr/bin:/bin")
    monkeypatch.setenv("EDGE_FAKE_LOG", str(tmp_path / "calls.log"))
    code, _, err = run_cli("build", "--board", "pynq-z2", "-o", str(out), "--bitfile", "--no-sim")
    assert code == 0, err
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert calls == ["vitis_hls -f run_hls.tcl in hls",
                     "vivado -mode batch -source build_bitfile.tcl -tclargs 2 in deploy"]
    report = json.loads((out / "report.json").read_text())
    assert report["bitfile"]["bitfile"] == "deploy/bitfile/edge.bit"
    assert (out / "deploy" / "bitfile" / "edge.hwh").exists()


def test_edge_run_as_the_build_prints_it_without_environment_variables(cnn_build: Path, tmp_path: Path) -> None:
    """The hint `edge build` prints, run in a shell without $EDGE_PYNQ_PYTHON: the .venv-pynq that `make install`
    made beside edge's environment is found by itself."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != PYNQ_ENV}
    edge = str(Path(sys.executable).parent / "edge")
    # the build's hint names the sample inputs it wrote into deploy/
    cmd = [edge, "run", str(cnn_build / "deploy"), "--sim", "--input", str(cnn_build / "deploy" / "sample_input.npy"),
           "--output", "y.npy"]
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert np.load(tmp_path / "y.npy").shape == (8, 10)

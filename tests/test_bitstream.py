"""Open FPGAs to a bitstream (rtl/bitstream.py): the RTL top behind the UART shell through Yosys, nextpnr and the
family's packer, driven by `edge build --board BOARD --bitfile` (real YoWASP tools, no vendor tools)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from boards import load_board
from edge.data import Dataset
from edge.train import TrainConfig, export_qonnx_file, fit
from edge.zoo import QuantMLP

EDGE = str(Path(sys.executable).parent / "edge")


def _build(run_cli, board: str, out: Path, *extra: str) -> dict:
    if "--target-fps" not in extra:
        extra = (*extra, "--target-fps", "20000")
    code, stdout, err = run_cli("build", "--board", board, "--bitfile", "--json", "-o", str(out), *extra)
    assert code == 0, err
    return json.loads(stdout)


@pytest.fixture(scope="module")
def tiny_mlp(tmp_path_factory: pytest.TempPathFactory, digits: Dataset) -> Path:
    """A tiny MLP (64-16-10, 2-bit weights and activations) trained with Brevitas on digits: what an iCE40UP5K
    holds."""
    model = QuantMLP(64, [16], 10, 2, 2)
    acc = fit(model, TrainConfig("tiny", 2, 2, epochs=10), digits, (64,), "tiny", progress=False)
    assert acc > 0.8
    path = tmp_path_factory.mktemp("tiny") / "tiny_mlp.onnx"
    export_qonnx_file(model, (64,), path, {})
    return path


def _run_as_printed(stdout: str, cwd: Path) -> subprocess.CompletedProcess:
    """The `edge run ... --sim` command the build printed, run as printed in a shell of its own."""
    line = next(line for line in stdout.splitlines() if "edge run " in line)
    cmd = shlex.split(line[line.index("edge run "):])
    return subprocess.run([EDGE, *cmd[1:]], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_ecp5_bitstream_of_the_bundled_mlp(run_cli, tmp_path: Path) -> None:
    """ULX3S-85F: Verilator bit-exact, then a routed, packed ECP5 bitstream whose Fmax meets the board clock; the
    routed utilisation is the report's, deploy/ has the bitstream, an openFPGALoader script and the pyserial driver,
    which runs as the build prints it against the Verilator model of the board over a pseudo-terminal."""
    out = tmp_path / "ulx3s"
    code, stdout, err = run_cli("build", "--board", "ulx3s-85f", "--target-fps", "20000", "--bitfile", "-o", str(out))
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    assert report["backend"] == "rtl" and report["rtl"]["bit_exact"] and report["rtl"]["backpressure"]
    bs = report["bitstream"]
    bit = out / bs["path"]
    assert bit.name == "edge.bit" and bit.stat().st_size == bs["bytes"] > 100_000
    assert bs["clock_mhz"] == 25 and bs["fmax_mhz"] >= bs["clock_mhz"] and bs["timing_met"]
    # the accelerator and the shell were placed: logic, flip-flops and the ROMs/input FIFO in EBR
    assert bs["resources"]["lut"] > 500 and bs["resources"]["ff"] > 100 and bs["resources"]["bram36"] >= 0.5
    assert report["totals"]["utilisation"]["lut"] == bs["utilisation"]["lut"] == round(
        bs["resources"]["lut"] / 83_640, 4)
    assert "estimated_utilisation" in report["totals"]
    assert (out / "deploy" / "edge.bit").read_bytes() == bit.read_bytes()
    script = (out / "deploy" / "program.sh").read_text()
    assert "openFPGALoader -b ulx3s" in script and "edge.bit" in script
    # the routed netlist has the shell's UART pins where the board's constraints put them
    lpf = (out / "rtl" / "pnr" / "board.lpf").read_text()
    assert 'LOCATE COMP "uart_rx" SITE "M1"' in lpf and 'LOCATE COMP "clk" SITE "G2"' in lpf
    assert 0 < bs["link_fps"] < report["rtl"]["fps"]
    # the same top with its UART shell in Verilator, the host's serial line modelled bit by bit at 25 clocks per bit
    ser = bs["serial_sim"]
    assert ser["bit_exact"] and ser["frames"] == 4 and ser["clks_per_bit"] == 25
    assert ser["cycles_per_frame"] >= 64 * 10 * 25  # 64 input bytes a frame at 10 bits each: the link bounds it
    # deploy/driver/driver.py (pyserial) over the model's serial line, exactly as the build printed the command
    done = _run_as_printed(stdout, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("PASS: 8 frames through driver.py (pyserial)") and "bit-exact" in done.stdout
    assert np.load(tmp_path / "y.npy").shape == (8, 10)


def test_ecp5_bitstream_of_a_zoo_cnn(trained, run_cli, tmp_path: Path) -> None:
    """ULX3S-85F with the zoo's CNV (conv-conv-pool blocks, 2-bit, trained on digits): sliding windows, MVAUs and
    max pools through Yosys, nextpnr-ecp5 and ecppack; Fmax meets the board clock, the Verilator model is bit-exact
    at the estimate's cycles per frame, and so is the pyserial driver against the board top over the UART."""
    out = tmp_path / "cnv"
    code, stdout, err = run_cli("build", "--board", "ulx3s-85f", str(trained("cnv", 2, 2) / "model.onnx"),
                                "--target-fps", "2000", "--bitfile", "-o", str(out))
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    kinds = {layer["op"] for layer in report["layers"]}
    assert {"SlidingWindow", "MatrixVectorUnit", "MaxPool"} <= kinds, kinds
    rtl = report["rtl"]
    assert rtl["bit_exact"] and rtl["backpressure"] and rtl["cycles_per_frame"] == rtl["estimated_cycles_per_frame"]
    bs = report["bitstream"]
    assert (out / bs["path"]).name == "edge.bit" and bs["bytes"] > 100_000
    assert bs["fmax_mhz"] >= bs["clock_mhz"] == 25 and bs["timing_met"]
    assert bs["resources"]["lut"] > 2_000 and 0 < bs["utilisation"]["lut"] < 0.8
    assert bs["serial_sim"]["bit_exact"]
    done = _run_as_printed(stdout, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("PASS: 8 frames through driver.py (pyserial)") and "bit-exact" in done.stdout


def test_ice40_tiny_mlp_to_a_bitstream_and_its_driver(tiny_mlp: Path, digits: Dataset, run_cli,
                                                      tmp_path: Path) -> None:
    """iCEBreaker (iCE40UP5K): a tiny MLP placed, routed and packed with icepack, Fmax at or above the 12 MHz clock;
    the pyserial driver over the Verilator model of the board top is bit-exact on real digits."""
    out = tmp_path / "ice"
    report = _build(run_cli, "icebreaker", out, str(tiny_mlp), "--target-fps", "5000")
    bs = report["bitstream"]
    assert (out / bs["path"]).name == "edge.bin" and bs["bytes"] > 50_000
    assert bs["clock_mhz"] == 12 and bs["fmax_mhz"] >= 12 and bs["timing_met"]
    assert 0 < bs["utilisation"]["lut"] <= 1 and bs["available"]["lut"] == 5280
    assert report["rtl"]["bit_exact"] and bs["serial_sim"]["bit_exact"]
    np.save(tmp_path / "x.npy", digits.x_test[:16].reshape(16, -1))
    code, stdout, err = run_cli("run", str(out / "deploy"), "--sim", "--input", str(tmp_path / "x.npy"), "--output",
                                str(tmp_path / "y.npy"), "--json")
    assert code == 0, err
    result = json.loads(stdout)
    assert result["passed"] and result["frames"] == 16 and result["clks_per_bit"] == 12
    assert result["golden"]["bit_exact_vs_integer_model"] and result["golden"]["top1_agreement"] == 1.0


def test_gowin_bitstream_and_the_refusals(tiny_mlp: Path, run_cli, tmp_path: Path) -> None:
    """Tang Nano 9K (GW1NR-9) to a gowin_pack bitstream; the HLS backend is refused for an open board; a design that
    does not fit the iCE40UP5K fails with one line naming the layer to fold, and leaves no output directory."""
    out = tmp_path / "nano"
    report = _build(run_cli, "tangnano-9k", out, str(tiny_mlp), "--no-sim", "--synth")
    bs = report["bitstream"]
    assert (out / bs["path"]).name == "edge.fs" and (out / bs["path"]).stat().st_size > 100_000
    assert bs["fmax_mhz"] >= 27 and bs["resources"]["lut"] > 200
    # --synth on an open board: synth_gowin on the top, per layer, in LUT4s; the resource model's figure in the
    # family's units (calibrated against Yosys on other designs) is in the same range
    syn = report["synth"]
    assert syn["command"] == "synth_gowin" and syn["family"] == "gowin"
    for k in ("lut", "ff", "bram36", "dsp"):
        assert sum(ly["resources"][k] for ly in syn["layers"]) + syn["fifos"][k] == pytest.approx(
            syn["resources"][k]), k
    assert report["family"] == "gowin" and "estimated_utilisation" in report["totals"]
    lut4 = report["totals"]["family_resources"]["lut"]
    assert 0.5 < lut4 / syn["resources"]["lut"] < 2.0
    assert 'IO_LOC "uart_tx" 17;' in (out / "rtl" / "pnr" / "board.cst").read_text()

    code, _, err = run_cli("build", "--board", "ulx3s-85f", "--backend", "hls", "-o", str(tmp_path / "h"))
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "only the RTL backend" in errors[0], err

    code, _, err = run_cli("build", "--board", "icebreaker", "--target-fps", "20000", "--no-sim", "--bitfile",
                           "-o", str(tmp_path / "ice"))
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert "does not fit" in errors[0] and "MVAU_" in errors[0] and "--target-fps" in errors[0], err
    assert not (tmp_path / "ice").exists()

    # the board top runs on the oscillator: another --clock-mhz would make a bitstream whose UART and timing are
    # wrong, so it is refused before any work
    code, _, err = run_cli("build", "--board", "icebreaker", str(tiny_mlp), "--clock-mhz", "24", "--bitfile", "-o",
                           str(tmp_path / "ice24"))
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "12 MHz oscillator" in errors[0] and "--clock-mhz" in errors[0], err
    assert not (tmp_path / "ice24").exists()


def test_family_primitives_count_in_lut4_units() -> None:
    """Yosys' cell names per family -> LUT4, FF, block RAM in 36 Kb units, multipliers."""
    from rtl.yosys import count

    ecp5 = count({"LUT4": 100, "CCU2C": 10, "TRELLIS_FF": 50, "DP16KD": 3, "MULT18X18D": 2, "PFUMX": 7}, "ecp5")
    assert ecp5 == {"lut": 120, "ff": 50, "bram36": 1.5, "dsp": 2}
    ice40 = count({"SB_LUT4": 100, "SB_CARRY": 30, "SB_DFFE": 40, "SB_DFFSR": 2, "SB_RAM40_4K": 9, "SB_MAC16": 1},
                  "ice40")
    assert ice40 == {"lut": 100, "ff": 42, "bram36": 1.0, "dsp": 1}
    gowin = count({"LUT4": 80, "LUT2": 5, "ALU": 16, "DFFRE": 30, "SDPB": 2, "MUX2_LUT5": 9, "MULT18X18": 1},
                  "gowin")
    assert gowin == {"lut": 101, "ff": 30, "bram36": 1.0, "dsp": 1}


def test_open_board_profiles_carry_their_flow() -> None:
    for name, pin in (("ulx3s-85f", "G2"), ("orangecrab-25f", "A9"), ("icebreaker", "35"), ("tangnano-9k", "52"),
                      ("tangprimer-20k", "H11")):
        board = load_board(name)
        assert board.open_flow is not None and board.open_flow.clock_pin == pin and board.shell == "uart"
        assert board.open_flow.baud > 0 and board.open_flow.programmer

"""Board registry: bundled profiles, the exact published figures, custom files and errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from boards import EdgeDevice, FpgaBoard, list_boards, load_board
from frontend.errors import EdgeError

FPGA_FIGURES = {
    "pynq-z2": ("xc7z020clg400-1", 53_200, 106_400, 140, 0, 220),
    "pynq-z1": ("xc7z020clg400-1", 53_200, 106_400, 140, 0, 220),
    "ultra96-v2": ("xczu3eg-sbva484-1-i", 70_560, 141_120, 216, 0, 360),
    "zcu102": ("xczu9eg-ffvb1156-2-e", 274_080, 548_160, 912, 0, 2_520),
    "zcu104": ("xczu7ev-ffvc1156-2-e", 230_400, 460_800, 312, 96, 1_728),
    "kv260": ("xck26-sfvc784-2LV-c", 117_120, 234_240, 144, 64, 1_248),
    "alveo-u250": ("xcu250-figd2104-2L-e", 1_728_000, 3_456_000, 2_688, 1_280, 12_288),
    "alveo-u280": ("xcu280-fsvh2892-2L-e", 1_304_000, 2_607_000, 2_016, 960, 9_024),
    "ulx3s-85f": ("LFE5U-85F-6BG381C", 83_640, 83_640, 104, 0, 156),
    "orangecrab-25f": ("LFE5U-25F-8MG285C", 24_288, 24_288, 28, 0, 28),
    "icebreaker": ("iCE40UP5K-SG48I", 5_280, 5_280, 3, 0, 8),
    "tangnano-9k": ("GW1NR-LV9QN88PC6/I5", 8_640, 6_480, 13, 0, 20),
    "tangprimer-20k": ("GW2A-LV18PG256C8/I7", 20_736, 15_552, 23, 0, 48),
}
EDGE_DEVICES = {
    "raspberry-pi-4": "tflite", "raspberry-pi-5": "tflite", "jetson-nano": "tensorrt",
    "jetson-orin-nano": "tensorrt", "coral-dev-board": "tflite", "x86-host": "openvino",
}


@pytest.mark.parametrize("name", sorted(FPGA_FIGURES))
def test_fpga_profiles_carry_published_figures(name: str) -> None:
    board = load_board(name)
    assert isinstance(board, FpgaBoard)
    part, lut, ff, bram, uram, dsp = FPGA_FIGURES[name]
    r = board.resources
    assert (board.part, r.lut, r.ff, r.bram36, r.uram, r.dsp) == (part, lut, ff, bram, uram, dsp)
    assert board.clock_mhz > 0 and board.source


@pytest.mark.parametrize(("name", "target"), sorted(EDGE_DEVICES.items()))
def test_edge_profiles_pick_their_export_target(name: str, target: str) -> None:
    board = load_board(name)
    assert isinstance(board, EdgeDevice)
    assert board.export_target == target and board.source


def test_jetson_nano_has_no_int8_and_coral_is_int8_only() -> None:
    nano, coral = load_board("jetson-nano"), load_board("coral-dev-board")
    assert all("int8" not in a.dtypes for a in nano.accelerators)
    assert [a.dtypes for a in coral.accelerators] == [("int8",)]


def test_registry_lists_every_bundled_profile_once() -> None:
    names = [b.name for b in list_boards()]
    assert sorted(names) == sorted([*FPGA_FIGURES, *EDGE_DEVICES])


def test_host_profile_is_detected_from_this_machine() -> None:
    host = load_board("x86-host")
    assert host.cpu_cores == os.cpu_count()


def test_custom_board_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "myboard.yaml"
    path.write_text(
        "name: my-zu\nkind: fpga\ndescription: custom\npart: xczu2cg-sfvc784-1-e\nfamily: zynq-ultrascale-plus\n"
        "resources: {lut: 47232, ff: 94464, bram36: 150, uram: 0, dsp: 240}\nclock_mhz: 150\nshell: zynq-ps8\n"
        "pynq: false\nsource: AMD DS891\n"
    )
    board = load_board(str(path))
    assert isinstance(board, FpgaBoard) and board.resources.dsp == 240 and board.clock_hz == 150e6


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\nkind: fpga\n", "missing field 'resources'"),
        ("name: x\nkind: gpu\n", "field 'kind' is 'gpu'"),
        ("[1, 2", "not valid YAML"),
        ("!!python/object/apply:os.system ['true']\n", "not valid YAML"),
        ("name: x\nkind: fpga\ndescription: d\npart: p\nfamily: f\nresources: {lut: -1, ff: 1, bram36: 1, uram: 0, "
         "dsp: 1}\nclock_mhz: 100\nshell: s\npynq: true\nsource: s\n", "field 'lut' must be a whole number"),
    ],
)
def test_bad_board_files_name_the_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(EdgeError) as info:
        load_board(str(path))
    assert message in str(info.value) and str(path) in str(info.value)


def test_unknown_board_suggests_close_names(run_cli) -> None:
    code, out, err = run_cli("boards", "show", "pynq-z3")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "unknown board 'pynq-z3'" in err and "pynq-z2" in err


def test_boards_cli_list_and_show_json(run_cli) -> None:
    code, out, _ = run_cli("boards", "list", "--json")
    assert code == 0
    rows = json.loads(out)
    assert {r["name"] for r in rows} == set(FPGA_FIGURES) | set(EDGE_DEVICES)
    code, out, _ = run_cli("boards", "show", "zcu104", "--json")
    assert code == 0 and json.loads(out)["resources"]["uram"] == 96
    code, out, _ = run_cli("boards", "list")
    assert code == 0 and "xc7z020clg400-1" in out and "Edge TPU" in out

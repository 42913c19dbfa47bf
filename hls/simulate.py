"""Compile and run the generated project with g++: bit-exact C-sim and the cycle-level simulation."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import EdgeError
from fpga.ir import DataflowGraph
from fpga.width import stream_bits
from hls.codegen import read_frames, write_frames
from hls.headers import ap_types_dir

CXXFLAGS = ["-O2", "-std=c++14", "-w"]
# the popcount instruction (every x86-64 CPU since 2008) instead of a libgcc call per XNOR word
if platform.machine() in ("x86_64", "AMD64"):
    CXXFLAGS.append("-mpopcnt")
DEPTHS_FILE = "fifo_depths.txt"
MIN_DEPTH = 2


def _cxx() -> str:
    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if not cxx:
        raise EdgeError("no C++ compiler found: install g++ (Debian: apt-get install g++) or set CXX")
    return cxx


def compile_binary(project: Path, sources: list[str], binary: str, extra_flags: tuple[str, ...] = ()) -> Path:
    """g++ the sources into project/binary; skipped when the sources and flags have not changed."""
    cmd = [_cxx(), *CXXFLAGS, *extra_flags, f"-I{project / 'include'}", f"-I{ap_types_dir()}", f"-I{project}",
           *[str(project / s) for s in sources], "-o", str(project / binary)]
    digest = hashlib.sha256(" ".join(cmd).encode())
    for name in sorted([*sources, "params.hpp", *(p.name for p in (project / "include" / "edge").glob("*.hpp"))]):
        path = project / name if (project / name).exists() else project / "include" / "edge" / name
        digest.update(path.read_bytes())
    stamp = project / f".{binary}.sha256"
    if (project / binary).exists() and stamp.exists() and stamp.read_text() == digest.hexdigest():
        return project / binary
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"g++ failed building {binary} in {project}:\n{tail}")
    stamp.write_text(digest.hexdigest())
    return project / binary


@dataclass
class CsimResult:
    passed: bool
    frames: int
    mismatches: int
    outputs: np.ndarray
    log: str


def compile_all(project: Path) -> None:
    """Build the C-sim and the cycle simulator side by side (two g++ processes)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        for f in [pool.submit(compile_binary, project, ["tb.cpp", "top.cpp"], "csim.bin"),
                  pool.submit(compile_binary, project, ["sim.cpp"], "sim.bin")]:
            f.result()


def run_csim(project: Path, x_int: np.ndarray, expected: np.ndarray) -> CsimResult:
    """Run tb.cpp + top.cpp (the Vitis C-sim testbench) on integer inputs; compare with expected integers."""
    binary = compile_binary(project, ["tb.cpp", "top.cpp"], "csim.bin")
    write_frames(project / "input.txt", x_int)
    write_frames(project / "expected.txt", expected)
    result = subprocess.run([str(binary), str(project)], capture_output=True, text=True)
    log = result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    last = lines[-1] if lines else ""
    if not last.startswith(("PASS", "FAIL")):
        raise RuntimeError(f"C-sim crashed (exit {result.returncode}): {log[-2000:]}")
    mismatches = int(last.split(",")[1].split()[0]) if "mismatches" in last else -1
    outputs = read_frames(project / "csim_output.txt") if (project / "csim_output.txt").exists() else np.zeros(0)
    return CsimResult(result.returncode == 0, len(x_int), mismatches, outputs, log)


@dataclass
class SimResult:
    """What the cycle-level simulation measured."""

    frames: int
    cycles: int
    deadlock: bool
    frame_done: list[int]
    kernels: dict[str, dict[str, Any]]
    fifos: dict[str, dict[str, int]]
    outputs: np.ndarray = field(default_factory=lambda: np.zeros(0))
    seconds: float = 0.0  # wall-clock time of the simulator process

    @property
    def cycles_per_second(self) -> float:
        return self.cycles / self.seconds if self.seconds > 0 else 0.0

    @property
    def first_frame_latency(self) -> int:
        return self.frame_done[0] + 1 if self.frame_done else self.cycles

    @property
    def steady_cycles_per_frame(self) -> float:
        """Cycles between consecutive frame completions over the second half of the frames, once every stage of
        the pipeline has filled (the first frames' intervals are longer while downstream stages start up)."""
        d = self.frame_done
        if len(d) < 2:
            return float(self.cycles)
        gaps = np.diff(d)
        return float(gaps[len(gaps) // 2 :].mean())

    def as_dict(self) -> dict[str, Any]:
        return {"frames": self.frames, "cycles": self.cycles, "deadlock": self.deadlock,
                "first_frame_latency_cycles": self.first_frame_latency,
                "steady_cycles_per_frame": self.steady_cycles_per_frame,
                "kernels": self.kernels, "fifos": self.fifos}


def run_cycle_sim(project: Path, x_int: np.ndarray | None, depths: dict[str, int] | None = None,
                  binary: Path | None = None) -> SimResult:
    """Cycle-level simulation; FIFO depths from `depths` (unbounded when None).

    With `binary` (already compiled) and x_int None, re-runs on the input.txt already in the project."""
    if binary is None:
        binary = compile_binary(project, ["sim.cpp"], "sim.bin")
    if x_int is not None:
        write_frames(project / "input.txt", x_int)
    args = [str(binary), str(project)]
    if depths is not None:
        (project / DEPTHS_FILE).write_text("".join(f"{k} {v}\n" for k, v in depths.items()), encoding="utf-8")
        args.append(str(project / DEPTHS_FILE))
    t0 = time.perf_counter()
    result = subprocess.run(args, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if result.returncode not in (0, 3):
        raise RuntimeError(f"cycle simulation crashed (exit {result.returncode}): {result.stderr[-2000:]}")
    stats = json.loads((project / "sim_stats.json").read_text())
    outputs = read_frames(project / "sim_output.txt") if (project / "sim_output.txt").stat().st_size else np.zeros(0)
    return SimResult(stats["frames"], stats["cycles"], stats["deadlock"], stats["frame_done"], stats["kernels"],
                     stats["fifos"], outputs, seconds)


@dataclass
class FifoSizing:
    depths: dict[str, int]
    unbounded: SimResult
    sized: SimResult
    peaks: dict[str, int] = field(default_factory=dict)  # occupancy with unbounded FIFOs
    runs: list[SimResult] = field(default_factory=list)  # every simulation the search made

    @property
    def throughput_kept(self) -> bool:
        return _keeps_throughput(self.sized, self.unbounded)


def _keeps_throughput(run: SimResult, free: SimResult) -> bool:
    """No deadlock, and every frame done no later than with unbounded FIFOs."""
    return (not run.deadlock and run.cycles <= free.cycles
            and run.steady_cycles_per_frame <= free.steady_cycles_per_frame)


REFINE_FIFOS = 16  # the largest FIFOs after the common cap are shrunk one by one


def size_fifos(project: Path, graph: DataflowGraph, x_int: np.ndarray) -> FifoSizing:
    """The smallest FIFO depths (found by search) that keep the unbounded design's cycles, proven by simulation.

    A FIFO's peak occupancy with unbounded FIFOs overstates what it needs: a fast producer simply runs ahead.
    So: (1) one common cap, the smallest power of two with no loss; (2) the largest FIFOs (bits x depth)
    each shrunk by bisection with the others fixed. Every accepted step is a simulation that keeps throughput."""
    binary = compile_binary(project, ["sim.cpp"], "sim.bin")
    free = run_cycle_sim(project, x_int, None, binary)
    if free.deadlock:
        raise RuntimeError(f"{project}: the dataflow graph deadlocks even with unbounded FIFOs")
    peaks = {name: max(MIN_DEPTH, int(f["peak"])) for name, f in free.fifos.items()}
    host = {graph.input: MIN_DEPTH, graph.output: MIN_DEPTH}  # host-side ports: the DMA's own buffering
    runs: list[SimResult] = [free]

    def keeps(depths: dict[str, int]) -> bool:
        run = run_cycle_sim(project, None, {**depths, **host}, binary)
        runs.append(run)
        return _keeps_throughput(run, free)

    top = max(peaks.values())
    caps = sorted({1 << e for e in range(1, top.bit_length()) if 1 << e < top} | {top})
    lo, hi = 0, len(caps) - 1  # caps[hi] = every FIFO at its peak: always enough in this deterministic model
    while lo < hi:
        mid = (lo + hi) // 2
        if keeps({n: min(p, caps[mid]) for n, p in peaks.items()}):
            hi = mid
        else:
            lo = mid + 1
    depths = {n: min(p, caps[lo]) for n, p in peaks.items()}
    widths = stream_bits(graph)
    big = sorted((n for n, d in depths.items() if d > MIN_DEPTH and n not in host),
                 key=lambda n: -depths[n] * widths.get(n, 1))
    for name in big[:REFINE_FIFOS]:
        lo_d, hi_d = MIN_DEPTH, depths[name]
        if keeps({**depths, name: MIN_DEPTH}):  # most FIFOs need no depth at all: one run settles them
            depths[name] = MIN_DEPTH
            continue
        lo_d += 1
        while lo_d < hi_d:
            mid = (lo_d + hi_d) // 2
            if keeps({**depths, name: mid}):
                hi_d = mid
            else:
                lo_d = mid + 1
        depths[name] = hi_d
    sized = run_cycle_sim(project, None, {**depths, **host}, binary)
    runs.append(sized)
    return FifoSizing({**depths, **host}, free, sized, peaks, runs)

"""Compile and run the generated project with g++: bit-exact C-sim and the cycle-level simulation."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import EdgeError
from fpga.ir import DataflowGraph
from hls.codegen import read_frames, write_frames
from hls.headers import ap_types_dir

CXXFLAGS = ["-O2", "-std=c++14", "-w"]
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


def run_cycle_sim(project: Path, x_int: np.ndarray, depths: dict[str, int] | None = None) -> SimResult:
    """Cycle-level simulation; FIFO depths from `depths` (unbounded when None)."""
    binary = compile_binary(project, ["sim.cpp"], "sim.bin")
    write_frames(project / "input.txt", x_int)
    args = [str(binary), str(project)]
    if depths is not None:
        (project / DEPTHS_FILE).write_text("".join(f"{k} {v}\n" for k, v in depths.items()), encoding="utf-8")
        args.append(str(project / DEPTHS_FILE))
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode not in (0, 3):
        raise RuntimeError(f"cycle simulation crashed (exit {result.returncode}): {result.stderr[-2000:]}")
    stats = json.loads((project / "sim_stats.json").read_text())
    outputs = read_frames(project / "sim_output.txt") if (project / "sim_output.txt").stat().st_size else np.zeros(0)
    return SimResult(stats["frames"], stats["cycles"], stats["deadlock"], stats["frame_done"], stats["kernels"],
                     stats["fifos"], outputs)


@dataclass
class FifoSizing:
    depths: dict[str, int]
    unbounded: SimResult
    sized: SimResult

    @property
    def throughput_kept(self) -> bool:
        return (not self.sized.deadlock and self.sized.cycles <= self.unbounded.cycles
                and self.sized.steady_cycles_per_frame <= self.unbounded.steady_cycles_per_frame)


def size_fifos(project: Path, graph: DataflowGraph, x_int: np.ndarray) -> FifoSizing:
    """Measure each FIFO's peak occupancy with unbounded FIFOs, set depths to it, and re-simulate to prove that
    the sized design neither deadlocks nor loses throughput."""
    free = run_cycle_sim(project, x_int, None)
    if free.deadlock:
        raise RuntimeError(f"{project}: the dataflow graph deadlocks even with unbounded FIFOs")
    depths = {name: max(MIN_DEPTH, int(f["peak"])) for name, f in free.fifos.items()}
    depths[graph.input] = MIN_DEPTH  # host-side ports: the DMA's own buffering
    depths[graph.output] = MIN_DEPTH
    sized = run_cycle_sim(project, x_int, depths)
    return FifoSizing(depths, free, sized)

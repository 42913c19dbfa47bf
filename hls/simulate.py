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

from fpga.ir import DataflowGraph
from fpga.width import stream_bits
from frontend.errors import EdgeError
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


PARAMS_FLAGS = ["-O0", "-std=c++14", "-w"]  # params.cpp is constant data: nothing to optimise, much to parse


def _build(project: Path, cmd: list[str], output: str, inputs: list[Path]) -> Path:
    """Run a g++ command producing project/output unless the command and every input are unchanged."""
    digest = hashlib.sha256(" ".join(cmd).encode())
    for path in sorted(inputs):
        digest.update(path.read_bytes())
    stamp = project / f".{output}.sha256"
    if (project / output).exists() and stamp.exists() and stamp.read_text() == digest.hexdigest():
        return project / output
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"g++ failed building {output} in {project}:\n{tail}")
    stamp.write_text(digest.hexdigest())
    return project / output


def _includes(project: Path) -> list[str]:
    return [f"-I{project / 'include'}", f"-I{ap_types_dir()}", f"-I{project}"]


def _headers(project: Path) -> list[Path]:
    return [project / "params.hpp", *(project / "include" / "edge").glob("*.hpp")]


def params_object(project: Path) -> Path:
    """params.cpp compiled once (it can be megabytes of weights) and linked into every binary."""
    cmd = [_cxx(), *PARAMS_FLAGS, *_includes(project), "-c", str(project / "params.cpp"), "-o",
           str(project / "params.o")]
    return _build(project, cmd, "params.o", [project / "params.cpp", *_headers(project)])


def compile_binary(project: Path, sources: list[str], binary: str, extra_flags: tuple[str, ...] = ()) -> Path:
    """g++ the sources (and params.o) into project/binary; skipped when nothing has changed."""
    params = params_object(project)
    cmd = [_cxx(), *CXXFLAGS, *extra_flags, *_includes(project), *[str(project / s) for s in sources], str(params),
           "-o", str(project / binary)]
    return _build(project, cmd, binary, [*(project / s for s in sources), params, *_headers(project)])


@dataclass
class CsimResult:
    passed: bool
    frames: int
    mismatches: int
    outputs: np.ndarray
    log: str


def compile_all(project: Path) -> None:
    """Build params.o, then the C-sim and the cycle simulator side by side (two g++ processes)."""
    params_object(project)
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
                  binary: Path | None = None, timing_only: bool = False) -> SimResult:
    """Cycle-level simulation; FIFO depths from `depths` (unbounded when None).

    With `binary` (already compiled) and x_int None, re-runs on the input.txt already in the project.
    `timing_only` skips the dot-product arithmetic (same cycles and occupancy; outputs meaningless)."""
    if binary is None:
        binary = compile_binary(project, ["sim.cpp"], "sim.bin")
    if x_int is not None:
        write_frames(project / "input.txt", x_int)
    args = [str(binary), str(project), "-"]
    if depths is not None:
        (project / DEPTHS_FILE).write_text("".join(f"{k} {v}\n" for k, v in depths.items()), encoding="utf-8")
        args[2] = str(project / DEPTHS_FILE)
    if timing_only:
        args.append("timing")
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


REFINE_FIFOS = 12  # FIFOs still deep after the common cap, shrunk one by one, the costliest first
REFINE_MIN_DEPTH = 32  # below this a FIFO is one SRL32 per bit: not worth simulations to shrink further


def size_fifos(project: Path, graph: DataflowGraph, x_int: np.ndarray) -> FifoSizing:
    """The smallest FIFO depths (found by search) that keep the unbounded design's cycles, proven by simulation.

    A FIFO's peak occupancy with unbounded FIFOs overstates what it needs: a fast producer simply runs ahead.
    (1) One common cap, the smallest power of two with no loss (bisection). Setting every FIFO to the peak it
    reached in that run replays the run exactly, so those depths need no further proof. (2) The costliest FIFOs
    still deeper than one SRL32 are shrunk one by one (first to the minimum, else by bisection). Trial runs are
    timing-only (no kernel's reads or writes depend on data); a final full run proves the result, outputs too."""
    binary = compile_binary(project, ["sim.cpp"], "sim.bin")
    free = run_cycle_sim(project, x_int, None, binary)
    if free.deadlock:
        raise RuntimeError(f"{project}: the dataflow graph deadlocks even with unbounded FIFOs")
    host = {graph.input: MIN_DEPTH, graph.output: MIN_DEPTH}  # host-side ports: the DMA's own buffering
    peaks = {name: max(MIN_DEPTH, int(f["peak"])) for name, f in free.fifos.items() if name not in host}
    runs: list[SimResult] = [free]

    def attempt(depths: dict[str, int]) -> dict[str, int] | None:
        """Simulate; if throughput is kept, the depths each FIFO actually reached (which replay this run)."""
        run = run_cycle_sim(project, None, {**depths, **host}, binary, timing_only=True)
        runs.append(run)
        if not _keeps_throughput(run, free):
            return None
        return {n: max(MIN_DEPTH, min(d, int(run.fifos[n]["peak"]))) for n, d in depths.items()}

    top = max(peaks.values(), default=MIN_DEPTH)
    caps = sorted({1 << e for e in range(1, top.bit_length()) if 1 << e < top} | {top})
    depths = dict(peaks)  # replays the unbounded run
    lo, hi = 0, len(caps) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        reached = attempt({n: min(p, caps[mid]) for n, p in peaks.items()})
        if reached is not None:
            hi, depths = mid, reached
        else:
            lo = mid + 1
    widths = stream_bits(graph)
    deep = sorted((n for n, d in depths.items() if d > REFINE_MIN_DEPTH), key=lambda n: -depths[n] * widths.get(n, 1))
    for name in deep[:REFINE_FIFOS]:
        if name not in depths or depths[name] <= REFINE_MIN_DEPTH:
            continue  # an earlier accepted run already shrank it
        reached = attempt({**depths, name: MIN_DEPTH})  # a producer that merely runs ahead needs no depth
        if reached is not None:
            depths = reached
            continue
        lo_d, hi_d = MIN_DEPTH + 1, depths[name]
        while lo_d < hi_d:
            mid = (lo_d + hi_d) // 2
            reached = attempt({**depths, name: mid})
            if reached is not None:
                hi_d, depths = mid, reached
            else:
                lo_d = mid + 1
    sized = run_cycle_sim(project, None, {**depths, **host}, binary)
    runs.append(sized)
    return FifoSizing({**depths, **host}, free, sized, peaks, runs)

"""Compile and run the generated project with g++: bit-exact C-sim and the cycle-level simulation."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fpga.ir import DataflowGraph
from fpga.resources import fifo_estimate
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


# Timing-only runs of this many frames (the verification frames repeated) until the frame interval settles. A
# stage that runs at the bottleneck's rate never catches up with a start-up delay, so on a deep design (MobileNet-v1:
# 90 kernels) the first frames' intervals run long for ten frames: a few frames measure that transient, not the
# steady state, and FIFOs sized on it lose throughput for good (+5.1% on MobileNet-v1 for alveo-u250).
SETTLE_FRAMES = (8, 16, 32, 64)
SETTLED_SPREAD = 1e-3  # the last quarter of the intervals agree to 0.1% (a cycle of word alignment)
GROWTH_STEPS = 2  # bisection steps on the share of the settled peaks the grown FIFOs keep
# the paced reference run's host sends frames this much faster than the unbounded steady state: the slowest stage
# stays the limit, and what runs ahead of it grows by only this share of a frame per frame
PACE_SLACK = 0.01
# an unbounded settled run of at most this many kernel-cycles (about 0.3 s of simulation): the whole search runs at
# the settled length; a deterministic measure, so a build's depths do not depend on the machine's speed
SETTLED_SEARCH_KERNEL_CYCLES = 10_000_000


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

    @property
    def tail_gaps(self) -> np.ndarray:
        """The last quarter of the intervals between frame completions (at least three)."""
        gaps = np.diff(self.frame_done)
        return gaps[len(gaps) - max(3, len(gaps) // 4):] if len(gaps) >= 3 else gaps[:0]

    @property
    def settled(self) -> bool:
        """The frame interval has stopped changing: the start-up transient has left the pipeline."""
        tail = self.tail_gaps
        return len(tail) > 0 and float(tail.max() - tail.min()) <= SETTLED_SPREAD * float(tail.mean())

    @property
    def settled_cycles_per_frame(self) -> float:
        """Cycles per frame once settled (the mean over the last quarter of the intervals)."""
        tail = self.tail_gaps
        return float(tail.mean()) if len(tail) else self.steady_cycles_per_frame

    def as_dict(self) -> dict[str, Any]:
        return {"frames": self.frames, "cycles": self.cycles, "deadlock": self.deadlock,
                "first_frame_latency_cycles": self.first_frame_latency,
                "steady_cycles_per_frame": self.steady_cycles_per_frame,
                "kernels": self.kernels, "fifos": self.fifos}


def run_cycle_sim(project: Path, x_int: np.ndarray | None, depths: dict[str, int] | None = None,
                  binary: Path | None = None, timing_only: bool = False, pace: float | None = None) -> SimResult:
    """Cycle-level simulation; FIFO depths from `depths` (unbounded when None).

    With `binary` (already compiled) and x_int None, re-runs on the input.txt already in the project.
    `timing_only` skips the dot-product arithmetic (same cycles and occupancy; outputs meaningless). `pace`: the
    host sends one frame per that many cycles, its words spread evenly (by default as fast as the input takes them)."""
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
    if pace is not None:
        args.append(f"pace={pace:.6f}")
    t0 = time.perf_counter()
    result = subprocess.run(args, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if result.returncode not in (0, 3):
        raise RuntimeError(f"cycle simulation crashed (exit {result.returncode}): {result.stderr[-2000:]}")
    stats = json.loads((project / "sim_stats.json").read_text())
    outputs = read_frames(project / "sim_output.txt") if (project / "sim_output.txt").stat().st_size else np.zeros(0)
    return SimResult(stats["frames"], stats["cycles"], stats["deadlock"], stats["frame_done"], stats["kernels"],
                     stats["fifos"], outputs, seconds)




def repeat_frames(x_int: np.ndarray, frames: int) -> np.ndarray:
    """The frames repeated (or cut) to `frames` rows: timing-only runs do not depend on the data."""
    return x_int[np.arange(frames) % len(x_int)]


def settled_run(project: Path, x_int: np.ndarray, depths: dict[str, int] | None,
                binary: Path | None = None) -> SimResult:
    """Timing-only simulation of ever more frames until the interval between frames has settled (or the largest
    count in SETTLE_FRAMES); its `settled_cycles_per_frame` is the design's steady state."""
    if binary is None:
        binary = compile_binary(project, ["sim.cpp"], "sim.bin")
    run = None
    for frames in SETTLE_FRAMES:
        run = run_cycle_sim(project, repeat_frames(x_int, max(frames, len(x_int))), depths, binary,
                            timing_only=True)
        if run.deadlock or run.settled:
            break
    assert run is not None
    return run


def _keeps_steady(run: SimResult, free: SimResult) -> bool:
    """No deadlock and the settled interval no longer than with unbounded FIFOs."""
    return (not run.deadlock and
            run.settled_cycles_per_frame <= free.settled_cycles_per_frame * (1 + SETTLED_SPREAD))


@dataclass
class FifoSizing:
    depths: dict[str, int]
    unbounded: SimResult
    sized: SimResult
    peaks: dict[str, int] = field(default_factory=dict)  # occupancy with unbounded FIFOs
    runs: list[SimResult] = field(default_factory=list)  # every simulation the search made
    settled: SimResult | None = None  # the sized design over enough frames to reach its steady state
    settled_unbounded: SimResult | None = None
    grown: dict[str, int] = field(default_factory=dict)  # FIFOs the settled check deepened: name -> depth found
    search_frames: int = 0  # frames per trial run of the search (the settled length, or the verification frames)
    limited_by_cap: bool = False  # FIFOs deep enough for the settled steady state would not fit the cap

    @property
    def throughput_kept(self) -> bool:
        """No deadlock on the verification frames, and the settled steady state of the unbounded design."""
        if self.settled is None or self.settled_unbounded is None:
            return _keeps_throughput(self.sized, self.unbounded)
        return not self.sized.deadlock and _keeps_steady(self.settled, self.settled_unbounded)


def _keeps_throughput(run: SimResult, free: SimResult) -> bool:
    """No deadlock, and every frame done no later than with unbounded FIFOs."""
    return (not run.deadlock and run.cycles <= free.cycles
            and run.steady_cycles_per_frame <= free.steady_cycles_per_frame)


REFINE_FIFOS = 12  # FIFOs still deep after the common cap, shrunk one by one, the costliest first
REFINE_MIN_DEPTH = 32  # below this a FIFO is one SRL32 per bit: not worth simulations to shrink further


def size_fifos(project: Path, graph: DataflowGraph, x_int: np.ndarray,
               fits: Callable[[dict[str, int]], bool] | None = None) -> FifoSizing:
    """The smallest FIFO depths (found by search) that keep the unbounded design's steady state, proven by simulation.

    A FIFO's peak occupancy with unbounded FIFOs overstates what it needs: a fast producer simply runs ahead.
    (1) One common cap, the smallest power of two with no loss (bisection). Setting every FIFO to the peak it
    reached in that run replays the run exactly, so those depths need no further proof. (2) The costliest FIFOs
    still deeper than one SRL32 are shrunk one by one (first to the minimum, else by bisection). Trial runs are
    timing-only (no kernel's reads or writes depend on data) and as long as the unbounded design needs to settle
    (SETTLE_FRAMES); where such a run is slow (a deep ImageNet design), the search runs on the verification frames
    and the result is checked, and if need be deepened, over the settled length. A final full run proves the
    result on the verification frames, outputs too. `fits(depths)`: whether depths keep the design within its
    utilisation cap; FIFOs are grown for the steady state only as far as they fit."""
    binary = compile_binary(project, ["sim.cpp"], "sim.bin")
    free_settled = settled_run(project, x_int, None, binary)
    if free_settled.deadlock:
        raise RuntimeError(f"{project}: the dataflow graph deadlocks even with unbounded FIFOs")
    free_short = run_cycle_sim(project, x_int, None, binary, timing_only=True)
    runs: list[SimResult] = [free_settled, free_short]
    settled_search = free_settled.cycles * len(free_settled.kernels) <= SETTLED_SEARCH_KERNEL_CYCLES
    free = free_settled if settled_search else free_short
    write_frames(project / "input.txt", repeat_frames(x_int, free.frames))
    host = {graph.input: MIN_DEPTH, graph.output: MIN_DEPTH}  # host-side ports: the DMA's own buffering
    peaks = {name: max(MIN_DEPTH, int(f["peak"])) for name, f in free.fifos.items() if name not in host}

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
    depths, grown, settled, limited = _settle_depths(project, x_int, binary, depths, host, free_settled, runs, fits,
                                                     widths)
    sized = run_cycle_sim(project, x_int, {**depths, **host}, binary)
    runs.append(sized)
    # occupancy with unbounded FIFOs over the settled run (its first frames replay the short run: no data dependence)
    peaks = {name: max(MIN_DEPTH, int(f["peak"])) for name, f in free_settled.fifos.items() if name not in host}
    return FifoSizing({**depths, **host}, free_short, sized, peaks, runs, settled, free_settled, grown, free.frames,
                      limited)


def _fifo_cost(width: int, depth: int) -> float:
    """One FIFO's cost for choosing which to give back first: block RAM first, then LUTs."""
    res, _ = fifo_estimate(width, depth)
    return res.bram36 * 1000 + res.lut


def _cheaper_depth(width: int, depth: int, floor: int) -> int | None:
    """The largest depth from `floor` up that costs less than `depth` (a power of two less in block RAM, one SRL32
    less in LUTs), or None."""
    here = _fifo_cost(width, depth)
    if floor >= depth or _fifo_cost(width, floor) >= here:
        return None
    lo, hi = floor, depth - 1  # cost never falls with depth: the last depth below `here`
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _fifo_cost(width, mid) < here:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _settle_depths(project: Path, x_int: np.ndarray, binary: Path, depths: dict[str, int], host: dict[str, int],
                   free: SimResult, runs: list[SimResult], fits: Callable[[dict[str, int]], bool] | None,
                   widths: dict[str, int] | None = None) -> tuple[dict[str, int], dict[str, int], SimResult, bool]:
    """The depths checked over the settled length of the unbounded run `free`. Where they lose steady-state
    throughput, the FIFOs below their settled peaks grow towards those peaks (all of them reaching their peaks
    replays the reference run exactly), by bisection on the share of the gap they close, as far as `fits` allows;
    the last result says whether the cap stopped them.

    The reference is the unbounded run with its host paced just faster than the steady state, when that run keeps
    the steady state: without pacing, the FIFOs before the slowest stage hold whatever the host has run ahead
    (hundreds of thousands of words on MobileNet-v1), which no depth needs for throughput. When the reference's
    peaks keep the steady state but do not fit, the costliest grown FIFOs give back memory one step at a time (a
    power of two in block RAM) while the steady state holds, until they fit."""
    fit = fits or (lambda _: True)
    frames = free.frames

    def trial(d: dict[str, int]) -> SimResult:
        run = run_cycle_sim(project, repeat_frames(x_int, frames), {**d, **host}, binary, timing_only=True)
        runs.append(run)
        return run

    run = trial(depths)
    if _keeps_steady(run, free):
        return depths, {}, run, False
    reference = free
    paced = run_cycle_sim(project, repeat_frames(x_int, frames), None, binary, timing_only=True,
                          pace=free.settled_cycles_per_frame * (1 - PACE_SLACK))
    runs.append(paced)
    if _keeps_steady(paced, free):
        reference = paced
    peaks = {n: int(reference.fifos[n]["peak"]) for n in depths if n in reference.fifos}
    short = {n: peaks[n] for n, d in depths.items() if peaks.get(n, 0) > d}

    def grown(share: float) -> dict[str, int]:
        return {**depths, **{n: depths[n] + int(np.ceil(share * (p - depths[n]))) for n, p in short.items()}}

    best, best_run, limited = None, run, False
    if fit({**grown(1.0), **host}):
        best, best_run = grown(1.0), trial(grown(1.0))
    else:
        limited = True
        cand, cand_run = grown(1.0), trial(grown(1.0))
        if _keeps_steady(cand_run, free):
            width = widths or {}
            order = sorted(short, key=lambda n: _fifo_cost(width.get(n, 1), depths[n])
                           - _fifo_cost(width.get(n, 1), cand[n]))  # the largest saving first
            for name in order:
                while not fit({**cand, **host}):
                    d = _cheaper_depth(width.get(name, 1), cand[name], depths[name])
                    if d is None:
                        break
                    r = trial({**cand, name: d})
                    if not _keeps_steady(r, free):
                        break
                    cand, cand_run = {**cand, name: d}, r
            if fit({**cand, **host}):
                return cand, {n: cand[n] for n in short}, cand_run, False
    lo, hi = 0.0, 1.0
    for _ in range(GROWTH_STEPS + (0 if best is not None else 2)):
        mid = (lo + hi) / 2
        cand = grown(mid)
        if not fit({**cand, **host}):
            hi = mid
            continue
        r = trial(cand)
        if _keeps_steady(r, free):
            hi, best, best_run = mid, cand, r
        else:
            lo = mid
    if best is None:  # nothing that fits keeps the settled steady state: the verification frames' depths stay
        return depths, {}, run, limited
    return best, {n: best[n] for n in short}, best_run, limited

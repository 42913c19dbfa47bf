"""Interrupt safety: real `edge train/quantize/build/export` processes killed with SIGTERM part-way through leave an
earlier output directory exactly as it was and, where there was none, no output (nor a temporary one) at all."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edge.data import Dataset

EDGE = str(Path(sys.executable).parent / "edge")
MODELS = Path(__file__).parent / "ptq_models.py"


def _args(command: str, tmp: Path, out: Path) -> list[str]:
    if command == "train":
        return ["train", "--model", "tfc", "--epochs", "4", "--no-float-baseline", "-o", str(out)]
    if command == "quantize":
        return ["quantize", f"{MODELS}:cnn", "--calib", str(tmp / "calib.npy"), "-o", str(out)]
    if command == "build":
        return ["build", "--board", "pynq-z2", "--sim-frames", "2", "-o", str(out)]
    return ["export", "--target", "onnx", "-o", str(out)]


def _digest(directory: Path) -> dict[str, str]:
    return {p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def _staging(tmp: Path, target: Path) -> list[Path]:
    """The temporary directory an output is written into beside its target (`.NAME.*.tmp`)."""
    return [p for p in tmp.iterdir() if p.name.startswith(f".{target.name}.")]


def _kill_while_writing(cmd: list[str], tmp: Path, target: Path, share: float, full_seconds: float) -> int | None:
    """Start `edge CMD`, wait until it is writing its output (the staging directory exists), then SIGTERM it
    `share` of the way through the rest of a full run. Returns the exit code, or None if it finished first (also
    when the signal found the interpreter already shutting down)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([EDGE, *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while not _staging(tmp, target) and proc.poll() is None:
        time.sleep(0.02)
    started = time.perf_counter() - t0
    try:
        proc.wait(timeout=max(0.05, share * (full_seconds - started)))
        return None
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    if proc.returncode in (0, -signal.SIGTERM):
        return None  # the signal came as the command was returning or the interpreter shutting down: work done
    assert "Traceback" not in err and "interrupted (SIGTERM)" in err, (proc.returncode, started, err[-400:])
    return proc.returncode


@pytest.mark.parametrize("command", ["train", "quantize", "build", "export"])
def test_sigterm_leaves_outputs_whole_or_absent(command: str, digits: Dataset, tmp_path: Path) -> None:
    np.save(tmp_path / "calib.npy", digits.x_train[:64])
    out = tmp_path / "out"
    t0 = time.perf_counter()
    full = subprocess.run([EDGE, *_args(command, tmp_path, out)], capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - t0
    assert full.returncode == 0, full.stderr
    before = _digest(out)
    assert before
    # killed at two points while writing: once over the earlier output, once where there was none
    for share, target in ((0.3, out), (0.8, tmp_path / "fresh")):
        code = _kill_while_writing(_args(command, tmp_path, target), tmp_path, target, share, seconds)
        assert code in (None, 128 + signal.SIGTERM), (command, share, code)
        assert not _staging(tmp_path, out) and not _staging(tmp_path, tmp_path / "fresh"), (command, share)
        if target == out:
            # interrupted: the earlier output byte for byte; finished before the signal: a whole new output
            after = _digest(out)
            assert (after == before) if code else (after.keys() == before.keys()), (command, share, code)
        else:
            # interrupted: nothing; finished before the signal: the whole output
            assert (not target.exists()) if code else bool(_digest(target)), (command, share)


def _kill_after(cmd: list[str], seconds: float) -> int | None:
    """Start `edge CMD`, SIGTERM it after `seconds`; the exit code, or None if it finished first."""
    proc = subprocess.Popen([EDGE, *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        proc.wait(timeout=seconds)
        return None
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    if proc.returncode in (0, -signal.SIGTERM):
        return None
    assert "Traceback" not in err and "interrupted (SIGTERM)" in err, (proc.returncode, err[-400:])
    return proc.returncode


def _leftovers(directory: Path) -> list[Path]:
    """Temporary files or staging directories an interrupted command must not leave behind."""
    return [p for p in directory.rglob(".*") if p.name.endswith((".tmp", ".part.npy", ".input.npy"))]


COMPRESS_RESULTS = {"model.onnx", "pareto.json", "pareto.svg", "compress.json", "train_log.jsonl"}


def test_sigterm_mid_compress_leaves_no_results_and_resumes(tmp_path: Path) -> None:
    """`edge compress` keeps its search state between runs (resume), and writes its results together at the end:
    killed at several points it leaves no result files (nor temporary ones) and a half-written state that the next
    run resumes from; killed while rewriting results over earlier ones, it leaves those byte for byte or a whole
    new set."""
    def args(out: Path) -> list[str]:
        return ["compress", "--model", "tfc", "--epochs", "2", "--ft-epochs", "1", "--screen", "6", "--shortlist",
                "2", "--workers", "1", "-o", str(out)]

    t0 = time.perf_counter()
    done = subprocess.run([EDGE, *args(tmp_path / "full")], capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - t0
    assert done.returncode == 0, done.stderr
    assert {p.name for p in (tmp_path / "full").iterdir()} == COMPRESS_RESULTS | {"search"}
    interrupted = 0
    for share in (0.2, 0.45, 0.7):
        out = tmp_path / f"cut_{share}"
        _kill_after(args(out), share * seconds)
        assert not _leftovers(out), (share, _leftovers(out))
        results = {p.name for p in out.iterdir()} - {"search"} if out.exists() else set()
        assert results in (set(), COMPRESS_RESULTS), (share, results)  # all of them or none
        if results:
            continue  # the signal came after the results were written (or as the process was exiting)
        interrupted += 1
        again = subprocess.run([EDGE, *args(out)], capture_output=True, text=True, timeout=900)
        assert again.returncode == 0, (share, again.stderr[-400:])
        assert {p.name for p in out.iterdir()} == COMPRESS_RESULTS | {"search"}
        json.loads((out / "compress.json").read_text())
    assert interrupted >= 2  # the kill points fell inside the run, not after it
    # over earlier results: a rerun reuses the search and only rewrites them
    before = _digest(tmp_path / "full")
    for share in (0.3, 0.7):
        code = _kill_after(args(tmp_path / "full"), share * 20)
        after = _digest(tmp_path / "full")
        assert not _leftovers(tmp_path / "full")
        assert (after == before) if code else (after.keys() == before.keys()), (share, code)


def test_sigterm_mid_run_leaves_the_earlier_output(digits: Dataset, tmp_path: Path) -> None:
    """`edge run --sim` killed part-way leaves an earlier output file byte for byte, or none, and no staged input or
    partial output beside it."""
    build = tmp_path / "b"
    done = subprocess.run([EDGE, "build", "--board", "pynq-z2", "--sim-frames", "2", "-o", str(build)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    x = tmp_path / "x.npy"
    np.save(x, digits.x_test[:64].reshape(64, -1))

    def args(out: Path) -> list[str]:
        return ["run", str(build / "deploy"), "--sim", "--input", str(x), "--output", str(out)]

    done = subprocess.run([EDGE, *args(tmp_path / "y.npy")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    before = (tmp_path / "y.npy").read_bytes()
    t0 = time.perf_counter()  # timed once the simulator binary is compiled (cached for the runs below)
    done = subprocess.run([EDGE, *args(tmp_path / "y.npy")], capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - t0
    assert done.returncode == 0, done.stderr
    interrupted = 0
    for share in (0.2, 0.45, 0.7):
        _kill_after(args(tmp_path / "y.npy"), share * seconds)
        assert (tmp_path / "y.npy").read_bytes() == before, share  # the same inputs: the same bytes either way
        fresh = tmp_path / f"y_{share}.npy"
        _kill_after(args(fresh), share * seconds)
        assert not fresh.exists() or fresh.read_bytes() == before, share  # whole or absent
        assert not _leftovers(tmp_path), (share, _leftovers(tmp_path))
        interrupted += not fresh.exists()
    assert interrupted >= 2  # the kill points fell inside the runs

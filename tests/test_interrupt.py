"""Interrupt safety: real `edge train/quantize/build/export` processes killed with SIGTERM part-way through leave an
earlier output directory exactly as it was and, where there was none, no output (nor a temporary one) at all."""

from __future__ import annotations

import hashlib
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

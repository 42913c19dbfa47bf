#!/usr/bin/env python3
"""Host driver of an edge accelerator on an open-FPGA board (UART shell): float input -> quantised integers ->
stream words as little-endian bytes over the serial port -> output words back -> the model's float output (or
class indices). Needs numpy and pyserial only; everything model-specific is in settings.json and host_steps.npz
beside this file. At most two frames are in flight (the shell's input FIFO holds two frames; a UART has no flow
control).

    python3 driver.py --port /dev/ttyUSB0 --input x.npy --output y.npy
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from host_steps import pack, postprocess, preprocess, unpack  # noqa: E402

IN_FLIGHT = 2


def word_bytes(bits: int, elems: int) -> int:
    return (bits * elems + 7) // 8


def to_bytes(q: np.ndarray, io: dict) -> bytes:
    """(frames, elems) integers -> the bytes the shell reads: each word little-endian, word_bytes long."""
    limbs = max(1, -(-io["bits"] * io["elems_per_word"] // 64))
    words = pack(q, io, 64 * limbs)
    n = word_bytes(io["bits"], io["elems_per_word"])
    raw = words.astype("<u8").tobytes()
    per = 8 * limbs
    return b"".join(raw[i:i + n] for i in range(0, len(raw), per))


def from_bytes(data: bytes, io: dict, frames: int) -> np.ndarray:
    limbs = max(1, -(-io["bits"] * io["elems_per_word"] // 64))
    n = word_bytes(io["bits"], io["elems_per_word"])
    padded = b"".join(data[i:i + n] + bytes(8 * limbs - n) for i in range(0, len(data), n))
    words = np.frombuffer(padded, "<u8").reshape(-1, limbs).astype(np.uint64)
    return unpack(words, io, frames)


class Board:
    """The accelerator behind the board's UART."""

    def __init__(self, port, settings: dict) -> None:
        self.port, self.s = port, settings
        self.in_frame = settings["input"]["words_per_frame"] * word_bytes(settings["input"]["bits"],
                                                                            settings["input"]["elems_per_word"])
        self.out_frame = settings["output"]["words_per_frame"] * word_bytes(settings["output"]["bits"],
                                                                              settings["output"]["elems_per_word"])

    def execute(self, q: np.ndarray, timeout: float = 60.0) -> np.ndarray:
        """(frames, elems) integers -> (frames, out_elems) integers, at most IN_FLIGHT frames ahead."""
        data = to_bytes(q, self.s["input"])
        frames = len(q)
        received = bytearray()
        sent = 0
        deadline = time.monotonic() + timeout
        while len(received) < frames * self.out_frame:
            while sent < frames and sent < len(received) // self.out_frame + IN_FLIGHT:
                self.port.write(data[sent * self.in_frame:(sent + 1) * self.in_frame])
                sent += 1
            self.port.flush()
            chunk = self.port.read(max(1, min(self.port.in_waiting, frames * self.out_frame - len(received))))
            if chunk:
                received += chunk
                deadline = time.monotonic() + timeout
            elif time.monotonic() > deadline:
                raise TimeoutError(f"{len(received)} of {frames * self.out_frame} output bytes after {timeout:g} s "
                                   "without data: is the bitstream loaded and the port right?")
        return from_bytes(bytes(received), self.s["output"], frames)


def load_settings(directory: Path = HERE) -> tuple[dict, dict]:
    settings = json.loads((directory / "settings.json").read_text())
    with np.load(directory / "host_steps.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return settings, arrays


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run an edge accelerator on an open-FPGA board over its UART.")
    parser.add_argument("--port", required=True, help="the board's serial port, e.g. /dev/ttyUSB0")
    parser.add_argument("--input", required=True, help=".npy of float inputs in the model's input shape")
    parser.add_argument("--output", required=True, help=".npy to write the model's outputs to")
    args = parser.parse_args(argv)
    import serial  # pyserial

    settings, arrays = load_settings()
    x = np.load(args.input, allow_pickle=False)
    q = preprocess(x, settings["pre"], arrays)
    with serial.Serial(args.port, settings["uart"]["baud"], timeout=0.05) as port:
        port.reset_input_buffer()
        t0 = time.perf_counter()
        y = postprocess(Board(port, settings).execute(q), settings["post"], arrays)
        seconds = time.perf_counter() - t0
    np.save(args.output, y)
    print(json.dumps({"frames": len(x), "seconds": round(seconds, 3), "output": args.output}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""PYNQ driver of an edge accelerator: float input -> quantised, packed AXI words -> DMA -> accelerator -> DMA ->
unpacked integers -> the model's float output (or class indices).

Runs on PYNQ 3.0/3.1 board images (Python 3.10) with numpy and pynq only. Everything model-specific (clock,
addresses, word packing, host-side pre/post steps) is read from settings.json and host_steps.npz written by
`edge build` beside this file.

    python3 driver.py --bitfile ../bitfile/edge.bit --input x.npy --output y.npy
    python3 driver.py --bitfile ../bitfile/edge.bit --throughput [--batch 1000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
AP_START, AP_DONE, AP_IDLE = 0x1, 0x2, 0x4


# host-side steps and word packing: host_steps.py beside this file (fpga/host_steps.py in the source tree)
sys.path.insert(0, str(HERE))
try:
    from host_steps import pack, postprocess, preprocess, unpack
except ImportError:  # imported from the source tree
    from fpga.host_steps import pack, postprocess, preprocess, unpack


# ---- the accelerator ----

class Accelerator:
    """The accelerator behind an AXI DMA: control registers (s_axilite) and the DMA's two channels."""

    def __init__(self, control, dma, settings: dict, allocate) -> None:
        self.control, self.dma, self.s, self.allocate = control, dma, settings, allocate
        self.regs = settings["accelerator"]["registers"]
        self.beat_bytes = settings["axi_bits"] // 8
        self.limbs = settings["axi_bits"] // 64
        # one DMA transfer moves at most 2**length_width - 1 bytes: split larger batches
        limit = (1 << settings["dma"]["length_width"]) - 1
        per_frame = max(settings["input"]["words_per_frame"], settings["output"]["words_per_frame"]) * self.beat_bytes
        self.max_batch = max(1, limit // per_frame)

    def run_words(self, words: np.ndarray, frames: int) -> np.ndarray:
        """One batch of packed input words through the accelerator; returns its output words."""
        out_words = frames * self.s["output"]["words_per_frame"]
        ibuf = self.allocate(shape=words.shape, dtype=np.uint64)
        obuf = self.allocate(shape=(out_words, self.limbs), dtype=np.uint64)
        ibuf[:] = words
        self.control.write(self.regs["frames"], frames)
        self.control.write(self.regs["ctrl"], AP_START)
        self.dma.recvchannel.transfer(obuf)
        self.dma.sendchannel.transfer(ibuf)
        self.dma.sendchannel.wait()
        self.dma.recvchannel.wait()
        got = self.dma.recvchannel.transferred
        if got != obuf.nbytes:  # TLAST came early or late
            raise RuntimeError(f"the DMA received {got} bytes, expected {obuf.nbytes}")
        result = np.array(obuf)
        del ibuf, obuf
        return result

    def execute(self, q: np.ndarray) -> np.ndarray:
        """(frames, elems) integers -> (frames, out_elems) integers, in batches the DMA can move."""
        outs = []
        for start in range(0, len(q), self.max_batch):
            part = q[start:start + self.max_batch]
            words = pack(part, self.s["input"], self.s["axi_bits"])
            outs.append(unpack(self.run_words(words, len(part)), self.s["output"], len(part)))
        return np.concatenate(outs)


def load_settings(directory: Path = HERE) -> tuple[dict, dict]:
    settings = json.loads((directory / "settings.json").read_text())
    with np.load(directory / "host_steps.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return settings, arrays


def open_board(bitfile: str, settings: dict) -> Accelerator:
    """Program the PL with the bitfile and bind the accelerator and DMA by their block-design names."""
    from pynq import Overlay, allocate

    if settings["dma"] is None:
        raise SystemExit(f"{settings['board']} is an Alveo card: load the xclbin with pynq.Overlay and call the "
                         "edge_top_1 kernel (in_mem, out_mem, frames) with pack()/unpack() from this file")
    overlay = Overlay(bitfile)
    clock = settings["clock_mhz"]
    try:  # the clock comes from the build; make sure the PS drives it so
        from pynq import Clocks

        if abs(Clocks.fclk0_mhz - clock) > 0.5:
            Clocks.fclk0_mhz = clock
    except Exception as exc:  # noqa: BLE001 - a board without fclk control keeps the bitstream's clock
        print(f"note: could not set fclk0 to {clock} MHz ({exc})", file=sys.stderr)
    control = getattr(overlay, settings["accelerator"]["name"])
    dma = getattr(overlay, settings["dma"]["name"])
    return Accelerator(control, dma, settings, allocate)


def main(argv: list[str] | None = None, open_device=open_board) -> int:
    parser = argparse.ArgumentParser(description="Run an edge accelerator on a PYNQ board.")
    parser.add_argument("--bitfile", default=str(HERE.parent / "bitfile" / "edge.bit"),
                        help="the .bit (its .hwh beside it)")
    parser.add_argument("--input", help=".npy of float inputs in the model's input shape (batch first)")
    parser.add_argument("--output", help=".npy to write the model's outputs to")
    parser.add_argument("--throughput", action="store_true", help="time a batch of random inputs: images/s, MB/s")
    parser.add_argument("--batch", type=int, default=1000, help="frames for --throughput (default 1000)")
    args = parser.parse_args(argv)
    settings, arrays = load_settings()
    if not args.throughput and not (args.input and args.output):
        parser.error("give --input and --output, or --throughput")
    acc = open_device(args.bitfile, settings)
    if args.input:
        x = np.load(args.input, allow_pickle=False)
        q = preprocess(x, settings["pre"], arrays)
        y = postprocess(acc.execute(q), settings["post"], arrays)
        np.save(args.output, y)
        print(f"{len(x)} frames -> {args.output} {tuple(y.shape)}")
    if args.throughput:
        rng = np.random.default_rng(0)
        io = settings["input"]
        q = rng.integers(0, 2, size=(args.batch, io["elems"])) if io["kind"] == "bipolar" else \
            rng.integers(0, 1 << io["bits"], size=(args.batch, io["elems"]))
        q = q[:acc.max_batch]  # one DMA transfer
        words = pack(q, io, settings["axi_bits"])
        t0 = time.perf_counter()
        acc.run_words(words, len(q))
        seconds = time.perf_counter() - t0
        moved = words.nbytes + len(q) * settings["output"]["words_per_frame"] * settings["axi_bits"] // 8
        print(json.dumps({"frames": len(q), "seconds": seconds, "images_per_s": len(q) / seconds,
                          "mb_per_s": moved / seconds / 1e6, "clock_mhz": settings["clock_mhz"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

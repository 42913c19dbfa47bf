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


# ---- host-side steps (the same float32 arithmetic as the QONNX golden model) ----

def _round(x: np.ndarray, mode: str) -> np.ndarray:
    mode = mode.upper()
    if mode in ("ROUND", "HALF_EVEN"):  # numpy's round is half-to-even, as qonnx's
        return np.round(x)
    if mode == "CEIL":
        return np.ceil(x)
    if mode == "FLOOR":
        return np.floor(x)
    if mode == "UP":
        return np.sign(x) * np.ceil(np.abs(x))
    if mode == "DOWN":
        return np.fix(x)
    if mode == "HALF_UP":
        return np.sign(x) * np.floor(np.abs(x) + 0.5)
    if mode == "HALF_DOWN":
        return np.sign(x) * np.ceil(np.abs(x) - 0.5)
    raise ValueError(f"unknown rounding mode {mode}")


def preprocess(x: np.ndarray, pre: dict, arrays: dict) -> np.ndarray:
    """Float batch in the model's input shape -> integers in the accelerator's element order, one row per frame."""
    x = np.asarray(x, np.float32)
    n = len(x)
    if pre["raw_shape"]:
        x = x.reshape(n, *pre["raw_shape"])
    for op in pre["host_ops"]:
        if op["op"] == "Reshape":
            x = x.reshape(n, *op["shape"])
            continue
        c = arrays[op["const"]].astype(np.float32)
        a, b = (c, x) if op["const_first"] else (x, c)
        x = {"Mul": np.multiply, "Add": np.add, "Sub": np.subtract, "Div": np.divide}[op["op"]](a, b)
        x = x.astype(np.float32)
    x = x.reshape(n, *pre["onnx_shape"])
    if pre["bipolar"]:
        q = np.where(x >= 0, 1, -1).astype(np.int64)
    else:
        bits, signed, narrow = pre["bits"], pre["signed"], pre["narrow"]
        lo = -(2 ** (bits - 1)) + (1 if narrow else 0) if signed else 0
        hi = 2 ** (bits - 1) - 1 if signed else 2**bits - 1 - (1 if narrow else 0)
        y = x / np.float32(pre["scale"])
        y = np.where(y > hi, np.float32(hi), y)
        y = np.where(y < lo, np.float32(lo), y)
        q = _round(y, pre["rounding_mode"]).astype(np.int64)
    if q.ndim == 4 or pre["map_1d"]:  # NCHW -> NHWC, (C, L) -> (1, L, C): the accelerator's stream order
        q = np.moveaxis(q, 1, -1)
    return q.reshape(n, -1)


def postprocess(acc: np.ndarray, post: dict, arrays: dict) -> np.ndarray:
    """Integers from the accelerator -> the model's float output (or the top-k class indices)."""
    if post["top_k"]:
        return acc
    n, shape = len(acc), post["onnx_shape"]
    y = acc.reshape(n, *post["ir_shape"]).astype(np.float64) * arrays["post_scale"] + arrays["post_bias"]
    if post["layout"] == "nhwc":  # NHWC (or (1, L, C) for a 1-D map) back to channels first
        y = np.moveaxis(y[:, 0], -1, 1) if len(shape) == 2 else np.moveaxis(y, -1, 1)
    else:
        y = y.reshape(n, -1)
        if "post_perm" in arrays:
            out = np.empty_like(y)
            out[:, arrays["post_perm"]] = y
            y = out
        y = y.reshape(n, *shape)
    return y.astype(np.float32)


# ---- packing: exactly the words the HLS adapters read and write ----

def pack(q: np.ndarray, io: dict, axi_bits: int) -> np.ndarray:
    """(frames, elems) integers -> (frames * words, axi_bits/64) uint64 AXI words; element i of a word in bits
    [i*b, (i+1)*b), bipolar -1/+1 as 0/1, the word in the low bits of the AXI word."""
    b, per = io["bits"], io["elems_per_word"]
    if io["kind"] == "bipolar":
        raw = (q > 0).astype(np.uint64)
    else:
        raw = (q.astype(np.int64) & ((1 << b) - 1)).astype(np.uint64)
    raw = raw.reshape(-1, per)
    limbs = axi_bits // 64
    words = np.zeros((len(raw), limbs), np.uint64)
    for i in range(per):
        pos = i * b
        limb, off = divmod(pos, 64)
        words[:, limb] |= raw[:, i] << np.uint64(off)
        if off + b > 64:
            words[:, limb + 1] |= raw[:, i] >> np.uint64(64 - off)
    return words


def unpack(words: np.ndarray, io: dict, frames: int) -> np.ndarray:
    """(frames * words, limbs) uint64 AXI words -> (frames, elems) integers."""
    b, per = io["bits"], io["elems_per_word"]
    mask = np.uint64((1 << b) - 1)
    vals = np.zeros((len(words), per), np.int64)
    for i in range(per):
        limb, off = divmod(i * b, 64)
        v = words[:, limb] >> np.uint64(off)
        if off + b > 64:
            v = v | (words[:, limb + 1] << np.uint64(64 - off))
        vals[:, i] = (v & mask).astype(np.int64)
    if io["kind"] == "bipolar":
        vals = np.where(vals > 0, 1, -1)
    elif io["kind"] == "signed":
        vals = np.where(vals >= 1 << (b - 1), vals - (1 << b), vals)
    return vals.reshape(frames, -1)


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

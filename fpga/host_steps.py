"""Host-side steps of an edge accelerator's drivers (PYNQ and UART), numpy only: float input -> quantised integers
in the accelerator's element order, stream words packed and unpacked, integers -> the model's float output. Copied
beside each driver in deploy/driver/; the same float32 arithmetic as the QONNX golden model."""

from __future__ import annotations

import numpy as np

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
    n = len(x)
    if pre["host_ops"] and pre["host_ops"][0]["op"] == "Gather":  # token ids -> rows of the embedding table
        table = arrays[pre["host_ops"][0]["const"]].astype(np.float32)
        ids = np.asarray(x)
        if ids.dtype.kind == "f" and not np.array_equal(ids, np.round(ids)):
            raise ValueError("token ids must be integers")
        ids = ids.astype(np.int64)
        if ids.size and (ids.min() < -len(table) or ids.max() >= len(table)):
            raise ValueError(f"token ids must lie in [-{len(table)}, {len(table)})")
        x = table[np.where(ids < 0, ids + len(table), ids)]
    else:
        x = np.asarray(x, np.float32)
    if pre["raw_shape"] and not (pre["host_ops"] and pre["host_ops"][0]["op"] == "Gather"):
        x = x.reshape(n, *pre["raw_shape"])
    for op in pre["host_ops"]:
        if op["op"] == "Gather":
            continue
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

"""The integer kernel paths int8 runtimes pick by CPU, as numpy models, and the bounds that keep a program exact.

An int8 layer is exact only if the runtime's dot product is. Three behaviours matter (checked on real runtimes):

- x86 without VNNI (AVX2, AVX-512F/BW): oneDNN (OpenVINO) and MLAS (onnxruntime's fused QDQ kernels) multiply u8
  by s8 with `vpmaddubsw`, which adds two neighbouring products along the reduction axis and saturates the sum at
  int16 before widening. A signed int8 input enters as x + 128 (and is compensated afterwards), so it is a u8
  operand too. Exact iff every pair sum fits: max u8 operand x (|w_a| + |w_b|) <= 32,767.
- ARM NEON without the dot-product extension (ruy, XNNPACK): two int8 x int8 products summed in an int16 lane.
  Exact iff no weight is -128 (TFLite's int8 spec: weights in [-127, 127]).
- Everything else sums in int32: x86 VNNI/AMX (vpdpbusd, tdpbusd), ARM dotprod/i8mm, XNNPACK's x86 kernels (int16
  operands, vpmaddwd), the reference kernels, TensorRT's GPU kernels. Always exact for the sizes here.

The bounds are checked per layer on every exported program (static, whatever the data), and the models let a
test on any host compute what a non-VNNI or NEON host would (dynamic, on real data).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1
U8S8_PAIRS = "x86-u8s8-pairs"
ARM_INT16_PAIRS = "arm-int16-pairs"
INT32 = "int32"
PATHS: dict[str, str] = {
    U8S8_PAIRS: "x86 AVX2/AVX-512 without VNNI (OpenVINO's oneDNN, onnxruntime's MLAS): u8*s8 products summed in "
                "pairs, saturating at int16; exact iff max u8 input x (|w_a| + |w_b|) <= 32767",
    ARM_INT16_PAIRS: "ARM NEON without dot product (LiteRT's ruy/XNNPACK): two int8 products summed in int16; "
                     "exact iff every weight is in [-127, 127]",
    INT32: "x86 VNNI/AMX, ARM dotprod/i8mm, XNNPACK on x86, reference kernels, GPUs: int32 sums, always exact",
}


def u8_operand_max(vmin: int, vmax: int, stored_unsigned: bool) -> int:
    """The largest u8 operand a pair path sees for values in [vmin, vmax]: the value itself when it is stored as
    uint8 from zero, else the stored int8 plus 128 (any int8 zero point: up to 255)."""
    if stored_unsigned:
        if vmin < 0:
            raise ValueError("an unsigned container cannot hold negative values")
        return int(vmax)
    return 255


def two_largest(w: np.ndarray) -> np.ndarray:
    """Per row of w (rows, K): the sum of its two largest magnitudes (the worst pair any layout can form)."""
    a = np.abs(w.reshape(len(w), -1).astype(np.int64))
    if a.shape[1] < 2:
        return a.max(1) if a.shape[1] else np.zeros(len(a), np.int64)
    top = np.partition(a, a.shape[1] - 2, axis=1)[:, -2:]
    return top.sum(1)


def worst_pair(w: np.ndarray, u8_max: int) -> int:
    """The largest |pair sum| the u8*s8 path can meet in this layer, over every input and every pairing."""
    return int(two_largest(w).max(initial=0)) * int(u8_max)


def max_fold(w: np.ndarray, u8_max: int) -> np.ndarray:
    """Per row: the largest integer f that keeps f*w in [-127, 127] and within the u8*s8 pair bound (at least 1)."""
    a = np.abs(w.reshape(len(w), -1).astype(np.int64))
    headroom = 127 // np.maximum(a.max(1, initial=0), 1)
    pair = INT16_MAX // np.maximum(two_largest(w) * max(u8_max, 1), 1)
    return np.maximum(np.minimum(headroom, pair), 1)


@dataclass(frozen=True)
class LayerPaths:
    """One int8 layer's verdict on each kernel path."""

    layer: str
    u8_max: int
    worst_pair: int
    min_weight: int
    exact: dict[str, bool]

    def as_dict(self) -> dict[str, object]:
        return {"layer": self.layer, "u8_max": self.u8_max, "worst_u8s8_pair": self.worst_pair,
                "min_weight": self.min_weight, "exact": dict(self.exact)}


def layer_paths(layer: str, w: np.ndarray, u8_max: int) -> LayerPaths:
    """Static verdict for an int8 weight matrix (rows = output channels) fed by inputs up to u8_max."""
    wp = worst_pair(w, u8_max)
    lowest = int(np.min(w, initial=0))
    return LayerPaths(layer, int(u8_max), wp, lowest,
                      {U8S8_PAIRS: wp <= INT16_MAX, ARM_INT16_PAIRS: lowest >= -127, INT32: True})


def summarise(rows: list[LayerPaths]) -> dict[str, object]:
    """Per path: 'exact' or the layers that may differ there; plus the per-layer rows."""
    paths: dict[str, object] = {}
    for path in PATHS:
        bad = [r.layer for r in rows if not r.exact.get(path, True)]
        paths[path] = bad if bad else "exact"
    return {"paths": paths, "layers": [r.as_dict() for r in rows], "bounds": PATHS}


# ---------------------------------------------------------------------------------------------- numpy models
def dot_u8s8_pairs(x_u8: np.ndarray, w: np.ndarray) -> np.ndarray:
    """vpmaddubsw + vpmaddwd: x_u8 (B, K) in [0, 255], w (N, K) int8 -> (B, N), neighbouring products along K
    summed and saturated at int16, then summed in int32 (odd K: the last product pairs with a zero)."""
    x = np.asarray(x_u8, np.int64)
    wt = np.asarray(w, np.int64)
    if x.shape[1] % 2:
        x = np.pad(x, ((0, 0), (0, 1)))
        wt = np.pad(wt, ((0, 0), (0, 1)))
    p = x[:, None, :] * wt[None, :, :]  # (B, N, K)
    pairs = p.reshape(*p.shape[:2], -1, 2).sum(-1)
    return np.clip(pairs, INT16_MIN, INT16_MAX).sum(-1)


def dot_s8s8_signed_input(x_s8: np.ndarray, w: np.ndarray) -> np.ndarray:
    """A signed int8 input on the u8*s8 path: (x + 128) through the pairs, minus the 128 * sum(w) compensation."""
    w64 = np.asarray(w, np.int64)
    return dot_u8s8_pairs(np.asarray(x_s8, np.int64) + 128, w64) - 128 * w64.sum(1)[None, :]


def dot_arm_int16_pairs(x_s8: np.ndarray, w: np.ndarray) -> np.ndarray:
    """smull + smlal into int16 lanes (wrapping), then sadalp into int32: two int8 products per int16 sum."""
    x = np.asarray(x_s8, np.int64)
    wt = np.asarray(w, np.int64)
    if x.shape[1] % 2:
        x = np.pad(x, ((0, 0), (0, 1)))
        wt = np.pad(wt, ((0, 0), (0, 1)))
    pairs = (x[:, None, :] * wt[None, :, :]).reshape(x.shape[0], wt.shape[0], -1, 2).sum(-1)
    wrapped = (pairs - INT16_MIN) % (1 << 16) + INT16_MIN
    return wrapped.sum(-1)


def dot_int32(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return np.asarray(x, np.int64) @ np.asarray(w, np.int64).T

"""Derive per-channel thresholds from the exact function between an integer accumulator and a quantiser.

The function is evaluated as QONNX evaluates it (the caller passes it in); thresholds are found by bisection
per output level, then checked against the function, so rounding modes, narrow ranges and negative BatchNorm
scales come out exact by construction and a non-monotonic function is caught instead of mis-lowered.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fpga.datatypes import IntType
from fpga.ir import Thresholds
from frontend.errors import EdgeError

ChainFn = Callable[[np.ndarray], np.ndarray]  # (B, C) int64 accumulators -> (B, C) int64 quantiser outputs

EXHAUSTIVE_LIMIT = 4096  # accumulator ranges up to this size are checked at every value
SAMPLES = 512  # otherwise: this many random points per channel plus every threshold and its neighbours


def _bisect(f: ChainFn, lo: np.ndarray, hi: np.ndarray, targets: np.ndarray, descending: np.ndarray) -> np.ndarray:
    """For every (level, channel): the first acc reaching the level (ascending) or the last (descending)."""
    n = len(targets)
    left = np.broadcast_to(lo - 1, (n, len(lo))).copy()  # virtual end: below the range
    right = np.broadcast_to(hi + 1, (n, len(lo))).copy()  # virtual end: above the range
    tgt = targets[:, None]
    while True:
        active = right - left > 1
        if not active.any():
            break
        mid = np.where(active, left + (right - left) // 2, left.clip(lo, hi))
        reached = f(mid) >= tgt
        # ascending: reached at mid -> the answer is at or left of mid; descending: at or right of mid
        move_right = np.where(descending, ~reached, reached)
        right = np.where(active & move_right, mid, right)
        left = np.where(active & ~move_right, mid, left)
    return np.where(descending, left, right)


def _check_points(lo: np.ndarray, hi: np.ndarray, thresholds: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    span = int((hi - lo).max()) + 1
    if span <= EXHAUSTIVE_LIMIT:
        return np.minimum(lo[None, :] + np.arange(span)[:, None], hi[None, :])
    rand = lo[None, :] + (rng.random((SAMPLES, len(lo))) * (hi - lo + 1)[None, :]).astype(np.int64)
    near = np.concatenate([thresholds.T - 1, thresholds.T, thresholds.T + 1])
    pts = np.concatenate([lo[None, :], hi[None, :], rand, near])
    return np.clip(pts, lo[None, :], hi[None, :])


def derive_thresholds(f: ChainFn, lo: np.ndarray, hi: np.ndarray, qmin: int, qmax: int, step: int,
                      out_dtype: IntType, where: str) -> Thresholds:
    """Thresholds such that base + step * count(acc vs T) == f(acc) for every acc in [lo, hi] per channel."""
    lo, hi = np.asarray(lo, np.int64), np.asarray(hi, np.int64)
    ends = f(np.stack([lo, hi]))
    descending = ends[0] > ends[1]
    targets = np.arange(qmin + step, qmax + 1, step, dtype=np.int64)
    values = _bisect(f, lo, hi, targets, descending).T.copy()  # (C, levels)
    steps = np.diff(values, axis=1)
    unordered = np.flatnonzero(np.where(descending, (steps > 0).any(1), (steps < 0).any(1)))
    if len(unordered):  # the kernels search many-level thresholds: they must be ordered
        raise EdgeError(f"{where}: the function from accumulator to quantiser is not monotonic in channel "
                        f"{unordered[0]} (its thresholds are out of order); it cannot become thresholds")
    th = Thresholds(values=values, descending=descending, base=qmin, step=step, out_dtype=out_dtype)
    pts = _check_points(lo, hi, values, np.random.default_rng(0))
    expected, got = f(pts), th.apply(pts)
    bad = np.argwhere(expected != got)
    if len(bad):
        i, c = bad[0]
        raise EdgeError(
            f"{where}: the function from accumulator to quantiser is not monotonic in channel {c} "
            f"(acc {pts[i, c]} gives {expected[i, c]}, thresholds give {got[i, c]}); it cannot become thresholds"
        )
    return th

"""Where the batch lives in a tensor of a model exported at batch size 1: attention graphs move it (seq-first
Transposes) and merge it with the heads (Reshape to (tokens, batch * heads, head_dim)).

The batch is always the outermost factor of one axis. These rules carry that axis through Transpose and Reshape;
the front end uses them to make Reshape targets batch-free and the lowering to take one sample out of a batch."""

from __future__ import annotations

import numpy as np


def transpose_batch_axis(perm: list[int], axis: int | None) -> int | None:
    """The batch axis after a Transpose with `perm` (output axis i is input axis perm[i])."""
    return None if axis is None else perm.index(axis)


def reshape_batch_axis(in_shape: list[int] | tuple[int, ...], out_shape: list[int] | tuple[int, ...],
                       axis: int | None) -> int | None:
    """The output axis whose outermost factor is the batch after a Reshape (flat order kept): the first output
    axis that starts at the same flat position as the input's batch axis; None when no axis starts there."""
    if axis is None:
        return None
    start = int(np.prod(in_shape[:axis], dtype=np.int64))
    for b in range(len(out_shape)):
        if int(np.prod(out_shape[:b], dtype=np.int64)) == start:
            return b
    return None


def split_batch(x: np.ndarray, axis: int, n: int) -> np.ndarray:
    """(…, n*R at `axis`, …) -> (n, flat per-sample elements), the batch being the outer factor of that axis."""
    s = x.shape
    parts = x.reshape(*s[:axis], n, s[axis] // n, *s[axis + 1:])
    return np.moveaxis(parts, axis, 0).reshape(n, -1)

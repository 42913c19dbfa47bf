"""Integer thresholds -> int8 requantisation parameters that reproduce them exactly where int8 allows it.

An int8 runtime maps an accumulator to an output as `round(M * (f * acc + B))` (M a per-channel multiplier, B an
int32 bias, f an integer we fold into the weights). The golden model maps it through thresholds (fpga.ir). We
look for M and B such that both give the same level for every accumulator the layer can reach, keeping each
product MARGIN away from a rounding boundary so that the runtime's own rounding (fixed-point or float32,
half-up or half-even) cannot change an output. Spare int8 headroom in the weights (f > 1) makes B finer: with
weights of up to 4 bits a solution practically always exists; with 8-bit weights (f = 1) it usually does not,
and the closest fit is used and reported.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

# Distance kept from a rounding boundary, relative to the magnitudes a runtime handles on the way: the level, the
# lower end of the range (OpenVINO's FakeQuantize subtracts it before rounding) and the scaled accumulator and
# bias terms (added in float after an int8 convolution). Each float32 operation errs by at most 6e-8 of its
# magnitude; 3e-7 covers a few of them. (A Q31 fixed-point requantisation errs by ~1e-9.)
MARGIN = 3e-7
OFFSETS = 64  # candidate biases tried around the best straight-line fit, per channel
COARSE = 64  # grid points per accumulator unit, each side, tried as well when the fold is large
CHUNK = 64  # channels evaluated together (memory: CHUNK * OFFSETS * constraints floats)
FP32_ULPS = 64  # float32 steps of a weight scale tried either side, when tuning to XNNPACK's fp32 requantisation
FP32_OFFSETS = 3  # int32 bias units tried either side, likewise


@dataclass(frozen=True)
class Requant:
    """Per-channel requantisation: out_level = round(multiplier * (sign * fold * acc + bias)), clamped."""

    sign: np.ndarray  # (C,) +1 / -1 (descending channels negate their weights), 0 for a constant channel
    fold: np.ndarray  # (C,) int: weights are multiplied by this (spare int8 headroom buys a finer bias)
    bias: np.ndarray  # (C,) int64, in units of the folded accumulator
    multiplier: np.ndarray  # (C,) float64, levels per folded accumulator unit
    exact: np.ndarray  # (C,) bool: reproduces the thresholds with margin over the whole reachable range
    # (C,) bool: reproduces them in exact arithmetic (a float runtime may differ only at accumulators within its
    # rounding error of a level boundary, where the golden model's own float32 decides just as arbitrarily)
    exact_arith: np.ndarray | None = None


@dataclass(frozen=True)
class _Constraints:
    """Per channel, rows of `v(t) >= c` (ge) or `v(t) <= c` that pin v to the thresholds over [lo, hi]."""

    t: np.ndarray  # (C, N) float64
    c: np.ndarray  # (C, N)
    ge: np.ndarray  # (C, N) bool
    valid: np.ndarray  # (C, N) bool
    active: np.ndarray  # (C, L) bool: thresholds inside the reachable range


def _ascending(values: np.ndarray, descending: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """Descending channels as ascending ones in -acc: count(acc <= T) == count(-acc >= -T)."""
    tau = np.where(descending[:, None], -values, values).astype(np.int64)
    a_lo = np.where(descending, -hi, lo).astype(np.int64)
    a_hi = np.where(descending, -lo, hi).astype(np.int64)
    return tau, a_lo, a_hi


def _constraints(tau: np.ndarray, lo: np.ndarray, hi: np.ndarray, base: int) -> _Constraints:
    chans, levels = tau.shape
    c = base + np.arange(levels) + 0.5  # crossing from level k to k + 1
    active = (tau > lo[:, None]) & (tau <= hi[:, None])
    n_always = (tau <= lo[:, None]).sum(1)
    n_never = (tau > hi[:, None]).sum(1)
    cc = np.broadcast_to(c, (chans, levels))
    last_always = c[np.clip(n_always - 1, 0, levels - 1)]
    first_never = c[np.clip(levels - n_never, 0, levels - 1)]
    t = np.concatenate([tau, tau - 1, lo[:, None], hi[:, None]], 1).astype(np.float64)
    cb = np.concatenate([cc, cc, last_always[:, None], first_never[:, None]], 1)
    ge = np.concatenate([np.ones_like(active), np.zeros_like(active), np.ones((chans, 1), bool),
                         np.zeros((chans, 1), bool)], 1)
    valid = np.concatenate([active, active, (n_always > 0)[:, None], (n_never > 0)[:, None]], 1)
    return _Constraints(t, cb, ge, valid, active)


def _line_fit(tau: np.ndarray, active: np.ndarray, lo: np.ndarray, hi: np.ndarray,
              base: int) -> tuple[np.ndarray, np.ndarray]:
    """Per channel (u, r): crossings at acc = u * c_k - r, fitted through tau_k - 0.5 of the active thresholds."""
    c = base + np.arange(tau.shape[1]) + 0.5
    w = active.astype(np.float64)
    n = w.sum(1)
    y = tau - 0.5
    mc = (w * c).sum(1) / np.maximum(n, 1)
    my = (w * y).sum(1) / np.maximum(n, 1)
    var = (w * (c - mc[:, None]) ** 2).sum(1)
    cov = (w * (c - mc[:, None]) * (y - my[:, None])).sum(1)
    u = np.where(var > 0, cov / np.where(var > 0, var, 1), 0.0)
    # one active threshold: any slope wide enough to keep the neighbouring crossings out of the range
    single = n < 2
    u = np.where(single | (u <= 0), (hi - lo + 2).astype(np.float64), u)
    r = u * mc - my
    return u, r


def _tolerance(cons: _Constraints, base: int, terms: np.ndarray, margin: float) -> np.ndarray:
    """(C, N) distance to keep from each boundary: margin times the magnitudes involved (see MARGIN)."""
    return margin * (np.abs(cons.c) + abs(base) + terms[:, None] + 1)


def _terms(lo: np.ndarray, hi: np.ndarray, u: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Largest |scaled accumulator| + |scaled bias| in levels, per channel (u acc units per level)."""
    return (np.maximum(np.abs(lo), np.abs(hi)) + np.abs(r)) / np.maximum(u, 1e-12)


def _search(cons: _Constraints, r0: np.ndarray, u: np.ndarray, fold: np.ndarray,
            tol: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each channel, the bias nearest the fit for which some slope satisfies every constraint."""
    j = np.arange(OFFSETS)
    steps = (j + 1) // 2 * np.where(j % 2 == 1, 1, -1)  # 0, +1, -1, +2, -2, ...
    start = np.rint(r0 * fold).astype(np.int64)
    # a large fold makes one folded unit tiny: also try a grid over one accumulator unit either side of the fit
    # (ceil-ed thresholds put the exact line up to half a unit off the least-squares one), nearest first
    grid = np.linspace(-1.0, 1.0, 2 * COARSE + 1)
    grid = grid[np.argsort(np.abs(grid), kind="stable")]
    coarse = np.rint(grid[None, :] * fold[:, None]).astype(np.int64)
    cand = np.concatenate([start[:, None] + steps[None, :], start[:, None] + coarse], axis=1)  # (C, J) folded
    r = cand / fold[:, None]
    x = cons.t[:, None, :] + r[:, :, None]  # (C, J, N)
    bound = np.where(cons.ge, cons.c + tol, cons.c - tol)[:, None, :]
    ge = cons.ge[:, None, :]
    valid = cons.valid[:, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = bound / x
    lower = valid & (x != 0) & ((x > 0) == ge)  # a >= q
    upper = valid & (x != 0) & ((x > 0) != ge)  # a <= q
    zero_bad = valid & (x == 0) & np.where(ge, bound > 0, bound < 0)
    a_lo = np.max(np.where(lower, q, 0.0), axis=2)
    a_hi = np.min(np.where(upper, q, np.inf), axis=2)
    ok = (a_hi > a_lo) & ~zero_bad.any(2)
    first = np.argmax(ok, axis=1)
    rows = np.arange(len(r0))
    found = ok[rows, first]
    lo_, hi_ = a_lo[rows, first], a_hi[rows, first]
    slope = np.where(np.isfinite(hi_), (lo_ + hi_) / 2, np.maximum(2 * lo_, 1.0 / u))
    bias = np.where(found, cand[rows, first], start)
    slope = np.where(found, slope, 1.0 / u)
    return bias, slope, found


def fit_requant(values: np.ndarray, descending: np.ndarray, base: int, lo: np.ndarray, hi: np.ndarray,
                weight_max: np.ndarray, fold_cap: np.ndarray | None = None) -> Requant:
    """Requantisation for thresholds `values` (C, levels) over reachable accumulators [lo, hi] per channel.

    weight_max: per channel, the largest |weight| (so the fold keeps weights within int8's +-127); fold_cap: per
    channel, a further limit on the fold (the u8*s8 pair bound of `kernel_paths.max_fold`)."""
    tau, a_lo, a_hi = _ascending(values, np.asarray(descending, bool), np.asarray(lo), np.asarray(hi))
    cons = _constraints(tau, a_lo, a_hi, base)
    fold = np.maximum(127 // np.maximum(np.asarray(weight_max, np.int64), 1), 1)
    if fold_cap is not None:
        fold = np.maximum(np.minimum(fold, np.asarray(fold_cap, np.int64)), 1)
    u, r0 = _line_fit(tau, cons.active, a_lo, a_hi, base)
    tol = _tolerance(cons, base, _terms(a_lo, a_hi, u, r0), MARGIN)
    bias = np.zeros(len(tau), np.int64)
    slope = np.zeros(len(tau))
    exact = np.zeros(len(tau), bool)
    arith = np.zeros(len(tau), bool)
    for s in range(0, len(tau), CHUNK):
        part = slice(s, s + CHUNK)
        sub = _Constraints(cons.t[part], cons.c[part], cons.ge[part], cons.valid[part], cons.active[part])
        bias[part], slope[part], exact[part] = _search(sub, r0[part], u[part], fold[part], tol[part])
        missed = np.flatnonzero(~exact[part]) + s
        if missed.size:  # no fit keeps the float margin: the closest fit that is exact in exact arithmetic (only
            # accumulators within float rounding of a boundary may then differ, not whole stretches of the line)
            near = _Constraints(cons.t[missed], cons.c[missed], cons.ge[missed], cons.valid[missed],
                                cons.active[missed])
            b2, s2, ok2 = _search(near, r0[missed], u[missed], fold[missed], np.zeros_like(tol[missed]))
            bias[missed] = np.where(ok2, b2, bias[missed])
            slope[missed] = np.where(ok2, s2, slope[missed])
            arith[missed] = ok2
    sign = np.where(descending, -1, 1).astype(np.int64)
    mult = slope / fold
    constant = ~cons.active.any(1)  # the same level everywhere: zero weights and the level as bias
    if constant.any():
        level = base + (tau <= a_lo[:, None]).sum(1)
        sign = np.where(constant, 0, sign)
        fold = np.where(constant, 1, fold)
        bias = np.where(constant, level * 1024, bias)
        mult = np.where(constant, 1.0 / 1024, mult)
        exact = exact | constant
    return Requant(sign=sign, fold=fold, bias=bias, multiplier=mult, exact=exact, exact_arith=exact | arith)


def check_requant(rq: Requant, values: np.ndarray, descending: np.ndarray, base: int, lo: np.ndarray,
                  hi: np.ndarray, multiplier: np.ndarray, margin: float) -> np.ndarray:
    """Per channel: does `multiplier` (as the runtime will see it) keep every crossing `margin` from a boundary?"""
    tau, a_lo, a_hi = _ascending(values, np.asarray(descending, bool), np.asarray(lo), np.asarray(hi))
    cons = _constraints(tau, a_lo, a_hi, base)
    v = multiplier[:, None] * (rq.fold[:, None] * cons.t + rq.bias[:, None])
    slope = np.maximum(multiplier * rq.fold, 1e-300)
    tol = _tolerance(cons, base, _terms(a_lo, a_hi, 1.0 / slope, rq.bias / rq.fold), margin)
    good = np.where(cons.ge, v >= cons.c + tol, v <= cons.c - tol) | ~cons.valid
    return good.all(1) | (rq.sign == 0)


def xnnpack_scale(s_in: float, s_w: np.ndarray, s_out: float) -> np.ndarray:
    """The per-channel float32 scale LiteRT's XNNPACK delegate requantises with: input scale times weight scale,
    divided by output scale, each step in float32."""
    return (np.float32(s_in) * np.asarray(s_w, np.float32)) / np.float32(s_out)


def fp32_levels(total: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """XNNPACK's fp32 requantisation (its int8 kernels on x86 and ARM alike): the int32 sum converted to float32,
    times the float32 scale in float32, rounded half to even (the zero point is added to the integer after)."""
    return np.rint(np.asarray(total).astype(np.float32) * np.asarray(scale, np.float32))


def _fp32_good(cons: _Constraints, fold: np.ndarray, bias: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(..., N) per constraint row: does the fp32 requantisation give the thresholds' level there?"""
    lvl = fp32_levels(fold[..., None] * cons.t + bias[..., None], scale[..., None])
    return np.where(cons.ge, lvl >= cons.c + 0.5, lvl <= cons.c - 0.5) | ~cons.valid


def check_requant_fp32(rq: Requant, values: np.ndarray, descending: np.ndarray, base: int, lo: np.ndarray,
                       hi: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Per channel: is XNNPACK's fp32 requantisation with `scale` equal to the thresholds over the whole reachable
    range? Exact, not a margin: the function is monotone in the accumulator, so the levels at each threshold and
    just below it decide."""
    tau, a_lo, a_hi = _ascending(values, np.asarray(descending, bool), np.asarray(lo), np.asarray(hi))
    cons = _constraints(tau, a_lo, a_hi, base)
    return _fp32_good(cons, rq.fold.astype(np.float64), rq.bias.astype(np.float64),
                      np.asarray(scale, np.float32)).all(1) | (rq.sign == 0)


def tune_fp32(rq: Requant, values: np.ndarray, descending: np.ndarray, base: int, lo: np.ndarray, hi: np.ndarray,
              s_in: float, s_w: np.ndarray, s_out: float, ulps: int = FP32_ULPS,
              offsets: int = FP32_OFFSETS) -> tuple[Requant, np.ndarray, np.ndarray]:
    """Channels whose fp32 requantisation misses a threshold get the nearest weight scale (a few float32 steps
    away) and int32 bias (a few units away) with which it hits every one, where such a pair exists. Returns the
    requantisation with the new biases, the weight scales, and per channel whether it is now exact."""
    s_w = np.asarray(s_w, np.float32).copy()
    bias = rq.bias.copy()
    ok = check_requant_fp32(rq, values, descending, base, lo, hi, xnnpack_scale(s_in, s_w, s_out))
    missed = np.flatnonzero(~ok & (s_w > 0))
    if missed.size == 0:
        return rq, s_w, ok
    tau, a_lo, a_hi = _ascending(values, np.asarray(descending, bool), np.asarray(lo), np.asarray(hi))
    cons = _constraints(tau, a_lo, a_hi, base)
    j = np.arange(2 * ulps + 1)
    steps = ((j + 1) // 2 * np.where(j % 2 == 1, 1, -1)).astype(np.int32)  # 0, +1, -1, +2, ...
    d = np.arange(2 * offsets + 1)
    shifts = (d + 1) // 2 * np.where(d % 2 == 1, 1, -1)
    # candidates ordered by distance: every scale step at bias offset 0 first, then the next offsets
    cand_b = np.repeat(shifts, len(steps))
    cand_s = np.tile(steps, len(shifts))
    for ch in missed:
        row = _Constraints(cons.t[ch], cons.c[ch], cons.ge[ch], cons.valid[ch], cons.active[ch])
        scales = (s_w[ch:ch + 1].view(np.int32) + cand_s).view(np.float32)
        good = _fp32_good(row, np.full(len(cand_b), float(rq.fold[ch])), (bias[ch] + cand_b).astype(np.float64),
                          xnnpack_scale(s_in, scales, s_out)).all(1)
        if good.any():
            k = int(np.argmax(good))
            s_w[ch], bias[ch], ok[ch] = scales[k], bias[ch] + cand_b[k], True
    return replace(rq, bias=bias), s_w, ok


# ------------------------------------------------------------------------------- float affine on exact integers
def float_affine_levels(t: np.ndarray, m: np.ndarray, b: np.ndarray) -> np.ndarray:
    """An exact integer accumulator t (float32) times m, plus b, each step rounded to float32, then rounded half to
    even: the levels TFLite's float MUL, ADD and ROUND give."""
    return np.rint(np.asarray(t, np.float32) * np.asarray(m, np.float32) + np.asarray(b, np.float32))


def fit_float_affine(values: np.ndarray, descending: np.ndarray, base: int, lo: np.ndarray,
                     hi: np.ndarray, iterations: int = 80) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per channel a float32 slope and offset whose `float_affine_levels` equal the thresholds over [lo, hi]:
    (m, b, exact). A float offset resolves what an int32 bias in accumulator units cannot (a float bias of the
    golden model at 255 levels); the slope is signed (negative for descending channels)."""
    desc = np.asarray(descending, bool)
    tau, a_lo, a_hi = _ascending(values, desc, np.asarray(lo), np.asarray(hi))
    cons = _constraints(tau, a_lo, a_hi, base)
    u, _ = _line_fit(tau, cons.active, a_lo, a_hi, base)
    t, c, ge, valid = cons.t, cons.c, cons.ge, cons.valid

    def window(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        off = c - m[:, None] * t  # b must be >= off on ge rows, <= off on the others
        b_lo = np.max(np.where(ge & valid, off, -np.inf), axis=1)
        b_hi = np.min(np.where(~ge & valid, off, np.inf), axis=1)
        return b_lo, b_hi

    m_lo, m_hi = 0.25 / u, 4.0 / u  # the width b_hi - b_lo is concave in m: ternary search for its widest point
    for _ in range(iterations):
        a, b = m_lo + (m_hi - m_lo) / 3, m_hi - (m_hi - m_lo) / 3
        wa, wb = (np.subtract(*window(a)[::-1]), np.subtract(*window(b)[::-1]))
        better_a = wa >= wb
        m_hi = np.where(better_a, b, m_hi)
        m_lo = np.where(better_a, m_lo, a)
    m = (m_lo + m_hi) / 2
    b_lo, b_hi = window(m)
    b_lo = np.where(np.isfinite(b_lo), b_lo, np.where(np.isfinite(b_hi), b_hi - 1.0, 0.0))
    b_hi = np.where(np.isfinite(b_hi), b_hi, b_lo + 1.0)
    off = (b_lo + b_hi) / 2
    m32, b32 = m.astype(np.float32), off.astype(np.float32)
    lvl = float_affine_levels(t, m32[:, None], b32[:, None])
    ok = (np.where(ge, lvl >= c + 0.5, lvl <= c - 0.5) | ~valid).all(1)
    sign = np.where(desc, -1.0, 1.0).astype(np.float32)
    return m32 * sign, b32, ok

"""Compiled metrics kernels (numba, arrays only): ``compute_metrics``' figures for the search hot path.

The same sums as numpy (pairwise summation) and ``math.fsum`` for VWR (Knuth's TwoSum), so the compiled values
equal :func:`maestro_pipeline.stats.compute_metrics` to the last bits; :func:`maestro_pipeline.stats.fast_metrics`
is their Python API.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .vwr import VWR_SDEV_MAX, VWR_TAU

__all__ = ["metrics_nb", "pairwise_sum_nb", "vwr_nb"]


@njit(cache=True)
def block_sum_nb(a, lo, n):
    """A leaf of numpy's pairwise summation (n <= 128): eight interleaved accumulators."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    stop = n - n % 8
    while i < stop:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@njit(cache=True)
def pairwise_sum_nb(a):
    """numpy's pairwise summation (``np.add.reduce`` on a contiguous float64 array), so sums match numpy's.

    numpy recurses (``n2 = n // 2`` rounded down to a multiple of 8, left + right); this walks the same tree
    with an explicit stack (numba's disk cache mishandles recursive functions).
    """
    n = a.shape[0]
    if n <= 128:
        return block_sum_nb(a, 0, n)
    st_lo = np.empty(128, dtype=np.int64)
    st_n = np.empty(128, dtype=np.int64)
    st_state = np.empty(128, dtype=np.int64)
    vals = np.empty(128)
    sp = 0
    vsp = 0
    st_lo[0], st_n[0], st_state[0] = 0, n, 0
    sp = 1
    while sp > 0:
        top = sp - 1
        lo, m = st_lo[top], st_n[top]
        if m <= 128:
            vals[vsp] = block_sum_nb(a, lo, m)
            vsp += 1
            sp -= 1
            continue
        n2 = m // 2
        n2 -= n2 % 8
        if st_state[top] == 0:  # left half first
            st_state[top] = 1
            st_lo[sp], st_n[sp], st_state[sp] = lo, n2, 0
            sp += 1
        elif st_state[top] == 1:  # then the right half
            st_state[top] = 2
            st_lo[sp], st_n[sp], st_state[sp] = lo + n2, m - n2, 0
            sp += 1
        else:  # both halves done: left + right
            vals[vsp - 2] = vals[vsp - 2] + vals[vsp - 1]
            vsp -= 1
            sp -= 1
    return vals[0]


@njit(cache=True)
def fsum_nb(a):
    """Sum with Knuth's TwoSum compensation: ``math.fsum`` (which Backtrader's VWR uses) to within an ulp, without
    its data-dependent partials list (a quarter of the cost)."""
    s = 0.0
    c = 0.0
    for i in range(a.shape[0]):
        x = a[i]
        t = s + x
        bp = t - s
        c += (s - (t - bp)) + (x - bp)
        s = t
    return s + c


@njit(cache=True)
def ratio_or_zero_nb(num, den):
    return num / den if den > 0 and np.isfinite(den) else 0.0


@njit(cache=True)
def metrics_nb(r, periods_per_year, tann, want_vwr):
    """(sharpe, sortino, total_return, cagr, calmar, max_drawdown, vwr) as ``compute_metrics`` computes them."""
    n = r.shape[0]
    if n == 0:
        return 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    ann = math.sqrt(periods_per_year)
    wealth = 1.0
    for i in range(n):  # np.prod: a sequential product
        wealth *= 1.0 + r[i]
    total_return = wealth - 1.0
    cagr = wealth ** (periods_per_year / n) - 1.0 if wealth > 0 else -1.0
    mean = pairwise_sum_nb(r) / n
    std = 0.0
    if n > 1:
        dev = np.empty(n)
        mu = pairwise_sum_nb(r) / n
        for i in range(n):
            d = r[i] - mu
            dev[i] = d * d
        std = math.sqrt(pairwise_sum_nb(dev) / (n - 1))
    if std <= 1e-14 * max(1.0, abs(mean)):
        std = 0.0
    down = np.empty(n)
    for i in range(n):
        d = min(r[i], 0.0)
        down[i] = d * d
    downside = math.sqrt(pairwise_sum_nb(down) / n)
    # equity = [1, cumprod(1 + r)]; drawdown against the running peak (which starts at 1)
    equity = np.empty(n)
    e = 1.0
    peak = 1.0
    max_dd = 0.0  # the leading 1.0 contributes 1/1 - 1 = 0
    for i in range(n):
        e = e * (1.0 + r[i]) if i > 0 else 1.0 + r[0]
        equity[i] = e
        if e > peak:
            peak = e
        dd = e / peak - 1.0
        if dd < max_dd:
            max_dd = dd
    sharpe = ratio_or_zero_nb(mean, std) * ann
    sortino = ratio_or_zero_nb(mean, downside) * ann
    calmar = ratio_or_zero_nb(cagr, abs(max_dd))
    vwr = 0.0
    if want_vwr:
        vwr = vwr_nb(equity, tann)
    return sharpe, sortino, total_return, cagr, calmar, max_dd, vwr


@njit(cache=True)
def vwr_nb(v, tann):
    """``metrics.backtrader_vwr(v, 1.0, tann=tann)`` with one period per bar."""
    n = v.shape[0]
    for i in range(n):
        if not v[i] > 0:
            return -100.0
    ravg = math.log(v[n - 1] / 1.0) / n
    rnorm100 = math.expm1(ravg * tann) * 100.0
    if n < 2:
        return 0.0
    dts = np.empty(n)
    for k in range(1, n + 1):  # pairs (1, v0), (v0, v1), ..., (v[n-2], v[n-1])
        pi = 1.0 if k == 1 else v[k - 2]
        dts[k - 1] = v[k - 1] / (pi * math.exp(ravg * k)) - 1.0
    mean = fsum_nb(dts) / n
    sq = np.empty(n)
    for i in range(n):
        d = dts[i] - mean
        sq[i] = d * d
    sdev = math.sqrt(fsum_nb(sq) / (n - 1))
    return rnorm100 * (1.0 - (sdev / VWR_SDEV_MAX) ** VWR_TAU)


"""Confidence intervals: a stationary bootstrap of the daily returns (Sharpe, max drawdown) and a reshuffle of
the trade sequence (max drawdown), so a reader sees how wide the figures could plausibly be."""

from __future__ import annotations

import math

import numpy as np

from ..errors import MaestroError
from ._inputs import CHUNK_ELEMENTS, ZERO_VAR_RTOL, count, finite, returns_1d

__all__ = ["BOOTSTRAP_STATS", "bootstrap_ci", "trade_reshuffle_ci"]

BOOTSTRAP_STATS = ("sharpe", "max_drawdown")


def _sharpe_rows(x: np.ndarray, periods_per_year: float) -> np.ndarray:
    mean = x.mean(axis=1)
    sd = x.std(axis=1, ddof=1)
    flat = sd * sd <= ZERO_VAR_RTOL * (x * x).mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sr = mean / np.where(flat, 1.0, sd) * math.sqrt(periods_per_year)
    return np.where(flat, 0.0, sr)


def _max_drawdown_rows(x: np.ndarray) -> np.ndarray:
    equity = np.cumprod(1.0 + x, axis=1)
    peak = np.maximum(np.maximum.accumulate(equity, axis=1), 1.0)  # the starting equity 1 is a peak too
    return np.minimum((equity / peak - 1.0).min(axis=1), 0.0)


def _interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    a = (1.0 - level) / 2.0
    low, high = np.quantile(samples, [a, 1.0 - a])
    return float(low), float(high)


def _check_level(level: float) -> float:
    lv = finite("level", level)
    if not 0 < lv < 1:
        raise MaestroError(f"level must be in (0, 1), e.g. 0.95; got {lv}")
    return lv


def bootstrap_ci(
    returns: np.ndarray,
    stat: str,
    periods_per_year: float = 365,
    n_boot: int = 2000,
    block: int | None = None,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """Percentile CI of the annualized Sharpe or the max drawdown by stationary bootstrap: ``(low, high, point)``.

    Politis & Romano's stationary bootstrap (circular, geometric block lengths with mean ``block``, default
    ``round(sqrt(T))``) keeps the serial dependence of returns that an i.i.d. resample would destroy;
    ``block=1`` is the i.i.d. bootstrap. ``point`` is the statistic of the original series. Seeded: the same
    inputs give the same interval.
    """
    if stat not in BOOTSTRAP_STATS:
        raise MaestroError(f"stat {stat!r} is not supported: use one of {', '.join(BOOTSTRAP_STATS)}")
    x = returns_1d("returns", returns, 2)
    t = x.size
    ppy = finite("periods_per_year", periods_per_year)
    if ppy <= 0:
        raise MaestroError(f"periods_per_year must be > 0 (365 for daily crypto returns), got {ppy}")
    nb = count("n_boot", n_boot, 1)
    lv = _check_level(level)
    b = max(1, round(math.sqrt(t))) if block is None else count("block", block, 1)
    if b > t:
        raise MaestroError(f"block={b} is longer than the series ({t} returns): use block <= {t}")
    fn = (lambda a: _sharpe_rows(a, ppy)) if stat == "sharpe" else _max_drawdown_rows
    point = float(fn(x[None, :])[0])
    rng = np.random.default_rng(seed)
    pos = np.arange(t)
    out = np.empty(nb)
    step = max(1, CHUNK_ELEMENTS // t)
    for lo in range(0, nb, step):
        k = min(step, nb - lo)
        starts = rng.integers(0, t, size=(k, t))
        new = rng.random((k, t)) < 1.0 / b
        new[:, 0] = True
        run_start = np.maximum.accumulate(np.where(new, pos, 0), axis=1)
        idx = (np.take_along_axis(starts, run_start, axis=1) + pos - run_start) % t
        out[lo : lo + k] = fn(x[idx])
    low, high = _interval(out, lv)
    return low, high, point


def trade_reshuffle_ci(
    trade_returns: np.ndarray, n: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """Percentile CI of the max drawdown of the compounded trade sequence over ``n`` random reorderings.

    The final equity does not depend on the order of the trades, the drawdown does: a narrow interval around
    ``point`` (the drawdown in the order traded) says the path was typical, a ``low`` far below it says a
    worse ordering was as likely. Returns ``(low, high, point)``, negative fractions.
    """
    x = returns_1d("trade_returns", trade_returns, 1)
    nn = count("n", n, 1)
    lv = _check_level(level)
    point = float(_max_drawdown_rows(x[None, :])[0])
    rng = np.random.default_rng(seed)
    out = np.empty(nn)
    step = max(1, CHUNK_ELEMENTS // x.size)
    for lo in range(0, nn, step):
        k = min(step, nn - lo)
        out[lo : lo + k] = _max_drawdown_rows(rng.permuted(np.tile(x, (k, 1)), axis=1))
    low, high = _interval(out, lv)
    return low, high, point


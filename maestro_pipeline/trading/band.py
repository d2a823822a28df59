"""The band a live result is judged against: what the walk-forward's stitched out-of-sample returns imply over the
same horizon.

A stationary bootstrap (Politis & Romano: circular, geometric block lengths with mean ``block``, by default
``round(sqrt(T))`` bars) draws ``n_boot`` paths of ``horizon`` consecutive-ish bars from the stitched OOS per-bar
returns and compounds each one; the band is the central ``level`` share of those horizon returns. The blocks keep
the serial dependence of a strategy's returns (a trade spans many bars) that an i.i.d. resample would destroy.
Seeded: the same inputs give the same band, and every input is recorded with it (:class:`Band`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import MaestroError

__all__ = ["Band", "horizon_band", "path_indices"]

#: At most this many floats are resampled at once (memory bound for long horizons x many paths).
_CHUNK = 4_000_000


@dataclass(frozen=True)
class Band:
    """A central interval of horizon returns, with what it was computed from."""

    low: float
    high: float
    median: float
    horizon: int          # bars per path
    level: float
    n_boot: int
    seed: int
    block: int            # mean block length of the stationary bootstrap, in bars
    sample_bars: int      # how many stitched OOS bars were resampled

    def as_dict(self) -> dict:
        return asdict(self)

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def path_indices(t: int, horizon: int, k: int, block: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` stationary-bootstrap index paths of length ``horizon`` into a series of ``t`` values: each path starts at
    a uniform position and, at every step, jumps to a new uniform position with probability ``1 / block`` (else moves
    to the next value, wrapping around)."""
    pos = np.arange(horizon)
    starts = rng.integers(0, t, size=(k, horizon))
    new = rng.random((k, horizon)) < 1.0 / block
    new[:, 0] = True
    run_start = np.maximum.accumulate(np.where(new, pos, 0), axis=1)
    return (np.take_along_axis(starts, run_start, axis=1) + pos - run_start) % t


def horizon_band(returns: np.ndarray, horizon: int, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95,
                 block: int | None = None) -> Band:
    """The ``level`` central interval of the compounded return over ``horizon`` bars of ``returns`` (per-bar simple
    returns), by stationary bootstrap. ``block=1`` is the i.i.d. bootstrap."""
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1 or r.size < 2:
        raise MaestroError(f"the band needs at least 2 out-of-sample returns, got {r.size}")
    if not np.all(np.isfinite(r)):
        raise MaestroError("out-of-sample returns hold NaN or infinite values: the band cannot be computed")
    if horizon < 1:
        raise MaestroError(f"horizon must be at least 1 bar, got {horizon}")
    if not 0 < level < 1:
        raise MaestroError(f"level must be in (0, 1), got {level}")
    t = r.size
    b = max(1, round(math.sqrt(t))) if block is None else int(block)
    if not 1 <= b <= t:
        raise MaestroError(f"block={b} must be between 1 and the {t} returns")
    rng = np.random.default_rng(seed)
    with np.errstate(divide="ignore"):
        log1p = np.log1p(np.maximum(r, -1.0))  # -100 % (a ruined bar) is -inf: the path is worth 0
    out = np.empty(n_boot)
    step = max(1, _CHUNK // horizon)
    for lo in range(0, n_boot, step):
        k = min(step, n_boot - lo)
        idx = path_indices(t, horizon, k, b, rng)
        out[lo:lo + k] = np.expm1(log1p[idx].sum(axis=1))
    a = (1.0 - level) / 2.0
    low, med, high = np.quantile(out, [a, 0.5, 1.0 - a])
    return Band(float(low), float(high), float(med), int(horizon), float(level), int(n_boot), int(seed), int(b), t)

"""The embedded deterministic market (source ``synthetic``): offline bars for ``make demo`` and the tests.

Why it looks the way it does:

* **Regimes.** Prices follow a persistent daily Markov chain over ``trend_up``, ``trend_down``, ``range``
  (mean-reverting around the level where the range began) and ``volatility_burst``, each lasting days to
  weeks with crypto-like daily volatility (1.8 % to 5.5 %). Pure random walks would give every strategy a
  zero edge; regimes give trend followers and mean reverters something real to find, and :meth:`regimes`
  exposes the ground truth so tests can check that they do. Trend regimes are chosen less often in the
  direction the price is already stretched (relative to a symbol-dependent base price), which keeps prices
  within a plausible band for decades without diluting the drift inside a trend.

* **Determinism that ignores the request.** A bar at time ``t`` depends only on ``(seed, symbol, timeframe,
  t)``: fetching January-March and then February alone gives identical February rows, and a nightly refresh
  never rewrites history. Randomness is *counter based* (SplitMix64 over ``key + counter``, keys from
  ``hashlib.blake2b``, never Python's salted ``hash()``): draw ``j`` of day ``d`` is a pure function of
  ``(key, d, j)``, so any slice of days is generated directly, vectorised, without seeding one
  ``numpy.Generator`` per day or replaying the stream from the origin.

* **One path, many resolutions.** The daily log closes (from 2015-01-01 UTC, a Thursday, so week bars on
  the epoch grid line up with the origin) are refined by Brownian bridges: 24 hourly closes per day, then 60
  minute closes per hour. Every timeframe reads the same path, so closes agree across timeframes (the 1m
  close at 04:00 equals the 1h and 4h closes there) and volumes add up (the 1m volumes of a day sum to its
  1d volume). Highs and lows come from the exact distribution of a Brownian bridge's maximum/minimum
  between a bar's open and close, sampled per hour (for 1h and up, so 4h/1d/1w highs are the max of their
  hours) or per minute (for 1m-30m). The one seam: a 1h high is not the max of that hour's 1m highs
  (making it so would mean simulating every minute of a year to serve a year of 1h bars, ~20x slower).
  Intraday volatility follows the day's regime. Opens are the previous close, bit for bit.

* **Only completed bars.** :meth:`SyntheticMarket.fetch` never returns the bar still forming at ``now``,
  like a well-behaved exchange client, so a nightly run and a rerun a minute later agree.

The market opens at 2015-01-01 00:00 UTC; nothing exists before (a request starting earlier gets bars from
the origin on, as for a newly listed pair).
"""

from __future__ import annotations

import hashlib
import math
import operator
import re
import time
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

import numpy as np
import polars as pl

from ..errors import MaestroError
from ..schema import conform, empty_bars
from ..timeframes import DAY_MS, HOUR_MS, MINUTE_MS, floor_to_bar, timeframe_ms
from .source import MarketSource

__all__ = ["ORIGIN_MS", "REGIMES", "SyntheticMarket"]

#: 2015-01-01 00:00 UTC: the first bar of every synthetic series (aligned to the 1m..1d and 1w grids).
ORIGIN_MS = 1_420_070_400_000
_ORIGIN_DATE = date(2015, 1, 1)

#: Regime names, in the order of the integer codes used internally.
REGIMES: tuple[str, ...] = ("trend_up", "trend_down", "range", "volatility_burst")
_UP, _DOWN, _RANGE, _BURST = range(4)

# Daily log-return drift and volatility per regime. Trends drift ~0.45 %/day (about +15 % over a typical
# three-week trend), bursts are vol only; all within crypto's 1.5-6 % daily vol.
_MU = (0.0045, -0.0050, 0.0, 0.0)
_SIGMA = (0.025, 0.030, 0.018, 0.055)
#: Mean regime lengths in days (daily stay probability is 1 - 1/length): days to weeks.
_MEAN_DAYS = (21.0, 14.0, 25.0, 5.0)
_P_STAY = tuple(1.0 - 1.0 / m for m in _MEAN_DAYS)
#: Where a regime goes when it ends (rows: from, columns: to; diagonals are 0).
_NEXT = (
    (0.00, 0.25, 0.50, 0.25),
    (0.20, 0.00, 0.50, 0.30),
    (0.35, 0.35, 0.00, 0.30),
    (0.30, 0.30, 0.40, 0.00),
)
#: Pull of a range regime towards the level where it began (per day; half-life ~5.5 days).
_RANGE_KAPPA = 0.12
#: How strongly a stretched price (log distance from its base) tilts the choice of the next trend.
_TREND_TILT = 1.0
#: Volume multiplier per regime (bursts trade most, ranges least).
_VOLUME_MULT = (1.1, 1.4, 0.8, 2.5)

_HOURS = 24
_MINUTES = 60

# Base price (in USD) and daily traded notional (USD) of a few well-known assets; other assets get
# hash-derived ones. A pair's price is base(BASE) / base(QUOTE), so ETH/BTC sits near 0.07.
_KNOWN_ASSETS: dict[str, tuple[float, float]] = {
    "BTC": (30_000.0, 1.5e9),
    "ETH": (2_000.0, 8e8),
    "BNB": (300.0, 1.5e8),
    "SOL": (60.0, 3e8),
    "XRP": (0.5, 2e8),
    "DOGE": (0.08, 1.5e8),
}
_USD_LIKE = frozenset({"USD", "USDT", "USDC", "BUSD", "DAI", "FDUSD", "TUSD", "USDP"})

_SYMBOL_RE = re.compile(r"^([A-Z0-9]{1,20})/([A-Z0-9]{1,20})(?::([A-Z0-9]{1,20})(?:-[0-9]{6})?)?$")

_DAYS_BLOCK = 2048  # the daily path is computed (and cached) in whole blocks of days


# --------------------------------------------------------------------------- counter-based randomness

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_U32 = 1.0 / 4294967296.0
_LOW32 = np.uint64(0xFFFFFFFF)


class _Stream:
    """Random access to one stream of 64-bit words: word ``i`` is SplitMix64's output for state
    ``key + (i + 1) * gamma``, so draws are addressed by position (day x per-day slot), not by call order.

    Each word yields two 32-bit uniforms (plenty for simulation: normals reach |z| of about 6.7, exponentials
    about 22) which keeps the generator cheap: ~0.5 words per normal, one word per pair of exponentials.
    The key comes from blake2b of (seed, symbol, purpose), stable across processes and Python versions.
    """

    def __init__(self, seed: int, symbol: str, purpose: str):
        digest = hashlib.blake2b(f"maestro-synthetic|{seed}|{symbol}|{purpose}".encode(), digest_size=8).digest()
        self.key = np.uint64(int.from_bytes(digest, "little"))

    def words(self, start: int, count: int) -> np.ndarray:
        z = np.arange(start + 1, start + count + 1, dtype=np.uint64)
        z *= _GAMMA  # uint64 array arithmetic wraps modulo 2**64, as SplitMix64 wants
        z += self.key
        z ^= z >> np.uint64(30)
        z *= _M1
        z ^= z >> np.uint64(27)
        z *= _M2
        z ^= z >> np.uint64(31)
        return z

    def uniform_pairs(self, start: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Two independent uniforms in (0, 1) per position ``start..start+count-1``."""
        w = self.words(start, count)
        hi = ((w >> np.uint64(32)).astype(np.float64) + 0.5) * _U32
        lo = ((w & _LOW32).astype(np.float64) + 0.5) * _U32
        return hi, lo

    def normals(self, start: int, count: int) -> np.ndarray:
        """Standard normals at positions ``start..start+count-1`` (Box-Muller, both outputs of a word used)."""
        p0, p1 = start // 2, (start + count + 1) // 2
        u1, u2 = self.uniform_pairs(p0, p1 - p0)
        radius = np.sqrt(-2.0 * np.log(u1))
        angle = (2.0 * math.pi) * u2
        out = np.empty(2 * (p1 - p0))
        np.multiply(radius, np.cos(angle), out=out[0::2])
        np.multiply(radius, np.sin(angle), out=out[1::2])
        off = start - 2 * p0
        return out[off : off + count]

    def exponential_pairs(self, start: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        u1, u2 = self.uniform_pairs(start, count)
        return -np.log(u1), -np.log(u2)


# --------------------------------------------------------------------------- symbols and base levels


def _parse_symbol(symbol: object) -> tuple[str, str]:
    if not isinstance(symbol, str) or not (m := _SYMBOL_RE.match(symbol)):
        raise MaestroError(
            f"synthetic market: symbol {symbol!r} is not a ccxt symbol; write BASE/QUOTE in capitals, "
            "e.g. BTC/USDT or BTC/USDT:USDT"
        )
    return m.group(1), m.group(2)


def _hash_unit(*parts: object) -> float:
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "little") >> 11) / 9007199254740992.0


def _asset_usd(asset: str) -> tuple[float, float]:
    """(price, daily notional) in USD: known table, 1 for USD stablecoins, else log-uniform from the name."""
    if asset in _USD_LIKE:
        return 1.0, 5e9
    if asset in _KNOWN_ASSETS:
        return _KNOWN_ASSETS[asset]
    price = math.exp(math.log(0.05) + _hash_unit("price", asset) * math.log(200.0 / 0.05))
    notional = math.exp(math.log(5e6) + _hash_unit("notional", asset) * math.log(5e8 / 5e6))
    return price, notional


def _base_levels(symbol: str) -> tuple[float, float]:
    """(base price, daily notional in quote units) of a pair; the seed does not move them.

    Only the level is shared: every symbol string has its own path, so BTC/USDT:USDT (perpetual) is not a
    copy of BTC/USDT (spot). Sources and instruments are never stitched together, so nothing needs them to be.
    """
    base, quote = _parse_symbol(symbol)
    base_px, base_notional = _asset_usd(base)
    quote_px, quote_notional = _asset_usd(quote)
    return base_px / quote_px, min(base_notional, quote_notional) / quote_px


# --------------------------------------------------------------------------- the daily path


@dataclass(frozen=True)
class _DailyPath:
    """Days ``0..n-1`` from the origin: log open/close, regime code, volatility and volume (base units)."""

    log_open: np.ndarray
    log_close: np.ndarray
    regime: np.ndarray
    sigma: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return len(self.log_close)


@lru_cache(maxsize=64)
def _daily_path(seed: int, symbol: str, n_days: int) -> _DailyPath:
    """Simulate the regime chain and daily log closes for the first ``n_days`` days.

    Every draw is keyed by its day, so a longer path extends a shorter one exactly (the cache can grow
    without changing history). The chain is sequential (ranges revert to their entry level, the next trend
    depends on the price), so this is a plain loop: ~2 µs a day, cached per (seed, symbol, block).
    """
    base_px, notional = _base_levels(symbol)
    u_stay, u_next = (u.tolist() for u in _Stream(seed, symbol, "d.regime").uniform_pairs(0, n_days))
    shocks = _Stream(seed, symbol, "d.z").normals(0, n_days).tolist()

    x_base = math.log(base_px)
    x = x_base
    r = _RANGE
    anchor = x
    log_close = [0.0] * n_days
    regime = [0] * n_days
    for i in range(n_days):
        if i > 0 and u_stay[i] >= _P_STAY[r]:
            tilt = math.exp(_TREND_TILT * (x - x_base))
            w = list(_NEXT[r])
            w[_UP] /= tilt
            w[_DOWN] *= tilt
            pick = u_next[i] * (w[0] + w[1] + w[2] + w[3])
            nxt = 3
            for j in range(3):
                pick -= w[j]
                if pick < 0.0:
                    nxt = j
                    break
            if nxt == r:  # only reachable through rounding; stay rather than "switch" to itself
                nxt = _RANGE if r != _RANGE else _BURST
            r = nxt
            if r == _RANGE:
                anchor = x
        drift = _MU[r] + (_RANGE_KAPPA * (anchor - x) if r == _RANGE else 0.0)
        x = x + drift + _SIGMA[r] * shocks[i]
        log_close[i] = x
        regime[i] = r

    close = np.asarray(log_close)
    code = np.asarray(regime, dtype=np.int8)
    sigma = np.asarray(_SIGMA)[code]
    log_open = np.concatenate(([x_base], close[:-1]))
    ret = close - log_open
    # Volume: regime level x noise x (1 + size of the move in sigmas); notional / price gives base units.
    noise = _Stream(seed, symbol, "d.vol").normals(0, n_days)
    volume = (
        notional
        * np.asarray(_VOLUME_MULT)[code]
        * np.exp(0.3 * noise)
        * (1.0 + 0.5 * np.abs(ret) / sigma)
        / np.exp(close)
    )
    for arr in (log_open, close, code, sigma, volume):
        arr.flags.writeable = False
    return _DailyPath(log_open, close, code, sigma, volume)


def _path_through(seed: int, symbol: str, last_day: int) -> _DailyPath:
    n = (last_day // _DAYS_BLOCK + 1) * _DAYS_BLOCK
    return _daily_path(seed, symbol, n)


# --------------------------------------------------------------------------- intraday refinement


def _bridge(log_open: np.ndarray, log_close: np.ndarray, step_sd: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Brownian bridges (one per row) from ``log_open`` to ``log_close``: the log closes of each sub-step.

    The last column is set to ``log_close`` exactly, so sub-bars chain into their parent bit for bit.
    """
    n = z.shape[1]
    walk = np.cumsum(z * step_sd[:, None], axis=1)
    frac = np.arange(1, n + 1, dtype=np.float64) / n
    out = log_open[:, None] + walk - frac[None, :] * (walk[:, -1:] - (log_close - log_open)[:, None])
    out[:, -1] = log_close
    return out


def _extremes(
    stream: _Stream, start: int, lo: np.ndarray, lc: np.ndarray, sd: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Log high/low of Brownian bridges from ``lo`` to ``lc`` with variance ``sd**2``, sampled exactly.

    For a bridge with net move b, P(max > m) = exp(-2 m (m - b) / sd^2), so max = (b + sqrt(b^2 + 2 sd^2 E)) / 2
    with E ~ Exp(1) (the min mirrors it). This guarantees high >= max(open, close) and low <= min(open, close).
    """
    b = lc - lo
    var2 = 2.0 * sd * sd
    e_hi, e_lo = (e.reshape(lo.shape) for e in stream.exponential_pairs(start, lo.size))
    high = lo + 0.5 * (b + np.sqrt(b * b + var2 * e_hi))
    low = lo + 0.5 * (b - np.sqrt(b * b + var2 * e_lo))
    return np.maximum(high, np.maximum(lo, lc)), np.minimum(low, np.minimum(lo, lc))


def _split_volume(total: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Share each row's ``total`` across its columns in proportion to ``weights`` (sums are preserved)."""
    return total[:, None] * (weights / weights.sum(axis=1, keepdims=True))


@dataclass(frozen=True)
class _Level:
    """Bars of one resolution for whole days, flattened in time order: log open/high/low/close and volume."""

    log_open: np.ndarray
    log_high: np.ndarray
    log_low: np.ndarray
    log_close: np.ndarray
    volume: np.ndarray


#: Hour-of-day activity (peaks around 15:00 UTC, when Europe and the US overlap).
_HOUR_PROFILE = 1.0 + 0.35 * np.cos(2.0 * math.pi * (np.arange(_HOURS) - 15.0) / _HOURS)


def _hours(seed: int, symbol: str, path: _DailyPath, d0: int, d1: int) -> tuple[_Level, np.ndarray]:
    """Hourly bars of days ``d0..d1-1`` (and their per-hour step volatility, shaped (days, 1))."""
    start, n = d0 * _HOURS, (d1 - d0) * _HOURS  # stream positions: hour h of day d is d * 24 + h
    day_open, day_close = path.log_open[d0:d1], path.log_close[d0:d1]
    sd = (path.sigma[d0:d1] / math.sqrt(_HOURS))[:, None]
    z = _Stream(seed, symbol, "h.z").normals(start, n).reshape(-1, _HOURS)
    close = _bridge(day_open, day_close, sd[:, 0], z)
    open_ = np.concatenate((day_open[:, None], close[:, :-1]), axis=1)
    high, low = _extremes(_Stream(seed, symbol, "h.ext"), start, open_, close, sd)
    noise = _Stream(seed, symbol, "h.vol").normals(start, n).reshape(-1, _HOURS)
    weights = _HOUR_PROFILE[None, :] * np.exp(0.35 * noise) * (1.0 + 0.6 * np.abs(close - open_) / sd)
    volume = _split_volume(path.volume[d0:d1], weights)
    level = _Level(open_.ravel(), high.ravel(), low.ravel(), close.ravel(), volume.ravel())
    return level, sd


def _minutes(seed: int, symbol: str, path: _DailyPath, d0: int, d1: int) -> _Level:
    """Minute bars of days ``d0..d1-1``: a bridge inside every hour of the hourly path."""
    hours, hour_sd = _hours(seed, symbol, path, d0, d1)
    start, n = d0 * _HOURS * _MINUTES, (d1 - d0) * _HOURS * _MINUTES  # one row per hour
    sd = np.repeat(hour_sd[:, 0], _HOURS)[:, None] / math.sqrt(_MINUTES)
    z = _Stream(seed, symbol, "m.z").normals(start, n).reshape(-1, _MINUTES)
    close = _bridge(hours.log_open, hours.log_close, sd[:, 0], z)
    open_ = np.concatenate((hours.log_open[:, None], close[:, :-1]), axis=1)
    high, low = _extremes(_Stream(seed, symbol, "m.ext"), start, open_, close, sd)
    noise = _Stream(seed, symbol, "m.vol").normals(start, n).reshape(-1, _MINUTES)
    weights = np.exp(0.5 * noise) * (1.0 + 0.6 * np.abs(close - open_) / sd)
    volume = _split_volume(hours.volume, weights)
    return _Level(open_.ravel(), high.ravel(), low.ravel(), close.ravel(), volume.ravel())


def _days(seed: int, symbol: str, path: _DailyPath, d0: int, d1: int) -> _Level:
    """Daily bars of days ``d0..d1-1``; highs/lows are the extremes of their hours."""
    hours, _ = _hours(seed, symbol, path, d0, d1)
    return _Level(
        path.log_open[d0:d1],
        hours.log_high.reshape(-1, _HOURS).max(axis=1),
        hours.log_low.reshape(-1, _HOURS).min(axis=1),
        path.log_close[d0:d1],
        path.volume[d0:d1],
    )


def _aggregate(level: _Level, k: int, first: int, count: int) -> dict[str, np.ndarray]:
    """Bars ``first..first+count-1`` of ``level`` grouped ``k`` at a time, as OHLCV prices."""
    sl = slice(first * k, (first + count) * k)

    def grouped(a: np.ndarray) -> np.ndarray:
        return a[sl].reshape(count, k)

    if k == 1:
        out = {
            "open": level.log_open[sl],
            "high": level.log_high[sl],
            "low": level.log_low[sl],
            "close": level.log_close[sl],
            "volume": level.volume[sl],
        }
    else:
        out = {
            "open": grouped(level.log_open)[:, 0],
            "high": grouped(level.log_high).max(axis=1),
            "low": grouped(level.log_low).min(axis=1),
            "close": grouped(level.log_close)[:, -1],
            "volume": grouped(level.volume).sum(axis=1),
        }
    prices = {c: np.exp(out[c]) for c in ("open", "high", "low", "close")}
    return {**prices, "volume": np.ascontiguousarray(out["volume"], dtype=np.float64)}


# --------------------------------------------------------------------------- public API


def _as_int(value: object, what: str) -> int:
    """Plain ints and numpy integers; bools, floats and strings are refused rather than silently converted."""
    if isinstance(value, bool):
        raise MaestroError(f"synthetic market: {what}, got {value!r}")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise MaestroError(f"synthetic market: {what}, got {value!r}") from None


class SyntheticMarket(MarketSource):
    """A deterministic, offline market with regime switches; same interface as the exchange sources.

    ``seed`` picks the universe (every symbol's path depends on it); ``now_ms`` pins the clock (tests,
    reproducible demos), ``None`` reads the wall clock at each call so a nightly job sees new bars.
    """

    SOURCE = "synthetic"

    def __init__(self, seed: int = 7, now_ms: int | None = None):
        self.seed = _as_int(seed, "seed must be an integer")
        self.now_ms = None if now_ms is None else _as_int(now_ms, "now_ms must be Unix milliseconds or None")

    def __repr__(self) -> str:
        return f"SyntheticMarket(seed={self.seed}, now_ms={self.now_ms})"

    def _now(self) -> int:
        return self.now_ms if self.now_ms is not None else time.time_ns() // 1_000_000

    def last_closed_bar_ms(self, timeframe: str) -> int:
        """Open time of the newest bar that has completed at ``now`` (the one before the bar now forming)."""
        return floor_to_bar(self._now(), timeframe) - timeframe_ms(timeframe)

    def fetch(self, symbol: str, timeframe: str, since_ms: int, until_ms: int) -> pl.DataFrame:
        """Completed bars with open time in ``[since_ms, until_ms)`` on the epoch-aligned grid, bar schema."""
        tf = timeframe_ms(timeframe)
        _parse_symbol(symbol)
        start = max(int(since_ms), ORIGIN_MS)
        start = -(-start // tf) * tf  # first grid point at or after start
        end = min(int(until_ms), floor_to_bar(self._now(), timeframe))  # opens before this have closed
        if start >= end:
            return empty_bars()
        count = (end - start + tf - 1) // tf
        d0 = (start - ORIGIN_MS) // DAY_MS
        path = _path_through(self.seed, symbol, (start + count * tf - 1 - ORIGIN_MS) // DAY_MS)

        if tf >= DAY_MS:
            k = tf // DAY_MS
            level = _days(self.seed, symbol, path, d0, d0 + count * k)
            bars = _aggregate(level, k, 0, count)
        else:
            d1 = (start + count * tf - 1 - ORIGIN_MS) // DAY_MS + 1
            if tf >= HOUR_MS:
                level, _ = _hours(self.seed, symbol, path, d0, d1)
                unit = HOUR_MS
            else:
                level = _minutes(self.seed, symbol, path, d0, d1)
                unit = MINUTE_MS
            k = tf // unit
            first = (start - (ORIGIN_MS + d0 * DAY_MS)) // tf
            bars = _aggregate(level, k, first, count)

        timestamps = start + tf * np.arange(count, dtype=np.int64)
        return conform(pl.DataFrame({"timestamp": timestamps, **bars}), self.SOURCE)

    def regimes(self, symbol: str, since_ms: int, until_ms: int) -> pl.DataFrame:
        """Ground-truth regime of each completed UTC day starting in ``[since_ms, until_ms)``: day, regime.

        Only completed days, like ``fetch(..., "1d", ...)``, so it never tells more than the bars do.
        """
        _parse_symbol(symbol)
        start = max(int(since_ms), ORIGIN_MS)
        start = -(-start // DAY_MS) * DAY_MS
        end = min(int(until_ms), floor_to_bar(self._now(), "1d"))
        if start >= end:
            return pl.DataFrame(schema={"day": pl.Date(), "regime": pl.String()})
        d0 = (start - ORIGIN_MS) // DAY_MS
        d1 = (end - 1 - ORIGIN_MS) // DAY_MS + 1
        path = _path_through(self.seed, symbol, d1 - 1)
        names = np.asarray(REGIMES, dtype=object)[path.regime[d0:d1]]
        return pl.DataFrame(
            {
                "day": pl.date_range(
                    _ORIGIN_DATE + timedelta(days=d0), _ORIGIN_DATE + timedelta(days=d1 - 1), "1d", eager=True
                ),
                "regime": pl.Series(names.tolist(), dtype=pl.String()),
            }
        )


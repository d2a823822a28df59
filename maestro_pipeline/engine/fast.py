"""The compiled engine's Python API: checked inputs, one backtest or a grid of them, through :mod:`.nb`.

:func:`simulate` is ``reference.run_backtest`` (all-in sizing) on arrays; :func:`evaluate_fast` is
``reference.evaluate`` (signals with warm-up from before the window); :func:`grid_returns` runs many parameter
sets sharing indicators (``Strategy.signals_batch``) in one compiled call.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, MaestroError
from ..strategies import Strategy
from .nb import pack_nb, sim_col_nb, sim_grid_nb
from .reference import Costs

__all__ = ["bar_arrays", "evaluate_fast", "grid_returns", "simulate"]

# ----------------------------------------------------------------------------- input checks


def _check_costs(fee: float, slippage: float, init_cash: float) -> tuple[float, float, float]:
    for name, v in (("fee", fee), ("slippage", slippage)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating)) or not (math.isfinite(v) and 0 <= v < 1):
            raise MaestroError(f"{name}={v!r} must be a fraction in [0, 1), e.g. 0.001 for 10 bp")
    if isinstance(init_cash, bool) or not isinstance(init_cash, (int, float, np.floating)) \
            or not (math.isfinite(init_cash) and init_cash > 0):
        raise MaestroError(f"init_cash={init_cash!r} must be a positive number")
    return float(fee), float(slippage), float(init_cash)


def _check_prices(open_: np.ndarray, close: np.ndarray, start: int) -> None:
    ow, cw = open_[start:], close[start:]
    if not (np.isfinite(ow).all() and np.isfinite(cw).all() and ow.min() > 0 and cw.min() > 0):
        raise DataError("bars have missing or non-positive open/close prices in the backtest window: "
                        "clean the data first")


def _check_rate(rate: np.ndarray) -> None:
    if np.isinf(rate).any():
        raise DataError("funding_rate has infinite values: use NaN for bars without a settlement")


def _float_array(a: Any, name: str, n: int | None = None) -> np.ndarray:
    arr = np.ascontiguousarray(a, dtype=np.float64)
    if arr.ndim != 1 or (n is not None and arr.shape[0] != n):
        want = f"({n},)" if n is not None else "1-D"
        raise MaestroError(f"{name} has shape {arr.shape}, expected {want}: pass one value per bar")
    return arr


_SIGNAL_NAMES = ("long_entries", "long_exits", "short_entries", "short_exits")


def _bool_array(a: Any, name: str, n: int) -> np.ndarray:
    arr = np.asarray(a)
    if arr.shape != (n,):
        raise MaestroError(f"{name} has shape {arr.shape}, expected ({n},) to match the bars: one flag per bar")
    return np.ascontiguousarray(arr, dtype=np.bool_)


# ----------------------------------------------------------------------------- public API: backtests


def simulate(
    open_: np.ndarray,
    close: np.ndarray,
    long_entries: np.ndarray,
    long_exits: np.ndarray,
    short_entries: np.ndarray,
    short_exits: np.ndarray,
    start: int,
    fee: float,
    slippage: float,
    init_cash: float = 10_000.0,
    funding_rate: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """``run_backtest(bars, signals, Costs(fee, slippage), start=start)`` (all-in) as (returns, n_trades).

    All arrays have one value per bar; a signal at bar ``t`` fills at ``open[t+1]``, signals before ``start``
    are ignored, and ``returns`` covers bars ``[start:]`` (funding payments included when ``funding_rate`` is
    given: NaN = no settlement). ``n_trades`` equals ``len(run_backtest(...).trades)``.
    """
    open_ = _float_array(open_, "open")
    n = open_.shape[0]
    close = _float_array(close, "close", n)
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or not 0 <= start < n:
        raise MaestroError(f"backtest start {start!r} is outside the {n} bars given: use an integer 0 <= start < {n}")
    start = int(start)
    fee, slippage, init_cash = _check_costs(fee, slippage, init_cash)
    sigs = [_bool_array(a, name, n) for a, name in zip(
        (long_entries, long_exits, short_entries, short_exits), _SIGNAL_NAMES, strict=True)]
    _check_prices(open_, close, start)
    if funding_rate is None:
        rate_w, has_rate = np.empty(0), False
    else:
        rate_w = _float_array(funding_rate, "funding_rate", n)[start:]
        _check_rate(rate_w)
        has_rate = True
    out = np.empty(n - start)
    n_trades = sim_col_nb(open_[start:], close[start:], rate_w, has_rate, *sigs, start, fee, slippage, init_cash, out)
    return out, int(n_trades)


def bar_arrays(bars: pd.DataFrame) -> dict[str, np.ndarray]:
    """The float64 columns the fast path reads (``open``, ``close`` and ``funding_rate`` when present).

    Extract them once and pass them as ``arrays=`` to :func:`evaluate_fast` in a loop over trials.
    """
    missing = [c for c in ("open", "close") if c not in bars.columns]
    if missing:
        raise DataError(f"bars lack the {', '.join(missing)} column(s): pass OHLCV bars (schema.to_pandas_bars)")
    out = {c: bars[c].to_numpy(dtype=np.float64) for c in ("open", "close")}
    if "funding_rate" in bars.columns:
        out["funding_rate"] = bars["funding_rate"].to_numpy(dtype=np.float64)
    return out


def _resolve_arrays(bars: pd.DataFrame, arrays: Mapping[str, np.ndarray] | None) -> Mapping[str, np.ndarray]:
    if arrays is None:
        return bar_arrays(bars)
    n = len(bars)
    for key in ("open", "close"):
        if key not in arrays:
            raise MaestroError(f"arrays lacks {key!r}: build it with fastpath.bar_arrays(bars)")
    if ("funding_rate" in arrays) != ("funding_rate" in bars.columns):
        raise MaestroError("arrays and bars disagree on funding_rate: build arrays with fastpath.bar_arrays(bars)")
    for key, a in arrays.items():
        if np.shape(a) != (n,):
            raise MaestroError(f"arrays[{key!r}] has shape {np.shape(a)}, expected ({n},): build it from these bars")
    return arrays


def _window(bars: pd.DataFrame, start: int, end: int) -> None:
    n = len(bars)
    if not all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in (start, end)) \
            or not 0 <= start < end <= n:
        raise MaestroError(f"window [{start}, {end}) is not inside the {n} bars: use 0 <= start < end <= {n}")


def evaluate_fast(
    bars: pd.DataFrame,
    strategy: Strategy,
    params: Mapping[str, Any] | None,
    start: int,
    end: int,
    costs: Costs,
    *,
    arrays: Mapping[str, np.ndarray] | None = None,
    init_cash: float = 10_000.0,
) -> tuple[np.ndarray, int]:
    """``backtest.evaluate`` through :func:`simulate`: (returns of bars ``[start, end)``, n_trades).

    Signals are computed on ``bars[max(0, start - warmup) : end]`` exactly as ``evaluate`` does; ``arrays``
    (from :func:`bar_arrays`) skips the per-call pandas column extraction.
    """
    _window(bars, start, end)
    arr = _resolve_arrays(bars, arrays)
    params = strategy.check(params)
    lo = max(0, start - int(strategy.warmup(params)))
    signals = strategy.signals(bars.iloc[lo:end], params)
    rate = arr.get("funding_rate")
    return simulate(arr["open"][lo:end], arr["close"][lo:end], *signals.arrays(), start - lo, costs.fee,
                    costs.slippage, init_cash, None if rate is None else rate[lo:end])


def grid_returns(
    bars: pd.DataFrame,
    strategy: Strategy,
    params_list: Sequence[Mapping[str, Any]],
    start: int,
    end: int,
    costs: Costs,
    *,
    init_cash: float = 10_000.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Backtest many parameter sets: (returns [end - start bars, n_params], n_trades [n_params]).

    Column ``k`` equals ``evaluate_fast(bars, strategy, params_list[k], start, end, costs)``. Parameter sets
    sharing a warm-up start get their signals from one ``strategy.signals_batch`` call (shared indicators);
    all backtests then run in one single-threaded compiled call.
    """
    _window(bars, start, end)
    if len(params_list) == 0:
        raise MaestroError("params_list is empty: pass at least one parameter set")
    fee, slippage, init_cash = _check_costs(costs.fee, costs.slippage, init_cash)
    arr = bar_arrays(bars)
    _check_prices(arr["open"][:end], arr["close"][:end], start)
    rate = arr.get("funding_rate")
    if rate is not None:
        rate = np.ascontiguousarray(rate[start:end])
        _check_rate(rate)
    checked = [strategy.check(p) for p in params_list]
    groups: dict[int, list[int]] = {}  # history start -> indexes of the parameter sets starting there
    for k, p in enumerate(checked):
        groups.setdefault(max(0, start - int(strategy.warmup(p))), []).append(k)
    m, n_params = end - start, len(checked)
    codes = np.empty((n_params, m), dtype=np.uint8)
    dest = np.empty(n_params, dtype=np.int64)  # codes row -> output column
    row = 0
    for lo, idx in groups.items():
        batch = strategy.signals_batch(bars.iloc[lo:end], [checked[k] for k in idx])
        if len(batch) != len(idx):
            raise MaestroError(f"strategy {strategy.name!r}: signals_batch returned {len(batch)} signal sets for "
                               f"{len(idx)} parameter sets: return one per parameter set")
        for k, sig in zip(idx, batch, strict=True):
            arrays = [_bool_array(a, f"signals_batch {name}", end - lo)
                      for a, name in zip(sig.arrays(), _SIGNAL_NAMES, strict=True)]
            pack_nb(*arrays, start - lo, codes[row])
            dest[row] = k
            row += 1
    out = np.empty((n_params, m))
    n_trades = np.zeros(n_params, dtype=np.int64)
    rate_w, has_rate = (rate, True) if rate is not None else (np.empty(0), False)
    sim_grid_nb(np.ascontiguousarray(arr["open"][start:end]), np.ascontiguousarray(arr["close"][start:end]), rate_w,
              has_rate, codes, dest, fee, slippage, init_cash, out, n_trades)
    return out.T, n_trades


"""The compiled engine's Python API: checked inputs, one backtest or a grid of them, through the numba kernels.

:func:`backtest_fast` is ``reference.run_backtest`` on arrays — returns, trades, exit reasons and ruin, equal to the
vectorbt reference (tested) — and :func:`simulate` its (returns, n_trades) form; :func:`evaluate_fast` is
``reference.evaluate`` (signals with warm-up from before the window); :func:`grid_returns` runs many parameter sets
sharing indicators (``Strategy.signals_batch``). A backtest with no stop armed and all-in sizing (a long-only
window, say) runs the signal-only kernel of :mod:`.nb`, which visits only the bars with a signal; anything else
(a short, which always carries its liquidation level, any stop, fractional sizing) runs :mod:`.nb_stops`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, MaestroError
from ..strategies import Strategy
from ..strategies._indicators import atr
from .exits import EXIT_REASONS
from .nb import pack_nb, sim_col_nb, sim_grid_nb
from .nb_stops import sim_stops_nb
from .risk import DEFAULT_MAINTENANCE_MARGIN, NO_RISK, Costs, RiskSpec, liquidation_fraction, plan_risk

__all__ = ["FastRun", "backtest_fast", "bar_arrays", "evaluate_fast", "evaluate_fast_run", "grid_returns", "simulate"]

@dataclass(frozen=True, eq=False)
class FastRun:
    """One compiled backtest: per-bar returns of the window, trades, trades per exit reason, the ruin bar."""

    returns: np.ndarray
    n_trades: int
    exits: dict[str, int]
    ruin: int = -1             # window bar at which the account was wiped out, -1 if never

    @property
    def ruined(self) -> bool:
        return self.ruin >= 0


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


def _fills(signal: np.ndarray, start: int) -> np.ndarray:
    out = np.zeros(signal.shape[0] - start, dtype=np.bool_)
    out[1:] = signal[start:-1]
    return out


def backtest_fast(
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
    *,
    high: np.ndarray | None = None,
    low: np.ndarray | None = None,
    risk: RiskSpec = NO_RISK,
    maintenance_margin: float = DEFAULT_MAINTENANCE_MARGIN,
    atr_values: np.ndarray | None = None,
) -> FastRun:
    """``run_backtest(bars, signals, Costs(fee, slippage, maintenance_margin), start=start, risk=risk)`` on arrays.

    All arrays have one value per bar; a signal at bar ``t`` fills at ``open[t+1]``, signals before ``start``
    are ignored, and ``returns`` covers bars ``[start:]`` (funding payments included when ``funding_rate`` is
    given: NaN = no settlement). ``high``/``low`` default to max/min of open and close, as in the reference.
    """
    open_ = _float_array(open_, "open")
    n = open_.shape[0]
    close = _float_array(close, "close", n)
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or not 0 <= start < n:
        raise MaestroError(f"backtest start {start!r} is outside the {n} bars given: use an integer 0 <= start < {n}")
    start = int(start)
    fee, slippage, init_cash = _check_costs(fee, slippage, init_cash)
    costs = Costs(fee, slippage, maintenance_margin)
    sigs = [_bool_array(a, name, n) for a, name in zip(
        (long_entries, long_exits, short_entries, short_exits), _SIGNAL_NAMES, strict=True)]
    _check_prices(open_, close, start)
    if funding_rate is None:
        rate_w, has_rate = np.empty(0), False
    else:
        rate_w = _float_array(funding_rate, "funding_rate", n)[start:]
        _check_rate(rate_w)
        has_rate = True
    high = np.maximum(open_, close) if high is None else _float_array(high, "high", n)
    low = np.minimum(open_, close) if low is None else _float_array(low, "low", n)
    if atr_values is not None:
        atr_values = _float_array(atr_values, "atr_values", n)
    return _run(open_, high, low, close, sigs, start, rate_w, has_rate, costs, init_cash, risk, atr_values)


def _plain_q(risk: RiskSpec, costs: Costs) -> float | None:
    """The all-in short's liquidation distance when the plain kernel may run (all in, no user stop), else None.

    The plain kernel watches that level and gives up (-1) on the first bar that reaches it; until then it and the
    stop kernel agree fill for fill, so the common case of the search — no stop fires — costs no stop logic."""
    if not risk.all_in or risk.stop_loss or risk.take_profit or risk.trailing_stop:
        return None
    return float(liquidation_fraction(1.0, float(costs.fee), float(costs.maintenance_margin)))


def _run(open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray, sigs: Sequence[np.ndarray],
         start: int, rate_w: np.ndarray, has_rate: bool, costs: Costs, init_cash: float, risk: RiskSpec,
         atr_values: np.ndarray | None = None) -> FastRun:
    """One backtest of checked arrays (see :func:`backtest_fast`)."""
    fee, slippage = float(costs.fee), float(costs.slippage)
    out = np.empty(open_.shape[0] - start)
    q = _plain_q(risk, costs)
    if q is not None:
        n_trades = sim_col_nb(open_[start:], high[start:], close[start:], rate_w, has_rate, *sigs, start, fee,
                              slippage, init_cash, q, out)
        if n_trades >= 0:
            return FastRun(out, int(n_trades), {}, -1)
    plan = plan_risk(open_, high, low, close, tuple(_fills(a, start) for a in sigs), start, risk, costs,
                     atr_values=atr_values)
    counts = np.zeros(len(EXIT_REASONS), dtype=np.int64)
    size = plan.size if plan.size is not None else np.empty(0)
    n_trades, ruin = sim_stops_nb(
        np.ascontiguousarray(open_[start:]), np.ascontiguousarray(high[start:]), np.ascontiguousarray(low[start:]),
        np.ascontiguousarray(close[start:]), rate_w, has_rate, plan.le, plan.lx, plan.se, plan.sx, size,
        plan.size is None, plan.sl, plan.trail, plan.tp, plan.liq, fee, slippage, init_cash, out, counts)
    return FastRun(out, int(n_trades), {r: int(c) for r, c in zip(EXIT_REASONS, counts, strict=True)}, int(ruin))


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
    **risk_args: Any,
) -> tuple[np.ndarray, int]:
    """:func:`backtest_fast` as (returns, n_trades); ``n_trades`` equals ``len(run_backtest(...).trades)``."""
    run = backtest_fast(open_, close, long_entries, long_exits, short_entries, short_exits, start, fee, slippage,
                        init_cash, funding_rate, **risk_args)
    return run.returns, run.n_trades


def bar_arrays(bars: pd.DataFrame, atr_window: int | None = None) -> dict[str, np.ndarray]:
    """The float64 columns the fast path reads (``open``, ``high``, ``low``, ``close``, and ``funding_rate`` when
    present; high/low default to max/min of open and close), plus ``atr_<window>`` when ``atr_window`` is given.

    Extract them once and pass them as ``arrays=`` to :func:`evaluate_fast` in a loop over trials. The ATR of the
    whole history equals the one of any window with its warm-up (each value is the plain mean of its own true
    ranges), so ATR stops read it instead of recomputing it per trial.
    """
    missing = [c for c in ("open", "close") if c not in bars.columns]
    if missing:
        raise DataError(f"bars lack the {', '.join(missing)} column(s): pass OHLCV bars (schema.to_pandas_bars)")
    out = {c: bars[c].to_numpy(dtype=np.float64) for c in ("open", "close")}
    out["high"] = bars["high"].to_numpy(dtype=np.float64) if "high" in bars.columns else np.maximum(out["open"],
                                                                                                      out["close"])
    out["low"] = bars["low"].to_numpy(dtype=np.float64) if "low" in bars.columns else np.minimum(out["open"],
                                                                                                   out["close"])
    if "funding_rate" in bars.columns:
        out["funding_rate"] = bars["funding_rate"].to_numpy(dtype=np.float64)
    if atr_window is not None:
        out[f"atr_{atr_window}"] = atr(out["high"], out["low"], out["close"], int(atr_window))
    return out


def _resolve_arrays(bars: pd.DataFrame, arrays: Mapping[str, np.ndarray] | None) -> Mapping[str, np.ndarray]:
    if arrays is None:
        return bar_arrays(bars)
    n = len(bars)
    for key in ("open", "high", "low", "close"):
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
    risk: RiskSpec = NO_RISK,
) -> tuple[np.ndarray, int]:
    """``reference.evaluate`` through :func:`backtest_fast`: (returns of bars ``[start, end)``, n_trades)."""
    run = evaluate_fast_run(bars, strategy, params, start, end, costs, arrays=arrays, init_cash=init_cash, risk=risk)
    return run.returns, run.n_trades


def evaluate_fast_run(
    bars: pd.DataFrame,
    strategy: Strategy,
    params: Mapping[str, Any] | None,
    start: int,
    end: int,
    costs: Costs,
    *,
    arrays: Mapping[str, np.ndarray] | None = None,
    init_cash: float = 10_000.0,
    risk: RiskSpec = NO_RISK,
) -> FastRun:
    """``reference.evaluate`` through :func:`backtest_fast`, with its exit reasons and ruin.

    Signals are computed on ``bars[max(0, start - warmup) : end]`` exactly as ``evaluate`` does; ``arrays``
    (from :func:`bar_arrays`) skips the per-call pandas column extraction.
    """
    _window(bars, start, end)
    arr = _resolve_arrays(bars, arrays)
    params = strategy.check(params)
    lo = max(0, start - max(int(strategy.warmup(params)), risk.lookback))
    signals = strategy.signals(bars.iloc[lo:end], params)
    rate = arr.get("funding_rate")
    atr_all = arr.get(f"atr_{risk.atr_window}") if risk.uses_atr else None
    return backtest_fast(arr["open"][lo:end], arr["close"][lo:end], *signals.arrays(), start - lo, costs.fee,
                         costs.slippage, init_cash, None if rate is None else rate[lo:end],
                         high=arr["high"][lo:end], low=arr["low"][lo:end], risk=risk,
                         maintenance_margin=costs.maintenance_margin,
                         atr_values=None if atr_all is None else atr_all[lo:end])


def grid_returns(
    bars: pd.DataFrame,
    strategy: Strategy,
    params_list: Sequence[Mapping[str, Any]],
    start: int,
    end: int,
    costs: Costs,
    *,
    init_cash: float = 10_000.0,
    risk: RiskSpec = NO_RISK,
) -> tuple[np.ndarray, np.ndarray]:
    """Backtest many parameter sets: (returns [end - start bars, n_params], n_trades [n_params]).

    Column ``k`` equals ``evaluate_fast(bars, strategy, params_list[k], start, end, costs, risk=risk)``. Parameter
    sets sharing a warm-up start get their signals from one ``strategy.signals_batch`` call (shared indicators).
    """
    _window(bars, start, end)
    if len(params_list) == 0:
        raise MaestroError("params_list is empty: pass at least one parameter set")
    _check_costs(costs.fee, costs.slippage, init_cash)
    arr = bar_arrays(bars)
    _check_prices(arr["open"][:end], arr["close"][:end], start)
    rate = arr.get("funding_rate")
    if rate is not None:
        _check_rate(rate[start:end])
    checked = [strategy.check(p) for p in params_list]
    groups: dict[int, list[int]] = {}  # history start -> indexes of the parameter sets starting there
    for k, p in enumerate(checked):
        groups.setdefault(max(0, start - max(int(strategy.warmup(p)), risk.lookback)), []).append(k)
    m, n_params = end - start, len(checked)
    out = np.empty((n_params, m))        # one contiguous row per parameter set, returned transposed
    n_trades = np.zeros(n_params, dtype=np.int64)
    q = _plain_q(risk, costs)
    rate_w = np.ascontiguousarray(rate[start:end]) if rate is not None else np.empty(0)
    window = {key: np.ascontiguousarray(arr[key][start:end]) for key in ("open", "high", "close")}
    for lo, idx in groups.items():
        batch = strategy.signals_batch(bars.iloc[lo:end], [checked[k] for k in idx])
        if len(batch) != len(idx):
            raise MaestroError(f"strategy {strategy.name!r}: signals_batch returned {len(batch)} signal sets for "
                               f"{len(idx)} parameter sets: return one per parameter set")
        sigs = [[_bool_array(a, f"signals_batch {name}", end - lo)
                 for a, name in zip(sig.arrays(), _SIGNAL_NAMES, strict=True)] for sig in batch]
        todo = list(range(len(idx)))
        if q is not None:  # every plain backtest of the group in one compiled call
            codes = np.empty((len(idx), m), dtype=np.uint8)
            for r, sg in enumerate(sigs):
                pack_nb(*sg, start - lo, codes[r])
            rows, got = np.empty((len(idx), m)), np.empty(len(idx), dtype=np.int64)
            sim_grid_nb(window["open"], window["high"], window["close"], rate_w, rate is not None, codes,
                        float(costs.fee), float(costs.slippage), float(init_cash), q, rows, got)
            out[idx] = rows
            n_trades[idx] = got
            todo = [r for r in todo if got[r] < 0]      # a short that reaches its liquidation level: stop kernel
        cols = {key: np.ascontiguousarray(arr[key][lo:end]) for key in ("open", "high", "low", "close")}
        for r in todo:
            run = _run(cols["open"], cols["high"], cols["low"], cols["close"], sigs[r], start - lo, rate_w,
                       rate is not None, costs, float(init_cash), risk)
            out[idx[r]] = run.returns
            n_trades[idx[r]] = run.n_trades
    return out.T, n_trades

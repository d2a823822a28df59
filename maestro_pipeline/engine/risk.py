"""Risk controls both engines apply identically: stops, margin and liquidation, sizing — as per-bar arrays.

The vectorbt reference and the compiled twin read the same float64 arrays, computed once here, so a stop level or
a position size can never differ between them by a rounding of their own:

* ``sl[i]``, ``tp[i]`` — the stop-loss / take-profit distance, as a fraction of the entry fill price, of a position
  whose entry fills at bar ``i`` (NaN = none); ``trail[i]`` — the stop loss trails the best high (long) / low (short)
  since the entry. A distance given as a multiple of ATR becomes ``k * ATR[i-1] / fill price``: the ATR of the bars
  before the fill, fixed for the trade.
* **Liquidation.** A short (the only position that borrows: longs never exceed cash) is closed when its equity falls
  to the maintenance margin ``m`` of its notional. With size fraction ``phi`` of equity, fee ``f`` and fill price
  ``pe`` that is the price ``pe * ((1 + f) / phi + 1 - f) / (1 + m)`` (for an all-in short ``2 pe / (1 + m)``: the
  entry fee cancels), i.e. the stop distance ``q = ((1 + f) / phi + 1 - f) / (1 + m) - 1``. It is folded into the
  stop loss: ``sl = min(user stop, q)`` — the tighter one binds. A trailing stop wider than ``q`` is capped at ``q``
  (it then trails from the best low, so it can only exit earlier than the true combination; stated in the report).
* **Sizing.** ``fraction``: each position is ``fraction`` of equity (1 = all in, the engine's plain mode). ``risk``:
  the position whose loss at its stop, fees included, is ``risk_per_trade`` of equity:
  ``phi = R (1 + f) / (d + f (2 - d))`` for a stop distance ``d``, capped at ``max_leverage``. vectorbt's cash
  account cannot borrow for a long, so ``max_leverage`` is at most 1 (:data:`MAX_LEVERAGE`).

With fractional sizing vectorbt cannot reverse a position in one order: an opposite entry closes at the next open
and the new position opens one bar later unless another signal arrives (:func:`plan_risk` does this for both).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..errors import MaestroError
from ..strategies._indicators import atr
from .nb_plan import NO_STOP, STOP_ATR, STOP_FRACTION, plan_nb

__all__ = ["DEFAULT_MAINTENANCE_MARGIN", "MAX_LEVERAGE", "NO_RISK", "Costs", "RiskPlan", "RiskSpec", "StopRule",
           "liquidation_fraction", "plan_risk"]

#: The most gross exposure / equity a position can open with: vectorbt's cash account cannot borrow for a long.
MAX_LEVERAGE = 1.0
#: Maintenance margin rate when ``costs`` names none: 0.5 % of notional (the first tier of major perpetual venues
#: is 0.4-0.5 %; spot margin accounts liquidate at a similar level).
DEFAULT_MAINTENANCE_MARGIN = 0.005


@dataclass(frozen=True)
class Costs:
    """Per-fill trading costs as fractions — ``fee`` of notional, ``slippage`` of price — and the maintenance margin
    rate at which a short is liquidated. The margin must cover the fee of the liquidating fill (``m >= fee``), so an
    intrabar liquidation never leaves equity below zero."""

    fee: float = 0.001
    slippage: float = 0.0005
    maintenance_margin: float = DEFAULT_MAINTENANCE_MARGIN

    @classmethod
    def of(cls, settings: Any) -> Costs:
        """The costs of a settings object with ``fee``, ``slippage`` and ``maintenance_margin`` (``maestro.yaml``'s
        ``costs`` entries: ``MaestroConfig.costs_for(exchange)``)."""
        return cls(settings.fee, settings.slippage, settings.maintenance_margin)

    def __post_init__(self) -> None:
        for name in ("fee", "slippage", "maintenance_margin"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or not 0 <= v < 1:
                raise MaestroError(f"costs.{name}={v!r} must be a fraction in [0, 1), e.g. 0.001 for 10 bp")
        if self.maintenance_margin < self.fee:
            raise MaestroError(
                f"costs.maintenance_margin={self.maintenance_margin!r} is below the fee {self.fee!r}: a liquidation "
                "pays its fee out of the remaining margin; use a maintenance margin of at least the fee")


@dataclass(frozen=True)
class StopRule:
    """A stop distance: a fraction of the entry price (``0.05``) or a multiple of ATR (``2.5`` with ``unit='atr'``)."""

    value: float
    unit: Literal["fraction", "atr"] = "fraction"

    def __post_init__(self) -> None:
        if not (isinstance(self.value, (int, float)) and math.isfinite(self.value) and self.value > 0):
            raise MaestroError(f"stop distance {self.value!r} must be a positive number")
        if self.unit == "fraction" and self.value >= 1:
            raise MaestroError(f"stop distance {self.value!r} is a fraction of the entry price: use less than 1 "
                               "(0.05 = 5%), or a multiple of ATR like '2atr'")
        if self.unit not in ("fraction", "atr"):
            raise MaestroError(f"stop unit {self.unit!r}: use fraction or atr")

    def __str__(self) -> str:
        return f"{self.value:g}atr" if self.unit == "atr" else f"{self.value:g}"


@dataclass(frozen=True)
class RiskSpec:
    """The risk controls of one backtest (defaults: no stops, all in, 1x)."""

    stop_loss: StopRule | None = None
    take_profit: StopRule | None = None
    trailing_stop: StopRule | None = None
    sizing: Literal["fraction", "risk"] = "fraction"
    fraction: float = 1.0
    risk_per_trade: float = 0.01
    max_leverage: float = 1.0
    atr_window: int = 14

    def __post_init__(self) -> None:
        if self.stop_loss is not None and self.trailing_stop is not None:
            raise MaestroError("stop_loss and trailing_stop: pick one (a position keeps one protective stop; a "
                               "trailing stop starts at its distance from the entry, so it is a stop loss too)")
        if self.sizing not in ("fraction", "risk"):
            raise MaestroError(f"sizing {self.sizing!r}: use fraction or risk")
        lev = self.max_leverage
        if not (isinstance(lev, (int, float)) and math.isfinite(lev) and 0 < lev <= MAX_LEVERAGE):
            raise MaestroError(
                f"max_leverage={lev!r} must be in (0, {MAX_LEVERAGE:g}]: vectorbt's cash account cannot borrow for a "
                "long, so positions open at most at 1x equity")
        if not (isinstance(self.fraction, (int, float)) and 0 < self.fraction <= lev):
            raise MaestroError(f"fraction={self.fraction!r} must be in (0, max_leverage={lev:g}]")
        if self.sizing == "risk":
            if not (0 < self.risk_per_trade < 1):
                raise MaestroError(f"risk_per_trade={self.risk_per_trade!r} must be a fraction of equity in (0, 1)")
            if self.stop_loss is None and self.trailing_stop is None:
                raise MaestroError("sizing: risk sizes each position by its stop distance: set stop_loss or "
                                   "trailing_stop, or use sizing: fraction")
        if not (isinstance(self.atr_window, int) and 1 <= self.atr_window <= 10_000):
            raise MaestroError(f"atr_window={self.atr_window!r} must be a whole number of bars >= 1")

    @property
    def all_in(self) -> bool:
        """Whole equity per position, reversals in one order: the engine's plain mode."""
        return self.sizing == "fraction" and self.fraction >= 1.0

    @property
    def uses_atr(self) -> bool:
        return any(s is not None and s.unit == "atr" for s in (self.stop_loss, self.take_profit, self.trailing_stop))

    @property
    def lookback(self) -> int:
        """Bars of history before a window the ATR needs (0 without ATR stops)."""
        return self.atr_window + 1 if self.uses_atr else 0

    def describe(self) -> str:
        parts = [f"{n} {s}" for n, s in (("stop_loss", self.stop_loss), ("take_profit", self.take_profit),
                                         ("trailing_stop", self.trailing_stop)) if s is not None]
        parts.append("all in" if self.all_in else (f"fraction {self.fraction:g}" if self.sizing == "fraction"
                                                   else f"risk {self.risk_per_trade:g} per trade"))
        return ", ".join(parts)


#: The engines' default risk controls: no stops, all in (a short still carries its liquidation level).
NO_RISK = RiskSpec()


def liquidation_fraction(phi: np.ndarray | float, fee: float, maintenance_margin: float) -> np.ndarray | float:
    """Distance from the fill price at which a short of size fraction ``phi`` is liquidated (see module docstring)."""
    return ((1.0 + fee) / phi + 1.0 - fee) / (1.0 + maintenance_margin) - 1.0


@dataclass(frozen=True, eq=False)
class RiskPlan:
    """The per-bar arrays both engines read (one value per window bar, see module docstring)."""

    le: np.ndarray
    lx: np.ndarray
    se: np.ndarray
    sx: np.ndarray
    size: np.ndarray | None      # percent of equity per entry bar (None: all in)
    sl: np.ndarray               # stop-loss distance (user stop, trailing stop or liquidation, the tighter)
    trail: np.ndarray            # bool: the stop loss trails
    tp: np.ndarray               # take-profit distance
    liq: np.ndarray              # bool: the stop loss at this entry is the liquidation level
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def has_stops(self) -> bool:
        return bool(np.isfinite(self.sl).any() or np.isfinite(self.tp).any())


def _stop_kind(rule: StopRule | None) -> tuple[int, float]:
    if rule is None:
        return NO_STOP, np.nan
    return (STOP_ATR if rule.unit == "atr" else STOP_FRACTION), float(rule.value)


def plan_risk(open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray, fills: tuple[np.ndarray, ...],
              start: int, risk: RiskSpec, costs: Costs, atr_values: np.ndarray | None = None) -> RiskPlan:
    """The arrays of window bars ``[start:]`` for fill-bar signals ``fills`` (already moved to the bar they fill on,
    one value per window bar); ``open_``..``close`` cover the whole history so the ATR sees bars before the window
    (``atr_values``: that ATR, already computed over the same bars).

    Which entry fills at each bar follows vectorbt's 'ignore' rules for conflicting signals; the loop is
    :func:`.nb_plan.plan_nb`."""
    o = np.ascontiguousarray(np.asarray(open_, dtype=np.float64)[start:])
    n = o.shape[0]
    if risk.uses_atr:
        a = atr_values if atr_values is not None else atr(
            np.asarray(high, np.float64), np.asarray(low, np.float64), np.asarray(close, np.float64), risk.atr_window)
        atr_prev = np.ascontiguousarray(np.r_[np.nan, a[:-1]][start:])
    else:
        atr_prev = np.empty(0)
    sl_kind, sl_value = _stop_kind(risk.stop_loss or risk.trailing_stop)
    tp_kind, tp_value = _stop_kind(risk.take_profit)
    le, lx, se, sx = (np.empty(n, dtype=np.bool_) for _ in range(4))
    trail, liq = np.empty(n, dtype=np.bool_), np.empty(n, dtype=np.bool_)
    sl, tp = np.empty(n), np.empty(n)
    size = None if risk.all_in else np.empty(n)
    capped = plan_nb(o, atr_prev, *(np.ascontiguousarray(f) for f in fills), risk.all_in, float(costs.slippage),
                     float(costs.fee), float(costs.maintenance_margin), sl_kind, sl_value, tp_kind, tp_value,
                     risk.trailing_stop is not None, risk.sizing == "risk", float(risk.fraction),
                     float(risk.risk_per_trade), float(risk.max_leverage), le, lx, se, sx,
                     np.empty(0) if size is None else size, sl, trail, tp, liq)
    notes = ("a trailing stop wider than the liquidation distance was capped at it",) if capped else ()
    return RiskPlan(le, lx, se, sx, size, sl, trail, tp, liq, notes)

"""``risk:`` — stops, take profit, trailing stop and sizing, for every strategy or per strategy; ``evaluation:``.

A stop distance is a fraction of the entry price (``0.05`` or ``"5%"``) or a multiple of ATR (``"2atr"``). Any of
``stop_loss``, ``take_profit``, ``trailing_stop``, ``fraction`` and ``risk_per_trade`` can be searched instead of
fixed, by listing its range under ``search`` (``stop_loss: [0.01, 0.1]`` or ``["1atr", "4atr"]``): the range then
joins the strategy's parameter space for every split.

```yaml
risk:
  default: {stop_loss: null, take_profit: null, trailing_stop: null, sizing: fraction, fraction: 1.0,
            risk_per_trade: 0.01, max_leverage: 1.0, atr_window: 14}
  strategies:
    ema_cross: {trailing_stop: 3atr, search: {take_profit: [0.02, 0.2]}}
```
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ..strategies import available_strategies, get_strategy
from ._base import Section, closest

__all__ = ["SEARCHABLE", "STOP_KEYS", "EvaluationConfig", "RiskConfig", "RiskOverride", "RiskSettings", "StopValue",
           "parse_stop", "search_range"]

STOP_KEYS = ("stop_loss", "take_profit", "trailing_stop")
SEARCHABLE = (*STOP_KEYS, "fraction", "risk_per_trade")
_ATR_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(?:x\s*)?atr\s*$", re.IGNORECASE)
_PCT_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*%\s*$")
_STOP_HELP = "write a fraction of the entry price (0.05 or '5%') or a multiple of ATR ('2atr')"

#: A stop distance as (value, unit): unit "fraction" or "atr".
StopValue = tuple[float, str]


def parse_stop(value: Any, key: str = "") -> StopValue:
    """``0.05`` / ``"5%"`` -> (0.05, "fraction"); ``"2atr"`` -> (2.0, "atr"); anything else a one-line error."""
    where = f"{key}: " if key else ""
    if isinstance(value, bool):
        raise ValueError(f"{where}{value!r} is not a distance; {_STOP_HELP}")
    if isinstance(value, (int, float)):
        v, unit = float(value), "fraction"
    elif isinstance(value, str) and (m := _ATR_RE.match(value)):
        v, unit = float(m.group(1)), "atr"
    elif isinstance(value, str) and (m := _PCT_RE.match(value)):
        v, unit = float(m.group(1)) / 100.0, "fraction"
    else:
        raise ValueError(f"{where}cannot read {value!r}; {_STOP_HELP}")
    if not v > 0 or (unit == "fraction" and v >= 1):
        raise ValueError(f"{where}{value!r} must be above 0" + (" and below 1 (100%)" if unit == "fraction" else ""))
    return v, unit


class RiskOverride(Section):
    """One level of ``risk:`` (``default`` or a strategy's entry); ``None`` = inherit from the level above."""

    stop_loss: StopValue | None = None
    take_profit: StopValue | None = None
    trailing_stop: StopValue | None = None
    sizing: Literal["fraction", "risk"] | None = None
    fraction: float | None = Field(None, gt=0, le=1)
    risk_per_trade: float | None = Field(None, gt=0, lt=1)
    max_leverage: float | None = None
    atr_window: int | None = Field(None, ge=1, le=10_000)
    #: Searched instead of fixed: name -> [low, high] (stop distances in one unit, fractions, or risk per trade).
    search: dict[str, tuple[Any, Any]] = {}

    @field_validator("max_leverage")
    @classmethod
    def _leverage(cls, v: float | None) -> float | None:
        if v is not None and not 0 < v <= 1:
            raise ValueError(f"{v:g} must be in (0, 1]: vectorbt's cash account cannot borrow for a long, so a "
                             "position opens at most at 1x equity (a short can grow past it: see maintenance_margin)")
        return v

    @field_validator(*STOP_KEYS, mode="before")
    @classmethod
    def _stop(cls, v: Any, info: Any) -> Any:
        return None if v is None else parse_stop(v)

    @field_validator("search", mode="before")
    @classmethod
    def _search(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            raise ValueError("write search as a mapping of name: [low, high]")
        return {name: search_range(name, rng) for name, rng in v.items()}


def search_range(name: str, rng: Any) -> tuple[Any, Any]:
    """A searched range: ((low, unit), (high, unit)) for a stop distance, (low, high) for a fraction."""
    if name not in SEARCHABLE:
        raise ValueError(f"search.{name}: cannot be searched{closest(str(name), SEARCHABLE)}; "
                         f"searchable: {', '.join(SEARCHABLE)}")
    if not isinstance(rng, (list, tuple)) or len(rng) != 2:
        raise ValueError(f"search.{name}: give a range [low, high]")
    if name in STOP_KEYS:
        lo, hi = parse_stop(rng[0], f"search.{name}"), parse_stop(rng[1], f"search.{name}")
        if lo[1] != hi[1]:
            raise ValueError(f"search.{name}: both ends in one unit (fractions, or multiples of ATR)")
        if not lo[0] < hi[0]:
            raise ValueError(f"search.{name}: low must be below high")
        return lo, hi
    try:
        lo_f, hi_f = float(rng[0]), float(rng[1])
    except (TypeError, ValueError):
        raise ValueError(f"search.{name}: [low, high] must be numbers") from None
    top = 1.0 if name == "fraction" else 0.5
    if not (0 < lo_f < hi_f <= top):
        raise ValueError(f"search.{name}: need 0 < low < high <= {top:g}")
    return lo_f, hi_f


class RiskSettings(Section):
    """The resolved risk controls of one strategy (``risk.default`` overlaid by ``risk.strategies.<name>``)."""

    stop_loss: StopValue | None = None
    take_profit: StopValue | None = None
    trailing_stop: StopValue | None = None
    sizing: Literal["fraction", "risk"] = "fraction"
    fraction: float = 1.0
    risk_per_trade: float = 0.01
    max_leverage: float = 1.0
    atr_window: int = 14
    search: dict[str, tuple[Any, Any]] = {}

    @model_validator(mode="after")
    def _consistent(self) -> RiskSettings:
        has_sl = self.stop_loss is not None or "stop_loss" in self.search
        has_trail = self.trailing_stop is not None or "trailing_stop" in self.search
        if has_sl and has_trail:
            raise ValueError("stop_loss and trailing_stop: pick one (a position keeps one protective stop; a "
                             "trailing stop starts at its distance from the entry, so it is a stop loss too)")
        if self.sizing == "risk" and not (has_sl or has_trail):
            raise ValueError("sizing: risk sizes each position by its stop distance; set stop_loss or trailing_stop "
                             "(or search one), or use sizing: fraction")
        if self.fraction > self.max_leverage:
            raise ValueError(f"fraction {self.fraction} is above max_leverage {self.max_leverage}")
        return self

    @property
    def searched(self) -> bool:
        return bool(self.search)


class RiskConfig(Section):
    default: RiskOverride = RiskOverride()
    strategies: dict[str, RiskOverride] = {}

    @field_validator("strategies")
    @classmethod
    def _known(cls, v: dict[str, RiskOverride]) -> dict[str, RiskOverride]:
        avail = available_strategies()
        for name in v:
            if name not in avail:
                raise ValueError(f"unknown strategy {name!r}{closest(name, avail)}")
            clash = sorted(set(SEARCHABLE) & set(get_strategy(name).defaults))
            if clash:
                raise ValueError(f"strategy {name!r} has a parameter named {clash[0]!r}, which risk: uses; rename it")
        return v

    def for_strategy(self, name: str) -> RiskSettings:
        """``default`` overlaid by the strategy's own entry; a searched value replaces a fixed one, and a stop loss
        replaces an inherited trailing stop (and the other way round)."""
        merged: dict[str, Any] = {"search": {}}
        for level in (self.default, self.strategies.get(name)):
            if level is None:
                continue
            # one protective stop per position: a level that sets one replaces the other one inherited from above
            for mine, other in (("stop_loss", "trailing_stop"), ("trailing_stop", "stop_loss")):
                if getattr(level, mine) is not None or mine in level.search:
                    merged.pop(other, None)
                    merged["search"].pop(other, None)
            for key, value in level.model_dump(exclude={"search"}).items():
                if value is not None:
                    merged[key] = value
                    merged["search"].pop(key, None)
            for key, rng in level.search.items():
                merged["search"][key] = rng
                merged.pop(key, None)
        return RiskSettings.model_validate(merged)


class EvaluationConfig(Section):
    """What a verdict needs before it judges: enough out-of-sample days and trades (``insufficient data`` otherwise)."""

    #: Annualized figures (Sharpe, Sortino, CAGR, volatility) and their CIs only from at least this many OOS days.
    min_oos_days: int = Field(30, ge=2, le=100_000)
    #: The verdict needs at least this many out-of-sample trades.
    min_oos_trades: int = Field(10, ge=1, le=100_000)

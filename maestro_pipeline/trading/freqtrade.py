"""A live parameters record as freqtrade's strategy parameter file (``<StrategyClass>.json`` next to the strategy).

The layout is the one freqtrade's hyperopt writes and its strategies read (freqtrade 2026.9:
``freqtrade/optimize/hyperopt_tools.py::HyperoptTools.export_params`` writes it,
``freqtrade/strategy/hyper.py::HyperStrategyMixin`` reads it; docs/hyperopt.md, "Parameter file"):

- ``strategy_name``: the strategy class name; freqtrade refuses the file when it differs from the class.
- ``params``: one section per space. ``buy`` / ``sell``: ``{parameter name: value}`` (the strategy's hyperoptable
  parameters of that space); ``roi``: ``{"<minutes>": profit}``; ``stoploss``: ``{"stoploss": -fraction}``;
  ``trailing``: ``trailing_stop``, ``trailing_stop_positive``, ``trailing_stop_positive_offset``,
  ``trailing_only_offset_is_reached``; ``max_open_trades``: ``{"max_open_trades": n}``. A section left out keeps
  the strategy's own attribute.
- ``ft_stratparam_v``: 1. ``export_time``: the UTC time, as ``str(datetime)`` (``2026-01-01 00:00:00+00:00``).

How Maestro fills it: the strategy's parameters go to ``buy`` (Maestro signals have one parameter set; the freqtrade
port declares them with ``space="buy"``), ``sell`` is empty. ``stop_loss`` -> ``stoploss``; ``trailing_stop`` ->
``stoploss`` plus ``trailing.trailing_stop: true`` with no positive offset (freqtrade then trails the stoploss
distance from the best price since entry, as Maestro's engine does); ``take_profit`` -> ``roi {"0": target}``.
ATR stops have no freqtrade equivalent: they are converted at the ATR of the bars before the live window
(``atr_fraction``), and the file says so under ``maestro.notes``. ``max_open_trades`` is the bot's choice across
pairs, not the walk-forward's: left out. freqtrade ignores top-level keys it does not know, so the file also
carries a ``maestro`` block (instrument, validity window, tradeable flag and reason, content version).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from ..config import LiveConfig
from ..errors import MaestroError

__all__ = ["FT_PARAMS_VERSION", "freqtrade_class", "freqtrade_file", "stop_fraction"]

FT_PARAMS_VERSION = 1


def freqtrade_class(strategy: str, live: LiveConfig) -> str:
    """The freqtrade class that reads the file: ``live.freqtrade_class[strategy]``, else the CamelCase name
    (``sma_cross`` -> ``SmaCross``)."""
    if strategy in live.freqtrade_class:
        return live.freqtrade_class[strategy]
    return "".join(p[:1].upper() + p[1:] for p in re.split(r"[^A-Za-z0-9]+", strategy) if p)


def stop_fraction(rule: dict[str, Any] | None, atr_fraction: float | None) -> tuple[float | None, str]:
    """A stop of the record as a fraction of the entry price, and a note when it had to be converted."""
    if rule is None:
        return None, ""
    if rule["unit"] == "fraction":
        return float(rule["value"]), ""
    if atr_fraction is None:
        return None, f"{rule['value']:g} ATR: no ATR before the live window to convert it; section left out"
    f = float(rule["value"]) * atr_fraction
    if not 0 < f < 1:
        return None, f"{rule['value']:g} ATR is {f:.2%} of the price: not a usable stop; section left out"
    return f, (f"{rule['value']:g} ATR converted at the ATR before the live window ({atr_fraction:.4%} of the "
               f"close): {f:.4%}; freqtrade keeps it fixed while Maestro's ATR stop follows the ATR at each entry")


def freqtrade_file(doc: dict[str, Any], live: LiveConfig, *, export_time: datetime | None = None) -> dict[str, Any]:
    """freqtrade's parameter file for the live record ``doc`` (see module docstring)."""
    if not doc.get("params"):
        raise MaestroError(f"{doc['instrument']} x {doc['strategy']}: no live parameters to export "
                           f"({doc.get('tradeable_reason') or 'no live pick'})")
    risk = doc.get("risk") or {}
    notes: list[str] = []
    params: dict[str, Any] = {"buy": dict(doc["params"]), "sell": {}}
    sl, note = stop_fraction(risk.get("stop_loss"), doc.get("atr_fraction"))
    notes += [f"stop_loss: {note}"] if note else []
    trail, note = stop_fraction(risk.get("trailing_stop"), doc.get("atr_fraction"))
    notes += [f"trailing_stop: {note}"] if note else []
    tp, note = stop_fraction(risk.get("take_profit"), doc.get("atr_fraction"))
    notes += [f"take_profit: {note}"] if note else []
    if tp is not None:
        params["roi"] = {"0": tp}
    if sl is not None:
        params["stoploss"] = {"stoploss": -sl}
    elif trail is not None:
        params["stoploss"] = {"stoploss": -trail}
    if trail is not None:
        params["trailing"] = {"trailing_stop": True, "trailing_stop_positive": None,
                              "trailing_stop_positive_offset": 0.0, "trailing_only_offset_is_reached": False}
    if risk and not (risk.get("sizing") == "fraction" and float(risk.get("fraction", 1.0)) >= 1.0):
        notes.append(f"sizing: {risk.get('described', '')} — set freqtrade's stake_amount to match; the parameter "
                     "file has no sizing section")
    when = export_time or datetime.now(UTC)
    return {
        "strategy_name": freqtrade_class(doc["strategy"], live),
        "params": params,
        "ft_stratparam_v": FT_PARAMS_VERSION,
        "export_time": str(when.astimezone(UTC)),
        "maestro": {
            "instrument": doc["instrument"], "symbol": doc["symbol"], "timeframe": doc["timeframe"],
            "strategy": doc["strategy"], "tradeable": bool(doc["tradeable"]),
            "tradeable_reason": doc["tradeable_reason"], "verdict": doc["verdict"],
            "valid_from": doc["valid_from"], "valid_until": doc["valid_until"],
            "content_version": doc["content_version"], "data_version": doc.get("data_version", ""),
            "notes": notes,
        },
    }

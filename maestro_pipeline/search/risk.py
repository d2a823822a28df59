"""Risk controls in the search: searched stops and sizes join a strategy's parameter space.

A searched value is a parameter of the trial like any other (``stop_loss`` = a fraction of the entry price,
``stop_loss_atr`` = a multiple of ATR; ``take_profit[_atr]``, ``trailing_stop[_atr]``, ``fraction``,
``risk_per_trade``). The ledger and the per-split picks store them with the strategy's parameters;
:func:`split_params` takes them apart again for the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..config import RiskSettings
from ..engine import RiskSpec, StopRule
from ..strategies import FloatParam, Strategy

__all__ = ["RISK_PARAM_NAMES", "risk_space", "risk_spec", "split_params"]

_STOPS = ("stop_loss", "take_profit", "trailing_stop")
#: Every name a risk parameter can take in a trial's parameters.
RISK_PARAM_NAMES = (*_STOPS, *(f"{k}_atr" for k in _STOPS), "fraction", "risk_per_trade")


def _param_name(key: str, unit: str) -> str:
    return f"{key}_atr" if unit == "atr" else key


def risk_space(settings: RiskSettings) -> dict[str, FloatParam]:
    """The searched risk parameters as float ranges (stop distances log-scaled: 1% to 2% matters like 5% to 10%)."""
    space: dict[str, FloatParam] = {}
    for key, rng in settings.search.items():
        if key in _STOPS:
            (lo, unit), (hi, _) = rng
            space[_param_name(key, unit)] = FloatParam(float(lo), float(hi), log=True)
        else:
            space[key] = FloatParam(float(rng[0]), float(rng[1]))
    return space


def _stop(value: tuple[float, str] | None) -> StopRule | None:
    return None if value is None else StopRule(float(value[0]), value[1])  # type: ignore[arg-type]


def risk_spec(settings: RiskSettings, params: Mapping[str, Any] | None = None) -> RiskSpec:
    """The engine's risk controls: the fixed settings, with the trial's searched values (in ``params``) on top."""
    p = params or {}
    stops: dict[str, StopRule | None] = {}
    for key in _STOPS:
        if key in p:
            stops[key] = StopRule(float(p[key]), "fraction")
        elif f"{key}_atr" in p:
            stops[key] = StopRule(float(p[f"{key}_atr"]), "atr")
        else:
            stops[key] = _stop({"stop_loss": settings.stop_loss, "take_profit": settings.take_profit,
                                "trailing_stop": settings.trailing_stop}[key])
    return RiskSpec(
        stop_loss=stops["stop_loss"], take_profit=stops["take_profit"], trailing_stop=stops["trailing_stop"],
        sizing=settings.sizing, fraction=float(p.get("fraction", settings.fraction)),
        risk_per_trade=float(p.get("risk_per_trade", settings.risk_per_trade)),
        max_leverage=float(settings.max_leverage), atr_window=int(settings.atr_window),
    )


def split_params(params: Mapping[str, Any], strategy: Strategy) -> tuple[dict[str, Any], dict[str, Any]]:
    """A trial's parameters as (the strategy's, the risk controls')."""
    risk = {k: v for k, v in params.items() if k in RISK_PARAM_NAMES and k not in strategy.defaults}
    return {k: v for k, v in params.items() if k not in risk}, risk

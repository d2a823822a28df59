"""Live performance: the live parameters traded on the bars since their window began, against the walk-forward's band.

The live result is the engine's own backtest (the vectorbt reference, as for every OOS window) of the live pick on
``[valid_from, min(data end, valid_until))``: indicators warm up on earlier bars, the position starts flat at the
window's first bar, nothing before it trades. The band is :func:`.band.horizon_band` over the stitched OOS per-bar
returns of the complete splits (``oos_equity``), whose test windows all end at or before the live window starts, at
the same horizon in bars. So the two never share a bar: the live result reads only bars at or after ``valid_from``
(warm-up aside), the band only bars before it.

Statuses: ``within band``; ``below band`` / ``above band`` (an alarm: the live parameters do not behave as the
walk-forward promised, in either direction); ``too early`` (fewer than ``live.min_live_bars`` live bars: no
statistic from a sample that small); ``no band`` (fewer stitched OOS bars than the horizon); ``no live
parameters`` (no live split or no feasible pick).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import polars as pl

from ..config import LiveConfig
from ..durations import iso
from ..engine import Costs, evaluate
from ..schema import to_pandas_bars
from ..stats import max_drawdown
from ..strategies import get_strategy
from ..timeframes import DAY_MS, timeframe_ms
from .band import horizon_band
from .record import spec_from_record

__all__ = ["ALARMS", "DRIFT_STATUSES", "live_performance"]

DRIFT_STATUSES = ("within band", "below band", "above band", "too early", "no band", "no live parameters")
ALARMS = ("below band", "above band")


def _row(doc: dict[str, Any], status: str, why: str, **figures: Any) -> dict[str, Any]:
    base = {
        "instrument": doc["instrument"], "strategy": doc["strategy"], "status": status, "drift_alarm": status in ALARMS,
        "description": why, "params": json.dumps(doc.get("params"), sort_keys=True) if doc.get("params") else "",
        "valid_from_ms": doc.get("valid_from_ms"), "valid_until_ms": doc.get("valid_until_ms"),
        "live_train_end_ms": doc.get("train_end_ms"), "walk_forward_train_end_ms": doc.get("walk_forward_train_end_ms"),
        "oos_end_ms": doc.get("oos_end_ms"), "live_doc_version": doc.get("content_version", ""),
        "live_from": doc.get("valid_from", ""), "live_to": "", "evaluated_to_ms": None, "live_bars": 0,
        "live_days": 0.0, "live_return": None, "live_max_drawdown": None, "live_trades": 0, "live_ruined": False,
        "band_low": None, "band_high": None, "band_median": None, "band_level": None, "band_n_boot": None,
        "band_seed": None, "band_block": None, "band_sample_bars": None,
    }
    base.update(figures)
    return base


def live_performance(doc: dict[str, Any], bars: pl.DataFrame, oos_equity: pl.DataFrame, costs: Costs,
                     live: LiveConfig, *, init_cash: float = 10_000.0) -> dict[str, Any]:
    """One evaluation of the live parameters record ``doc`` — exactly what it says: its parameters and risk controls
    (see module docstring) — as a flat row for the ``live_performance`` table. ``oos_equity`` is the walk-forward's
    stitched OOS table (``timestamp``, ``return``); only its bars before the live window are resampled."""
    if not doc.get("params"):
        return _row(doc, "no live parameters", doc.get("tradeable_reason") or "no live pick to trade")
    tf = timeframe_ms(doc["timeframe"])
    ts = bars["timestamp"].to_numpy()
    data_end = int(ts[-1]) + tf
    end = min(data_end, int(doc["valid_until_ms"]))
    j0, j1 = (int(x) for x in np.searchsorted(ts, [int(doc["valid_from_ms"]), end]))
    n = j1 - j0
    span = {"live_to": iso(end), "evaluated_to_ms": end, "live_bars": max(n, 0),
            "live_days": max(n, 0) * tf / DAY_MS}
    if n < 2:
        return _row(doc, "too early", f"{max(n, 0)} live bars since {doc['valid_from']}: nothing traded yet", **span)
    strategy = get_strategy(doc["strategy"])
    res = evaluate(to_pandas_bars(bars), strategy, dict(doc["params"]), j0, j1, costs, init_cash=init_cash,
                   risk=spec_from_record(doc))
    r = res.returns.to_numpy()
    live_ret = float(np.prod(1.0 + r) - 1.0)
    figures = {**span, "live_return": live_ret, "live_max_drawdown": float(max_drawdown(r)),
               "live_trades": int(res.n_trades), "live_ruined": bool(res.ruined)}
    where = f"live return {live_ret:+.2%} over {n} bars ({span['live_days']:.1f} days) since {doc['valid_from']}"
    if n < live.min_live_bars:
        return _row(doc, "too early", f"{where}: fewer than live.min_live_bars {live.min_live_bars} bars, too few "
                    "to judge drift", **figures)
    before = oos_equity.filter(pl.col("timestamp") < int(doc["valid_from_ms"]))  # never a bar of the live window
    oos = before["return"].to_numpy().astype(np.float64)
    if oos.size < n:
        return _row(doc, "no band", f"{where}: only {oos.size} stitched OOS bars, fewer than the {n}-bar horizon",
                    **figures)
    band = horizon_band(oos, n, n_boot=live.band_resamples, seed=live.band_seed, level=live.band_level)
    figures.update(band_low=band.low, band_high=band.high, band_median=band.median, band_level=band.level,
                   band_n_boot=band.n_boot, band_seed=band.seed, band_block=band.block,
                   band_sample_bars=band.sample_bars)
    status = "within band" if band.contains(live_ret) else ("below band" if live_ret < band.low else "above band")
    why = (f"{where} is {status.replace('band', 'the band')}: the walk-forward's {band.level:.0%} band over "
           f"{n} bars is [{band.low:+.2%}, {band.high:+.2%}] (median {band.median:+.2%}; stationary bootstrap of "
           f"{band.sample_bars} stitched OOS bars, {band.n_boot} paths, mean block {band.block} bars, seed "
           f"{band.seed})")
    return _row(doc, status, why, **figures)


"""The live split (the parameters to trade now) and the market regimes recorded with every split.

The walk-forward's complete splits answer "did this work out of sample?". A trader also needs "what do I run
now?": the **live split** is the next split on the same grid — its train window is complete, its test window has
begun but not ended — so its pick is what the walk-forward would trade today. When the month completes, the live
split becomes an ordinary complete split with the *same* train window, so its search is reused, not redone.

**Regime shift.** A Gaussian HMM (``maestro_pipeline.regimes``) is fitted on the days before the live split's
train end only. If the newest days are confidently in another regime than the end of that train window
(``regimes.regime_shift``), the live split is re-anchored: its train window ends on the day the shift was
confirmed (first confident day + ``min_days``) — a date that stays fixed while the new regime lasts, so the
re-optimization happens once, not every day. That split is then searched early with data from the new regime.
Regimes per split are each labelled by a model fitted only on data before that split's train end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from ..config import RegimesConfig, WalkForwardConfig
from ..durations import parse_length
from ..errors import MaestroError
from ..timeframes import DAY_MS, timeframe_ms
from .planner import Split, plan_splits
from .regimes import RegimeModel, daily_features, filter_daily, fit_daily, regimes_of_splits, shift_in

__all__ = ["LivePlan", "live_split", "split_regime_rows"]


@dataclass
class LivePlan:
    split: Split | None                   # None when no live split can be planned (parts mode, no data)
    reason: str                           # "grid" or the regime shift that moved it, or why there is none
    regime: dict[str, Any] = field(default_factory=dict)  # the model and shift that decided it


def _vol_window(timeframe: str) -> int:
    """The realized-volatility feature uses a day's worth of bars (at least 5 for daily or longer bars)."""
    return max(5, int(DAY_MS // timeframe_ms(timeframe)))


def _daily(bars: pl.DataFrame, timeframe: str) -> pd.DataFrame:
    """The bars resampled to the regime model's daily rows, once per call: every fit and filter below reads them
    (memory linear in days after this one pass over the bars)."""
    return daily_features(bars["timestamp"].to_numpy(), bars["close"].to_numpy(), _vol_window(timeframe))


def _fit(daily: pd.DataFrame, fit_end_ms: int, timeframe: str, regimes: RegimesConfig) -> RegimeModel:
    """The regime model of the days before ``fit_end_ms``, with the configured settings."""
    return fit_daily(daily, fit_end_ms, n_regimes=regimes.n_regimes, seed=regimes.seed,
                     min_days=regimes.min_fit_days, vol_window=_vol_window(timeframe))


def _grid_live(bars: pl.DataFrame, splits: list[Split], timeframe: str, wf: WalkForwardConfig) -> Split:
    """The next split on the grid, planned by the same planner as if its test window had already ended."""
    tf = timeframe_ms(timeframe)
    last = splits[-1]
    test_l = parse_length(wf.test)
    step_l = test_l if wf.step is None else parse_length(wf.step, "step")
    nxt_start = step_l.add(last.test_start, tf)
    nxt_end = test_l.add(nxt_start, tf)
    ts = bars["timestamp"].to_numpy()
    close = bars["close"].to_numpy()
    # one placeholder bar at the end of the next test window: the planner reads closes only before a train end
    ext_ts = np.r_[ts, max(int(ts[-1]) + tf, nxt_end - tf)]
    ext_close = np.r_[close, close[-1]]
    planned = plan_splits(ext_ts, ext_close, timeframe, wf.model_copy(update={"n_splits": 1, "mode": "calendar"}))[-1]
    if planned.test_start != nxt_start:  # pragma: no cover - the grid is the planner's own
        raise MaestroError("live split: the planner's next window is not the grid's next window")
    return Split(last.index + 1, planned.train_start, planned.train_end, planned.test_start, planned.test_end,
                 planned.exclude)


def live_split(bars: pl.DataFrame, splits: list[Split], timeframe: str, wf: WalkForwardConfig,
               regimes: RegimesConfig | None) -> LivePlan:
    """Plan the live split for these bars (see module docstring); ``regimes`` is the config (None = off)."""
    if wf.mode == "parts" or not splits or bars.height == 0:
        return LivePlan(None, "no live split: parts mode re-cuts the data instead of stepping a grid")
    live = _grid_live(bars, splits, timeframe, wf)
    if regimes is None or not regimes.enabled:
        return LivePlan(live, "grid")

    data_end = int(bars["timestamp"][-1]) + timeframe_ms(timeframe)
    try:
        model = _fit(daily := _daily(bars, timeframe), live.train_end, timeframe, regimes)
        since = max(live.train_start, live.train_end - regimes.reference_days * DAY_MS)
        shift = shift_in(model, filter_daily(model, daily), since, min_prob=regimes.min_prob,
                         min_days=regimes.min_days)
    except MaestroError as exc:  # too little history for a model, or too few days since the train end
        return LivePlan(live, "grid", {"regime_note": str(exc)})
    info: dict[str, Any] = {"regime_model": model.as_dict(), "regime_shift": shift.describe() if shift else ""}
    if shift is None:
        return LivePlan(live, "grid", info)
    confirmed = min(shift.first_day_ms + regimes.min_days * DAY_MS, data_end)
    if confirmed <= live.train_end:
        return LivePlan(live, "grid", info)
    length = live.train_end - live.train_start
    start = live.train_start if wf.scheme == "anchored" else confirmed - length
    test_len = live.test_end - live.test_start
    moved = Split(live.index, start, confirmed, confirmed, confirmed + test_len)
    return LivePlan(moved, f"re-optimized early: {shift.describe()}", info)


def split_regime_rows(bars: pl.DataFrame, splits: list[Split], timeframe: str,
                      regimes: RegimesConfig | None) -> list[dict]:
    """Per split, the dominant regime (and its share) of its train and test windows, each labelled by a model
    fitted only on data before that split's train end; empty values (with a note) where history is too short."""
    daily, why = None, ""
    if regimes is not None and regimes.enabled:
        try:
            daily = _daily(bars, timeframe)
        except MaestroError as exc:
            why = str(exc)
    rows = []
    for s in splits:
        row: dict[str, Any] = {"split": s.index, "train_regime": None, "train_regime_share": None,
                               "test_regime": None, "test_regime_share": None, "regime_note": ""}
        if regimes is None or not regimes.enabled:
            row["regime_note"] = "regimes disabled"
        elif daily is None:
            row["regime_note"] = why
        else:
            try:
                model = _fit(daily, s.train_end, timeframe, regimes)
                r = regimes_of_splits(model, filter_daily(model, daily), [s])[0]
                row.update({k: r[k]
                            for k in ("train_regime", "train_regime_share", "test_regime", "test_regime_share")})
            except MaestroError as exc:
                row["regime_note"] = str(exc)
        rows.append(row)
    return rows

"""When research must run again: pure decisions the Dagster schedule and sensor only carry out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from ..config import RegimesConfig, WalkForwardConfig
from ..durations import month_of
from ..errors import MaestroError
from ..instruments import Instrument
from ..timeframes import DAY_MS, timeframe_ms
from .live import live_split
from .table import make_splits

__all__ = ["Resplit", "months_to_refresh", "resplit_decision", "splits_due"]


def months_to_refresh(inst: Instrument, now_ms: int, grace_days: int = 2) -> list[str]:
    """The current month, plus the previous one during the first ``grace_days`` of a month (its last bars)."""
    now = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
    months = [month_of(now_ms)]
    if now.day <= grace_days:
        months.insert(0, month_of(now_ms - now.day * DAY_MS))
    start = month_of(inst.start_ms)
    end = month_of(inst.end_ms - 1) if inst.end_ms else None
    return [m for m in months if m >= start and (end is None or m <= end)]


def splits_due(planned_last_test_end_ms: int | None, stored_last_test_end_ms: int | None) -> tuple[bool, str]:
    """Has the split plan for the current data moved past the stored one? Works for every window form (days,
    bars, calendar months, parts), because the plan itself is computed from the data by ``make_splits``.
    ``planned_last_test_end_ms`` is None when the data cannot hold one split yet."""
    if planned_last_test_end_ms is None:
        return False, "not enough validated data for one split yet"
    if stored_last_test_end_ms is None:
        return True, "no splits yet and enough data for one"
    if planned_last_test_end_ms > stored_last_test_end_ms:
        return True, "validated data now covers a new test window"
    return False, "waiting for data to cover the next test window"


@dataclass(frozen=True)
class Resplit:
    """Whether an instrument's splits must be recomputed, why, and what triggered it."""

    due: bool
    why: str
    trigger: str          # "new-data" or "regime-shift"
    data_end_ms: int      # exclusive end of the bars the decision saw


def resplit_decision(bars: pl.DataFrame, timeframe: str, wf: WalkForwardConfig, regimes: RegimesConfig | None,
                     stored: pl.DataFrame | None) -> Resplit:
    """Re-split when the validated bars cover a new test window past the stored splits, or when the live split
    moved (a confirmed regime shift re-anchors it; see :mod:`.live`). ``stored`` is the current splits table."""
    data_end = int(bars["timestamp"][-1]) + timeframe_ms(timeframe)
    try:
        splits, _ = make_splits(bars, timeframe, wf)
        planned = splits[-1].test_end
        live = live_split(bars, splits, timeframe, wf, regimes)
    except MaestroError:  # not enough data for one split yet
        planned, live = None, None
    stored_end = stored_live = None
    if stored is not None and stored.height:
        done = stored.filter(~pl.col("live")) if "live" in stored.columns else stored
        stored_end = int(done["test_end"].max())
        if "live" in stored.columns and stored["live"].any():
            stored_live = int(stored.filter(pl.col("live"))["train_end"].item())
    due, why = splits_due(planned, stored_end)
    if not due and live is not None and live.split is not None and stored_live is not None \
            and live.split.train_end > stored_live:
        return Resplit(True, f"live split moved: {live.reason}", "regime-shift", data_end)
    return Resplit(due, why, "new-data", data_end)

"""The bars research reads for one instrument: every validated month, contiguous, with its derivatives history."""

from __future__ import annotations

import polars as pl

from ..instruments import Instrument
from ..lake import Lake
from ..market import DERIVATIVE_KINDS, attach_derivatives

__all__ = ["research_bars"]


def research_bars(lake: Lake, inst: Instrument, with_derivatives: bool = True) -> pl.DataFrame:
    """All validated bars of ``inst`` (refusing to bridge a missing month), with funding rates and open interest
    attached causally when the lake holds them (perpetuals)."""
    bars = lake.read_contiguous_bars(inst)
    if not with_derivatives:
        return bars
    extra = {kind: lake.read_all(kind, inst.hive) for kind in DERIVATIVE_KINDS}
    return attach_derivatives(bars, inst.timeframe, extra["funding_rates"], extra["open_interest"])

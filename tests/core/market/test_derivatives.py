"""Perpetual-futures history attached to bars causally, and the report's words about proxies."""

from __future__ import annotations

import math

import polars as pl

from maestro_pipeline.market import attach_derivatives
from maestro_pipeline.schema import bars_hash, to_pandas_bars
from maestro_pipeline.strategies import get_strategy
from tests.support.bars import flat_bars

H = 3_600_000


def test_funding_sits_on_the_bar_containing_the_settlement_and_sums():
    funding = pl.DataFrame({"timestamp": [3 * H, 5 * H + 1_800_000, 7 * H + 1, 7 * H + 2],
                            "funding_rate": [0.001, -0.002, 0.003, 0.004]})
    out = attach_derivatives(flat_bars(10, source="x"), "1h", funding=funding)
    rates = out["funding_rate"].to_list()
    assert rates[3] == 0.001 and rates[5] == -0.002 and math.isclose(rates[7], 0.007)
    assert all(math.isnan(r) for i, r in enumerate(rates) if i not in (3, 5, 7))  # never forward-filled here


def test_open_interest_uses_only_snapshots_before_the_close():
    oi = pl.DataFrame({"timestamp": [2 * H, 5 * H - 1, 5 * H], "open_interest": [10.0, 20.0, 30.0]})
    out = attach_derivatives(flat_bars(10, source="x"), "1h", open_interest=oi)
    v = out["open_interest"].to_list()
    assert math.isnan(v[0]) and math.isnan(v[1])   # nothing published yet
    assert v[2] == 10.0 and v[3] == 10.0
    assert v[4] == 20.0                            # the 05:00 snapshot is at this bar's close: not yet known
    assert v[5] == 30.0


def test_attached_columns_change_the_data_version_and_reach_strategies():
    bars = flat_bars(10, source="x")
    funded = attach_derivatives(bars, "1h", funding=pl.DataFrame({"timestamp": [3 * H], "funding_rate": [0.001]}))
    assert bars_hash(bars) != bars_hash(funded)
    strat = get_strategy("funding_rate_arbitrage")
    assert "funding_rate" in to_pandas_bars(funded).columns
    assert strat.data_note(to_pandas_bars(funded)) is None
    note = strat.data_note(to_pandas_bars(bars))
    assert isinstance(note, str) and "proxy" in note and "funding" in note

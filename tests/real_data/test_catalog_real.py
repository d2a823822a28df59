"""Every catalog strategy trades on real candles with its default parameters (no silent zero-trade strategy).

Spot strategies run on the last year of Bitvavo BTC/EUR 1h; the derivatives strategies also run on a week of
the XRP/USDT perpetual (5m). Neither file has funding, open-interest or index columns, so the derivatives
strategies trade their documented proxies here and must say so through ``data_note``.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from maestro_pipeline.engine import Costs, evaluate
from maestro_pipeline.schema import to_pandas_bars
from maestro_pipeline.strategies import available_strategies, get_strategy
from tests.support.datasets import load

pytestmark = pytest.mark.real_data

DERIVATIVES = ("funding_rate_arbitrage", "basis", "open_interest_divergence", "liquidation_hunt")
COSTS = Costs(0.0025, 0.0005)  # Bitvavo taker fee 0.25 %


@pytest.fixture(scope="module")
def btceur(datasets) -> tuple[pd.DataFrame, int]:
    bars = to_pandas_bars(load(datasets, "iaf_bitvavo_btceur_1h.parquet"))
    start = int(bars.index.searchsorted(bars.index[-1] - pd.Timedelta(days=365)))
    assert len(bars) - start > 8_000 and start > 2_000  # one year to test, history before it for warm-up
    return bars, start


@pytest.fixture(scope="module")
def xrp_perp(datasets) -> pd.DataFrame:
    bars = to_pandas_bars(load(datasets, "ft_xrp_usdt_perp_5m.parquet"))
    assert len(bars) == 1_999
    return bars


@pytest.mark.parametrize("name", available_strategies())
def test_strategy_trades_a_year_of_real_btceur_with_defaults(btceur, name):
    bars, start = btceur
    s = get_strategy(name)
    p = s.check({})
    evaluate(bars, s, p, start, len(bars), COSTS)  # first call compiles / loads numba caches
    t0 = time.perf_counter()
    res = evaluate(bars, s, p, start, len(bars), COSTS)
    elapsed = time.perf_counter() - t0
    assert res.n_trades >= 10, f"{name}: only {res.n_trades} trades in a year of hourly BTC/EUR with its defaults"
    assert len(res.equity) == len(bars) - start and np.isfinite(res.equity.to_numpy()).all()
    assert (res.trades["entry_time"] > bars.index[start]).all()  # the first fill is at open[start + 1]
    assert {"long", "short"} & set(res.trades["direction"])
    assert elapsed < 5.0, f"{name}: one backtest of a year of 1h bars took {elapsed:.2f} s"


@pytest.mark.parametrize("name", DERIVATIVES)
def test_derivatives_strategies_trade_the_real_perpetual_on_their_proxies(xrp_perp, name):
    s = get_strategy(name)
    p = s.check({})
    note = s.data_note(xrp_perp, p)
    assert isinstance(note, str) and "not available" in note and "proxy" in note
    start = s.warmup(p)
    res = evaluate(xrp_perp, s, p, start, len(xrp_perp), COSTS)
    assert res.n_trades >= 3, f"{name}: only {res.n_trades} trades on a week of 5m XRP perpetual bars"
    # with a causal forward-filled funding column (published every 8 h) the rules still trade
    if name == "funding_rate_arbitrage":
        rng = np.random.default_rng(0)
        events = np.full(len(xrp_perp), np.nan)
        events[::96] = rng.normal(1e-4, 2e-4, len(events[::96]))
        with_funding = xrp_perp.assign(funding_rate=pd.Series(events, index=xrp_perp.index).ffill())
        assert s.data_note(with_funding, p) is None
        sig = s.signals(with_funding, p)
        assert sig.long_entries.any() or sig.short_entries.any()

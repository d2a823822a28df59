"""The search engine and the report card on real exchange candles (several exchanges and timeframes).

The compiled search kernel must reproduce the vectorbt engine on real prices (gaps, flat runs, spikes
included), and a whole walk-forward (live split, regimes, DSR, PBO, charts) must run on real history.
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from maestro_pipeline.config import RegimesConfig, SearchConfig, WalkForwardConfig
from maestro_pipeline.engine import Costs, evaluate, evaluate_fast
from maestro_pipeline.evaluation import build_report_card, run_oos
from maestro_pipeline.schema import to_pandas_bars
from maestro_pipeline.search import optimize_splits
from maestro_pipeline.strategies import available_strategies, get_strategy
from maestro_pipeline.walkforward import plan_research
from tests.support.datasets import load

pytestmark = pytest.mark.real_data
COSTS = Costs(0.001, 0.0005)
FILES = ["iaf_bitvavo_btceur_1h.parquet", "lean_coinbase_btcusd_1d.parquet", "nt_ftx_btcperp_1m.parquet",
         "ft_eth_btc_5m.parquet"]


@pytest.mark.parametrize("name", FILES)
def test_search_kernel_equals_vectorbt_on_real_prices_for_every_strategy(datasets, name):
    pdf = to_pandas_bars(load(datasets, name))
    n = len(pdf)
    start, end = n // 3, min(n, n // 3 + 5000)
    rng = np.random.default_rng(0)
    for strat_name in available_strategies():
        s = get_strategy(strat_name)
        params = dict(s.defaults)
        for _ in range(20):  # a random valid point of the space, else the defaults
            trial = {k: (rng.integers(p.low, p.high + 1) if hasattr(p, "step") else
                         (rng.uniform(p.low, p.high) if hasattr(p, "log") else p.choices[rng.integers(len(p.choices))]))
                     for k, p in s.space.items()}
            try:
                params = s.check({**s.defaults,
                                  **{k: (v.item() if hasattr(v, "item") else v) for k, v in trial.items()}})
                break
            except Exception:
                continue
        ref = evaluate(pdf, s, params, start, end, COSTS)
        got, n_trades = evaluate_fast(pdf, s, params, start, end, COSTS)
        np.testing.assert_allclose(got, ref.returns.to_numpy(), rtol=0, atol=1e-10, err_msg=f"{strat_name} {params}")
        assert n_trades == ref.n_trades, (strat_name, params)


def test_walk_forward_and_report_card_on_real_hourly_candles(datasets):
    bars = load(datasets, "iaf_bitvavo_btceur_1h.parquet")
    bars = bars.filter(pl.col("timestamp") >= bars["timestamp"][-1] - 400 * 86_400_000)
    wf = WalkForwardConfig(train="90d", test="1M", n_splits=6)
    splits, table, live = plan_research(bars, "1h", wf, max_gap="2d", regimes=RegimesConfig())
    assert table["live"].sum() == 1 and live.split is not None
    complete = table.filter(~pl.col("live"))
    # calendar-month test windows: each starts on the 1st at 00:00 UTC
    starts = complete["test_from"].to_list()
    assert all(s.endswith("-01 00:00") for s in starts), starts
    assert complete["train_regime"].null_count() < complete.height  # regimes were fitted on real history
    out = optimize_splits(bars, splits, "ema_cross", SearchConfig(n_trials=20, seed=1, storage="none"), COSTS, "1h")
    assert out.ledger.height == len(splits) * 20
    res = run_oos(bars, out.params, "ema_cross", COSTS, "1h", max_gap="2d")
    assert res.per_split.height == complete.height  # the live split never enters the OOS results
    card = build_report_card(res, out.params, out.ledger, out.daily, to_pandas_bars(bars), get_strategy("ema_cross"),
                             "real")
    s = card.summary
    assert 0.0 <= s["dsr"] <= 1.0 and 0.0 <= s["pbo"] <= 1.0
    assert s["dsr_n_trials"] == int(out.ledger.filter(pl.col("split").is_in(complete["split"].to_list()))
                                    .filter(pl.col("state") == "COMPLETE").height)
    assert s["verdict"] in {"robust", "promising", "weak", "inconclusive", "overfit", "fails out of sample",
                            "too few trades"}
    assert json.loads(out.params.filter(pl.col("split") == live.split.index)["params"].item())

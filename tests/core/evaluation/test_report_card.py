"""The OOS report card: verdict rules, DSR/PBO fed from the real ledger, quantstats figures, no train-bar leakage."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import polars as pl
import pytest

from maestro_pipeline import stats as of
from maestro_pipeline.config import EvaluationConfig, SearchConfig, WalkForwardConfig
from maestro_pipeline.engine import Costs
from maestro_pipeline.evaluation import MAX_PBO, MIN_DSR, MIN_WFE, Evidence, build_report_card, run_oos, verdict
from maestro_pipeline.reporting import daily_returns
from maestro_pipeline.schema import to_pandas_bars
from maestro_pipeline.search import optimize_splits
from maestro_pipeline.strategies import get_strategy
from maestro_pipeline.timeframes import DAY_MS
from maestro_pipeline.walkforward import make_splits
from tests.support.bars import synthetic_bars

START = 1_735_689_600_000  # 2025-01-01
COSTS = Costs(0.001, 0.0005)


def test_verdict_thresholds_at_their_boundaries():
    ev = EvaluationConfig()

    def card(**over):
        base = dict(oos_days=ev.min_oos_days, oos_trades=ev.min_oos_trades, oos_total_return=0.2, oos_sharpe=1.5,
                    wfe=0.8, pbo=0.2, dsr=0.99)
        return verdict(Evidence(**{**base, **over}), ev)

    assert card(oos_trades=ev.min_oos_trades - 1)[0] == "insufficient data"
    assert card(oos_days=ev.min_oos_days - 1)[0] == "insufficient data"
    assert card(oos_sharpe=-0.1)[0] == "fails out of sample"
    word, why = card(pbo=0.71)
    assert word == "overfit" and why.startswith("PBO 0.71 >= 0.5")
    assert card(wfe=None)[0] == "inconclusive"
    assert card(wfe=MIN_WFE - 0.01)[0] == "weak"
    word, why = card(dsr=MIN_DSR - 0.01)
    assert word == "promising" and "DSR 0.94 < 0.95" in why
    assert card(pbo=None)[0] == "promising"  # PBO unknown: never "robust"
    word, why = card(pbo=MAX_PBO - 0.01, dsr=MIN_DSR)
    assert word == "robust" and "DSR 0.95 >= 0.95" in why and "PBO 0.49 < 0.5" in why


@pytest.fixture(scope="module")
def walk():
    bars = synthetic_bars(START, START + 200 * DAY_MS, seed=3)
    wf = WalkForwardConfig(train="60d", test="30d", n_splits=4)
    splits, _ = make_splits(bars, "1h", wf)
    out = optimize_splits(bars, splits, "ema_cross", SearchConfig(n_trials=16, seed=1, storage="none"), COSTS, "1h",
                          workers=1)
    res = run_oos(bars, out.params, "ema_cross", COSTS, "1h")
    card = build_report_card(res, out.params, out.ledger, out.daily, to_pandas_bars(bars), get_strategy("ema_cross"),
                             "t")
    return bars, out, res, card


def test_dsr_and_pbo_use_the_whole_ledger(walk):
    bars, out, res, card = walk
    s = card.summary
    n_complete = int((out.ledger["state"] == "COMPLETE").sum())
    assert s["dsr_n_trials"] == n_complete > 16  # every completed trial of every split, not one split's
    # recompute the DSR inputs by hand from the stored tables
    d = out.daily.to_pandas()
    g = d.groupby(["split", "trial"])["return"]
    sr = (g.mean() / g.std(ddof=1)).fillna(0.0).to_numpy()
    oos = daily_returns(res.returns).to_numpy()
    t = len(oos)
    m, sd = oos.mean(), oos.std(ddof=1)
    c = oos - oos.mean()
    skew = (c**3).mean() / (c**2).mean() ** 1.5
    kurt = (c**4).mean() / (c**2).mean() ** 2
    v = np.var(sr, ddof=1)
    from statistics import NormalDist

    nd, gamma = NormalDist(), 0.5772156649015329
    sr0 = np.sqrt(v) * ((1 - gamma) * nd.inv_cdf(1 - 1 / n_complete) + gamma * nd.inv_cdf(1 - 1 / (n_complete * np.e)))
    z = (m / sd - sr0) * np.sqrt(t - 1) / np.sqrt(1 - skew * (m / sd) + (kurt - 1) / 4 * (m / sd) ** 2)
    assert s["dsr"] == pytest.approx(nd.cdf(z), rel=1e-9, abs=1e-12)
    assert s["sr0"] == pytest.approx(sr0, rel=1e-9)
    pbo = of.pbo_walk_forward(d[["split", "trial", "day", "return"]])
    assert s["pbo"] == pytest.approx(pbo["mean_pbo"], rel=1e-12) and 0.0 <= s["pbo"] <= 1.0
    assert s["pbo_splits"] == 4


def test_report_quantstats_figures_equal_quantstats_own_with_365_periods(walk):
    import quantstats as qs

    _, _, res, card = walk
    daily = daily_returns(res.returns)
    s = card.summary
    assert s["oos_sharpe"] == pytest.approx(float(qs.stats.sharpe(daily, periods=365)), rel=1e-9)
    assert s["oos_sortino"] == pytest.approx(float(qs.stats.sortino(daily, periods=365)), rel=1e-9)
    assert s["oos_max_drawdown"] == pytest.approx(float(qs.stats.max_drawdown(daily)), rel=1e-9)
    assert s["oos_cagr"] == pytest.approx(float(qs.stats.cagr(daily, periods=365)), rel=1e-9)
    roll = card.rolling.to_pandas().set_index("day")
    last = daily.iloc[-30:]
    assert roll["rolling_sharpe"].iloc[-1] == pytest.approx(last.mean() / last.std() * np.sqrt(365), rel=1e-9)


def test_report_has_cis_stability_and_charts(walk):
    _, out, _, card = walk
    s = card.summary
    assert s["sharpe_ci_low"] <= s["sharpe_daily_point"] <= s["sharpe_ci_high"]
    assert s["max_drawdown_ci_low"] <= s["max_drawdown_ci_high"] <= 0
    assert set(card.stability["parameter"]) == {"fast", "slow"}
    assert 0 <= s["param_spread_max"] <= 1
    for name in ("equity_chart", "latest_test_candles", "param_heatmap", "param_surface"):
        assert card.charts[name][:8] == b"\x89PNG\r\n\x1a\n", name


def test_stitched_oos_never_reads_train_bars_beyond_the_warm_up():
    """Crafted case: scramble every bar a test window's decisions may not see (train bars older than the
    indicator warm-up, and everything after the last test window); the stitched OOS returns do not move."""
    bars = synthetic_bars(START, START + 150 * DAY_MS, seed=3)
    wf = WalkForwardConfig(train="40d", test="20d", n_splits=3)
    splits, _ = make_splits(bars, "1h", wf)
    params = pl.DataFrame([{
        "split": s.index, "train_start": s.train_start, "train_end": s.train_end, "test_start": s.test_start,
        "test_end": s.test_end, "params": json.dumps({"fast": 5, "slow": 20}), "train_sharpe": 0.0,
        "train_total_return": 0.0, "train_max_drawdown": 0.0, "train_trades": 0, "train_cagr": 0.1} for s in splits])
    base = run_oos(bars, params, "ema_cross", COSTS, "1h")
    warm = get_strategy("ema_cross").warmup({"fast": 5, "slow": 20})
    ts = bars["timestamp"].to_numpy()
    visible = np.zeros(len(ts), dtype=bool)
    for s in splits:
        j0, j1 = np.searchsorted(ts, [s.test_start, s.test_end])
        visible[max(0, j0 - warm - 1):j1] = True  # warm-up, the bar before the window (buy-and-hold base), the window
    rng = np.random.default_rng(0)
    factor = np.where(visible, 1.0, rng.uniform(0.5, 2.0, len(ts)))
    scrambled = bars.with_columns(*(pl.col(c) * factor for c in ("open", "high", "low", "close")))
    assert (~visible).sum() > 1000  # most of the history was scrambled
    after = run_oos(scrambled, params, "ema_cross", COSTS, "1h")
    pd.testing.assert_series_equal(base.returns, after.returns)
    pd.testing.assert_series_equal(base.benchmark, after.benchmark)
    # and scrambling a bar the window does see changes it (the check has teeth)
    j0 = int(np.searchsorted(ts, splits[0].test_start))
    f2 = np.ones(len(ts))
    f2[j0 + 5:j0 + 200] = rng.uniform(0.5, 2.0, 195)
    moved = run_oos(bars.with_columns(*(pl.col(c) * f2 for c in ("open", "high", "low", "close"))), params,
                    "ema_cross", COSTS, "1h")
    assert not np.allclose(moved.returns.to_numpy(), base.returns.to_numpy())


def test_a_live_split_with_no_test_bars_yet_stays_out_of_the_report(walk):
    """The live split's test window may not hold a single bar yet (data ends on the grid boundary): the report is
    built from the complete splits, and nothing of the live split's search enters its statistics."""
    bars, out, res, card = walk
    last = out.params.sort("split").row(-1, named=True)
    span = last["test_end"] - last["test_start"]
    live = {**last, "split": last["split"] + 1, "train_start": last["train_start"] + span,
            "train_end": last["test_end"], "test_start": last["test_end"], "test_end": last["test_end"] + span}
    params = pl.concat([out.params, pl.DataFrame([live], schema=out.params.schema)])
    ledger = pl.concat([out.ledger, out.ledger.filter(pl.col("split") == last["split"])
                        .with_columns(pl.lit(live["split"]).alias("split"))])
    res2 = run_oos(bars, params, "ema_cross", COSTS, "1h")
    assert res2.per_split["split"].to_list() == out.params["split"].to_list()
    card2 = build_report_card(res2, params, ledger, out.daily, to_pandas_bars(bars), get_strategy("ema_cross"), "t")
    assert card2.summary["dsr_n_trials"] == card.summary["dsr_n_trials"]
    assert card2.summary["dsr"] == card.summary["dsr"] and card2.summary["verdict"] == card.summary["verdict"]
    assert card2.charts["latest_test_candles"][:4] == b"\x89PNG"

"""Statistics that know their sample: insufficient data first, annualized figures only from enough OOS days, a loss
never reads "weak", WFE defined on short windows, one drawdown definition, every NaN explained."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import polars as pl
import pytest

from maestro_pipeline.config import EvaluationConfig, SearchConfig, WalkForwardConfig
from maestro_pipeline.engine import Costs
from maestro_pipeline.evaluation import Evidence, build_report_card, run_oos, verdict
from maestro_pipeline.reporting import daily_returns, quantstats_table
from maestro_pipeline.schema import to_pandas_bars
from maestro_pipeline.search import optimize_splits
from maestro_pipeline.stats import max_drawdown, walk_forward_efficiency
from maestro_pipeline.strategies import get_strategy
from maestro_pipeline.walkforward import make_splits
from tests.support.bars import T2025_MS, synthetic_bars

EV = EvaluationConfig()


def ev(**kw) -> Evidence:
    base = {"oos_days": 120, "oos_trades": 40, "oos_total_return": 0.1, "oos_sharpe": 1.2, "wfe": 0.8, "pbo": 0.2,
            "dsr": 0.97}
    return Evidence(**{**base, **kw})


def test_the_verdict_order():
    assert verdict(ev(), EV)[0] == "robust"
    assert verdict(ev(oos_days=5), EV) == ("insufficient data", "5 OOS days < 30: not enough data to tell")
    assert verdict(ev(oos_trades=3, oos_sharpe=-4.0), EV)[0] == "insufficient data"   # checked first
    # a loss out of sample never reads weak, even with a positive Sharpe
    assert verdict(ev(oos_total_return=-0.041, wfe=0.1), EV) == ("fails out of sample", "OOS total return -4.1% <= 0")
    assert verdict(ev(ruined=True, ruin_time="2025-03-01", oos_days=3), EV)[0] == "fails out of sample"
    assert verdict(ev(wfe=0.2), EV)[0] == "weak" and verdict(ev(wfe=None), EV)[0] == "inconclusive"
    assert verdict(ev(pbo=0.6), EV)[0] == "overfit" and verdict(ev(dsr=0.5), EV)[0] == "promising"


def test_walk_forward_efficiency_is_defined_on_short_windows():
    # 5 train days returning 2% each window and 3 OOS days returning 1%: growth per day compared, nothing annualized
    wfe, note = walk_forward_efficiency(0.01, 3.0, [0.02, 0.02], [5.0, 5.0])
    assert wfe == pytest.approx((math.log1p(0.01) / 3) / (math.log1p(0.02) / 5))
    assert "daily log growth" in note
    assert walk_forward_efficiency(0.01, 3.0, [-0.02], [5.0])[0] is None
    assert walk_forward_efficiency(-1.0, 3.0, [0.02], [5.0])[0] == -math.inf


@pytest.fixture(scope="module")
def short_walk():
    """A walk-forward with 5-day test windows: two of them, 10 OOS days in all."""
    bars = synthetic_bars(T2025_MS, T2025_MS + 75 * 86_400_000, seed=9)
    wf = WalkForwardConfig(train="60d", test="5d", n_splits=2)
    splits, _ = make_splits(bars, "1h", wf)
    out = optimize_splits(bars, splits, "ema_cross", SearchConfig(n_trials=8, storage="none", min_trades=2),
                          Costs(), "1h", workers=1)
    res = run_oos(bars, out.params, "ema_cross", Costs(), "1h")
    card = build_report_card(res, out.params, out.ledger, out.daily, to_pandas_bars(bars), get_strategy("ema_cross"),
                             "t", with_charts=False)
    return res, card


def test_a_five_day_oos_span_is_insufficient_data_and_annualizes_nothing(short_walk):
    res, card = short_walk
    s = card.summary
    assert res.summary["oos_days"] == 10
    assert s["verdict"] == "insufficient data" and "10 OOS days < 30" in s["verdict_reason"]
    for key in ("oos_sharpe", "oos_sortino", "oos_cagr", "oos_volatility", "sharpe_ci_low", "sharpe_ci_high"):
        assert math.isnan(s[key]), key
    assert s["dsr"] is None or math.isnan(s["dsr"])
    for key in ("oos_sharpe", "oos_cagr", "dsr", "sharpe_ci_low"):
        assert f"{key}: 10 OOS days < evaluation.min_oos_days 30" in s["nan_reasons"]
    assert math.isfinite(s["oos_total_return"]) and math.isfinite(s["oos_max_drawdown"])  # not annualized: kept


def test_one_drawdown_definition_in_the_row_the_splits_and_quantstats(short_walk):
    res, card = short_walk
    daily = daily_returns(res.returns)
    assert card.summary["oos_max_drawdown"] == pytest.approx(max_drawdown(daily.to_numpy()), abs=1e-15)
    assert quantstats_table(res.returns)["max_drawdown"] == pytest.approx(max_drawdown(daily.to_numpy()), abs=1e-15)
    eq = pl.from_pandas(res.returns.rename("r").reset_index())
    for row in res.per_split.iter_rows(named=True):
        window = res.returns[(res.returns.index >= pd.Timestamp(row["test_from"]))
                             & (res.returns.index < pd.Timestamp(row["test_to"]))]
        assert row["test_max_drawdown"] == pytest.approx(max_drawdown(daily_returns(window).to_numpy()), abs=1e-15)
    assert eq.height == len(res.returns)


def test_every_nan_of_the_leaderboard_figures_has_a_reason(short_walk):
    _, card = short_walk
    s = card.summary
    explained = {part.split(":")[0] for part in s["nan_reasons"].split("; ") if part}
    for key in ("oos_sharpe", "oos_sortino", "oos_cagr", "dsr", "pbo", "wfe", "sharpe_ci_low", "sharpe_ci_high",
                "plateau_median"):
        v = s.get(key) if key != "wfe" else None
        if v is None or (isinstance(v, float) and not np.isfinite(v)):
            if key == "wfe":
                continue
            assert key in explained, key

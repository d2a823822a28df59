"""Metrics against quantstats and against plain-Python hand computations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import quantstats as qs

from maestro_pipeline.errors import MaestroError
from maestro_pipeline.metrics import METRIC_CONVENTIONS, compute_metrics


def sample_returns(n: int, seed: int, freq: str = "h", drift: float = 0.0002) -> pd.Series:
    rng = np.random.default_rng(seed)
    r = rng.normal(drift, 0.01, n)
    r[rng.random(n) < 0.2] = 0.0  # flat bars, as a strategy out of the market has
    return pd.Series(r, index=pd.date_range("2023-01-01", periods=n, freq=freq, unit="us"))


def hand(r: list[float], ppy: float) -> dict[str, float]:
    """Textbook formulas with loops and the math module only."""
    n = len(r)
    mean = sum(r) / n
    var = sum((x - mean) ** 2 for x in r) / (n - 1)
    std = math.sqrt(var)
    downside = math.sqrt(sum(min(x, 0.0) ** 2 for x in r) / n)
    wealth, peak, worst = 1.0, 1.0, 0.0
    for x in r:
        wealth *= 1 + x
        peak = max(peak, wealth)
        worst = min(worst, wealth / peak - 1)
    years = n / ppy
    return {
        "total_return": wealth - 1,
        "cagr": wealth ** (1 / years) - 1,
        "volatility": std * math.sqrt(ppy),
        "sharpe": mean / std * math.sqrt(ppy),
        "sortino": mean / downside * math.sqrt(ppy),
        "max_drawdown": worst,
        "calmar": (wealth ** (1 / years) - 1) / abs(worst),
    }


@pytest.mark.parametrize(("n", "seed", "freq", "ppy"), [(2000, 1, "h", 8760.0), (500, 2, "D", 365.0), (97, 3, "4h", 2190.0)])
def test_against_quantstats_and_hand(n, seed, freq, ppy):
    r = sample_returns(n, seed, freq)
    m = compute_metrics(r, ppy)
    h = hand(r.tolist(), ppy)
    for key, want in h.items():
        assert m[key] == pytest.approx(want, rel=1e-9, abs=1e-12), key

    assert m["sharpe"] == pytest.approx(qs.stats.sharpe(r, periods=ppy), rel=1e-9)
    assert m["sortino"] == pytest.approx(qs.stats.sortino(r, periods=ppy), rel=1e-9)
    assert m["max_drawdown"] == pytest.approx(qs.stats.max_drawdown(r), rel=1e-9)
    assert m["cagr"] == pytest.approx(qs.stats.cagr(r, periods=ppy), rel=1e-9)
    assert m["volatility"] == pytest.approx(qs.stats.volatility(r, periods=ppy), rel=1e-9)
    assert m["calmar"] == pytest.approx(qs.stats.calmar(r, periods=ppy), rel=1e-9)
    # without trades, win rate / profit factor are period-based like quantstats'
    assert m["win_rate"] == pytest.approx(qs.stats.win_rate(r), rel=1e-9)
    assert m["profit_factor"] == pytest.approx(qs.stats.profit_factor(r), rel=1e-9)
    assert "n_trades" not in m and "exposure" not in m


def test_numpy_input_equals_series_input():
    r = sample_returns(300, 4)
    a, b = compute_metrics(r.to_numpy(), 8760), compute_metrics(r, 8760)
    assert a == b


def test_first_bar_loss_counts_as_drawdown():
    r = pd.Series([-0.1, 0.05, 0.02], index=pd.date_range("2024-01-01", periods=3, freq="D"))
    m = compute_metrics(r, 365)
    assert m["max_drawdown"] == pytest.approx(-0.1, rel=1e-12)
    assert m["max_drawdown"] == pytest.approx(qs.stats.max_drawdown(r), rel=1e-12)


def test_zero_variance_and_degenerate_series_are_finite():
    flat = compute_metrics(np.zeros(100), 8760)
    assert flat["sharpe"] == 0.0 and flat["sortino"] == 0.0 and flat["calmar"] == 0.0
    assert flat["max_drawdown"] == 0.0 and flat["total_return"] == 0.0
    const = compute_metrics(np.full(50, 0.001), 8760)  # float std is ~1e-19, not 0
    assert const["sharpe"] == 0.0 and const["volatility"] == 0.0
    assert const["total_return"] == pytest.approx(1.001**50 - 1)
    empty = compute_metrics(np.array([]), 8760)
    assert all(v == 0.0 for v in empty.values())
    one = compute_metrics(np.array([0.01]), 8760)
    assert one["sharpe"] == 0.0
    assert const["profit_factor"] == math.inf  # gains and no losses: the one documented infinity
    for m in (flat, const, empty, one):
        assert all(math.isfinite(v) for k, v in m.items() if k != "profit_factor")


def test_trade_based_statistics_and_exposure():
    idx = pd.date_range("2024-01-01", periods=10, freq="h")
    r = pd.Series([0, 0.01, -0.02, 0.0, 0.03, 0.0, 0.0, -0.01, 0.02, 0.01], index=idx)
    trades = pd.DataFrame(
        {
            "entry_time": [idx[1], idx[4], idx[7]],
            "exit_time": [idx[3], idx[5], idx[9]],
            "pnl": [-5.0, 30.0, 10.0],
            "status": ["closed", "closed", "open"],
        }
    )
    m = compute_metrics(r, 8760, trades)
    assert m["n_trades"] == 3
    assert m["win_rate"] == pytest.approx(2 / 3)
    assert m["profit_factor"] == pytest.approx(40 / 5)
    # held at the close of bars 1, 2 (exit fills at bar 3's open), 4 (exit at 5), 7, 8, 9 (still open)
    assert m["exposure"] == pytest.approx(6 / 10)
    no_loss = compute_metrics(r, 8760, trades.iloc[1:])
    assert no_loss["profit_factor"] == math.inf
    none = compute_metrics(r, 8760, trades.iloc[:0])
    assert none["n_trades"] == 0 and none["win_rate"] == 0 and none["exposure"] == 0


def test_conventions_are_documented_and_bad_input_rejected():
    assert METRIC_CONVENTIONS["risk_free_rate"] == 0.0
    assert METRIC_CONVENTIONS["ddof"] == 1
    assert "365" in METRIC_CONVENTIONS["annualization"]
    for key in ("sharpe", "sortino", "max_drawdown", "cagr", "calmar", "exposure"):
        assert key in METRIC_CONVENTIONS
    with pytest.raises(MaestroError, match="NaN"):
        compute_metrics(np.array([0.01, np.nan]), 8760)
    with pytest.raises(MaestroError, match="periods_per_year"):
        compute_metrics(np.array([0.01]), 0)

"""Tests for maestro_pipeline.reports: daily compounding, quantstats figures at 365 periods, tearsheet, chart."""

from __future__ import annotations

import base64
import io
import logging
import math
import re
import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest

from maestro_pipeline import reporting as reports
from maestro_pipeline.errors import MaestroError
from maestro_pipeline.reporting import charts, param_charts
from maestro_pipeline.reporting import quantstats as qs_tables
from tests.support.bars import random_walk

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _hourly(days: int, seed: int, start: str = "2023-03-01", mu: float = 0.0002, sigma: float = 0.008) -> pd.Series:
    """Hourly returns starting at a UTC midnight, so day d is exactly rows 24*d .. 24*d+23."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range(start, periods=24 * days, freq="h")
    return pd.Series(rng.normal(mu, sigma, len(idx)), index=idx, name="oos")


# --------------------------------------------------------------------------------------------------
# daily_returns
# --------------------------------------------------------------------------------------------------


def test_daily_returns_compounds_bars_by_utc_day_and_skips_empty_days():
    idx = pd.DatetimeIndex(
        [
            "2024-01-01 22:00", "2024-01-01 23:00",                      # day 1: two bars
            "2024-01-02 00:00", "2024-01-02 01:00", "2024-01-02 23:00",  # day 2: crosses the boundary
            # 2024-01-03: no bars at all -> must be absent, not 0
            "2024-01-04 05:00",                                          # day 4: one bar
        ]
    )
    r = pd.Series([0.10, -0.05, 0.02, 0.03, -0.01, 0.07], index=idx)
    out = reports.daily_returns(r)

    expected = {
        pd.Timestamp("2024-01-01"): 1.10 * 0.95 - 1,          # 0.045
        pd.Timestamp("2024-01-02"): 1.02 * 1.03 * 0.99 - 1,   # 0.040094
        pd.Timestamp("2024-01-04"): 0.07,
    }
    assert list(out.index) == list(expected)
    assert out.index.tz is None
    for day, value in expected.items():
        assert out[day] == pytest.approx(value, abs=1e-15)
    assert out[pd.Timestamp("2024-01-01")] == pytest.approx(0.045, abs=1e-15)
    assert out[pd.Timestamp("2024-01-02")] == pytest.approx(0.040094, abs=1e-12)


def test_daily_returns_converts_tz_aware_index_to_utc_days():
    # 00:30 and 01:30 in Berlin (UTC+1 in January) are 23:30 and 00:30 UTC: two different UTC days
    idx = pd.DatetimeIndex(["2024-01-02 00:30", "2024-01-02 01:30"]).tz_localize("Europe/Berlin")
    out = reports.daily_returns(pd.Series([0.01, 0.02], index=idx))
    assert list(out.index) == [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-02")]
    assert out.index.tz is None
    assert out.tolist() == pytest.approx([0.01, 0.02], abs=1e-15)


@pytest.mark.parametrize(
    "series, message",
    [
        (pd.Series([], dtype=float, index=pd.DatetimeIndex([])), "empty"),
        (pd.Series([0.01, 0.02]), "DatetimeIndex"),
        (pd.Series([0.01, np.nan], index=pd.date_range("2024-01-01", periods=2, freq="h")), "NaN"),
        (pd.Series([0.01, 0.02], index=pd.DatetimeIndex(["2024-01-01", "2024-01-01"])), "duplicate"),
        (pd.Series([0.01, -1.5], index=pd.date_range("2024-01-01", periods=2, freq="h")), "-100%"),
    ],
)
def test_bad_input_raises_maestro_error(series, message):
    for fn in (reports.daily_returns, reports.quantstats_metrics, reports.equity_drawdown_png):
        with pytest.raises(MaestroError, match=re.escape(message)):
            fn(series)


# --------------------------------------------------------------------------------------------------
# quantstats_metrics
# --------------------------------------------------------------------------------------------------


def _hand_metrics(daily: np.ndarray) -> dict[str, float]:
    """The formulas, written out with numpy only, 365 periods per year."""
    n = len(daily)
    mean, std = daily.mean(), daily.std(ddof=1)
    downside = math.sqrt(float((daily[daily < 0] ** 2).sum()) / n)
    total = float(np.prod(1.0 + daily) - 1.0)
    cagr = (1.0 + total) ** (365.0 / n) - 1.0
    equity = np.concatenate([[1.0], np.cumprod(1.0 + daily)])  # starts at 1.0 before day one
    mdd = float((equity / np.maximum.accumulate(equity)).min() - 1.0)
    return {
        "sharpe": mean / std * math.sqrt(365),
        "sortino": mean / downside * math.sqrt(365),
        "volatility": std * math.sqrt(365),
        "total_return": total,
        "cagr": cagr,
        "max_drawdown": mdd,
        "calmar": cagr / abs(mdd),
    }


def test_metrics_match_hand_formulas_and_quantstats_at_365_periods():
    r = _hourly(days=200, seed=7)
    r.iloc[:24] -= 0.004  # a losing first day: the drawdown must count from the initial 1.0
    m = reports.quantstats_metrics(r)

    # daily returns built independently of pandas groupby: 24 hourly rows per day
    daily = np.prod(1.0 + r.to_numpy().reshape(200, 24), axis=1) - 1.0
    assert daily[0] < 0
    hand = _hand_metrics(daily)
    for key, value in hand.items():
        assert m[key] == pytest.approx(value, rel=0, abs=1e-9), key

    # ... and quantstats' own functions, called directly with periods=365
    import quantstats as qs

    d = pd.Series(daily, index=pd.date_range("2023-03-01", periods=200, freq="D"))
    direct = {
        "sharpe": qs.stats.sharpe(d, periods=365),
        "sortino": qs.stats.sortino(d, periods=365),
        "volatility": qs.stats.volatility(d, periods=365, annualize=True),
        "cagr": qs.stats.cagr(d, periods=365),
        "calmar": qs.stats.calmar(d, periods=365),
        "max_drawdown": qs.stats.max_drawdown(d),
        "total_return": qs.stats.comp(d),
    }
    for key, value in direct.items():
        assert m[key] == pytest.approx(float(value), rel=0, abs=1e-12), key

    # the 365-day year really is used (quantstats' default 252 gives a different Sharpe)
    assert m["sharpe"] != pytest.approx(float(qs.stats.sharpe(d)), abs=1e-6)
    assert m["sharpe"] == pytest.approx(float(qs.stats.sharpe(d)) * math.sqrt(365 / 252), abs=1e-12)


def test_metrics_keys_types_and_benchmark():
    r = _hourly(days=60, seed=1)
    b = _hourly(days=60, seed=2, mu=0.0, sigma=0.01)
    m = reports.quantstats_metrics(r, b)
    assert list(m) == list(reports.METRIC_KEYS) + list(reports.BENCHMARK_KEYS)
    assert all(type(v) is float for v in m.values())
    assert "benchmark_sharpe" not in reports.quantstats_metrics(r)

    bdaily = np.prod(1.0 + b.to_numpy().reshape(60, 24), axis=1) - 1.0
    hb = _hand_metrics(bdaily)
    assert m["benchmark_total_return"] == pytest.approx(hb["total_return"], abs=1e-12)
    assert m["benchmark_sharpe"] == pytest.approx(hb["sharpe"], abs=1e-9)
    assert m["benchmark_max_drawdown"] == pytest.approx(hb["max_drawdown"], abs=1e-12)

    daily = np.prod(1.0 + r.to_numpy().reshape(60, 24), axis=1) - 1.0
    wins, losses = daily[daily > 0], daily[daily < 0]
    assert m["win_rate"] == pytest.approx(len(wins) / len(daily[daily != 0]), abs=1e-15)
    assert m["profit_factor"] == pytest.approx(wins.sum() / -losses.sum(), abs=1e-12)
    assert m["best_day"] == pytest.approx(daily.max(), abs=1e-15)
    assert m["worst_day"] == pytest.approx(daily.min(), abs=1e-15)


def test_metrics_undefined_values_are_nan_never_inf():
    idx = pd.date_range("2024-01-01", periods=24 * 5, freq="h")
    flat = reports.quantstats_metrics(pd.Series(0.0, index=idx))
    assert flat["total_return"] == 0.0 and flat["max_drawdown"] == 0.0
    assert math.isnan(flat["sharpe"]) and math.isnan(flat["calmar"])

    winning = pd.Series(0.0, index=idx)
    winning.iloc[::24] = 0.01  # one +1% bar every day: no losing day
    m = reports.quantstats_metrics(winning)
    assert math.isnan(m["profit_factor"])  # quantstats says inf
    assert math.isnan(m["calmar"])         # cagr / 0
    assert m["win_rate"] == 1.0
    assert all(not math.isinf(v) for v in m.values())


def test_cagr_counts_observed_days_not_calendar_days():
    r = _hourly(days=40, seed=3)
    gappy = r[(r.index < "2023-03-11") | (r.index >= "2023-03-21")]  # 10 days with no bar at all
    m = reports.quantstats_metrics(gappy)
    daily = reports.daily_returns(gappy)
    assert len(daily) == 30
    assert m["cagr"] == pytest.approx((1 + m["total_return"]) ** (365 / 30) - 1, abs=1e-12)


# --------------------------------------------------------------------------------------------------
# tearsheet
# --------------------------------------------------------------------------------------------------


def test_write_tearsheet_html_365_title_quiet_and_leaves_global_state(tmp_path, caplog):
    r = _hourly(days=120, seed=11)
    b = _hourly(days=120, seed=12, mu=0.0, sigma=0.01)
    target = tmp_path / "oos.html"
    target.write_text("OLD")
    rc_before = {k: str(v) for k, v in matplotlib.rcParams.items()}

    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = reports.write_tearsheet(r, b, target, "Maestro OOS <BTC/USDT> 1h")

    assert out == target.resolve()
    html = target.read_text(encoding="utf-8")
    assert len(html) > 50_000 and "<html" in html.lower()
    assert "Maestro OOS &lt;BTC/USDT&gt; 1h" in html  # title present, HTML-escaped
    assert "Periods/Year: 365" in html
    assert "BUY AND HOLD" in html  # benchmark drawn in
    m = reports.quantstats_metrics(r, b)
    # the tearsheet's own figures agree with quantstats_metrics (same daily returns, 365 periods)
    header = re.search(r"<tr><th>Metric</th><th>([^<]*)</th><th>([^<]*)</th></tr>", html)
    assert header is not None and set(header.groups()) == {"Strategy (OOS)", "Buy and hold"}
    strategy_col = 1 + header.groups().index("Strategy (OOS)")
    bench_col = 3 - strategy_col

    def row(name: str) -> tuple[str, str, str]:
        found = re.search(rf"<tr><td>{re.escape(name)}</td><td>([^<]*)</td><td>([^<]*)</td></tr>", html)
        assert found is not None, name
        return ("", *found.groups())

    sharpe = row("Sharpe")
    assert float(sharpe[strategy_col]) == pytest.approx(m["sharpe"], abs=0.006)
    assert float(sharpe[bench_col]) == pytest.approx(m["benchmark_sharpe"], abs=0.006)
    cagr = row("CAGR\ufe6a")
    assert float(cagr[strategy_col].rstrip("%")) == pytest.approx(100 * m["cagr"], abs=0.006)
    mdd = row("Max Drawdown")
    assert float(mdd[strategy_col].rstrip("%")) == pytest.approx(100 * m["max_drawdown"], abs=0.006)
    assert float(mdd[bench_col].rstrip("%")) == pytest.approx(100 * m["benchmark_max_drawdown"], abs=0.006)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["oos.html"]  # no temp file left

    assert caught == []  # quantstats / matplotlib / pandas warnings silenced ...
    assert not [rec for rec in caplog.records if "findfont" in rec.getMessage()]  # ... and font noise
    assert {k: str(v) for k, v in matplotlib.rcParams.items()} == rc_before  # no global restyling


def test_write_tearsheet_is_atomic_when_quantstats_fails(tmp_path, monkeypatch):
    qs = qs_tables.quantstats()
    calls = []

    def broken_html(returns, *args, output=None, **kwargs):
        calls.append(output)
        with open(output, "w", encoding="utf-8") as fh:
            fh.write("<html><body>half a rep")
        raise RuntimeError("boom mid-report")

    monkeypatch.setattr(qs.reports, "html", broken_html)
    r = _hourly(days=10, seed=5)

    target = tmp_path / "report.html"
    target.write_text("PREVIOUS REPORT")
    with pytest.raises(RuntimeError, match="boom mid-report"):
        reports.write_tearsheet(r, None, target, "t")
    assert len(calls) == 1 and calls[0] != str(target)  # wrote to a temp file, not the target
    assert target.read_text() == "PREVIOUS REPORT"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]

    fresh = tmp_path / "new.html"
    with pytest.raises(RuntimeError):
        reports.write_tearsheet(r, None, fresh, "t")
    assert not fresh.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_write_tearsheet_replaces_old_file_on_success(tmp_path, monkeypatch):
    qs = qs_tables.quantstats()

    def fake_html(returns, *args, output=None, title="", periods_per_year=None, **kwargs):
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(f"<html>{title} {periods_per_year} {len(returns)}</html>")

    monkeypatch.setattr(qs.reports, "html", fake_html)
    target = tmp_path / "report.html"
    target.write_text("PREVIOUS REPORT")
    reports.write_tearsheet(_hourly(days=10, seed=5), None, str(target), "new one")
    assert target.read_text() == "<html>new one 365 10</html>"  # daily returns, 365 periods
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_write_tearsheet_missing_directory(tmp_path):
    with pytest.raises(MaestroError, match="does not exist"):
        reports.write_tearsheet(_hourly(days=3, seed=1), None, tmp_path / "nope" / "r.html", "t")


# --------------------------------------------------------------------------------------------------
# chart
# --------------------------------------------------------------------------------------------------


def test_equity_drawdown_png_and_markdown():
    from PIL import Image

    r = _hourly(days=90, seed=21)
    b = _hourly(days=90, seed=22, mu=0.0, sigma=0.01)
    rc_before = {k: str(v) for k, v in matplotlib.rcParams.items()}
    png = reports.equity_drawdown_png(r, b, title="BTC/USDT 1h OOS")
    assert png.startswith(PNG_SIGNATURE)
    assert Image.open(io.BytesIO(png)).size == (800, 500)
    assert len(png) < 150_000
    assert {k: str(v) for k, v in matplotlib.rcParams.items()} == rc_before

    assert reports.equity_drawdown_png(r).startswith(PNG_SIGNATURE)  # without benchmark

    md = reports.png_markdown(png, "OOS equity")
    prefix = "![OOS equity](data:image/png;base64,"
    assert md.startswith(prefix) and md.endswith(")")
    assert base64.b64decode(md[len(prefix):-1]) == png


def test_thin_keeps_drawdown_troughs():
    idx = pd.date_range("2024-01-01", periods=10_000, freq="min")
    dd = pd.Series(0.0, index=idx)
    dd.iloc[4321] = -0.37
    thin = charts._thin(dd, "min")
    assert len(thin) <= charts._MAX_PLOT_POINTS
    assert thin.min() == -0.37
    assert thin.index[-1] == idx[-1]


def test_quantstats_is_imported_lazily_and_does_not_restyle_matplotlib():
    # fresh interpreter: quantstats' import runs seaborn.set_theme(), which must not leak into rcParams
    import subprocess
    import sys

    code = (
        "import sys, matplotlib\n"
        "import maestro_pipeline.reporting.quantstats as R\n"
        "assert 'quantstats' not in sys.modules, 'quantstats imported eagerly'\n"
        "assert R.QUANTSTATS_CONVENTIONS['periods_per_year'] == 365\n"
        "assert R.QUANTSTATS_CONVENTIONS['library'].startswith('quantstats 0.')\n"
        "before = {k: str(v) for k, v in matplotlib.rcParams.items()}\n"
        "R.quantstats()\n"
        "assert 'quantstats' in sys.modules\n"
        "after = {k: str(v) for k, v in matplotlib.rcParams.items()}\n"
        "assert before == after, sorted(k for k in before if before[k] != after[k])\n"
        "assert R._QS_RC, 'quantstats theme not captured for the tearsheet'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
        env={**__import__("os").environ, "MPLBACKEND": "Agg"},
    )
    assert done.returncode == 0, done.stderr[-2000:]


# --------------------------------------------------------------------------------------------------
# quantstats_table
# --------------------------------------------------------------------------------------------------


def _direct_table(d: pd.Series) -> dict:
    """Every figure of the full table, by calling quantstats' own function on the daily series (365 periods)."""
    import quantstats as qs

    st = qs.stats
    calls = {
        "total_return": lambda: st.comp(d),
        "cagr": lambda: st.cagr(d, periods=365),
        "sharpe": lambda: st.sharpe(d, periods=365),
        "sortino": lambda: st.sortino(d, periods=365),
        "volatility": lambda: st.volatility(d, periods=365),
        "max_drawdown": lambda: st.max_drawdown(d),
        "calmar": lambda: st.calmar(d, periods=365),
        "win_rate": lambda: st.win_rate(d),
        "profit_factor": lambda: st.profit_factor(d),
        "omega": lambda: st.omega(d, periods=365),
        "var": lambda: st.value_at_risk(d),
        "cvar": lambda: st.cvar(d),
        "tail_ratio": lambda: st.tail_ratio(d),
        "best_day": lambda: st.best(d),
        "worst_day": lambda: st.worst(d),
        "kelly": lambda: st.kelly_criterion(d),
        "payoff_ratio": lambda: st.payoff_ratio(d),
        "consecutive_wins": lambda: st.consecutive_wins(d),
        "consecutive_losses": lambda: st.consecutive_losses(d),
        "avg_win": lambda: st.avg_win(d),
        "avg_loss": lambda: st.avg_loss(d),
        "skew": lambda: st.skew(d),
        "kurtosis": lambda: st.kurtosis(d),
        "recovery_factor": lambda: st.recovery_factor(d),
        "ulcer_index": lambda: st.ulcer_index(d),
        "exposure": lambda: st.exposure(d),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {k: float(f()) for k, f in calls.items()}


def _same(got: float, want: float) -> bool:
    if math.isinf(want):  # the table maps +-inf to NaN
        return math.isnan(got)
    if math.isnan(want):
        return math.isnan(got)
    return got == pytest.approx(want, rel=1e-12, abs=1e-15)


def test_quantstats_table_equals_quantstats_functions_on_daily_returns_with_365_periods():
    r = _hourly(days=150, seed=31)
    b = _hourly(days=150, seed=32, mu=0.0, sigma=0.01)
    table = reports.quantstats_table(r, b)

    idx = pd.date_range("2023-03-01", periods=150, freq="D")
    d = pd.Series(np.prod(1.0 + r.to_numpy().reshape(150, 24), axis=1) - 1.0, index=idx)
    bd = pd.Series(np.prod(1.0 + b.to_numpy().reshape(150, 24), axis=1) - 1.0, index=idx)
    direct, bench = _direct_table(d), _direct_table(bd)

    assert list(table) == list(reports.TABLE_KEYS) + [f"benchmark_{k}" for k in reports.TABLE_KEYS]
    assert set(direct) == set(reports.TABLE_KEYS)  # nothing in the table goes unchecked
    assert all(type(v) is float for v in table.values())
    for key, want in direct.items():
        assert _same(table[key], want), (key, table[key], want)
        assert _same(table[f"benchmark_{key}"], bench[key]), key
    # 365, not quantstats' default 252
    import quantstats as qs

    assert table["volatility"] == pytest.approx(float(qs.stats.volatility(d)) * math.sqrt(365 / 252), rel=1e-12)
    # the headline metrics are the same numbers
    m = reports.quantstats_metrics(r, b)
    assert m == {k: table[k] for k in m}
    assert "benchmark_sharpe" not in reports.quantstats_table(r)


def test_quantstats_table_figures_by_hand_on_a_crafted_series():
    daily = [0.01, 0.02, -0.01, 0.03, 0.04, 0.05, -0.02, -0.03, 0.0, 0.01]
    # daily bars: one bar per UTC day, so the daily series is the input itself
    r = pd.Series(daily, index=pd.date_range("2024-05-01", periods=10, freq="D"))
    t = reports.quantstats_table(r)
    # (daily_returns compounds each day's single bar as (1 + r) - 1: equal up to rounding)
    assert t["best_day"] == pytest.approx(0.05, abs=1e-15) and t["worst_day"] == pytest.approx(-0.03, abs=1e-15)
    assert t["consecutive_wins"] == 3.0    # 0.03, 0.04, 0.05
    assert t["consecutive_losses"] == 2.0  # -0.02, -0.03
    assert t["win_rate"] == pytest.approx(6 / 9, abs=1e-15)  # the flat day is ignored
    assert t["exposure"] == 0.9
    assert t["avg_win"] == pytest.approx((0.01 + 0.02 + 0.03 + 0.04 + 0.05 + 0.01) / 6, abs=1e-14)
    assert t["avg_loss"] == pytest.approx((-0.01 - 0.02 - 0.03) / 3, abs=1e-14)
    assert t["payoff_ratio"] == pytest.approx((0.16 / 6) / (0.06 / 3), abs=1e-12)
    assert t["total_return"] == pytest.approx(float(np.prod(1 + np.array(daily)) - 1), abs=1e-15)
    a = np.array(daily)
    assert t["sharpe"] == pytest.approx(a.mean() / a.std(ddof=1) * math.sqrt(365), abs=1e-12)
    assert t["skew"] == pytest.approx(pd.Series(a).skew(), abs=1e-12)

    # only winning days: quantstats' profit factor is inf -> NaN here; no inf anywhere
    win = pd.Series([0.01, 0.02, 0.01, 0.0, 0.03], index=pd.date_range("2024-05-01", periods=5, freq="D"))
    tw = reports.quantstats_table(win)
    import quantstats as qs

    assert math.isinf(float(qs.stats.profit_factor(win)))
    assert math.isnan(tw["profit_factor"]) and math.isnan(tw["calmar"]) and math.isnan(tw["recovery_factor"])
    assert not any(math.isinf(v) for v in tw.values())
    assert tw["consecutive_wins"] == 3.0 and tw["consecutive_losses"] == 0.0


# --------------------------------------------------------------------------------------------------
# rolling_metrics
# --------------------------------------------------------------------------------------------------


def test_rolling_metrics_match_hand_computation_with_365():
    r = _hourly(days=80, seed=41)
    roll = reports.rolling_metrics(r, window_days=30)
    daily = np.prod(1.0 + r.to_numpy().reshape(80, 24), axis=1) - 1.0
    days = pd.date_range("2023-03-01", periods=80, freq="D")

    assert list(roll.columns) == ["rolling_sharpe", "rolling_volatility"]
    assert list(roll.index) == list(days) and roll.index.name == "day"
    assert roll.iloc[:29].isna().all().all() and roll.iloc[29:].notna().all().all()
    for i in (29, 51, 79):  # first full window, a middle one, the last
        w = daily[i - 29 : i + 1]
        assert roll["rolling_sharpe"].iloc[i] == pytest.approx(w.mean() / w.std(ddof=1) * math.sqrt(365), abs=1e-9)
        assert roll["rolling_volatility"].iloc[i] == pytest.approx(w.std(ddof=1) * math.sqrt(365), abs=1e-12)


def test_rolling_metrics_flat_window_is_nan_not_inf_and_bad_window():
    r = pd.Series(0.013, index=pd.date_range("2024-01-01", periods=40, freq="D"))
    roll = reports.rolling_metrics(r, window_days=30)
    assert roll["rolling_sharpe"].isna().all()  # 0.013 / 0: quantstats says inf
    assert (roll["rolling_volatility"].iloc[29:] == 0.0).all()
    for bad in (1, 0, 2.5, True):
        with pytest.raises(MaestroError, match="window_days"):
            reports.rolling_metrics(r, window_days=bad)


# --------------------------------------------------------------------------------------------------
# candles with trades
# --------------------------------------------------------------------------------------------------


def _trades(bars: pd.DataFrame, rows: list[tuple[int, int, str, str]]) -> pd.DataFrame:
    idx, close = bars.index, bars["close"].to_numpy()
    return pd.DataFrame({
        "entry_time": [idx[i] for i, _, _, _ in rows],
        "exit_time": [idx[j] for _, j, _, _ in rows],
        "direction": [d for _, _, d, _ in rows],
        "entry_price": [close[i] for i, _, _, _ in rows],
        "exit_price": [close[j] for _, j, _, _ in rows],
        "status": [s for _, _, _, s in rows],
    })


def _offsets(fig, gid: str) -> np.ndarray:
    found = [c for c in fig.axes[0].collections if c.get_gid() == gid]
    return found[0].get_offsets() if found else np.empty((0, 2))


def test_candles_figure_window_one_marker_per_entry_and_closed_exits():
    import matplotlib.dates as mdates
    from matplotlib.collections import PolyCollection

    bars = random_walk(500, seed=3, open_noise=0, wick=0.002, start="2024-02-01")
    trades = _trades(bars, [
        (50, 60, "long", "closed"),      # before the last-400 window: not drawn
        (120, 130, "long", "closed"),
        (200, 240, "short", "closed"),
        (300, 320, "long", "closed"),
        (400, 410, "short", "closed"),
        (450, 499, "short", "open"),     # open: entry marker, no exit marker
    ])
    fig = charts._candles_figure(bars, trades, "t", max_candles=400)
    bodies = [c for c in fig.axes[0].collections if isinstance(c, PolyCollection) and not c.get_gid()]
    assert len(bodies) == 1 and len(bodies[0].get_paths()) == 400  # last 400 candles

    longs, shorts, exits = _offsets(fig, "long_entries"), _offsets(fig, "short_entries"), _offsets(fig, "exits")
    assert len(longs) == 2 and len(shorts) == 3 and len(exits) == 4
    close = bars["close"].to_numpy()
    x = mdates.date2num(bars.index[[120, 300]].to_numpy())
    assert np.allclose(longs[:, 0], x) and np.allclose(longs[:, 1], close[[120, 300]])
    assert np.allclose(sorted(exits[:, 1]), sorted(close[[130, 240, 320, 410]]))
    # a candle body spans open..close of that bar (last candle)
    o, c = bars["open"].iloc[-1], bars["close"].iloc[-1]
    ys = bodies[0].get_paths()[-1].vertices[:, 1]
    assert ys.min() == pytest.approx(min(o, c)) and ys.max() == pytest.approx(max(o, c))

    # trade times as strings (how the lake stores them) and a tz-aware bar index give the same markers
    t2 = trades.astype({"entry_time": str, "exit_time": str})
    b2 = bars.tz_localize("UTC").rename(columns=str.capitalize)
    fig2 = charts._candles_figure(b2, t2, "t", max_candles=400)
    assert np.allclose(_offsets(fig2, "long_entries"), longs) and len(_offsets(fig2, "exits")) == 4


def test_candles_png_size_and_no_global_state():
    from PIL import Image

    bars = random_walk(600, seed=3, open_noise=0, wick=0.002, start="2024-02-01")
    trades = _trades(bars, [(250, 260, "long", "closed"), (400, 450, "short", "closed")])
    rc_before = {k: str(v) for k, v in matplotlib.rcParams.items()}
    png = reports.candles_with_trades_png(bars, trades, "BTC/USDT 1h")
    assert png.startswith(PNG_SIGNATURE)
    assert Image.open(io.BytesIO(png)).size == (800, 400)
    import matplotlib.image as mpimg

    assert mpimg.imread(io.BytesIO(png)).shape[:2] == (400, 800)
    assert {k: str(v) for k, v in matplotlib.rcParams.items()} == rc_before
    import matplotlib.pyplot as plt

    assert plt.get_fignums() == []  # nothing left open
    assert reports.candles_with_trades_png(bars, None, "no trades").startswith(PNG_SIGNATURE)


def test_candles_refuse_bad_input():
    bars = random_walk(50, seed=3, open_noise=0, wick=0.002, start="2024-02-01")
    with pytest.raises(MaestroError, match="lack the OHLC column.*high, low"):
        reports.candles_with_trades_png(bars[["open", "close"]], None, "t")
    with pytest.raises(MaestroError, match="DatetimeIndex"):
        reports.candles_with_trades_png(bars.reset_index(drop=True), None, "t")
    with pytest.raises(MaestroError, match="direction"):
        reports.candles_with_trades_png(bars, _trades(bars, [(5, 9, "up", "closed")]), "t")
    with pytest.raises(MaestroError, match="max_candles"):
        reports.candles_with_trades_png(bars, None, "t", max_candles=0)


# --------------------------------------------------------------------------------------------------
# parameter stability charts
# --------------------------------------------------------------------------------------------------


def test_param_heatmap_cell_colour_is_position_in_search_range():
    from PIL import Image

    splits = [
        {"split": 2, "fast": 12, "k": 1.5, "ma": "ema", "fixed": 7},
        {"split": 0, "fast": 2, "k": 3.5, "ma": "sma", "fixed": 7},
        {"split": 1, "fast": 60, "k": 2.0, "ma": "wma", "fixed": 7},  # wma: not a choice -> grey cell
    ]
    space = {"fast": (2, 60), "k": (1.0, 3.5), "ma": ["sma", "ema", "hma"]}
    fig, pos = param_charts._heatmap_figure(splits, space, "t")
    im = fig.axes[0].images[0]
    shown = np.ma.filled(im.get_array().astype(float), np.nan)
    # rows = params in space order, columns = splits sorted: 0, 1, 2
    expected = np.array([
        [(2 - 2) / 58, (60 - 2) / 58, (12 - 2) / 58],
        [(3.5 - 1.0) / 2.5, (2.0 - 1.0) / 2.5, (1.5 - 1.0) / 2.5],
        [0 / 2, np.nan, 1 / 2],
    ])
    np.testing.assert_allclose(shown, expected, atol=1e-12)
    np.testing.assert_allclose(pos, expected, atol=1e-12)
    assert im.norm.vmin == 0.0 and im.norm.vmax == 1.0
    assert np.allclose(im.cmap(im.norm(shown[0, 2])), matplotlib.colormaps["viridis"]((12 - 2) / 58))
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"12", "1.5", "ema", "wma", "60"} <= texts and "7" not in texts  # fixed params not shown
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["0", "1", "2"]

    png = reports.param_heatmap_png(pd.DataFrame(splits), space, "BTC ema_cross")
    assert png.startswith(PNG_SIGNATURE) and Image.open(io.BytesIO(png)).size == (800, 400)

    with pytest.raises(MaestroError, match="slow"):
        reports.param_heatmap_png(splits, {**space, "slow": (10, 240)})
    with pytest.raises(MaestroError, match="empty"):
        reports.param_heatmap_png([], space)


def test_param_heatmap_accepts_strategy_param_specs():
    from maestro_pipeline.strategies import Categorical, FloatParam, IntParam

    space = {"w": IntParam(5, 105), "s": FloatParam(0.01, 1.0, log=True), "c": Categorical(("a", "b"))}
    _, pos = param_charts._heatmap_figure([{"w": 30, "s": 0.1, "c": "b"}], space)
    np.testing.assert_allclose(pos[:, 0], [0.25, 0.5, 1.0], atol=1e-12)  # log range: 0.1 is the middle


def test_param_surface_marks_best_and_renders():
    from PIL import Image

    rng = np.random.default_rng(5)
    trials = pd.DataFrame({"fast": rng.integers(2, 60, 120), "slow": rng.integers(10, 240, 120)})
    trials["value"] = -((trials["fast"] - 20) ** 2) / 100 - ((trials["slow"] - 90) ** 2) / 1000
    trials.loc[3, "value"] = np.nan  # a failed trial
    best = trials.loc[trials["value"].idxmax()].to_dict()
    fig = param_charts._surface_figure(trials, "fast", "slow", best)
    ax = fig.axes[0]
    star = _offsets(fig, "best")
    assert star.tolist() == [[best["fast"], best["slow"]]]
    dots = [c for c in ax.collections if c.get_gid() is None and hasattr(c, "get_offsets") and len(c.get_offsets()) > 1
            and c.get_array() is not None and c.get_array().ndim == 1]
    assert len(dots[-1].get_offsets()) == 119  # the NaN trial is left out
    png = reports.param_surface_png(trials, "fast", "slow", best, title="surface")
    assert png.startswith(PNG_SIGNATURE) and Image.open(io.BytesIO(png)).size == (800, 500)
    with pytest.raises(MaestroError, match="'mid'"):
        reports.param_surface_png(trials, "fast", "mid", best)
    with pytest.raises(MaestroError, match="best"):
        reports.param_surface_png(trials, "fast", "slow", {"fast": 3})

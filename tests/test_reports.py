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

from maestro_pipeline import reports
from maestro_pipeline.errors import MaestroError

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
    qs = reports._quantstats()
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
    qs = reports._quantstats()

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
    thin = reports._thin(dd, "min")
    assert len(thin) <= reports._MAX_PLOT_POINTS
    assert thin.min() == -0.37
    assert thin.index[-1] == idx[-1]


def test_quantstats_is_imported_lazily_and_does_not_restyle_matplotlib():
    # fresh interpreter: quantstats' import runs seaborn.set_theme(), which must not leak into rcParams
    import subprocess
    import sys

    code = (
        "import sys, matplotlib\n"
        "import maestro_pipeline.reports as R\n"
        "assert 'quantstats' not in sys.modules, 'quantstats imported eagerly'\n"
        "assert R.QUANTSTATS_CONVENTIONS['periods_per_year'] == 365\n"
        "assert R.QUANTSTATS_CONVENTIONS['library'].startswith('quantstats 0.')\n"
        "before = {k: str(v) for k, v in matplotlib.rcParams.items()}\n"
        "R._quantstats()\n"
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

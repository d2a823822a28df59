"""The compiled fast path against its independent reference, the vectorbt engine (``run_backtest``/``evaluate``,
itself tested against Backtrader), and ``compute_metrics``; plus the grid and the ``signals_batch`` hook."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from maestro_pipeline import engine, stats
from maestro_pipeline.engine import Costs, evaluate, run_backtest
from maestro_pipeline.errors import DataError, MaestroError
from maestro_pipeline.schema import to_pandas_bars
from maestro_pipeline.stats import compute_metrics
from maestro_pipeline.strategies import Categorical, FloatParam, IntParam, Signals, available_strategies, get_strategy
from maestro_pipeline.timeframes import HOUR_MS
from tests.support.bars import T2025_MS, bars_from_close, hourly_index, random_walk, synthetic_bars, with_derivatives

METRICS = ("sharpe", "sortino", "total_return", "cagr", "calmar", "max_drawdown", "vwr")


def random_case(rng: np.random.Generator):
    n = int(rng.integers(2, 160))
    vol = float(rng.choice([0.005, 0.03, 0.15, 0.4]))
    bars = random_walk(n, rng=rng, vol=vol, open_noise=vol / 4, name="datetime")
    density = float(rng.choice([0.01, 0.05, 0.2, 0.5]))  # dense signals collide on the same bar
    signals = [rng.random(n) < density for _ in range(4)]
    rate = None
    if rng.random() < 0.5:  # a funding settlement on some bars, NaN elsewhere
        rate = np.full(n, np.nan)
        hit = rng.random(n) < 0.25
        rate[hit] = rng.normal(0, 0.01, hit.sum())
        bars["funding_rate"] = rate
    start = int(rng.integers(0, n))
    fee = float(rng.choice([0.0, 0.0004, 0.001, 0.01, 0.1]))
    slip = float(rng.choice([0.0, 0.0005, 0.002, 0.05]))
    return bars, signals, rate, start, fee, slip


def test_simulate_equals_run_backtest_on_random_cases():
    rng = np.random.default_rng(20260514)
    n_trades_seen = 0
    for case in range(320):
        bars, signals, rate, start, fee, slip = random_case(rng)
        ref = run_backtest(bars, Signals(*signals), Costs(fee, slip, max(fee, 0.005)), start=start)
        got, n_trades = engine.simulate(bars["open"].to_numpy(), bars["close"].to_numpy(), *signals, start, fee, slip,
                                          funding_rate=rate, maintenance_margin=max(fee, 0.005))
        assert got.shape == (len(bars) - start,)
        np.testing.assert_allclose(got, ref.returns.to_numpy(), rtol=0, atol=1e-10, err_msg=f"case {case}")
        assert n_trades == len(ref.trades), f"case {case}"
        n_trades_seen += n_trades
    assert n_trades_seen > 1000  # the cases trade a lot, not just sit flat


def test_a_short_is_liquidated_before_it_outgrows_its_cash():
    # short all-in at 100, the price triples. Without margin rules vectorbt's cash account would cover only part
    # of the short at 300 and leave the rest open with negative equity; with them the short is closed at its
    # liquidation price (equity = maintenance margin) on the first bar whose high reaches it, and both engines
    # agree. A later long entry trades on what is left.
    close = np.array([100.0, 100, 100, 150, 250, 300, 300, 300, 310, 320])
    open_ = np.r_[100.0, close[:-1]]                              # each bar opens at the previous close
    bars = bars_from_close(close, open_, index=hourly_index(len(close), name="datetime"))
    n = len(close)
    le, lx, se, sx = (np.zeros(n, bool) for _ in range(4))
    se[0] = True  # short from open[1]
    sx[5] = True  # the cover signal comes too late: the short is already gone
    le[7] = True  # long entry at open[8]
    costs = Costs(0.001, 0.0005)
    ref = run_backtest(bars, Signals(le, lx, se, sx), costs)
    assert ref.trades["exit_reason"].tolist() == ["liquidation", "end of data"]
    fill = 100.0 * (1 - costs.slippage)
    p_liq = 2 * fill / (1 + costs.maintenance_margin)            # equity = maintenance margin (hand-derived)
    assert ref.trades["exit_price"].iloc[0] == pytest.approx(p_liq, rel=1e-12)
    assert ref.trades["exit_time"].iloc[0] == bars.index[4]     # bar 4 (150 -> 250) is the first to reach it
    assert ref.min_equity > 0 and not ref.ruined
    got, n_trades = engine.simulate(open_, close, le, lx, se, sx, 0, costs.fee, costs.slippage,
                                     high=bars["high"], low=bars["low"])
    np.testing.assert_allclose(got, ref.returns.to_numpy(), rtol=0, atol=1e-10)
    assert n_trades == 2


def test_reversals_and_conflicts_match_run_backtest():
    close = np.array([100.0, 101, 103, 99, 97, 98, 104, 106, 103, 101, 100, 102])
    bars = bars_from_close(close, index=hourly_index(len(close), name="datetime"))
    n = len(bars)
    le, lx, se, sx = (np.zeros(n, bool) for _ in range(4))
    le[1] = True  # long
    le[3] = se[3] = True  # both entries: ignored
    se[4] = True  # long -> short in one order
    le[6] = lx[6] = True  # long entry + exit on one bar: ignored
    le[7] = True  # short -> long
    le[8] = True  # already long: no pyramiding
    lx[9] = True  # flat
    for fee, slip in ((0.0, 0.0), (0.001, 0.0005), (0.02, 0.01)):
        ref = run_backtest(bars, Signals(le, lx, se, sx), Costs(fee, slip, max(fee, 0.005)))
        got, n_trades = engine.simulate(bars["open"], bars["close"], le, lx, se, sx, 0, fee, slip,
                                         maintenance_margin=max(fee, 0.005))
        np.testing.assert_allclose(got, ref.returns.to_numpy(), rtol=0, atol=1e-10)
        assert n_trades == len(ref.trades) == 3  # long, short (reversal), long; closed


# ----------------------------------------------------------------------------- strategies: evaluate_fast


@pytest.fixture(scope="module")
def sbars() -> pd.DataFrame:
    """Embedded-market 1h bars (as bench.year_of_bars builds them) plus derivatives columns (funding NaN between
    settlements)."""
    bars = to_pandas_bars(synthetic_bars(T2025_MS, T2025_MS + 2200 * HOUR_MS, seed=5))
    return with_derivatives(bars, 5, funding_sd=4e-4, forward_fill=False, open_interest=1e9, mark_sd=5e-4)


def sample_params(strategy, rng: np.random.Generator) -> dict:
    for _ in range(200):
        params = dict(strategy.defaults)
        for key, spec in strategy.space.items():
            if isinstance(spec, IntParam):
                params[key] = int(rng.integers(spec.low, spec.high + 1))
            elif isinstance(spec, FloatParam):
                lo, hi = (math.log(spec.low), math.log(spec.high)) if spec.log else (spec.low, spec.high)
                v = float(rng.uniform(lo, hi))
                params[key] = math.exp(v) if spec.log else v
            elif isinstance(spec, Categorical):
                params[key] = spec.choices[int(rng.integers(len(spec.choices)))]
        try:
            return strategy.check(params)
        except MaestroError:
            continue
    raise AssertionError(f"could not sample valid params for {strategy.name}")


@pytest.mark.parametrize("name", available_strategies())
def test_evaluate_fast_equals_evaluate_for_every_strategy(name, sbars):
    strategy = get_strategy(name)
    rng = np.random.default_rng(sum(map(ord, name)))
    costs = Costs(0.001, 0.0005)
    arrays = engine.bar_arrays(sbars)
    start, end = 1200, len(sbars) - 5
    total_trades = 0
    for params in [strategy.check({}), sample_params(strategy, rng), sample_params(strategy, rng)]:
        ref = evaluate(sbars, strategy, params, start, end, costs)
        for arr in (None, arrays):
            got, n_trades = engine.evaluate_fast(sbars, strategy, params, start, end, costs, arrays=arr)
            np.testing.assert_allclose(got, ref.returns.to_numpy(), rtol=0, atol=1e-10, err_msg=f"{name} {params}")
            assert n_trades == ref.n_trades, f"{name} {params}"
        total_trades += n_trades
    assert total_trades > 0  # the comparison covers fills, not only a flat line


def test_evaluate_fast_without_funding_column_and_from_the_first_bar(sbars):
    bars = sbars.drop(columns=["funding_rate"])
    strategy = get_strategy("ema_cross")
    costs = Costs(0.002, 0.001)
    for start, end in ((0, 600), (50, 900), (899, 900)):
        ref = evaluate(bars, strategy, {"fast": 5, "slow": 20}, start, end, costs)
        got, n_trades = engine.evaluate_fast(bars, strategy, {"fast": 5, "slow": 20}, start, end, costs)
        np.testing.assert_allclose(got, ref.returns.to_numpy(), rtol=0, atol=1e-10)
        assert n_trades == ref.n_trades
    assert n_trades == 0 and np.all(got == 0)  # one bar: nothing can fill


# ----------------------------------------------------------------------------- grid and signals_batch


def test_ema_cross_signals_batch_equals_per_params_signals(sbars):
    strategy = get_strategy("ema_cross")
    pairs = ((2, 10), (12, 26), (12, 40), (60, 240), (2, 240), (12, 26))  # repeats share EMAs
    params_list = [strategy.check({"fast": f, "slow": s}) for f, s in pairs]
    for bars in (sbars, sbars.iloc[:700], sbars.iloc[:100]):  # 100 bars: shorter than most warm-ups
        batch = strategy.signals_batch(bars, params_list)
        assert len(batch) == len(params_list)
        for params, sig in zip(params_list, batch, strict=True):
            want = strategy.signals(bars, params)
            for a, b in zip(sig.arrays(), want.arrays(), strict=True):
                assert a.dtype == np.bool_ and a.shape == b.shape
                np.testing.assert_array_equal(a, b)


def test_base_signals_batch_loops_over_signals(sbars):
    strategy = get_strategy("rsi")
    params_list = [strategy.check({}), sample_params(strategy, np.random.default_rng(1))]
    for sig, params in zip(strategy.signals_batch(sbars, params_list), params_list, strict=True):
        for a, b in zip(sig.arrays(), strategy.signals(sbars, params).arrays(), strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["ema_cross", "rsi", "funding_rate_arbitrage"])
def test_grid_returns_equals_looping_evaluate_fast(name, sbars):
    strategy = get_strategy(name)
    rng = np.random.default_rng(7)
    if name == "ema_cross":  # different slows -> different warm-up starts -> several signals_batch groups
        params_list = [{"fast": f, "slow": s} for f, s in ((2, 10), (5, 30), (12, 26), (20, 200), (5, 30), (40, 240))]
    else:
        params_list = [strategy.check({})] + [sample_params(strategy, rng) for _ in range(4)]
    costs = Costs(0.001, 0.0005)
    for start, end in ((0, 800), (900, 1500)):
        returns, n_trades = engine.grid_returns(sbars, strategy, params_list, start, end, costs)
        assert returns.shape == (end - start, len(params_list)) and n_trades.shape == (len(params_list),)
        for k, params in enumerate(params_list):
            want, want_trades = engine.evaluate_fast(sbars, strategy, params, start, end, costs)
            np.testing.assert_array_equal(returns[:, k], want)
            assert n_trades[k] == want_trades
        # and one column straight against the vectorbt engine
        ref = evaluate(sbars, strategy, params_list[-1], start, end, costs)
        np.testing.assert_allclose(returns[:, -1], ref.returns.to_numpy(), rtol=0, atol=1e-10)
        assert n_trades[-1] == ref.n_trades


# ----------------------------------------------------------------------------- metrics


def _assert_metrics_equal(r: np.ndarray, ppy: float) -> None:
    ref = compute_metrics(r, ppy)
    got = stats.fast_metrics(r, ppy)
    assert set(got) == set(METRICS)
    for key in METRICS:
        assert got[key] == pytest.approx(ref[key], rel=1e-9, abs=1e-12), key
        assert stats.score(r, key, ppy) == got[key]


def test_fast_metrics_equal_compute_metrics_on_random_series():
    rng = np.random.default_rng(3)
    for case in range(60):
        n = int(rng.integers(2, 3000))
        r = rng.normal(float(rng.choice([-0.001, 0.0, 0.0005])), float(rng.choice([0.002, 0.01, 0.05])), n)
        if case % 3 == 0:
            r[rng.random(n) < 0.7] = 0.0  # mostly flat, like a strategy out of the market
        for ppy in (8760.0, 365.0, 52.0):
            _assert_metrics_equal(r, ppy)


def test_fast_metrics_equal_compute_metrics_on_backtest_returns(sbars):
    strategy = get_strategy("ema_cross")
    returns, _ = engine.grid_returns(sbars, strategy, [{"fast": 12, "slow": 26}, {"fast": 2, "slow": 10}],
                                       300, 2000, Costs(0.001, 0.0005))
    for k in range(returns.shape[1]):
        _assert_metrics_equal(returns[:, k], 8760.0)


@pytest.mark.parametrize("r", [
    np.zeros(500),  # all zeros
    np.array([0.013]),  # one bar
    np.array([0.0]),
    np.array([0.01, 0.02, -1.0, 0.0, 0.0]),  # a -100% bar: equity hits zero
    np.array([-1.0]),
    np.full(400, 0.001),  # constant: std is float noise, treated as zero
    np.full(400, -0.002),
    np.zeros(0),
])
def test_fast_metrics_edge_cases(r):
    for ppy in (8760.0, 365.0):
        _assert_metrics_equal(r, ppy)


def test_metric_and_score_inputs_are_checked():
    with pytest.raises(MaestroError, match="objective"):
        stats.score(np.zeros(3), "profit", 8760.0)
    with pytest.raises(MaestroError, match="NaN"):
        stats.fast_metrics(np.array([0.1, np.nan]), 8760.0)
    with pytest.raises(MaestroError, match="periods_per_year"):
        stats.score(np.zeros(3), "sharpe", 0)


# ----------------------------------------------------------------------------- input errors


def test_simulate_rejects_bad_inputs_with_a_fix():
    o = c = np.full(10, 100.0)
    z = np.zeros(10, bool)
    with pytest.raises(MaestroError, match=r"short_exits has shape \(9,\), expected \(10,\)"):
        engine.simulate(o, c, z, z, z, z[:9], 0, 0.001, 0.0)
    with pytest.raises(MaestroError, match=r"close has shape \(8,\)"):
        engine.simulate(o, c[:8], z, z, z, z, 0, 0.001, 0.0)
    for start in (-1, 10, 2.5):
        with pytest.raises(MaestroError, match="0 <= start < 10"):
            engine.simulate(o, c, z, z, z, z, start, 0.001, 0.0)
    with pytest.raises(MaestroError, match=r"fee=1\.5 must be a fraction in \[0, 1\)"):
        engine.simulate(o, c, z, z, z, z, 0, 1.5, 0.0)
    with pytest.raises(MaestroError, match="slippage"):
        engine.simulate(o, c, z, z, z, z, 0, 0.0, -0.1)
    bad = o.copy()
    bad[5] = np.nan
    with pytest.raises(DataError, match="clean the data"):
        engine.simulate(bad, c, z, z, z, z, 0, 0.001, 0.0)
    engine.simulate(bad, c, z, z, z, z, 6, 0.001, 0.0)  # outside the window: fine, as in run_backtest
    with pytest.raises(DataError, match="funding_rate has infinite values"):
        engine.simulate(o, c, z, z, z, z, 0, 0.001, 0.0, funding_rate=np.r_[np.inf, np.zeros(9)])


def test_window_and_grid_errors(sbars):
    strategy = get_strategy("ema_cross")
    costs = Costs()
    with pytest.raises(MaestroError, match="window"):
        engine.evaluate_fast(sbars, strategy, {}, 100, 100, costs)
    with pytest.raises(MaestroError, match="window"):
        engine.grid_returns(sbars, strategy, [{}], 0, len(sbars) + 1, costs)
    with pytest.raises(MaestroError, match="empty"):
        engine.grid_returns(sbars, strategy, [], 0, 100, costs)
    with pytest.raises(MaestroError, match="fast .* must be smaller than slow"):
        engine.grid_returns(sbars, strategy, [{"fast": 30, "slow": 20}], 0, 100, costs)
    with pytest.raises(MaestroError, match="bar_arrays"):
        engine.evaluate_fast(sbars, strategy, {}, 0, 100, costs, arrays={"open": sbars["open"].to_numpy()})

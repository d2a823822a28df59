"""Seeded Optuna search: reproducibility, ledger, warm start, penalties, infeasible sets, impossible windows."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pandas as pd
import pytest

from maestro_pipeline.config import SearchConfig, parse_section
from maestro_pipeline.engine import Costs, evaluate
from maestro_pipeline.errors import MaestroError
from maestro_pipeline.search import LEDGER_COLUMNS, search_split, suggest
from maestro_pipeline.stats import compute_metrics
from maestro_pipeline.strategies import get_strategy
from tests.support.bars import random_walk

PPY = 8760.0


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return random_walk(2500, seed=21, unit="us")


def run(bars, seed=7, n_trials=16, name="ema_cross", warm_start=None, **search):
    cfg = parse_section(SearchConfig, {"n_trials": n_trials, **search}, "search")
    return search_split(bars, get_strategy(name), 1000, 2500, cfg, seed=seed, costs=Costs(), periods_per_year=PPY,
                        warm_start=warm_start)


def test_same_seed_same_search_and_ledger_shape(bars):
    a = run(bars, seed=7, warm_start={"fast": 10, "slow": 30})
    b = run(bars, seed=7, warm_start={"fast": 10, "slow": 30})
    assert a.best_params == b.best_params
    assert a.best_value == b.best_value
    pd.testing.assert_frame_equal(a.ledger, b.ledger)

    led = a.ledger
    assert list(led.columns) == list(LEDGER_COLUMNS)
    assert len(led) == 16 and led["trial"].tolist() == list(range(16))
    assert a.best_value == pytest.approx(np.nanmax(led["value"].to_numpy()), rel=0, abs=0)
    assert json.loads(led.loc[0, "params"]) == {"fast": 10, "slow": 30}  # warm start is trial 0
    assert set(led["state"]) <= {"COMPLETE", "PRUNED"}
    assert (led.loc[led["state"] == "COMPLETE", "n_trades"] >= 0).all()

    # the winner's score is reproducible by re-running the backtest outside the search
    s = get_strategy("ema_cross")
    res = evaluate(bars, s, a.best_params, 1000, 2500, Costs())
    m = compute_metrics(res.returns, PPY, res.trades)
    assert m["sharpe"] == pytest.approx(a.best_value, rel=1e-12)
    shared = sorted(set(a.train_metrics) & set(m) - {"max_drawdown"})
    assert {"sharpe", "vwr", "total_return", "cagr", "n_trades"} <= set(shared)
    assert {k: a.train_metrics[k] for k in shared} == pytest.approx({k: m[k] for k in shared}, rel=1e-9, abs=1e-12)
    # the drawdown is the one every view shows: on end-of-day equity (pandas resampling as the reference)
    day_end = (1.0 + res.returns).cumprod().resample("1D").last().to_numpy()
    peak = np.maximum.accumulate(np.r_[1.0, day_end])[1:]
    assert a.train_metrics["max_drawdown"] == pytest.approx(float(np.min(day_end / peak - 1.0)), rel=1e-9)
    assert a.train_metrics["max_drawdown"] >= m["max_drawdown"]   # a per-bar trough is at least as deep

    c = run(bars, seed=8, warm_start={"fast": 10, "slow": 30})
    assert c.ledger["params"].tolist() != a.ledger["params"].tolist()  # the seed matters


def test_total_return_objective_and_other_strategies(bars):
    r = run(bars, seed=1, n_trials=8, name="rsi", objective="total_return")
    ok = r.ledger[r.ledger["state"] == "COMPLETE"]
    assert r.best_value == ok.loc[ok["feasible"], "value"].max()  # the best trial with enough train trades
    traded = ok["n_trades"] > 0
    assert traded.any()
    np.testing.assert_array_equal(ok["value"], ok["total_return"])  # the real value, traded or not
    assert (ok["feasible"] == (ok["n_trades"] >= SearchConfig().min_trades)).all()
    assert ok.loc[ok["selected"], "feasible"].all()
    assert get_strategy("rsi").check(r.best_params) == r.best_params
    b = run(bars, seed=1, n_trials=6, name="bollinger")
    assert len(b.ledger) == 6


def test_infeasible_parameter_sets_are_pruned_not_evaluated():
    s = get_strategy("ema_cross")
    with pytest.raises(optuna.TrialPruned):
        suggest(optuna.trial.FixedTrial({"fast": 40, "slow": 20}), s)
    assert suggest(optuna.trial.FixedTrial({"fast": 5, "slow": 20}), s) == {"fast": 5, "slow": 20}
    r = get_strategy("rsi")
    got = suggest(optuna.trial.FixedTrial({"window": 10, "lower": 20.0, "upper": 80.0}), r)
    assert got == {"window": 10, "lower": 20.0, "upper": 80.0}


def test_pruned_trials_in_a_real_search_have_no_value(bars):
    res = run(bars, seed=3, n_trials=40)
    led = res.ledger
    pruned = led[led["state"] == "PRUNED"]
    assert len(pruned) > 0  # fast >= slow is ~9% of the box: 40 trials hit it with this seed
    assert pruned["value"].isna().all() and (pruned["n_trades"] == -1).all()
    for p in pruned["note"]:
        assert "fast" in p and "slow" in p
    for params in pruned["params"]:
        d = json.loads(params)
        assert d["fast"] >= d["slow"]


def test_a_window_without_trades_keeps_real_values_and_has_no_pick():
    flat = random_walk(1500, seed=1, unit="us")
    flat[["open", "high", "low", "close"]] = 100.0  # EMAs never cross
    res = search_split(flat, get_strategy("ema_cross"), 500, 1500,
                       parse_section(SearchConfig, {"n_trials": 4}, "search"), seed=0, costs=Costs(),
                       periods_per_year=PPY)
    led = res.ledger
    ok = led[led["state"] == "COMPLETE"]
    assert len(ok) and (ok["n_trades"] == 0).all() and not ok["feasible"].any()
    assert (ok["value"] == ok["sharpe"]).all()  # no invented penalty score: the real (flat) metric
    assert res.best_params is None and not led["selected"].any()
    assert "min_trades" in res.note


def test_bad_requests_raise_maestro_errors(bars):
    with pytest.raises(MaestroError, match="objective"):
        run(bars, objective="profit")
    with pytest.raises(MaestroError, match="n_trials"):
        run(bars, n_trials=0)
    with pytest.raises(MaestroError, match="slow"):
        run(bars, warm_start={"fast": 50, "slow": 20})
    s = get_strategy("ema_cross")
    with pytest.raises(MaestroError, match="warm-up"):  # smallest ema_cross warm-up is 40 bars
        search_split(bars, s, 0, 30, parse_section(SearchConfig, {"n_trials": 3}, "search"), seed=0, costs=Costs(),
                     periods_per_year=PPY)
    with pytest.raises(MaestroError, match="window"):
        search_split(bars, s, 100, 5000, parse_section(SearchConfig, {"n_trials": 3}, "search"), seed=0, costs=Costs(),
                     periods_per_year=PPY)

"""The search's sample rule: a trial below ``search.min_trades`` is infeasible (recorded, never picked, no sentinel
score); a split with no feasible trial says so and its test window stays flat; searched stops join the space."""

from __future__ import annotations

import json
import math

import numpy as np
import optuna
import polars as pl
import pytest

from maestro_pipeline.config import RiskConfig, SearchConfig, WalkForwardConfig, parse_section
from maestro_pipeline.engine import Costs
from maestro_pipeline.errors import MaestroError
from maestro_pipeline.evaluation import build_report_card, run_oos
from maestro_pipeline.reporting import write_tearsheet
from maestro_pipeline.schema import conform, to_pandas_bars
from maestro_pipeline.search import optimize_splits, refuse_lookahead, search_split
from maestro_pipeline.strategies import get_strategy
from maestro_pipeline.strategies.ema_cross import EmaCross
from maestro_pipeline.walkforward import make_splits
from tests.support.bars import T2025_MS, random_walk, synthetic_bars

PPY = 8760.0


def search(**kw) -> SearchConfig:
    return parse_section(SearchConfig, {"n_trials": 16, "seed": 3, "storage": "none", **kw}, "search")


def test_trials_below_min_trades_are_infeasible_with_their_real_value_and_never_picked():
    bars = random_walk(2500, seed=21, wick=0.002)
    res = search_split(bars, get_strategy("ema_cross"), 1000, 2500, search(min_trades=12), seed=7, costs=Costs(),
                       periods_per_year=PPY)
    led = res.ledger
    done = led[led["state"] == "COMPLETE"]
    low = done[done["n_trades"] < 12]
    assert len(low) > 0 and not low["feasible"].any()
    assert low["note"].str.startswith("infeasible: ").all() and low["value"].map(math.isfinite).all()
    assert not (led["value"] == -1000.0).any()                       # no sentinel score anywhere
    pick = led[led["selected"]].iloc[0]
    assert pick["feasible"] and pick["n_trades"] >= 12
    assert res.train_metrics["n_trades"] >= 12


def test_a_train_window_with_one_trade_has_no_pick_and_its_test_window_stays_flat(tmp_path):
    # a market that trends one way: an EMA cross trades once or twice in each train window
    n = 24 * 150
    close = 100 * np.exp(np.linspace(0, 1.5, n)) * (1 + 0.0005 * np.sin(np.arange(n)))
    bars = conform(pl.DataFrame({"timestamp": T2025_MS + np.arange(n) * 3_600_000, "open": np.r_[100.0, close[:-1]],
                                 "high": close * 1.001, "low": close * 0.999, "close": close, "volume": 1.0}),
                   "synthetic")
    wf = WalkForwardConfig(train="60d", test="30d", n_splits=2)
    splits, _ = make_splits(bars, "1h", wf)
    out = optimize_splits(bars, splits, "ema_cross", search(min_trades=5), Costs(), "1h", workers=1)
    assert (out.params["params"] == "").all()
    assert out.params["pick_note"].str.contains("no trial reached min_trades 5").all()
    oos = run_oos(bars, out.params, "ema_cross", Costs(), "1h")
    assert (oos.returns == 0).all() and oos.summary["oos_trades"] == 0 and oos.summary["no_pick_splits"] == 2
    assert oos.per_split["note"].str.contains("no trial reached").all()
    # the whole report still builds on a flat OOS series (quantstats divides by its zero drawdown)
    card = build_report_card(oos, out.params, out.ledger, out.daily, to_pandas_bars(bars), get_strategy("ema_cross"),
                             "flat")
    assert card.summary["verdict"] == "insufficient data"
    assert math.isnan(card.summary["oos_calmar"]) and card.summary["oos_max_drawdown"] == 0.0
    write_tearsheet(oos.returns, oos.benchmark, tmp_path / "t.html", title="flat")
    assert "every daily return 0" in (tmp_path / "t.html").read_text()


def test_the_study_names_its_objectives_and_optuna_knows_the_constraint(tmp_path):
    bars = to_pandas_bars(synthetic_bars(T2025_MS, T2025_MS + 140 * 86_400_000, seed=3))
    res = search_split(bars, get_strategy("ema_cross"), 1500, len(bars), search(objective=["sharpe", "vwr"]),
                       seed=1, costs=Costs(), periods_per_year=PPY)
    from maestro_pipeline.search import persist_study

    url = f"sqlite:///{tmp_path}/s.db"
    assert persist_study(url, "x", res.trials, res.settings["objectives"], {})
    study = optuna.load_study(study_name="x", storage=url)
    assert study.metric_names == ["sharpe", "vwr"]
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert all("constraints" in t.system_attrs or True for t in done) and len(done) > 0


def test_searched_stops_join_the_space_and_drive_the_oos_trades():
    bars = synthetic_bars(T2025_MS, T2025_MS + 200 * 86_400_000, seed=5)
    risk = parse_section(RiskConfig, {"default": {"take_profit": "4%"},
                                      "strategies": {"ema_cross": {"search": {"stop_loss": ["1atr", "4atr"]}}}},
                         "risk").for_strategy("ema_cross")
    wf = WalkForwardConfig(train="90d", test="30d", n_splits=2)
    splits, _ = make_splits(bars, "1h", wf)
    out = optimize_splits(bars, splits, "ema_cross", search(), Costs(), "1h", risk=risk, workers=1)
    picks = [json.loads(p) for p in out.params["params"]]
    assert all(1.0 <= p["stop_loss_atr"] <= 4.0 for p in picks)
    trial_params = [json.loads(p) for p in out.ledger["params"]]
    assert len({round(p.get("stop_loss_atr", 0), 6) for p in trial_params}) > 5
    oos = run_oos(bars, out.params, "ema_cross", Costs(), "1h", risk=risk)
    exits = json.loads(oos.summary["oos_exits"])
    assert exits["stop"] + exits["target"] > 0
    assert "take_profit 0.04" in oos.summary["risk"] and "searched: stop_loss" in oos.summary["risk"]


class Peek(EmaCross):
    """Reads the next bar's close: long before a rise."""

    name = "peek"

    def signals(self, bars, params):
        up = bars["close"].shift(-1).to_numpy() > bars["close"].to_numpy()
        return self.finish(bars, params, up, ~up, ~up, up)


def test_research_refuses_a_strategy_that_reads_the_future_and_names_the_bar():
    bars = to_pandas_bars(synthetic_bars(T2025_MS, T2025_MS + 60 * 86_400_000, seed=2))
    with pytest.raises(MaestroError, match=r"peek: reads the future — .* changed its long entry signal at .* \(bar "):
        refuse_lookahead(Peek(), bars)
    refuse_lookahead(get_strategy("ema_cross"), bars)  # the catalog passes

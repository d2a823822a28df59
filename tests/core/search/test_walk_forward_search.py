"""Walk-forward search across splits: reproducibility across seeds and workers, incremental reuse, the ledger,
samplers, pruning, multi-objective selection, warm start, persistence to Optuna storage (and optuna-dashboard)."""

from __future__ import annotations

import json
import threading
import urllib.request
from datetime import datetime
from wsgiref.simple_server import WSGIRequestHandler, make_server

import numpy as np
import optuna
import polars as pl
import pytest

from maestro_pipeline.config import SearchConfig, WalkForwardConfig, parse_section
from maestro_pipeline.engine import Costs, evaluate
from maestro_pipeline.errors import MaestroError
from maestro_pipeline.schema import to_pandas_bars
from maestro_pipeline.search import optimize_splits, search_split, select_trial
from maestro_pipeline.stats import compute_metrics
from maestro_pipeline.strategies import IntParam, get_strategy
from maestro_pipeline.strategies.ema_cross import EmaCross
from maestro_pipeline.timeframes import DAY_MS
from maestro_pipeline.walkforward import make_splits
from tests.support.bars import synthetic_bars

START = 1_735_689_600_000  # 2025-01-01
COSTS = Costs(0.001, 0.0005)
PPY = 8760.0


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return synthetic_bars(START, START + 150 * DAY_MS, seed=11)


WF = WalkForwardConfig(train="40d", test="20d", n_splits=4)


def search(**kw) -> SearchConfig:
    return SearchConfig(**{"n_trials": 12, "seed": 5, "storage": "none", **kw})


def test_same_seed_and_any_worker_count_give_identical_parameters(bars):
    splits, _ = make_splits(bars, "1h", WF)
    one = optimize_splits(bars, splits, "ema_cross", search(), COSTS, "1h", workers=1)
    two = optimize_splits(bars, splits, "ema_cross", search(), COSTS, "1h", workers=2)
    again = optimize_splits(bars, splits, "ema_cross", search(), COSTS, "1h", workers=2)
    assert two.workers == 2 and one.workers == 1
    assert one.params["params"].to_list() == two.params["params"].to_list() == again.params["params"].to_list()
    assert one.params["best_value"].to_list() == two.params["best_value"].to_list()
    cols = ["split", "trial", "params", "value", "state"]
    assert one.ledger.select(cols).equals(two.ledger.select(cols))
    assert one.daily.equals(two.daily)
    other = optimize_splits(bars, splits, "ema_cross", search(seed=6), COSTS, "1h", workers=1)
    assert other.ledger["params"].to_list() != one.ledger["params"].to_list()  # the seed matters


def test_ledger_holds_every_trial_and_daily_returns_of_every_completed_trial(bars):
    splits, _ = make_splits(bars, "1h", WF)
    out = optimize_splits(bars, splits, "ema_cross", search(n_trials=15), COSTS, "1h", workers=1)
    assert out.ledger.height == len(splits) * 15
    for s in splits:
        led = out.ledger.filter(pl.col("split") == s.index)
        assert sorted(led["trial"].to_list()) == list(range(15))
        assert led["selected"].sum() == 1
        done = led.filter(pl.col("state") == "COMPLETE")
        days = (s.train_end - s.train_start) // DAY_MS
        d = out.daily.filter(pl.col("split") == s.index)
        assert d.height == done.height * days
        # a trial's daily returns compound to its train total return (an independent vectorbt backtest)
        pick = led.filter(pl.col("selected")).row(0, named=True)
        pdf = to_pandas_bars(bars)
        ts = bars["timestamp"].to_numpy()
        i0, i1 = np.searchsorted(ts, [s.train_start, s.train_end])
        ref = evaluate(pdf, get_strategy("ema_cross"), json.loads(pick["params"]), int(i0), int(i1), COSTS)
        daily = d.filter(pl.col("trial") == pick["trial"])["return"].to_numpy()
        assert np.prod(1 + daily) - 1 == pytest.approx(float(np.prod(1 + ref.returns.to_numpy()) - 1), rel=1e-9,
                                                       abs=1e-12)
        assert pick["sharpe"] == pytest.approx(compute_metrics(ref.returns, PPY, ref.trades)["sharpe"], rel=1e-9)
        assert pick["n_trades"] == ref.n_trades


def test_one_more_month_of_data_recomputes_only_the_new_split():
    wf = WalkForwardConfig(train="40d", test="30d", n_splits=3)
    # one more month = one more 30-day test window on the calendar grid
    old, new = (synthetic_bars(START, START + 150 * DAY_MS, seed=11),
                synthetic_bars(START, START + 180 * DAY_MS, seed=11))
    s_old, _ = make_splits(old, "1h", wf)
    s_new, _ = make_splits(new, "1h", wf)
    assert [s.test_start for s in s_new[:-1]] == [s.test_start for s in s_old[1:]]
    first = optimize_splits(old, s_old, "ema_cross", search(), COSTS, "1h", workers=1)
    second = optimize_splits(new, s_new, "ema_cross", search(), COSTS, "1h", first.params, first.ledger, first.daily,
                             workers=1)
    assert (second.reused, second.computed) == (len(s_new) - 1, 1)
    assert second.params["params"].to_list()[:-1] == first.params["params"].to_list()[1:]
    assert second.ledger.height == len(s_new) * 12  # reused splits bring their ledger rows along
    assert second.daily.filter(pl.col("split") == 0).height == first.daily.filter(pl.col("split") == 1).height
    # a change to the search settings invalidates every split
    third = optimize_splits(new, s_new, "ema_cross", search(n_trials=13), COSTS, "1h", second.params, second.ledger,
                            second.daily, workers=1)
    assert (third.reused, third.computed) == (0, len(s_new))


class Impossible(EmaCross):
    name = "impossible_cross"
    space = {"fast": IntParam(50, 60), "slow": IntParam(10, 40)}  # fast < slow can never hold


def test_an_unsatisfiable_space_fails_with_a_clear_message(bars):
    pdf = to_pandas_bars(bars)
    with pytest.raises(MaestroError, match="no feasible parameter set among 8 trials of 'impossible_cross'"):
        search_split(pdf, Impossible(), 1000, 2000, parse_section(SearchConfig, {"n_trials": 8}, "search"), seed=1,
                     costs=COSTS, periods_per_year=PPY)


def test_random_and_grid_samplers(bars):
    pdf = to_pandas_bars(bars)
    s = get_strategy("ema_cross")
    rnd = search_split(pdf, s, 1000, 2000, parse_section(SearchConfig, {"n_trials": 10, "sampler": "random"}, "search"),
                       seed=3, costs=COSTS, periods_per_year=PPY)
    again = search_split(pdf, s, 1000, 2000,
                         parse_section(SearchConfig, {"n_trials": 10, "sampler": "random"}, "search"),
                         seed=3, costs=COSTS, periods_per_year=PPY)
    assert rnd.ledger["params"].tolist() == again.ledger["params"].tolist()
    grid = search_split(pdf, s, 1000, 2000, parse_section(SearchConfig, {"n_trials": 30, "sampler": "grid"}, "search"),
                        seed=3, costs=COSTS, periods_per_year=PPY)
    pts = [tuple(sorted(json.loads(p).items())) for p in grid.ledger["params"]]
    assert len(set(pts)) == len(pts) == 30  # a grid never repeats a point
    assert all(p["fast"] in range(2, 61) and p["slow"] in range(10, 241) for p in map(dict, pts))


def test_grid_too_large_is_refused(bars):
    from maestro_pipeline.search import grid_space

    s = get_strategy("ema_cross")
    assert len(grid_space(s, 10)["fast"]) == 59
    big = type("Big", (EmaCross,), {"name": "big", "space": {"fast": IntParam(2, 2000), "slow": IntParam(10, 2000)}})()
    with pytest.raises(MaestroError, match="use sampler tpe or random"):
        grid_space(big, 10)


def test_selection_rules_on_a_hand_checked_matrix():
    # trials x (sharpe, vwr)
    v = np.array([[2.0, 0.1], [1.5, 1.5], [0.5, 2.0], [1.0, 1.0], [2.0, 0.05]])
    assert select_trial(v[:, :1], "pareto") == 0  # one objective: the largest (first on ties)
    # ranks (1 = best, ties averaged): sharpe [1.5, 3, 5, 4, 1.5]; vwr [4, 2, 1, 3, 5]
    # -> averages [2.75, 2.5, 3, 3.5, 3.25]
    assert select_trial(v, "rank") == 1
    # Pareto front: rows 0, 1, 2 (3 is dominated by 1, 4 by 0); best average rank in it: row 1
    assert select_trial(v, "pareto") == 1
    # weighted z-scores with vwr weighted 10x: row 2 (largest vwr) wins
    assert select_trial(v, "weighted", {"sharpe": 1.0, "vwr": 10.0}, ("sharpe", "vwr")) == 2
    assert select_trial(v, "weighted", {"sharpe": 10.0, "vwr": 1.0}, ("sharpe", "vwr")) == 0


def test_multi_objective_search_picks_from_the_pareto_front(bars):
    pdf = to_pandas_bars(bars)
    res = search_split(pdf, get_strategy("ema_cross"), 1000, 2200,
                       parse_section(SearchConfig, {"n_trials": 20, "objective": ("sharpe", "vwr"),
                                                    "selection": "pareto"}, "search"),
                       seed=4, costs=COSTS, periods_per_year=PPY)
    led = res.ledger[res.ledger["state"] == "COMPLETE"]
    vals = np.array([json.loads(x) for x in led["values"]])
    pick = vals[led["selected"].to_numpy()][0]
    assert not any(np.all(vals >= pick, axis=1) & np.any(vals > pick, axis=1))  # nothing dominates the pick
    assert res.settings["selection"] == "pareto" and res.settings["objectives"] == ["sharpe", "vwr"]


def test_wilcoxon_pruner_scores_the_mean_fold_and_prunes(bars):
    pdf = to_pandas_bars(bars)
    s = get_strategy("ema_cross")
    res = search_split(pdf, s, 1000, 3000,
                       parse_section(SearchConfig, {"n_trials": 40, "pruner": "wilcoxon", "folds": 4}, "search"),
                       seed=2, costs=COSTS, periods_per_year=PPY)
    led = res.ledger
    assert (led["note"].str.startswith("pruned by Wilcoxon")).sum() >= 1
    done = led[led["state"] == "COMPLETE"].iloc[0]
    p = json.loads(done["params"])
    edges = np.linspace(1000, 3000, 5).astype(int)
    folds = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        r = evaluate(pdf, s, p, int(a), int(b), COSTS)
        sharpe = compute_metrics(r.returns, PPY, r.trades)["sharpe"]
        folds.append(sharpe if np.isfinite(sharpe) else 0.0)  # a fold without a defined Sharpe scores 0
    assert done["value"] == pytest.approx(float(np.mean(folds)), rel=1e-9)


def test_warm_start_enqueues_the_previous_split_pick(bars):
    splits, _ = make_splits(bars, "1h", WF)
    out = optimize_splits(bars, splits, "ema_cross", search(warm_start=True), COSTS, "1h", workers=2)
    picks = out.params["params"].to_list()
    for k in range(1, len(splits)):
        first = out.ledger.filter((pl.col("split") == k) & (pl.col("trial") == 0))["params"].item()
        assert json.loads(first) == json.loads(picks[k - 1])
        assert json.loads(out.params["warm_start"][k]) == json.loads(picks[k - 1])


def test_studies_persist_to_sqlite_and_open_in_optuna_dashboard(bars, tmp_path):
    url = f"sqlite:///{tmp_path}/optuna/studies.db"
    splits, _ = make_splits(bars, "1h", WF)
    out = optimize_splits(bars, splits[:2], "ema_cross", search(), COSTS, "1h", workers=1, storage_url=url,
                          study_prefix="x/ema/")
    assert out.persisted == 2
    names = sorted(optuna.get_all_study_names(url))
    assert names == sorted(f"x/ema/split{r['split']}-{r['fingerprint']}" for r in out.params.iter_rows(named=True))
    st = optuna.load_study(study_name=names[0], storage=url)
    assert len(st.trials) == 12
    # the trials keep the times they ran at (the dashboard's timeline), not the time the study was written
    starts = [t.datetime_start for t in st.trials]
    assert all(t.datetime_complete >= t.datetime_start for t in st.trials)
    assert starts == sorted(starts) and len(set(starts)) == 12
    assert (st.trials[-1].datetime_complete - starts[0]).total_seconds() >= 0.005
    assert st.trials[-1].datetime_complete <= datetime.now()
    assert st.user_attrs["settings"]["seed"] == out.params["seed"][0]
    assert st.user_attrs["settings"]["sampler"] == "tpe" and "optuna" in st.user_attrs["libraries"]
    led0 = out.ledger.filter(pl.col("split") == 0).sort("trial")
    assert [t.value for t in st.trials if t.value is not None] == [v for v in led0["value"].to_list()
                                                                   if v is not None and v == v]
    again = optimize_splits(bars, splits[:2], "ema_cross", search(), COSTS, "1h", workers=1, storage_url=url,
                            study_prefix="x/ema/")
    assert again.persisted == 0  # same fingerprints: already there

    import optuna_dashboard

    class Quiet(WSGIRequestHandler):
        def log_message(self, *a):
            pass

    server = make_server("127.0.0.1", 0, optuna_dashboard.wsgi(url), handler_class=Quiet)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/api/studies", timeout=30) as r:
            body = json.loads(r.read())
    finally:
        server.shutdown()
    assert sorted(s["study_name"] for s in body["study_summaries"]) == names


def test_bad_storage_url_is_one_line(bars):
    splits, _ = make_splits(bars, "1h", WF)
    with pytest.raises(MaestroError, match="cannot open the Optuna storage"):
        optimize_splits(bars, splits[:1], "ema_cross", search(), COSTS, "1h", workers=1, storage_url="nosuchdb://x")


def test_search_config_errors_are_one_line():
    from maestro_pipeline.config import parse_config

    base = {"instruments": [{"exchange": "synthetic", "symbol": "BTC/USDT", "timeframe": "1h", "start": "2025-01-01"}],
            "strategies": ["ema_cross"]}
    for search_cfg, msg in [
        ({"objective": "sharp"}, "unknown objective 'sharp'"),
        ({"objective": ["sharpe", "vwr"], "pruner": "wilcoxon"}, "prunes single-objective studies only"),
        ({"objective": ["sharpe", "vwr"], "weights": {"calmar": 1}}, "weights.calmar: not one of the objectives"),
        ({"sampler": "cmaes"}, "search.sampler"),
    ]:
        with pytest.raises(Exception, match=msg) as e:
            parse_config({**base, "search": search_cfg})
        assert "\n" not in str(e.value)

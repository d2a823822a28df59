"""One split's seeded parameter search on its training window: Optuna samplers over compiled backtests.

* Optuna runs **in memory** during the search (its RDB storage costs ~16 ms per trial here, more than a backtest);
  the finished study is persisted afterwards with :func:`maestro_pipeline.search.persist_study` to any Optuna
  RDB URL (SQLite by default). Its objectives are named (``study.metric_names``), so optuna-dashboard shows
  "sharpe", not "Objective 0".
* Every trial is a full backtest of the train window through :mod:`maestro_pipeline.engine` (the numba kernels
  that reproduce the vectorbt engine bar for bar, stops, liquidation and sizing included), scored by the configured
  objective(s), higher is better. Searched risk controls (``risk:`` ``search``) are parameters of the trial too.
* **Feasibility.** A trial with fewer than ``search.min_trades`` trades in the train window is *infeasible*: it keeps
  its real objective values (no sentinel score distorts the scale), is marked in the ledger with the reason, is
  never picked, and TPE learns it through Optuna's constraints (``constraints_func``). A split none of whose trials
  is feasible has no pick — the search says so (``SearchResult.best_params is None``) instead of inventing one.
* One objective: the best feasible value wins. Several (e.g. ``[sharpe, vwr]``): a multi-objective study, then one
  pick among the feasible trials by ``selection`` — ``pareto``, ``rank`` or ``weighted`` (see :mod:`.selection`).
* ``pruner='wilcoxon'`` (single objective only): the train window is cut into ``folds`` sub-windows, each traded
  from flat with warm-up from before it; the trial reports each fold's score and Optuna's ``WilcoxonPruner``
  stops it when it is significantly worse than the best trial on the same folds. The trial's value is then the
  mean fold score (not the whole-window score) — that is what makes the paired comparison sound.
* A non-finite objective (an exploding CAGR of a few bars) prunes the trial with the reason.
* ``exclude`` (embargo zones inside the train window) drops those bars' returns from every objective.
* Every completed trial's daily returns are kept (``SearchResult.daily``) for the overfitting statistics.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import pandas as pd

from ..config import RiskSettings, SearchConfig
from ..engine import Costs, evaluate_fast
from ..errors import MaestroError
from ..stats import fast_metrics, max_drawdown
from ..strategies import Strategy
from ..timeframes import DAY_MS
from .risk import risk_space, risk_spec, split_params
from .sampling import lowest_corner, make_sampler, sampler_settings, suggest, suggest_extra
from .selection import select_trial

__all__ = ["LEDGER_COLUMNS", "OBJECTIVES", "SearchResult", "search_split"]

#: Objectives a search can maximize (keys of ``stats.fast_metrics``).
OBJECTIVES = ("sharpe", "vwr", "sortino", "calmar", "total_return", "cagr")
LEDGER_COLUMNS = (
    "trial", "params", "value", "values", "sharpe", "vwr", "total_return", "max_drawdown", "n_trades",
    "mean_return", "std_return", "skew", "kurtosis", "n_obs", "state", "feasible", "note", "selected",
)


@dataclass
class SearchResult:
    best_params: dict | None                  # None: no feasible trial (see ``note``)
    best_value: float
    train_metrics: dict
    ledger: pd.DataFrame                      # LEDGER_COLUMNS, one row per trial
    trials: list = field(default_factory=list)  # Optuna FrozenTrials, for persist_study
    daily: pd.DataFrame | None = None         # trial, day (ms), return: every completed trial's daily train returns
    settings: dict = field(default_factory=dict)  # sampler/pruner/selection settings and the seed
    persisted: bool = False                   # the study was written to the Optuna storage
    note: str = ""                            # why there is no pick, if so


def _moments(r: np.ndarray) -> tuple[float, float, float, float]:
    """Mean, std (ddof=1), skew and Pearson (non-excess) kurtosis of per-bar returns: the DSR's inputs."""
    n = r.shape[0]
    if n < 2:
        return (float(r.mean()) if n else math.nan), math.nan, math.nan, math.nan
    m = float(r.mean())
    sd = float(r.std(ddof=1))
    c = r - m
    m2 = float((c * c).mean())
    if m2 <= 0:
        return m, sd, math.nan, math.nan
    return m, sd, float((c ** 3).mean() / m2 ** 1.5), float((c ** 4).mean() / m2 ** 2)


def _constraint(trial: optuna.trial.FrozenTrial) -> list[float]:
    """Optuna's convention: a value above 0 violates the constraint (here: trades missing to ``min_trades``)."""
    return [float(trial.user_attrs.get("missing_trades", 1.0))]


def search_split(
    bars: pd.DataFrame,
    strategy: Strategy,
    start: int,
    end: int,
    search: SearchConfig,
    *,
    seed: int,
    costs: Costs,
    periods_per_year: float,
    risk: RiskSettings | None = None,
    warm_start: dict | None = None,
    exclude: tuple[tuple[int, int], ...] = (),
    arrays: dict | None = None,
) -> SearchResult:
    """Search ``strategy.space`` (and the searched risk controls of ``risk``) on bars ``[start, end)`` as ``search``
    says (``seed``: this split's own seed); ``warm_start`` (if given) is trial 0."""
    risk = risk or RiskSettings()
    objectives = search.objectives
    pruner, folds = search.pruner, search.folds
    extra = risk_space(risk)
    n = len(bars)
    if not 0 <= start < end <= n:
        raise MaestroError(f"search window [{start}, {end}) is not inside the {n} bars: use 0 <= start < end <= {n}")
    if not strategy.space and not extra:
        raise MaestroError(f"strategy {strategy.name!r} has an empty search space: nothing to optimize")
    min_warmup = int(strategy.warmup(lowest_corner(strategy)))
    tradable = end - max(start, min_warmup)  # bars of the window on which a signal may appear
    if tradable < 2:
        raise MaestroError(
            f"search window [{start}, {end}) cannot hold a single trade for {strategy.name!r}: even its "
            f"smallest parameters need {min_warmup} bars of warm-up (history before the window counts) "
            f"and at least 2 bars after it; lengthen the training window or start it later"
        )
    if pruner == "wilcoxon" and (end - start) // folds < 2:
        raise MaestroError(f"the train window [{start}, {end}) is too short for {folds} folds: lower search.folds")
    if not isinstance(bars.index, pd.DatetimeIndex):
        raise MaestroError("bars need a DatetimeIndex (naive UTC): build them with schema.to_pandas_bars")
    ms = bars.index[start:end].as_unit("ms").asi8
    keep = np.ones(end - start, dtype=bool)
    for lo, hi in exclude:
        keep &= ~((ms >= lo) & (ms < hi))
    day = ms - ms % DAY_MS
    day_starts = np.flatnonzero(np.r_[True, day[1:] != day[:-1]])
    fold_edges = np.linspace(start, end, folds + 1).astype(int) if pruner == "wilcoxon" else None

    fixed: dict[str, Any] = {}
    first: dict | None = None
    if warm_start is not None:
        strategy_part, risk_part = split_params(warm_start, strategy)
        first = {**strategy.check(strategy_part), **{k: v for k, v in risk_part.items() if k in extra}}
        fixed = {k: v for k, v in first.items() if k not in strategy.space and k not in extra}

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        pr = (optuna.pruners.WilcoxonPruner(p_threshold=0.1, n_startup_steps=2) if pruner == "wilcoxon"
              else optuna.pruners.NopPruner())
        sampler = make_sampler(search.sampler, seed, strategy, search.grid_points, extra, _constraint)
        study = optuna.create_study(directions=["maximize"] * len(objectives), sampler=sampler, pruner=pr)
        study.set_metric_names(list(objectives))
    if first is not None:
        study.enqueue_trial({k: v for k, v in first.items() if k in strategy.space or k in extra})

    daily: dict[int, np.ndarray] = {}
    stats: dict[int, dict] = {}

    def run_trial(trial: optuna.Trial):
        params = {**suggest(trial, strategy, fixed), **suggest_extra(trial, extra)}
        trial.set_user_attr("params", params)
        strategy_params, risk_params = split_params(params, strategy)
        spec = risk_spec(risk, risk_params)
        if fold_edges is None:
            rets, n_trades = evaluate_fast(bars, strategy, strategy_params, start, end, costs, arrays=arrays,
                                           risk=spec)
        else:
            parts, n_trades, fold_scores = [], 0, []
            for k in range(folds):
                f0, f1 = int(fold_edges[k]), int(fold_edges[k + 1])
                fr, ft = evaluate_fast(bars, strategy, strategy_params, f0, f1, costs, arrays=arrays, risk=spec)
                parts.append(fr)
                n_trades += ft
                fm = fast_metrics(fr[keep[f0 - start:f1 - start]], periods_per_year)
                s = float(fm[objectives[0]]) if math.isfinite(fm[objectives[0]]) else 0.0
                fold_scores.append(s)
                trial.report(s, k)
                if trial.should_prune():
                    trial.set_user_attr("note", f"pruned by Wilcoxon after fold {k + 1}/{folds}")
                    raise optuna.TrialPruned()
            rets = np.concatenate(parts)
        m = fast_metrics(rets[keep], periods_per_year)
        vals = [float(np.mean(fold_scores))] if fold_edges is not None else [float(m[o]) for o in objectives]
        stats[trial.number] = {**m, "n_trades": int(n_trades), "moments": _moments(rets[keep]),
                               "n_obs": int(keep.sum())}
        trial.set_user_attr("metrics", {k: float(v) for k, v in m.items()} | {"n_trades": int(n_trades)})
        missing = max(0, search.min_trades - int(n_trades))
        trial.set_user_attr("missing_trades", float(missing))
        if missing:
            trial.set_user_attr("note", f"infeasible: {n_trades} train trades < min_trades {search.min_trades}")
        bad = [o for o, v in zip(objectives, vals, strict=True) if not math.isfinite(v)]
        if bad:
            trial.set_user_attr("note", f"{bad[0]} is not finite on this window")
            raise optuna.TrialPruned(f"{bad[0]} is not finite")
        daily[trial.number] = day_r = np.multiply.reduceat(1.0 + np.where(keep, rets, 0.0), day_starts) - 1.0
        # the drawdown every view shows is on end-of-day equity (the objectives keep their per-bar definitions)
        stats[trial.number]["max_drawdown"] = max_drawdown(day_r)
        trial.set_user_attr("metrics", trial.user_attrs["metrics"] | {"max_drawdown": max_drawdown(day_r)})
        return vals[0] if len(vals) == 1 else vals

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", UserWarning)  # GridSampler: "grid is exhausted" when n_trials > grid
        study.optimize(run_trial, n_trials=search.n_trials, gc_after_trial=False, show_progress_bar=False)

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise MaestroError(
            f"no feasible parameter set among {len(study.trials)} trials of {strategy.name!r} (all violated its "
            f"constraints or were pruned): raise n_trials, widen the space or pass a valid warm_start"
        )
    feasible = [t for t in complete if t.user_attrs.get("missing_trades", 1.0) == 0]
    pick = None
    note = ""
    if feasible:
        values = np.array([t.values for t in feasible], dtype=np.float64)
        pick = feasible[select_trial(values, search.selection, dict(search.weights), objectives)]
    else:
        note = (f"no trial reached min_trades {search.min_trades} train trades (most: "
                f"{max(int(t.user_attrs['metrics']['n_trades']) for t in complete)} in {len(complete)} completed "
                "trials): no pick for this split")
    ledger = _ledger(study.trials, stats, pick)
    day_ms = day[day_starts]
    done = [t.number for t in complete]
    daily_frame = pd.DataFrame({
        "trial": np.repeat(np.array(done, dtype=np.int64), len(day_ms)),
        "day": np.tile(day_ms.astype(np.int64), len(done)),
        "return": np.concatenate([daily[k] for k in done]) if done else np.array([], dtype=np.float64),
    })
    settings = sampler_settings(search.sampler, seed, len(objectives), search.grid_points, pruner, folds) | {
        "objectives": list(objectives), "selection": search.selection if len(objectives) > 1 else "best",
        "weights": dict(search.weights), "warm_start": first is not None, "min_trades": search.min_trades,
        "risk": risk.model_dump(mode="json"),
    }
    return SearchResult(
        best_params=dict(pick.user_attrs["params"]) if pick is not None else None,
        best_value=float(pick.values[0]) if pick is not None else math.nan,
        train_metrics=dict(pick.user_attrs["metrics"]) if pick is not None else {},
        ledger=ledger,
        trials=list(study.trials),
        daily=daily_frame,
        settings=settings,
        note=note,
    )


def _ledger(trials: list, stats: dict[int, dict], pick: Any) -> pd.DataFrame:
    rows = []
    for t in trials:
        st = stats.get(t.number, {})
        mean, sd, skew, kurt = st.get("moments", (math.nan,) * 4)
        rows.append({
            "trial": t.number,
            "params": json.dumps(t.user_attrs.get("params", t.params), sort_keys=True, default=str),
            "value": float(t.values[0]) if t.values else math.nan,
            "values": json.dumps(list(t.values) if t.values else []),
            "sharpe": float(st.get("sharpe", math.nan)),
            "vwr": float(st.get("vwr", math.nan)),
            "total_return": float(st.get("total_return", math.nan)),
            "max_drawdown": float(st.get("max_drawdown", math.nan)),
            "n_trades": int(st.get("n_trades", -1)),
            "mean_return": mean, "std_return": sd, "skew": skew, "kurtosis": kurt,
            "n_obs": int(st.get("n_obs", 0)),
            "state": t.state.name,
            "feasible": t.state == optuna.trial.TrialState.COMPLETE and t.user_attrs.get("missing_trades", 1.0) == 0,
            "note": t.user_attrs.get("note", ""),
            "selected": pick is not None and t.number == pick.number,
        })
    return pd.DataFrame(rows, columns=list(LEDGER_COLUMNS))

"""One split's seeded parameter search on its training window: Optuna samplers over compiled backtests.

* Optuna runs **in memory** during the search (its RDB storage costs ~16 ms per trial here, more than a backtest);
  the finished study is persisted afterwards with :func:`maestro_pipeline.search.persist_study` to any Optuna
  RDB URL (SQLite by default).
* Samplers: ``tpe`` (``TPESampler(seed, multivariate=True)``), ``random`` (``RandomSampler(seed)``), ``grid``
  (``GridSampler`` over each parameter's grid, visited in a seeded order). The same bars, window, seed and settings
  give the same trials and the same pick, in any process.
* Every trial is a full backtest of the train window through :mod:`maestro_pipeline.engine` (the numba kernel
  that reproduces the vectorbt engine bar for bar), scored by the configured objective(s), higher is better.
* One objective: the best value wins. Several (e.g. ``[sharpe, vwr]``): a multi-objective study, then one pick by
  ``selection`` — ``pareto`` (the Pareto-front trial with the best average rank over all completed trials),
  ``rank`` (best average rank over all completed trials) or ``weighted`` (largest weighted sum of z-scores).
* ``pruner='wilcoxon'`` (single objective only): the train window is cut into ``folds`` sub-windows, each traded
  from flat with warm-up from before it; the trial reports each fold's score and Optuna's ``WilcoxonPruner``
  stops it when it is significantly worse than the best trial on the same folds. The trial's value is then the
  mean fold score (not the whole-window score) — that is what makes the paired comparison sound.
* A parameter set that violates a strategy constraint (``fast >= slow``) is never evaluated: the trial is pruned
  (``state='PRUNED'``), which also tells TPE to avoid that region.
* A trial that trades zero times scores ``NO_TRADES_SCORE`` on every objective, so "never trade" cannot win.
* ``exclude`` (embargo zones inside the train window) drops those bars' returns from every objective.
* Every trial's daily returns are kept (``SearchResult.daily``) for the overfitting statistics (PBO needs them).
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

from ..config import SearchConfig
from ..engine import Costs, evaluate_fast
from ..errors import MaestroError
from ..stats import fast_metrics
from ..strategies import Categorical, FloatParam, IntParam, Strategy
from ..timeframes import DAY_MS
from .selection import select_trial

__all__ = [
    "LEDGER_COLUMNS", "MAX_GRID_POINTS", "NO_TRADES_SCORE", "OBJECTIVES", "SearchResult", "grid_space",
    "sampler_label", "sampler_settings", "search_split", "suggest",
]

#: Objectives a search can maximize (keys of ``fastpath.fast_metrics``).
OBJECTIVES = ("sharpe", "vwr", "sortino", "calmar", "total_return", "cagr")
#: Score of a trial that never trades (documented penalty, finite so the ledger stays numeric).
NO_TRADES_SCORE = -1000.0
#: The largest grid the grid sampler enumerates.
MAX_GRID_POINTS = 1_000_000
LEDGER_COLUMNS = (
    "trial", "params", "value", "values", "sharpe", "vwr", "total_return", "max_drawdown", "n_trades",
    "mean_return", "std_return", "skew", "kurtosis", "n_obs", "state", "note", "selected",
)


@dataclass
class SearchResult:
    best_params: dict
    best_value: float
    train_metrics: dict
    ledger: pd.DataFrame                      # LEDGER_COLUMNS, one row per trial
    trials: list = field(default_factory=list)  # Optuna FrozenTrials, for persist_study
    daily: pd.DataFrame | None = None         # trial, day (ms), return: every completed trial's daily train returns
    settings: dict = field(default_factory=dict)  # sampler/pruner/selection settings and the seed
    persisted: bool = False                   # the study was written to the Optuna storage


def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def suggest(trial: optuna.Trial, strategy: Strategy, fixed: dict | None = None) -> dict:
    """Sample one full parameter set from ``strategy.space`` (``fixed`` supplies the non-searched ones).

    Every searched parameter is always suggested from the same distribution (a static space keeps
    multivariate TPE valid); a set that fails ``strategy.check`` prunes the trial instead of being evaluated.
    """
    params: dict[str, Any] = {}
    for key in strategy.defaults:
        spec = strategy.space.get(key)
        if spec is None:
            params[key] = (fixed or {}).get(key, strategy.defaults[key])
        elif isinstance(spec, IntParam):
            params[key] = trial.suggest_int(key, spec.low, spec.high, step=spec.step)
        elif isinstance(spec, FloatParam):
            params[key] = trial.suggest_float(key, spec.low, spec.high, log=spec.log)
        elif isinstance(spec, Categorical):
            params[key] = trial.suggest_categorical(key, list(spec.choices))
        else:  # pragma: no cover - programming error
            raise TypeError(f"unknown parameter spec {spec!r}")
    try:
        return strategy.check(params)
    except MaestroError as exc:
        trial.set_user_attr("note", f"infeasible: {exc}")
        raise optuna.TrialPruned(str(exc)) from None


def _lowest_corner(strategy: Strategy) -> dict:
    """Every searched parameter at its low end: the smallest warm-up the space allows."""
    corner = dict(strategy.defaults)
    for key, spec in strategy.space.items():
        corner[key] = spec.choices[0] if isinstance(spec, Categorical) else spec.low
    return corner


def grid_space(strategy: Strategy, grid_points: int) -> dict[str, list]:
    """Each searched parameter's grid: an int's step grid, ``grid_points`` values of a float, a categorical's
    choices."""
    space: dict[str, list] = {}
    for key, spec in strategy.space.items():
        if isinstance(spec, IntParam):
            space[key] = list(range(spec.low, spec.high + 1, spec.step))
        elif isinstance(spec, FloatParam):
            pts = (np.geomspace(spec.low, spec.high, grid_points) if spec.log
                   else np.linspace(spec.low, spec.high, grid_points))
            space[key] = sorted({float(x) for x in pts})
        else:
            space[key] = list(spec.choices)
    size = math.prod(len(v) for v in space.values())
    if size > MAX_GRID_POINTS:
        raise MaestroError(
            f"the grid of {strategy.name!r} has {size:,} points (> {MAX_GRID_POINTS:,}): use sampler tpe or random, "
            f"or lower search.grid_points"
        )
    return space


def sampler_settings(sampler: str, seed: int, n_objectives: int, grid_points: int, pruner: str, folds: int) -> dict:
    """What a study's sampling depends on, recorded with every study and every params row."""
    s: dict[str, Any] = {"sampler": sampler, "seed": int(seed), "n_objectives": n_objectives, "pruner": pruner,
                         "optuna": optuna.__version__}
    if sampler == "tpe":
        s.update(multivariate=True, n_startup_trials=10, n_ei_candidates=24, consider_endpoints=False)
    if sampler == "grid":
        s["grid_points"] = grid_points
    if pruner == "wilcoxon":
        s.update(folds=folds, p_threshold=0.1, n_startup_steps=2)
    return s


def _make_sampler(sampler: str, seed: int, strategy: Strategy, grid_points: int) -> optuna.samplers.BaseSampler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if sampler == "tpe":
            return optuna.samplers.TPESampler(seed=seed, multivariate=True)
        if sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if sampler == "grid":
            return optuna.samplers.GridSampler(grid_space(strategy, grid_points), seed=seed)
    raise MaestroError(f"unknown sampler {sampler!r}: use tpe, random or grid")



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
    warm_start: dict | None = None,
    exclude: tuple[tuple[int, int], ...] = (),
    arrays: dict | None = None,
) -> SearchResult:
    """Search ``strategy.space`` on bars ``[start, end)`` as ``search`` says (``seed``: this split's own seed);
    ``warm_start`` (if given) is trial 0."""
    objectives = search.objectives
    n_trials, selection, weights = search.n_trials, search.selection, dict(search.weights)
    sampler, grid_points, pruner, folds = search.sampler, search.grid_points, search.pruner, search.folds
    n = len(bars)
    if not 0 <= start < end <= n:
        raise MaestroError(f"search window [{start}, {end}) is not inside the {n} bars: use 0 <= start < end <= {n}")
    if not strategy.space:
        raise MaestroError(f"strategy {strategy.name!r} has an empty search space: nothing to optimize")

    min_warmup = int(strategy.warmup(_lowest_corner(strategy)))
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
        first = strategy.check(warm_start)
        fixed = {k: v for k, v in first.items() if k not in strategy.space}

    _quiet_optuna()
    directions = ["maximize"] * len(objectives)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        pr = (optuna.pruners.WilcoxonPruner(p_threshold=0.1, n_startup_steps=2) if pruner == "wilcoxon"
              else optuna.pruners.NopPruner())
        study = optuna.create_study(
            directions=directions, sampler=_make_sampler(sampler, seed, strategy, grid_points), pruner=pr,
        )
    if first is not None:
        study.enqueue_trial({k: v for k, v in first.items() if k in strategy.space})

    daily: dict[int, np.ndarray] = {}
    stats: dict[int, dict] = {}

    def scores(rets: np.ndarray, n_trades: int) -> tuple[dict, list[float], str]:
        r = rets[keep] if rets.shape[0] == keep.shape[0] else rets
        m = fast_metrics(r, periods_per_year)
        if n_trades == 0:
            return m, [NO_TRADES_SCORE] * len(objectives), "no trades: scored NO_TRADES_SCORE"
        vals, note = [], ""
        for o in objectives:
            v = float(m[o])
            if not math.isfinite(v):
                v, note = NO_TRADES_SCORE, f"{o} is not finite: scored NO_TRADES_SCORE"
            vals.append(v)
        return m, vals, note

    def run_trial(trial: optuna.Trial):
        params = suggest(trial, strategy, fixed)
        trial.set_user_attr("params", params)
        if fold_edges is None:
            rets, n_trades = evaluate_fast(bars, strategy, params, start, end, costs, arrays=arrays)
        else:
            parts, n_trades, fold_scores = [], 0, []
            for k in range(folds):
                f0, f1 = int(fold_edges[k]), int(fold_edges[k + 1])
                fr, ft = evaluate_fast(bars, strategy, params, f0, f1, costs, arrays=arrays)
                parts.append(fr)
                n_trades += ft
                fk = keep[f0 - start:f1 - start]
                fm = fast_metrics(fr[fk], periods_per_year)
                s = float(fm[objectives[0]]) if ft and math.isfinite(fm[objectives[0]]) else NO_TRADES_SCORE
                fold_scores.append(s)
                trial.report(s, k)
                if trial.should_prune():
                    trial.set_user_attr("note", f"pruned by Wilcoxon after fold {k + 1}/{folds}")
                    raise optuna.TrialPruned()
            rets = np.concatenate(parts)
        m, vals, note = scores(rets, n_trades)
        if fold_edges is not None:
            vals = [float(np.mean(fold_scores))]
        r = np.where(keep, rets, 0.0)
        daily[trial.number] = np.multiply.reduceat(1.0 + r, day_starts) - 1.0
        stats[trial.number] = {**m, "n_trades": int(n_trades), "moments": _moments(rets[keep]),
                               "n_obs": int(keep.sum())}
        if note:
            trial.set_user_attr("note", note)
        trial.set_user_attr("metrics", {k: float(v) for k, v in m.items()} | {"n_trades": int(n_trades)})
        return vals[0] if len(vals) == 1 else vals

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", UserWarning)  # GridSampler: "grid is exhausted" when n_trials > grid
        study.optimize(run_trial, n_trials=n_trials, gc_after_trial=False, show_progress_bar=False)

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise MaestroError(
            f"no feasible parameter set among {len(study.trials)} trials of {strategy.name!r} (all violated its "
            f"constraints or were pruned): raise n_trials, widen the space or pass a valid warm_start"
        )
    values = np.array([t.values for t in complete], dtype=np.float64)
    pick = complete[select_trial(values, selection, weights, objectives)]

    rows = []
    for t in study.trials:
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
            "note": t.user_attrs.get("note", ""),
            "selected": t.number == pick.number,
        })
    ledger = pd.DataFrame(rows, columns=list(LEDGER_COLUMNS))
    day_ms = day[day_starts]
    done = [t.number for t in complete]
    daily_frame = pd.DataFrame({
        "trial": np.repeat(np.array(done, dtype=np.int64), len(day_ms)),
        "day": np.tile(day_ms.astype(np.int64), len(done)),
        "return": np.concatenate([daily[k] for k in done]) if done else np.array([], dtype=np.float64),
    })
    settings = sampler_settings(sampler, seed, len(objectives), grid_points, pruner, folds) | {
        "objectives": list(objectives), "selection": selection if len(objectives) > 1 else "best",
        "weights": dict(weights or {}), "warm_start": first is not None,
    }
    return SearchResult(
        best_params=dict(pick.user_attrs["params"]),
        best_value=float(pick.values[0]),
        train_metrics=dict(pick.user_attrs["metrics"]),
        ledger=ledger,
        trials=list(study.trials),
        daily=daily_frame,
        settings=settings,
    )



def sampler_label(search: SearchConfig) -> str:
    """The sampler as a reader would write it (the materialization's metadata)."""
    kind = {"tpe": "TPESampler(multivariate=True, seed=per-split)", "random": "RandomSampler(seed=per-split)",
            "grid": f"GridSampler(grid_points={search.grid_points}, seed=per-split)"}[search.sampler]
    return f"optuna.samplers.{kind}" + (f", WilcoxonPruner over {search.folds} folds" if search.pruner == "wilcoxon"
                                        else "")

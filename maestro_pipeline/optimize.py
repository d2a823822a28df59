"""Seeded parameter search on one training window with Optuna's TPE sampler.

* ``TPESampler(seed=seed, multivariate=True)`` on an in-memory study, one trial at a time: the same bars,
  window, seed and settings give the same trials and the same ``best_params``.
* Every trial is a full :func:`~maestro_pipeline.backtest.evaluate` on ``[start, end)`` (warm-up from before
  ``start``, nothing read at or after ``end``), scored by ``objective`` (higher is better).
* A parameter set that violates a strategy constraint (``fast >= slow``) is never evaluated: the trial is
  *pruned* (ledger ``state='PRUNED'``, ``value`` NaN), which also tells TPE to avoid that region.
* A trial that trades zero times scores ``NO_TRADES_SCORE`` (-1000, below any attainable Sharpe or return)
  instead of the flat-line 0, so "never trade" cannot win a search; its real metrics stay in the ledger.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from typing import Any

import optuna
import pandas as pd

from .backtest import Costs, evaluate
from .errors import MaestroError
from .metrics import compute_metrics
from .strategies.base import Categorical, FloatParam, IntParam, Strategy

__all__ = ["OBJECTIVES", "NO_TRADES_SCORE", "LEDGER_COLUMNS", "SearchResult", "search_split", "suggest"]

#: Objectives a search can maximize (keys of ``compute_metrics``).
OBJECTIVES = ("sharpe", "sortino", "total_return", "cagr", "calmar")
#: Score of a trial that never trades (documented penalty, finite so the ledger stays numeric).
NO_TRADES_SCORE = -1000.0
LEDGER_COLUMNS = ("trial", "params", "value", "sharpe", "total_return", "n_trades", "state", "note")


@dataclass
class SearchResult:
    best_params: dict
    best_value: float
    train_metrics: dict
    ledger: pd.DataFrame  # LEDGER_COLUMNS, one row per trial


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
    """Every searched parameter at its low end: the smallest warm-up the space allows (warm-ups grow with
    window-like parameters)."""
    corner = dict(strategy.defaults)
    for key, spec in strategy.space.items():
        corner[key] = spec.choices[0] if isinstance(spec, Categorical) else spec.low
    return corner


def _json_params(params: dict) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def search_split(
    bars: pd.DataFrame,
    strategy: Strategy,
    start: int,
    end: int,
    *,
    n_trials: int,
    seed: int,
    costs: Costs,
    periods_per_year: float,
    objective: str = "sharpe",
    warm_start: dict | None = None,
    **backtest_kw: Any,
) -> SearchResult:
    """Search ``strategy.space`` on bars ``[start, end)``; ``warm_start`` (if given) is trial 0."""
    if objective not in OBJECTIVES:
        raise MaestroError(f"unknown objective {objective!r}: use one of {', '.join(OBJECTIVES)}")
    if not isinstance(n_trials, int) or isinstance(n_trials, bool) or n_trials < 1:
        raise MaestroError(f"n_trials={n_trials!r} must be a positive integer")
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

    fixed: dict[str, Any] = {}
    first: dict | None = None
    if warm_start is not None:
        first = strategy.check(warm_start)
        fixed = {k: v for k, v in first.items() if k not in strategy.space}

    _quiet_optuna()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    if first is not None:
        study.enqueue_trial({k: v for k, v in first.items() if k in strategy.space})

    def run_trial(trial: optuna.Trial) -> float:
        params = suggest(trial, strategy, fixed)
        result = evaluate(bars, strategy, params, start, end, costs, **backtest_kw)
        metrics = compute_metrics(result.returns, periods_per_year, result.trades)
        trial.set_user_attr("params", params)
        trial.set_user_attr("metrics", metrics)
        score = metrics[objective]
        if result.n_trades == 0:
            trial.set_user_attr("note", "no trades: scored NO_TRADES_SCORE")
            return NO_TRADES_SCORE
        if not math.isfinite(score):
            trial.set_user_attr("note", f"{objective} is not finite: scored NO_TRADES_SCORE")
            return NO_TRADES_SCORE
        return float(score)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.optimize(run_trial, n_trials=n_trials, gc_after_trial=False, show_progress_bar=False)

    rows = []
    for t in study.trials:
        metrics = t.user_attrs.get("metrics", {})
        params = t.user_attrs.get("params", t.params)
        rows.append(
            {
                "trial": t.number,
                "params": _json_params(params),
                "value": float(t.value) if t.value is not None else math.nan,
                "sharpe": metrics.get("sharpe", math.nan),
                "total_return": metrics.get("total_return", math.nan),
                "n_trades": int(metrics["n_trades"]) if "n_trades" in metrics else -1,
                "state": t.state.name,
                "note": t.user_attrs.get("note", ""),
            }
        )
    ledger = pd.DataFrame(rows, columns=list(LEDGER_COLUMNS))

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise MaestroError(
            f"no feasible parameter set among {n_trials} trials of {strategy.name!r} (all violated its "
            f"constraints): raise n_trials or pass a valid warm_start"
        )
    best = study.best_trial
    return SearchResult(
        best_params=dict(best.user_attrs["params"]),
        best_value=float(best.value),
        train_metrics=dict(best.user_attrs["metrics"]),
        ledger=ledger,
    )

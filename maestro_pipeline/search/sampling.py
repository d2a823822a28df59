"""How a split's study samples: the parameter suggestions, the samplers and their recorded settings.

Every searched parameter is always suggested from the same distribution (a static space keeps multivariate TPE
valid); a parameter set that violates a strategy constraint (``fast >= slow``) is never evaluated (the trial is
pruned with the reason, which also tells TPE to avoid that region). Samplers: ``tpe``
(``TPESampler(seed, multivariate=True)``, with the ``min_trades`` constraint), ``random`` (``RandomSampler(seed)``),
``grid`` (``GridSampler`` over each parameter's grid, visited in a seeded order).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import optuna

from ..config import SearchConfig
from ..errors import MaestroError
from ..strategies import Categorical, FloatParam, IntParam, Strategy

__all__ = ["MAX_GRID_POINTS", "grid_space", "lowest_corner", "make_sampler", "sampler_label", "sampler_settings",
           "suggest", "suggest_extra"]

#: The largest grid the grid sampler enumerates.
MAX_GRID_POINTS = 1_000_000


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


def suggest_extra(trial: optuna.Trial, space: Mapping[str, FloatParam]) -> dict[str, float]:
    """The searched risk parameters (stop distances, sizes) of this trial."""
    return {key: trial.suggest_float(key, p.low, p.high, log=p.log) for key, p in space.items()}


def lowest_corner(strategy: Strategy) -> dict:
    """Every searched parameter at its low end: the smallest warm-up the space allows."""
    corner = dict(strategy.defaults)
    for key, spec in strategy.space.items():
        corner[key] = spec.choices[0] if isinstance(spec, Categorical) else spec.low
    return corner


def grid_space(strategy: Strategy, grid_points: int, extra: Mapping[str, FloatParam] | None = None) -> dict[str, list]:
    """Each searched parameter's grid (the strategy's and the ``extra`` risk parameters): an int's step grid,
    ``grid_points`` values of a float, a categorical's choices."""
    space: dict[str, list] = {}
    for key, spec in {**strategy.space, **(extra or {})}.items():
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


def make_sampler(sampler: str, seed: int, strategy: Strategy, grid_points: int,
                 extra: Mapping[str, FloatParam] | None = None,
                 constraints: Callable[[optuna.trial.FrozenTrial], list[float]] | None = None,
                 ) -> optuna.samplers.BaseSampler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if sampler == "tpe":
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, constraints_func=constraints)
        if sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if sampler == "grid":
            return optuna.samplers.GridSampler(grid_space(strategy, grid_points, extra), seed=seed)
    raise MaestroError(f"unknown sampler {sampler!r}: use tpe, random or grid")



def sampler_label(search: SearchConfig) -> str:
    """The sampler as a reader would write it (the materialization's metadata)."""
    kind = {"tpe": "TPESampler(multivariate=True, seed=per-split)", "random": "RandomSampler(seed=per-split)",
            "grid": f"GridSampler(grid_points={search.grid_points}, seed=per-split)"}[search.sampler]
    return f"optuna.samplers.{kind}" + (f", WilcoxonPruner over {search.folds} folds" if search.pruner == "wilcoxon"
                                        else "")

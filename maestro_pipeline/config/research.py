"""The research sections: ``walk_forward:``, ``search:`` and ``regimes:``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ..durations import check_step, parse_length
from ..errors import MaestroError
from ._base import Section, closest


class WalkForwardConfig(Section):
    """Where train and test windows lie (see ``maestro_pipeline.splits``).

    Lengths are a bar count (500), a duration (120d, 12w, 36h) or calendar months (6M, 6mo, 1y). ``mode:
    parts`` is the old engine's form: ``n_splits * test_parts + train_parts`` equal parts, train/test/step
    unused. ``purge`` and ``embargo`` (0 = none) only ever remove train data.
    """

    scheme: Literal["rolling", "anchored", "adaptive"] = "rolling"
    mode: Literal["calendar", "parts"] = "calendar"
    train: str | int = "120d"
    test: str | int = "30d"
    step: str | int | None = None       # test-window step; default = test (no overlap, no hole)
    n_splits: int = Field(6, ge=1, le=500)
    purge: str | int = 0
    embargo: str | int = 0
    train_parts: int = Field(2, ge=1, le=1000)
    test_parts: int = Field(1, ge=1, le=1000)

    @field_validator("train", "test", "step", "purge", "embargo")
    @classmethod
    def _length(cls, v: str | int | None, info: Any) -> str | int | None:
        name = info.field_name
        if v is None:
            return v
        gap = name in ("purge", "embargo")
        try:
            parse_length(v, name if gap else "window length", allow_zero=gap)
        except MaestroError as e:
            raise ValueError(str(e)) from None
        return 0 if gap and v in (0, "0") else v

    @model_validator(mode="after")
    def _step_covers_test(self) -> WalkForwardConfig:
        if self.step is not None:
            try:
                check_step(parse_length(self.step, "step"), parse_length(self.test), None)
            except MaestroError as e:
                raise ValueError(str(e)) from None
        return self


_SEARCH_OBJECTIVES = ("sharpe", "vwr", "sortino", "calmar", "total_return", "cagr")


class SearchConfig(Section):
    """How each split's train window is searched (see ``maestro_pipeline.optimize``)."""

    n_trials: int = Field(40, ge=1, le=100_000)
    seed: int = Field(42, ge=0)
    #: One objective (single-objective study) or several (multi-objective study, one pick by ``selection``).
    objective: str | list[str] = "sharpe"
    selection: Literal["pareto", "weighted", "rank"] = "pareto"
    weights: dict[str, float] = {}
    sampler: Literal["tpe", "random", "grid"] = "tpe"
    grid_points: int = Field(10, ge=2, le=1000)          # points per float parameter for the grid sampler
    pruner: Literal["none", "wilcoxon"] = "none"
    folds: int = Field(4, ge=2, le=20)                   # train sub-windows the Wilcoxon pruner compares
    warm_start: bool = False                             # enqueue the previous split's best (splits then run in order)
    workers: int = Field(0, ge=0, le=256)                # processes for splits; 0 = one per CPU core
    #: A trial with fewer trades in its train window is infeasible (a Sharpe from a trade or two is luck).
    min_trades: int = Field(5, ge=1, le=100_000)
    # the Optuna RDB URL the finished studies go to; "none" = keep none
    storage: str = "sqlite:///{lake_root}/optuna/studies.db"

    @field_validator("objective")
    @classmethod
    def _objective(cls, v: str | list[str]) -> str | list[str]:
        names = [v] if isinstance(v, str) else list(v)
        if not names:
            raise ValueError(f"name at least one objective: {', '.join(_SEARCH_OBJECTIVES)}")
        for name in names:
            if name not in _SEARCH_OBJECTIVES:
                raise ValueError(f"unknown objective {name!r}{closest(name, _SEARCH_OBJECTIVES)}; "
                                 f"use {', '.join(_SEARCH_OBJECTIVES)}")
        if len(set(names)) != len(names):
            raise ValueError("an objective is listed twice")
        return v if isinstance(v, str) or len(names) > 1 else names[0]

    @model_validator(mode="after")
    def _consistent(self) -> SearchConfig:
        objs = self.objectives
        for k, w in self.weights.items():
            if k not in objs:
                raise ValueError(f"weights.{k}: not one of the objectives ({', '.join(objs)}); "
                                 "remove it or add it to objective")
            if not w > 0:
                raise ValueError(f"weights.{k}={w}: weights must be positive")
        if self.pruner != "none" and len(objs) > 1:
            raise ValueError("pruner: Optuna prunes single-objective studies only; use one objective or pruner: none")
        if self.pruner != "none" and self.sampler == "grid":
            raise ValueError("pruner: a grid search evaluates every point fully; use pruner: none with sampler: grid")
        if not self.storage.strip():
            raise ValueError("storage: give an Optuna RDB URL (e.g. sqlite:///data_lake/optuna/studies.db) or 'none'")
        return self

    @property
    def objectives(self) -> tuple[str, ...]:
        return (self.objective,) if isinstance(self.objective, str) else tuple(self.objective)

    def storage_url(self, lake_root: str | Path) -> str | None:
        """The Optuna storage URL with ``{lake_root}`` filled in, or None when persistence is off."""
        if self.storage.strip().lower() == "none":
            return None
        return self.storage.replace("{lake_root}", str(Path(lake_root).resolve()))

    def fingerprint_fields(self) -> dict[str, Any]:
        """Everything that changes a split's search result (not workers or storage, which do not)."""
        return {
            "n_trials": self.n_trials, "seed": self.seed, "objectives": list(self.objectives),
            "selection": self.selection, "weights": dict(sorted(self.weights.items())), "sampler": self.sampler,
            "grid_points": self.grid_points,
            "pruner": self.pruner, "folds": self.folds, "warm_start": self.warm_start, "min_trades": self.min_trades,
        }




class ResearchDataConfig(Section):
    """``research:``: which validated months research reads. ``span: all`` (default): every month, a blocked or
    missing one holds research back; ``span: longest_clean``: the longest run of consecutive clean months (the
    splits' metadata and the report say which span was used)."""

    span: Literal["all", "longest_clean"] = "all"


class RegimesConfig(Section):
    """Market regimes (a Gaussian HMM over daily returns and volatility, fitted on past data only).

    They are recorded with every split, and a confirmed shift away from the regime the live parameters were
    tuned on re-optimizes the live split early (see ``maestro_pipeline.live``)."""

    enabled: bool = True
    n_regimes: int = Field(2, ge=2, le=5)
    seed: int = Field(0, ge=0)
    min_prob: float = Field(0.8, ge=0.5, lt=1.0)    # filtered probability every confirming day needs
    min_days: int = Field(3, ge=1, le=60)           # newest days that must all be in the new regime
    reference_days: int = Field(30, ge=5, le=3650)  # the end of the train window the live parameters were tuned on
    min_fit_days: int = Field(60, ge=20, le=3650)   # days of history before a model is fitted at all



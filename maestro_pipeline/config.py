"""``maestro.yaml``: what to research, validated on load.

Every mistake becomes one line that names the key and what is allowed (``ConfigError``), because the file is
read by the Dagster code location at load time, by the CLI and by tests, and a traceback helps none of them.
"""

from __future__ import annotations

import difflib
import os
import re
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .durations import check_step, parse_length
from .errors import ConfigError, MaestroError
from .instruments import Instrument, symbol_to_key
from .market.files import file_source_name
from .quality.rules import CHECKS, Policy
from .strategies import available_strategies
from .timeframes import SUPPORTED_TIMEFRAMES

DEFAULT_CONFIG_PATH = "maestro.yaml"
M = TypeVar("M", bound=BaseModel)
CONFIG_ENV = "MAESTRO_CONFIG"

#: Sources that are not ccxt exchanges. ``file`` instruments take ``path`` (and ``name``); their key's exchange
#: part is ``file_<name>`` (e.g. ``file_bitvavo.BTC_EUR.1h``) so two files of one symbol stay two instruments.
BUILTIN_SOURCES = ("synthetic", "file")
_FILE_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@lru_cache(maxsize=1)
def known_exchanges() -> tuple[str, ...]:
    import ccxt  # imported lazily: ~0.5 s, only needed to validate exchange ids

    return tuple(BUILTIN_SOURCES) + tuple(ccxt.exchanges)


def _closest(word: str, choices: list[str] | tuple[str, ...], n: int = 3) -> str:
    near = difflib.get_close_matches(word, choices, n=n)
    return f" (did you mean {', '.join(near)}?)" if near else ""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InstrumentConfig(_Model):
    exchange: str
    symbol: str
    timeframe: str
    start: date
    end: date | None = None
    path: str | None = None   # exchange: file only: the candle file (CSV, Parquet, feather, freqtrade JSON)
    name: str | None = None   # exchange: file only: names the instrument (default: the file's stem)

    @field_validator("exchange")
    @classmethod
    def _exchange(cls, v: str) -> str:
        if v not in known_exchanges():
            raise ValueError(
                f"unknown exchange {v!r}{_closest(v, known_exchanges())}; use 'synthetic', 'file' or a ccxt exchange id"
            )
        return v

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, v: str) -> str:
        try:
            symbol_to_key(v)
        except MaestroError as e:
            raise ValueError(str(e)) from None
        return v

    @field_validator("timeframe")
    @classmethod
    def _timeframe(cls, v: str) -> str:
        if v not in SUPPORTED_TIMEFRAMES:
            raise ValueError(f"unsupported timeframe {v!r}; use one of {', '.join(SUPPORTED_TIMEFRAMES)}")
        return v

    @model_validator(mode="after")
    def _range(self) -> InstrumentConfig:
        today = datetime.now(UTC).date()
        if self.start > today:
            raise ValueError(f"start {self.start} is in the future; pick a date before {today}")
        if self.start < date(2009, 1, 3):
            raise ValueError(f"start {self.start} is before any crypto market existed")
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"end {self.end} must be after start {self.start}")
        if self.exchange == "file":
            if not self.path:
                raise ValueError("exchange: file needs path: (a .csv, .parquet, .feather or freqtrade .json file)")
            if not _FILE_NAME_RE.match(self.file_name):
                raise ValueError(
                    f"name {self.file_name!r} must be lower-case letters, digits or _ (start with a letter, at most 40)"
                )
        elif self.path is not None or self.name is not None:
            raise ValueError("path and name are only for exchange: file")
        return self

    @property
    def file_name(self) -> str:
        """The file instrument's name: ``name``, else the file's stem made key-safe."""
        return self.name or file_source_name(self.path or "file")

    @property
    def source_id(self) -> str:
        """The exchange part of the instrument key: the exchange id, or ``file_<name>`` for files."""
        return f"file_{self.file_name}" if self.exchange == "file" else self.exchange

    def file_path(self, base: Path | None = None) -> Path | None:
        """The file of an ``exchange: file`` instrument, relative paths resolved against ``base``."""
        if self.exchange != "file" or not self.path:
            return None
        p = Path(os.path.expandvars(os.path.expanduser(self.path)))
        return p if p.is_absolute() or base is None else base / p

    def to_instrument(self) -> Instrument:
        return Instrument(self.source_id, self.symbol, self.timeframe, self.start, self.end)


class WalkForwardConfig(_Model):
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


class SearchConfig(_Model):
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
                raise ValueError(f"unknown objective {name!r}{_closest(name, _SEARCH_OBJECTIVES)}; "
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
            "pruner": self.pruner, "folds": self.folds, "warm_start": self.warm_start,
        }


class CostConfig(_Model):
    fee: float = Field(0.001, ge=0, lt=0.1)
    slippage: float = Field(0.0005, ge=0, lt=0.1)


class CostsConfig(_Model):
    default: CostConfig = CostConfig()
    exchanges: dict[str, CostConfig] = {}


class SyntheticConfig(_Model):
    seed: int = Field(7, ge=0)


class RegimesConfig(_Model):
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


class ConcurrencyConfig(_Model):
    """Dagster's limits, written into the instance's dagster.yaml by ``maestro demo`` / ``make ui``.

    ``max_concurrent_runs`` runs at once (backfills, sensor runs); ``research_pool`` research steps at once across
    all runs (each searches its splits with ``search.workers`` processes, so keep pool x workers near the cores).
    """

    max_concurrent_runs: int = Field(2, ge=1, le=1000)
    research_pool: int = Field(1, ge=1, le=1000)


class ScheduleConfig(_Model):
    nightly_cron: str = "30 0 * * *"
    timezone: str = "UTC"


def _contract_length(v: str | int | None, info: Any) -> str | int | None:
    """A gap or run length: a duration (6h, 90m, 2d), a bar count (12) or 0."""
    if v is None or v in (0, "0"):
        return v if v is None else 0
    try:
        parse_length(v, info.field_name, allow_zero=True, allow_months=False)
    except MaestroError as e:
        raise ValueError(str(e)) from None
    return v


class ContractThresholds(_Model):
    """Thresholds of the bar contract (crypto trades 24/7: every bar of every day is expected)."""

    max_gap: str | int = "6h"
    spike_z: float = Field(50.0, gt=0)
    max_flat_run: str | int = "6h"
    max_zero_volume_run: str | int = 0

    _len = field_validator("max_gap", "max_flat_run", "max_zero_volume_run")(_contract_length)


class ContractThresholdsOverride(_Model):
    max_gap: str | int | None = None
    spike_z: float | None = Field(None, gt=0)
    max_flat_run: str | int | None = None
    max_zero_volume_run: str | int | None = None

    _len = field_validator("max_gap", "max_flat_run", "max_zero_volume_run")(_contract_length)


class DataContractConfig(_Model):
    """``data_contract``: which rules block, which drop rows, which warn; thresholds per exchange."""

    severity: dict[str, str] = {}
    default: ContractThresholds = ContractThresholds()
    exchanges: dict[str, ContractThresholdsOverride] = {}

    @field_validator("severity")
    @classmethod
    def _severity(cls, v: dict[str, str]) -> dict[str, str]:
        for check, sev in v.items():
            if check not in CHECKS:
                raise ValueError(f"unknown check {check!r}{_closest(check, list(CHECKS))}; checks: {', '.join(CHECKS)}")
            allowed = CHECKS[check][1]
            if sev not in allowed:
                raise ValueError(f"check {check!r} cannot be {sev!r}; use {' or '.join(allowed)}")
        return v

    @field_validator("exchanges")
    @classmethod
    def _exchanges(cls, v: dict[str, ContractThresholdsOverride]) -> dict[str, ContractThresholdsOverride]:
        for ex in v:
            if ex not in known_exchanges():
                raise ValueError(f"unknown exchange {ex!r}{_closest(ex, known_exchanges())}")
        return v

    def severities(self) -> dict[str, str]:
        return {c: self.severity.get(c, CHECKS[c][0]) for c in CHECKS}

    def policy_for(self, exchange: str) -> Policy:
        """The contract policy (severities + this exchange's thresholds)."""
        over = self.exchanges.get(exchange)
        t = {**self.default.model_dump(),
             **({k: x for k, x in over.model_dump().items() if x is not None} if over else {})}
        return Policy(severity=self.severities(), **t)


class MaestroConfig(_Model):
    lake_root: str = "data_lake"
    instruments: list[InstrumentConfig]
    strategies: list[str]
    walk_forward: WalkForwardConfig = WalkForwardConfig()
    search: SearchConfig = SearchConfig()
    costs: CostsConfig = CostsConfig()
    synthetic: SyntheticConfig = SyntheticConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    concurrency: ConcurrencyConfig = ConcurrencyConfig()
    regimes: RegimesConfig = RegimesConfig()
    data_contract: DataContractConfig = DataContractConfig()

    @field_validator("instruments")
    @classmethod
    def _instruments(cls, v: list[InstrumentConfig]) -> list[InstrumentConfig]:
        if not v:
            raise ValueError("list at least one instrument (exchange, symbol, timeframe, start)")
        keys = [i.to_instrument().key for i in v]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"instrument listed twice: {', '.join(dupes)}")
        return v

    @field_validator("strategies", mode="before")
    @classmethod
    def _all_strategies(cls, v: Any) -> Any:
        """``strategies: all`` researches the whole catalog (every strategy file, including plugins)."""
        if v == "all":
            return available_strategies()
        if isinstance(v, str):
            raise ValueError(f"write a list of strategy names (e.g. [ema_cross, rsi]) or 'all', not {v!r}")
        return v

    @field_validator("strategies")
    @classmethod
    def _strategies(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError(f"list at least one strategy; available: {', '.join(available_strategies())}")
        avail = available_strategies()
        for name in v:
            if name not in avail:
                raise ValueError(
                    f"unknown strategy {name!r}{_closest(name, avail)}; available: {', '.join(avail)}"
                )
        if len(set(v)) != len(v):
            raise ValueError("a strategy is listed twice")
        return v

    # --- conveniences -------------------------------------------------------------------------------
    @property
    def instrument_objs(self) -> list[Instrument]:
        return [i.to_instrument() for i in self.instruments]

    def instrument(self, key: str) -> Instrument:
        for inst in self.instrument_objs:
            if inst.key == key:
                return inst
        raise MaestroError(f"instrument {key!r} is not in maestro.yaml")

    def costs_for(self, exchange: str) -> CostConfig:
        return self.costs.exchanges.get(exchange, self.costs.default)

    def lake_path(self, base: Path | None = None) -> Path:
        p = Path(os.path.expandvars(os.path.expanduser(self.lake_root)))
        return p if p.is_absolute() or base is None else base / p



def _format_error(err: ValidationError, source: str, section: str = "") -> str:
    """``maestro.yaml: walk_forward.step: <what is wrong>`` (``section`` prefixes the key path of a sub-model)."""
    first = err.errors()[0]
    loc = section
    for part in first["loc"]:
        loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown key; remove it or check its spelling"
    elif first["type"] == "missing":
        msg = "missing; add it"
    more = f" (+{len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    return f"{source}: {loc}: {msg}{more}" if loc else f"{source}: {msg}{more}"


def parse_section(model: type[M], data: Any, where: str) -> M:
    """One section of the configuration (``SearchConfig``, ``WalkForwardConfig``, ...) from a mapping, with the
    one-line ``ConfigError`` of ``maestro.yaml`` (``where`` names the section in the message)."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_error(e, "maestro.yaml", where)) from None


def parse_config(data: Any, source: str = "maestro.yaml") -> MaestroConfig:
    """Validate a mapping (the parsed YAML) into a ``MaestroConfig`` or raise a one-line ``ConfigError``."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with 'instruments' and 'strategies' at the top")
    try:
        return MaestroConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_error(e, source)) from None


def config_path(path: str | os.PathLike | None = None) -> Path:
    return Path(path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH)


def load_config(path: str | os.PathLike | None = None) -> MaestroConfig:
    """Read and validate ``maestro.yaml`` (or ``$MAESTRO_CONFIG``)."""
    p = config_path(path)
    if not p.exists():
        raise ConfigError(f"{p}: not found; create it (see README) or set {CONFIG_ENV}")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{p}: not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    return parse_config(data, str(p))

"""What a strategy is: a typed parameter space, validation, a warm-up length and causal signals.

A strategy turns OHLCV bars into four boolean arrays (long entries/exits, short entries/exits). The signal at
bar ``t`` may use data up to bar ``t``'s close and nothing later; the backtest engine acts on it at bar
``t + 1``'s open. Strategies are stateless: one instance serves every call.

Parameter conventions (enforced by :meth:`Strategy.check`):

* every parameter has a default in ``defaults``; unknown names are rejected;
* a parameter listed in ``space`` must have the declared type and lie inside ``[low, high]`` (inclusive) or
  among ``choices``. ``IntParam.step`` is the *search* granularity only: a hand-picked value between grid
  points is still valid;
* a parameter not listed in ``space`` is fixed (the search never changes it) and is passed through as given;
* cross-parameter constraints (``fast < slow``) live in :meth:`Strategy.constraints`.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import numbers
import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..errors import MaestroError

__all__ = ["IntParam", "FloatParam", "Categorical", "Signals", "Strategy", "crossed_above", "crossed_below",
           "smaller_than"]


@dataclass(frozen=True)
class IntParam:
    low: int
    high: int
    step: int = 1

    def __post_init__(self) -> None:
        if self.low > self.high or self.step < 1:
            raise ValueError(f"bad IntParam({self.low}, {self.high}, step={self.step})")

    def describe(self) -> str:
        step = f" (step {self.step})" if self.step != 1 else ""
        return f"an integer in {self.low}..{self.high}{step}"


@dataclass(frozen=True)
class FloatParam:
    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        if not self.low <= self.high or (self.log and self.low <= 0):
            raise ValueError(f"bad FloatParam({self.low}, {self.high}, log={self.log})")

    def describe(self) -> str:
        return f"a number in {self.low}..{self.high}"


@dataclass(frozen=True)
class Categorical:
    choices: tuple

    def __post_init__(self) -> None:
        if len(self.choices) == 0:
            raise ValueError("Categorical needs at least one choice")

    def describe(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)


ParamSpec = IntParam | FloatParam | Categorical


@dataclass(frozen=True, eq=False)  # eq on arrays would be ambiguous; compare .arrays() explicitly
class Signals:
    """Boolean arrays aligned with the bars they were computed on (``len == len(bars)``)."""

    long_entries: np.ndarray
    long_exits: np.ndarray
    short_entries: np.ndarray
    short_exits: np.ndarray

    def __len__(self) -> int:
        return len(self.long_entries)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self.long_entries, self.long_exits, self.short_entries, self.short_exits


def crossed_above(a: np.ndarray, b: np.ndarray | float) -> np.ndarray:
    """``a[t-1] <= b[t-1] and a[t] > b[t]``: uses bars ``t-1`` and ``t`` only; NaN anywhere gives False."""
    a = np.asarray(a, dtype=np.float64)
    b = np.broadcast_to(np.asarray(b, dtype=np.float64), a.shape)
    out = np.zeros(a.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        out[1:] = (a[:-1] <= b[:-1]) & (a[1:] > b[1:])
    return out


def crossed_below(a: np.ndarray, b: np.ndarray | float) -> np.ndarray:
    """``a[t-1] >= b[t-1] and a[t] < b[t]``: uses bars ``t-1`` and ``t`` only; NaN anywhere gives False."""
    a = np.asarray(a, dtype=np.float64)
    b = np.broadcast_to(np.asarray(b, dtype=np.float64), a.shape)
    out = np.zeros(a.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        out[1:] = (a[:-1] >= b[:-1]) & (a[1:] < b[1:])
    return out


def smaller_than(params: Mapping[str, Any], small: str, big: str) -> str | None:
    """The constraint message when ``params[small] >= params[big]`` (fast < slow, exit_z < entry_z), else None."""
    if params[small] >= params[big]:
        return f"{small} ({params[small]}) must be smaller than {big} ({params[big]}): pick {small} < {big}"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _helper_modules(module_name: str) -> list[str]:
    """Other modules of this package (``_indicators``, ``ema_cross``, ...) whose objects ``module_name`` uses,
    sorted."""
    module = sys.modules.get(module_name)
    package = __name__.rpartition(".")[0]
    found = set()
    for obj in vars(module).values() if module is not None else ():
        owner = obj.__name__ if inspect.ismodule(obj) else getattr(obj, "__module__", None)
        if isinstance(owner, str) and owner.startswith(package + ".") and owner not in (module_name, __name__):
            found.add(owner)
    return sorted(found)


class Strategy(ABC):
    """Base class. Subclass it in one module of ``maestro_pipeline.strategies`` (or a plugin) to add a strategy."""

    name: ClassVar[str]
    description: ClassVar[str]
    defaults: ClassVar[dict[str, Any]]
    space: ClassVar[dict[str, ParamSpec]]
    #: Extra ``bars`` columns the strategy uses when present (derivatives data such as ``funding_rate``,
    #: ``open_interest``, ``mark_price``, ``index_price``); without them it falls back to a documented proxy.
    #: Presence is decided by the column existing in ``bars`` (never by its values, which would look ahead).
    optional_columns: ClassVar[tuple[str, ...]] = ()

    # ----------------------------------------------------------------- parameters

    def check(self, params: Mapping[str, Any] | None) -> dict:
        """Full, validated parameters: defaults filled in, types coerced, ranges and constraints checked."""
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise MaestroError(
                f"strategy {self.name!r}: parameters must be a mapping like {self.defaults}, got {params!r}"
            )
        unknown = sorted(str(k) for k in params if k not in self.defaults)
        if unknown:
            raise MaestroError(
                f"strategy {self.name!r} has no parameter {unknown[0]!r}: "
                f"its parameters are {', '.join(sorted(self.defaults))}"
            )
        full = {**self.defaults, **params}
        out = {k: self._coerce(k, full[k]) for k in self.defaults}
        problem = self.constraints(out)
        if problem:
            raise MaestroError(f"strategy {self.name!r}: {problem}")
        return out

    def constraints(self, params: dict) -> str | None:
        """Cross-parameter rules. Return a one-line message saying what is wrong and how to fix it, or None."""
        return None

    def _coerce(self, key: str, value: Any) -> Any:
        spec = self.space.get(key)
        where = f"strategy {self.name!r}: parameter {key}={value!r}"
        if spec is None:
            return value.item() if isinstance(value, np.generic) else value
        if isinstance(spec, IntParam):
            if not _is_number(value) or not math.isfinite(float(value)) or float(value) != int(value):
                raise MaestroError(f"{where} must be {spec.describe()}")
            v = int(value)
            if not spec.low <= v <= spec.high:
                raise MaestroError(f"{where} is out of range: use {spec.describe()}")
            return v
        if isinstance(spec, FloatParam):
            if not _is_number(value) or not math.isfinite(float(value)):
                raise MaestroError(f"{where} must be {spec.describe()}")
            v = float(value)
            if not spec.low <= v <= spec.high:
                raise MaestroError(f"{where} is out of range: use {spec.describe()}")
            return v
        if isinstance(spec, Categorical):
            v = value.item() if isinstance(value, np.generic) else value
            for choice in spec.choices:
                # True == 1 in Python: never let a bool stand in for a number or vice versa
                if isinstance(choice, bool) == isinstance(v, bool) and type(v) in (type(choice), int, float) \
                        and choice == v:
                    return choice
            raise MaestroError(f"{where} is not allowed: use {spec.describe()}")
        raise TypeError(f"unknown parameter spec {spec!r}")  # pragma: no cover - programming error

    # ----------------------------------------------------------------- signals

    @abstractmethod
    def warmup(self, params: dict) -> int:
        """Bars of history the indicators need before a signal may be emitted."""

    @abstractmethod
    def signals(self, bars: pd.DataFrame, params: dict) -> Signals:
        """Causal signals on ``bars`` (see module docstring); False before :meth:`warmup` bars."""

    def finish(
        self,
        bars: pd.DataFrame,
        params: dict,
        long_entries: np.ndarray,
        long_exits: np.ndarray,
        short_entries: np.ndarray,
        short_exits: np.ndarray,
    ) -> Signals:
        """Package raw conditions as :class:`Signals`: bool, right length, and False before the warm-up."""
        n = len(bars)
        w = min(self.warmup(params), n)
        arrays = []
        for a in (long_entries, long_exits, short_entries, short_exits):
            a = np.array(a, dtype=bool, copy=True).reshape(-1)
            if a.shape[0] != n:
                raise ValueError(f"{self.name}: signal length {a.shape[0]} != {n} bars")
            a[:w] = False
            arrays.append(a)
        return Signals(*arrays)

    def signals_batch(self, bars: pd.DataFrame, params_list: Sequence[dict]) -> list[Signals]:
        """:meth:`signals` for many checked parameter sets on the same ``bars``, in order.

        A grid search calls this once per history; override it to compute shared indicators once (the
        results must equal the per-set :meth:`signals`).
        """
        return [self.signals(bars, params) for params in params_list]

    # ----------------------------------------------------------------- data

    def missing_columns(self, bars: pd.DataFrame) -> tuple[str, ...]:
        """The :attr:`optional_columns` that ``bars`` does not have."""
        return tuple(c for c in self.optional_columns if c not in bars.columns)

    def data_note(self, bars: pd.DataFrame, params: Mapping[str, Any] | None = None) -> str | None:
        """A sentence saying which proxy replaced missing optional data, or None when nothing was replaced.

        The default returns None when the strategy has no optional columns or ``bars`` has all of them, and a
        generic sentence otherwise; strategies with optional columns override it to name their proxy.
        """
        missing = self.missing_columns(bars)
        if not missing:
            return None
        return (f"{', '.join(missing)} not available for this instrument: "
                f"{self.name} used its price/volume proxy instead.")

    # ----------------------------------------------------------------- lineage

    @property
    def code_version(self) -> str:
        """sha256 (16 hex) of this strategy's module source plus this base module: changes when behaviour can.

        Other modules of this package that the strategy module imports from (the shared ``_indicators``
        kernels, or another strategy's helper such as ``ema_cross.ema``) are hashed too, after the two above,
        so a change in a shared kernel changes the version of every strategy that uses it.
        """
        h = hashlib.sha256()
        for module_name in (type(self).__module__, __name__, *_helper_modules(type(self).__module__)):
            module = sys.modules.get(module_name)
            try:
                source = inspect.getsource(module) if module is not None else module_name
            except (OSError, TypeError):
                source = module_name
            h.update(source.encode())
        return h.hexdigest()[:16]

    def __repr__(self) -> str:
        return f"<Strategy {self.name}>"

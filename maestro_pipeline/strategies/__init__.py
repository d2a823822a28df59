"""Strategy registry: every module of this package that defines a ``Strategy`` subclass, plus plugins.

Adding a strategy = adding one file here with one ``Strategy`` subclass (its ``name`` is the registry key),
or publishing a package with an entry point in the ``maestro.strategies`` group pointing at a ``Strategy``
subclass (or at a module that defines one). Names must be unique across both sources.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

from ..errors import MaestroError
from .base import Categorical, FloatParam, IntParam, Signals, Strategy, smaller_than
from .lookahead import LookaheadReport, check_lookahead

__all__ = [
    "Categorical",
    "LookaheadReport",
    "FloatParam",
    "IntParam",
    "Signals",
    "Strategy",
    "ENTRY_POINT_GROUP",
    "available_strategies",
    "check_lookahead",
    "discover_package",
    "get_strategy",
    "refresh",
    "smaller_than",
]

ENTRY_POINT_GROUP = "maestro.strategies"

_registry: dict[str, type[Strategy]] | None = None


def _classes_in(module: ModuleType) -> list[type[Strategy]]:
    """Concrete ``Strategy`` subclasses *defined* in ``module`` (imported ones are ignored).

    A class that has a ``name`` but is still abstract (forgot ``signals`` or ``warmup``) is an error rather
    than silently missing from the registry; abstract helpers without a ``name`` are skipped.
    """
    found = []
    for _, obj in inspect.getmembers(module, inspect.isclass):
        if not issubclass(obj, Strategy) or obj is Strategy or obj.__module__ != module.__name__:
            continue
        if inspect.isabstract(obj):
            if "name" in vars(obj):
                missing = ", ".join(sorted(obj.__abstractmethods__))
                raise MaestroError(f"strategy {obj.name!r} in {module.__name__} does not implement {missing}")
            continue
        found.append(obj)
    return found


def _add(found: dict[str, type[Strategy]], cls: type[Strategy], origin: str) -> None:
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise MaestroError(f"strategy class {cls.__qualname__} in {origin} has no `name`: give it name = '...'")
    for attr in ("description", "defaults", "space"):
        if not hasattr(cls, attr):
            raise MaestroError(f"strategy {name!r} in {origin} lacks `{attr}`: define it on the class")
    if name in found and found[name] is not cls:
        other = found[name].__module__
        raise MaestroError(f"two strategies are named {name!r} ({other} and {origin}): rename one of them")
    found[name] = cls


def discover_package(package: str) -> dict[str, type[Strategy]]:
    """Strategies defined in the modules of ``package`` (``base`` and ``_private`` modules skipped)."""
    pkg = importlib.import_module(package)
    found: dict[str, type[Strategy]] = {}
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name == "base" or info.ispkg:
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        for cls in _classes_in(module):
            _add(found, cls, module.__name__)
    return found


def _from_entry_points(found: dict[str, type[Strategy]]) -> None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        origin = f"plugin {ep.name!r} ({ep.value})"
        try:
            obj: Any = ep.load()
        except Exception as exc:  # a broken plugin must say which one it is
            raise MaestroError(f"{origin} failed to import ({exc}): fix or uninstall that package") from exc
        if isinstance(obj, ModuleType):
            classes = _classes_in(obj)
        elif inspect.isclass(obj) and issubclass(obj, Strategy) and not inspect.isabstract(obj):
            classes = [obj]
        elif isinstance(obj, Strategy):
            classes = [type(obj)]
        else:
            classes = []
        if not classes:
            raise MaestroError(f"{origin} does not point at a Strategy subclass or a module defining one")
        for cls in classes:
            _add(found, cls, origin)


def _load() -> dict[str, type[Strategy]]:
    global _registry
    if _registry is None:
        found = discover_package(__name__)
        _from_entry_points(found)
        _registry = found
    return _registry


def refresh() -> None:
    """Forget the discovered strategies (after installing a plugin in a running process)."""
    global _registry
    _registry = None


def available_strategies() -> list[str]:
    """Names of every registered strategy, sorted."""
    return sorted(_load())


def get_strategy(name: str) -> Strategy:
    """The strategy called ``name``; a MaestroError listing the available names otherwise."""
    registry = _load()
    if name not in registry:
        raise MaestroError(f"unknown strategy {name!r}: available strategies are {', '.join(sorted(registry))}")
    return registry[name]()

"""Persisting finished in-memory studies to an Optuna RDB storage (SQLite by default), where optuna-dashboard
reads them."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna

from ..errors import MaestroError

__all__ = ["clear_storage_cache", "persist_study", "prepare_storage"]


def persist_study(url: str, name: str, trials: list, objectives: Sequence[str], attrs: dict) -> bool:
    """Write a finished in-memory study to an Optuna RDB storage (``sqlite:///...``, ``postgresql://...``).

    A study of that name already there is left alone (names carry the split's fingerprint, so it holds the same
    trials); returns whether it was written. ``attrs`` (seed, sampler settings, versions, window) become the
    study's user attributes and ``objectives`` its metric names, which optuna-dashboard shows.
    """
    storage = _storage(url)
    try:
        optuna.load_study(study_name=name, storage=storage)
        return False
    except KeyError:
        pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(storage=storage, study_name=name, directions=["maximize"] * len(objectives))
        try:
            study.set_metric_names(list(objectives))
            for k, v in attrs.items():
                study.set_user_attr(k, v)
            study.add_trials(trials)
        except BaseException:
            optuna.delete_study(study_name=name, storage=storage)  # no half-written study survives
            raise
    return True


#: Cache: one opened storage per (URL, process); :func:`clear_storage_cache` empties it.
_STORAGES: dict[tuple[str, int], Any] = {}


def prepare_storage(url: str) -> None:
    """Open the storage once (creating its schema) and close it again, before worker processes fork: two
    processes creating a fresh SQLite schema at once would race, and a forked SQLAlchemy pool must not be shared."""
    _storage(url)
    key = (url, os.getpid())
    storage = _STORAGES.pop(key)
    engine = getattr(storage, "engine", None)
    if engine is not None:
        engine.dispose()


def _storage(url: str) -> Any:
    """One storage object per URL and process (opening SQLite storage creates its schema: ~1 s the first time)."""
    key = (url, os.getpid())
    if key not in _STORAGES:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)
        try:
            _STORAGES[key] = optuna.storages.RDBStorage(
                url, engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None)
        except Exception as exc:  # bad URL, missing driver, unreachable server
            raise MaestroError(f"cannot open the Optuna storage {url!r}: {exc}; "
                               "fix search.storage or set it to 'none'") from None
    return _STORAGES[key]


def clear_storage_cache() -> None:
    """Forget the opened storages of this process (their engines are disposed)."""
    for storage in _STORAGES.values():
        engine = getattr(storage, "engine", None)
        if engine is not None:
            engine.dispose()
    _STORAGES.clear()

"""Persisting finished in-memory studies to an Optuna RDB storage (SQLite by default, PostgreSQL for a team),
where optuna-dashboard reads them.

A study is written in **one database transaction**: its row, directions, metric names, attributes and every
trial commit together or not at all, so a crash mid-write leaves no study (not an empty one that later runs
would skip), and two processes persisting the same study both succeed (the unique study name makes the second
commit fail; it then finds the first one's complete study). One transaction is also what makes persistence
cheap (``make bench`` measures it against ``add_trials``).

The transaction writes the tables of Optuna's own ORM models (their columns, value and parameter encodings), one
executemany INSERT per table (SQLAlchemy Core: the ORM's per-object bookkeeping cost ~50 ms a 100-trial study, more
than the inserts). Optuna's ``add_trials`` also re-checks every parameter's distribution against the study's
earlier trials (a query per parameter, growing with the study), which a finished study from one search does not
need. The tests load every study back with ``optuna.load_study`` and compare it with the same trials written by
``add_trials``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna import distributions
from optuna.storages._rdb import models  # Optuna's ORM tables (the same rows its RDBStorage writes)
from optuna.study import StudyDirection
from sqlalchemy import exc as sqlalchemy_exc
from sqlalchemy import insert, select

from ..errors import MaestroError

__all__ = ["clear_storage_cache", "normalize_storage_url", "persist_study", "prepare_storage"]

#: Optuna's system attribute holding a study's metric names (``Study.set_metric_names`` writes it).
_METRIC_NAMES_ATTR = "study:metric_names"


def normalize_storage_url(url: str) -> str:
    """``search.storage`` as SQLAlchemy needs it: ``${VAR}`` expanded from the environment (a password never has to
    be in a file: leave it out and libpq reads ``PGPASSWORD`` or ``~/.pgpass``), and a plain ``postgresql://``
    bound to psycopg2, the driver of the ``team`` extra (SQLAlchemy 2.1 would pick psycopg 3 for it)."""
    url = os.path.expandvars(url)
    if url.startswith(("postgresql://", "postgres://")) and importlib.util.find_spec("psycopg") is None:
        url = "postgresql+psycopg2://" + url.split("://", 1)[1]
    return url


def persist_study(url: str, name: str, trials: list, objectives: Sequence[str], attrs: dict) -> bool:
    """Write a finished in-memory study to an Optuna RDB storage (``sqlite:///...``, ``postgresql://...``), atomically.

    A study of that name already there is left alone (names carry the split's fingerprint, so it holds the same
    trials); returns whether it was written. ``attrs`` (seed, sampler settings, versions, window) become the
    study's user attributes and ``objectives`` its metric names, which optuna-dashboard shows.
    """
    storage = _storage(url)
    if _exists(storage, name):
        return False
    try:
        with storage.engine.begin() as conn:  # one transaction: committed whole, or rolled back on any error
            study_id = conn.execute(insert(models.StudyModel.__table__).values(study_name=name)).inserted_primary_key[0]
            _insert(conn, models.StudyDirectionModel, [{"study_id": study_id, "objective": i,
                                                         "direction": StudyDirection.MAXIMIZE}
                                                        for i in range(len(objectives))])
            _insert(conn, models.StudySystemAttributeModel, [
                {"study_id": study_id, "key": _METRIC_NAMES_ATTR, "value_json": json.dumps(list(objectives))}])
            _insert(conn, models.StudyUserAttributeModel, [
                {"study_id": study_id, "key": k, "value_json": json.dumps(v)} for k, v in attrs.items()])
            _insert(conn, models.TrialModel, [
                {"study_id": study_id, "number": n, "state": t.state, "datetime_start": t.datetime_start,
                 "datetime_complete": t.datetime_complete} for n, t in enumerate(trials)])
            trial = models.TrialModel.__table__.c
            ids = dict(conn.execute(select(trial.number, trial.trial_id).where(trial.study_id == study_id)).all())
            rows: dict[Any, list[dict]] = {}
            for n, t in enumerate(trials):
                for model, row in _trial_rows(ids[n], t):
                    rows.setdefault(model, []).append(row)
            for model, batch in rows.items():
                _insert(conn, model, batch)
    except sqlalchemy_exc.IntegrityError:
        # another process committed this study first (the name is unique): it holds the same trials
        if _exists(storage, name):
            return False
        raise
    return True


def _insert(conn: Any, model: Any, rows: list[dict]) -> None:
    """One executemany INSERT of ``rows`` into ``model``'s table (nothing for no rows)."""
    if rows:
        conn.execute(insert(model.__table__), rows)


def _trial_rows(trial_id: int, t: Any) -> list[tuple[Any, dict]]:
    """(model, row) of one finished trial, as Optuna's RDB storage stores them (values with their type for +-inf,
    parameters in their internal representation with the distribution's JSON, attributes as JSON)."""
    out: list[tuple[Any, dict]] = []
    for objective, v in enumerate(t.values or ()):
        stored, kind = models.TrialValueModel.value_to_stored_repr(v)
        out.append((models.TrialValueModel,
                    {"trial_id": trial_id, "objective": objective, "value": stored, "value_type": kind}))
    for name, value in t.params.items():
        dist = t.distributions[name]
        out.append((models.TrialParamModel,
                    {"trial_id": trial_id, "param_name": name, "param_value": dist.to_internal_repr(value),
                     "distribution_json": distributions.distribution_to_json(dist)}))
    out += [(models.TrialUserAttributeModel, {"trial_id": trial_id, "key": k, "value_json": json.dumps(v)})
            for k, v in t.user_attrs.items()]
    out += [(models.TrialSystemAttributeModel, {"trial_id": trial_id, "key": k, "value_json": json.dumps(v)})
            for k, v in t.system_attrs.items()]
    for step, v in t.intermediate_values.items():
        stored, kind = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(v)
        out.append((models.TrialIntermediateValueModel,
                    {"trial_id": trial_id, "step": step, "intermediate_value": stored,
                     "intermediate_value_type": kind}))
    return out


def _exists(storage: Any, name: str) -> bool:
    try:
        storage.get_study_id_from_name(name)
        return True
    except KeyError:
        return False


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
        real = normalize_storage_url(url)
        if real.startswith("sqlite:///"):
            Path(real.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)
        if real.startswith("postgresql+psycopg2") and importlib.util.find_spec("psycopg2") is None:
            raise MaestroError(f"search.storage {_redacted(url)!r} needs the PostgreSQL driver: install the team "
                               "extra (pip install -e '.[team]') or set search.storage to a sqlite:/// URL")
        for attempt in range(4):
            try:
                _STORAGES[key] = optuna.storages.RDBStorage(
                    real, engine_kwargs={"connect_args": {"timeout": 60}} if real.startswith("sqlite") else None)
                break
            except Exception as exc:  # bad URL, missing driver, unreachable server; or a schema race (below)
                # Two runs on two workers opening a fresh PostgreSQL database both create Optuna's tables; the
                # loser fails on a duplicate type or table. A moment later the schema is there: open it again.
                race = "already exists" in str(exc) or "duplicate key" in str(exc)
                if race and attempt < 3:
                    time.sleep(0.5 * (attempt + 1))
                    continue
                detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise MaestroError(f"cannot open the Optuna storage {_redacted(os.path.expandvars(url))!r}: "
                                   f"{detail}; fix search.storage or set it to 'none'") from None
    return _STORAGES[key]


def _redacted(url: str) -> str:
    """The URL without a password, for messages (``user:secret@host`` -> ``user:***@host``)."""
    head, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    cred, at, host = rest.rpartition("@")
    user = cred.split(":", 1)[0]
    return f"{head}://{user}{':***' if ':' in cred else ''}@{host}"


def clear_storage_cache() -> None:
    """Forget the opened storages of this process (their engines are disposed)."""
    for storage in _STORAGES.values():
        engine = getattr(storage, "engine", None)
        if engine is not None:
            engine.dispose()
    _STORAGES.clear()
